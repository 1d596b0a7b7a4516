import Crypto
import Foundation
import Identity
import JWTKit
import SamtalerumCore
import Synchronization
import Testing

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    private let current: Mutex<Date>
    init(_ start: Date) { current = Mutex(start) }
    var clock: WallClock { WallClock { [self] in current.withLock { $0 } } }
    func advance(_ seconds: TimeInterval) { current.withLock { $0.addTimeInterval(seconds) } }
}

@Suite struct TokenAuthorityTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)
    let key = SymmetricKey(size: .bits256)

    @Test func staffTokensCarrySubjectAndRole() async throws {
        let time = ManualClock(start)
        let authority = try await TokenAuthority(signingKey: key, clock: time.clock)
        let token = try await authority.issueStaffToken(subject: SubjectRef(rawValue: "w-17"), role: .worker, ttl: 3600)
        let identity = try await authority.verifyStaff(token)
        #expect(identity.subject == SubjectRef(rawValue: "w-17"))
        #expect(identity.role == .worker)
        #expect(try await authority.verifyCredential(token) == .staff(identity))
    }

    @Test func expiryIsReportedAsSuch() async throws {
        let time = ManualClock(start)
        let authority = try await TokenAuthority(signingKey: key, clock: time.clock)
        let token = try await authority.issueStaffToken(subject: SubjectRef(rawValue: "w-1"), role: .worker, ttl: 60)
        let invite = try await authority.issueInvite(meeting: MeetingID(rawValue: "m-abc"), expiresAt: start.addingTimeInterval(60))
        time.advance(61)
        await #expect(throws: AuthenticationError.expired) { try await authority.verifyStaff(token) }
        await #expect(throws: AuthenticationError.expired) { try await authority.verifyCredential(invite) }
    }

    @Test func invitesAreBoundToTheirMeetingAndNeverPassAsStaffTokens() async throws {
        let authority = try await TokenAuthority(signingKey: key, clock: ManualClock(start).clock)
        let invite = try await authority.issueInvite(meeting: MeetingID(rawValue: "m-abc"), expiresAt: start.addingTimeInterval(600))
        guard case .invite(let verified) = try await authority.verifyCredential(invite) else {
            Issue.record("an invite must verify as an invite")
            return
        }
        #expect(verified.meetingId == MeetingID(rawValue: "m-abc"))
        #expect(verified.role == .citizen && verified.peer == .citizen)
        await #expect(throws: AuthenticationError.invalid) { try await authority.verifyStaff(invite) }
    }

    @Test func aGuestInviteOpensOnlyItsOwnPlace() async throws {
        let authority = try await TokenAuthority(signingKey: key, clock: ManualClock(start).clock)
        let place = PeerID.randomGuest()
        let invite = try await authority.issueInvite(meeting: MeetingID(rawValue: "m-abc"), expiresAt: start.addingTimeInterval(600), guest: place)
        guard case .invite(let verified) = try await authority.verifyCredential(invite) else {
            Issue.record("a guest invite must verify as an invite")
            return
        }
        #expect(verified.role == .guest && verified.peer == place)

        // Invites naming another place than a guest's (hand-made with our own key) are refused.
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: key.withUnsafeBytes { Array($0) }), digestAlgorithm: .sha256,
                       kid: JWKIdentifier(string: "samtalerum-local"))
        let wellFormed = try await keys.sign(HandMadeInvite(role: "guest", peer: "guest-aaaaaaaa", exp: .init(value: start.addingTimeInterval(600))),
                                             kid: JWKIdentifier(string: "samtalerum-local"))
        #expect(try await authority.verifyCredential(wellFormed) == .invite(Invite(
            meetingId: MeetingID(rawValue: "m-abc"), inviteId: "hand-made", expiresAt: start.addingTimeInterval(600),
            role: .guest, peer: PeerID(rawValue: "guest-aaaaaaaa"))), "the hand-made shape itself verifies")
        for (role, peer) in [("guest", "worker"), ("guest", nil), ("worker", "worker"), ("citizen", "guest-aaaaaaaa")] as [(String, String?)] {
            let forged = try await keys.sign(HandMadeInvite(role: role, peer: peer, exp: .init(value: start.addingTimeInterval(600))),
                                             kid: JWKIdentifier(string: "samtalerum-local"))
            await #expect(throws: AuthenticationError.invalid, "\(role)/\(peer ?? "-")") { try await authority.verifyCredential(forged) }
        }
    }

    @Test(arguments: ["", "abc", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."])
    func garbageIsInvalid(token: String) async throws {
        let authority = try await TokenAuthority(signingKey: key, clock: ManualClock(start).clock)
        await #expect(throws: AuthenticationError.invalid) { try await authority.verifyCredential(token) }
    }

    @Test func aTokenSignedWithAnotherKeyIsForged() async throws {
        let clock = ManualClock(start).clock
        let ours = try await TokenAuthority(signingKey: key, clock: clock)
        let theirs = try await TokenAuthority(signingKey: SymmetricKey(size: .bits256), clock: clock)
        let forged = try await theirs.issueInvite(meeting: MeetingID(rawValue: "m-abc"), expiresAt: start.addingTimeInterval(600))
        await #expect(throws: AuthenticationError.invalid) { try await ours.verifyCredential(forged) }
        // A flipped signature character must not verify either.
        // Not the last character: its low bits are base64 padding and may decode to the same bytes.
        var tampered = Array(try await ours.issueStaffToken(subject: SubjectRef(rawValue: "w-1"), role: .auditor, ttl: 60))
        let index = tampered.count - 10
        tampered[index] = tampered[index] == "A" ? "B" : "A"
        await #expect(throws: AuthenticationError.invalid) { try await ours.verifyStaff(String(tampered)) }
    }

    /// The municipality's IdP: an ES256 key published as JWKS, roles mapped by configuration.
    @Test func externalIdentityProviderTokensAreAcceptedWithMappedRoles() async throws {
        let idpKey = ES256PrivateKey()
        let idp = JWTKeyCollection()
        await idp.add(ecdsa: idpKey, kid: "idp-1")
        let parameters = try #require(idpKey.publicKey.parameters)
        let jwks = #"{"keys":[{"kty":"EC","crv":"P-256","use":"sig","kid":"idp-1","alg":"ES256","x":"\#(parameters.x)","y":"\#(parameters.y)"}]}"#
        let provider = ExternalIdentityProvider(issuer: "https://idp.kommune.example", audience: "samtalerum",
                                                jwksJSON: jwks, roleMapping: ["Samtalerum.Worker": .worker])
        let authority = try await TokenAuthority(signingKey: key, external: provider, clock: ManualClock(start).clock)

        struct IdPClaims: JWTPayload {
            var iss: IssuerClaim, aud: AudienceClaim, sub: SubjectClaim, exp: ExpirationClaim, roles: [String]
            func verify(using algorithm: some JWTAlgorithm) async throws {}
        }
        func token(issuer: String, roles: [String]) async throws -> String {
            try await idp.sign(IdPClaims(iss: .init(value: issuer), aud: .init(value: "samtalerum"), sub: .init(value: "emp-4711"),
                                         exp: .init(value: start.addingTimeInterval(600)), roles: roles), kid: "idp-1")
        }
        let identity = try await authority.verifyStaff(try await token(issuer: "https://idp.kommune.example", roles: ["Other", "Samtalerum.Worker"]))
        #expect(identity == StaffIdentity(subject: SubjectRef(rawValue: "emp-4711"), role: .worker, expiresAt: start.addingTimeInterval(600)))
        await #expect(throws: AuthenticationError.invalid) {
            try await authority.verifyStaff(try await token(issuer: "https://evil.example", roles: ["Samtalerum.Worker"]))
        }
        await #expect(throws: AuthenticationError.invalid) {
            try await authority.verifyStaff(try await token(issuer: "https://idp.kommune.example", roles: ["Unmapped"]))
        }
    }

    /// Times and key ids of IdP tokens: a token from the future, or naming a key the JWKS does
    /// not have (jwt-kit would fall back to its first key), is refused.
    @Test func externalTokensFromTheFutureOrWithAnUnknownKeyIDAreRefused() async throws {
        let idp = try await FakeIdPKeys()
        let authority = try await TokenAuthority(signingKey: key, external: idp.provider, clock: ManualClock(start).clock)
        let good = IdPTimedClaims(start: start)
        #expect(try await authority.verifyStaff(try await idp.sign(good)).role == .worker)

        var early = good
        early.nbf = .init(value: start.addingTimeInterval(TokenAuthority.allowedClockSkew + 5))
        await #expect(throws: AuthenticationError.invalid) { try await authority.verifyStaff(try await idp.sign(early)) }
        var skewed = good
        skewed.nbf = .init(value: start.addingTimeInterval(TokenAuthority.allowedClockSkew - 5))
        #expect(try await authority.verifyStaff(try await idp.sign(skewed)).role == .worker, "a little clock skew is fine")
        var issuedLater = good
        issuedLater.iat = .init(value: start.addingTimeInterval(3600))
        await #expect(throws: AuthenticationError.invalid) { try await authority.verifyStaff(try await idp.sign(issuedLater)) }

        await #expect(throws: AuthenticationError.invalid, "kid not in the JWKS") {
            try await authority.verifyStaff(try await idp.sign(good, kid: "rotated-away"))
        }
        await #expect(throws: AuthenticationError.invalid, "no kid") {
            try await authority.verifyStaff(try await idp.sign(good, kid: nil))
        }
    }

    @Test func idTokensMustBeForOurClientAndEchoOurNonce() async throws {
        let idp = try await FakeIdPKeys()
        let authority = try await TokenAuthority(signingKey: key, external: idp.provider, clock: ManualClock(start).clock)
        var claims = IdPTimedClaims(start: start)
        claims.aud = .init(value: "client-1")
        claims.nonce = "n-123"
        let token = try await idp.sign(claims)
        #expect(try await authority.verifyIDToken(token, clientID: "client-1", nonce: "n-123").subject == SubjectRef(rawValue: "emp-4711"))
        await #expect(throws: AuthenticationError.invalid) { try await authority.verifyIDToken(token, clientID: "client-1", nonce: "other") }
        await #expect(throws: AuthenticationError.invalid) { try await authority.verifyIDToken(token, clientID: "client-2", nonce: "n-123") }
        await #expect(throws: AuthenticationError.invalid, "an ID token is not an API token") { try await authority.verifyStaff(token) }
    }

    @Test func theSigningKeyFileIsCreatedOwnerOnlyAndReused() async throws {
        let dir = FileManager.default.temporaryDirectory.appending(path: "samtalerum-identity-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = try await TokenAuthority(dataDirectory: dir)
        let token = try await first.issueStaffToken(subject: SubjectRef(rawValue: "w-1"), role: .worker, ttl: 60)
        let second = try await TokenAuthority(dataDirectory: dir)
        #expect(try await second.verifyStaff(token).subject == SubjectRef(rawValue: "w-1"))
        let attributes = try FileManager.default.attributesOfItem(atPath: dir.appending(path: "keys/token.key").path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
    }
}

/// An invite as an attacker holding the signing key might shape it; only the claims matter here.
struct HandMadeInvite: JWTPayload {
    var iss = IssuerClaim(value: TokenAuthority.issuer)
    var aud = AudienceClaim(value: "samtalerum-invite")
    var mid = "m-abc"
    var role: String
    var peer: String?
    var iat = IssuedAtClaim(value: Date(timeIntervalSince1970: 1_800_000_000))
    var exp: ExpirationClaim
    var jti = IDClaim(value: "hand-made")

    init(role: String, peer: String?, exp: ExpirationClaim) {
        self.role = role
        self.peer = peer
        self.exp = exp
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// An IdP signing key published as a JWKS with kid `idp-1`.
struct FakeIdPKeys {
    let keys = JWTKeyCollection()
    let provider: ExternalIdentityProvider
    private let privateKey = ES256PrivateKey()

    init() async throws {
        let parameters = try #require(privateKey.publicKey.parameters)
        let jwks = #"{"keys":[{"kty":"EC","crv":"P-256","use":"sig","kid":"idp-1","alg":"ES256","x":"\#(parameters.x)","y":"\#(parameters.y)"}]}"#
        provider = ExternalIdentityProvider(issuer: "https://idp.kommune.example", audience: "samtalerum",
                                            jwksJSON: jwks, roleMapping: ["Samtalerum.Worker": .worker])
        await keys.add(ecdsa: privateKey)
    }

    func sign(_ claims: IdPTimedClaims, kid: String? = "idp-1") async throws -> String {
        try await keys.sign(claims, kid: kid.map { JWKIdentifier(string: $0) })
    }
}

struct IdPTimedClaims: JWTPayload {
    var iss = IssuerClaim(value: "https://idp.kommune.example")
    var aud = AudienceClaim(value: "samtalerum")
    var sub = SubjectClaim(value: "emp-4711")
    var exp: ExpirationClaim
    var nbf: NotBeforeClaim
    var iat: IssuedAtClaim
    var nonce: String?
    var roles = ["Samtalerum.Worker"]

    init(start: Date) {
        exp = .init(value: start.addingTimeInterval(600))
        nbf = .init(value: start.addingTimeInterval(-10))
        iat = .init(value: start.addingTimeInterval(-10))
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
