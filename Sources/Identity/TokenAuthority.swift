import Crypto
import Foundation
import JWTKit
import SamtalerumCore

/// Someone signed in with a bearer token.
public struct StaffIdentity: Sendable, Equatable {
    public var subject: SubjectRef
    public var role: Role
    public var expiresAt: Date
    public init(subject: SubjectRef, role: Role, expiresAt: Date) {
        self.subject = subject
        self.role = role
        self.expiresAt = expiresAt
    }
}

/// A verified invite into one meeting: the citizen's, or a guest's for one place.
public struct Invite: Sendable, Equatable {
    public var meetingId: MeetingID
    public var inviteId: String
    public var expiresAt: Date
    public var role: Role
    public var peer: PeerID
    public init(meetingId: MeetingID, inviteId: String, expiresAt: Date, role: Role = .citizen, peer: PeerID = .citizen) {
        self.meetingId = meetingId
        self.inviteId = inviteId
        self.expiresAt = expiresAt
        self.role = role
        self.peer = peer
    }
}

/// What a resume token says: one place in one meeting, until `expiresAt`. `id` tells tickets of
/// the same place apart (the node holding the room accepts only the latest it issued).
public struct ResumeTicket: Sendable, Equatable {
    public var id: String
    public var meetingId: MeetingID
    public var peer: PeerID
    public var role: Role
    public var expiresAt: Date
    public init(id: String = UUID().uuidString, meetingId: MeetingID, peer: PeerID, role: Role, expiresAt: Date) {
        self.id = id
        self.meetingId = meetingId
        self.peer = peer
        self.role = role
        self.expiresAt = expiresAt
    }
}

/// What a `hello` token turned out to be.
public enum Credential: Sendable, Equatable {
    case staff(StaffIdentity)
    case invite(Invite)
}

public enum AuthenticationError: Error, Sendable, Equatable {
    /// Forged, malformed, wrong audience, unknown key, or a role we do not know.
    case invalid
    case expired
}

/// The municipality's identity provider, trusted in addition to our own signing key.
public struct ExternalIdentityProvider: Sendable {
    public var issuer: String
    public var audience: String
    /// A JWKS document (the IdP's published signing keys), read at start-up.
    public var jwksJSON: String
    /// IdP role value → Samtalerum role, e.g. `["Samtalerum.Worker": .worker]`.
    public var roleMapping: [String: Role]

    public init(issuer: String, audience: String, jwksJSON: String, roleMapping: [String: Role]) {
        self.issuer = issuer
        self.audience = audience
        self.jwksJSON = jwksJSON
        self.roleMapping = roleMapping
    }
}

/// Issues and verifies staff tokens and citizen invites, signed with an HMAC key that lives in the
/// data directory; optionally also trusts an external identity provider.
public final class TokenAuthority: Sendable {
    public static let issuer = "samtalerum"
    private static let localKID = JWKIdentifier(string: "samtalerum-local")

    private let local: JWTKeyCollection
    /// The IdP's keys, and their `kid`s: jwt-kit falls back to its first key for an unknown or
    /// missing `kid`, so a token must name one of these itself.
    private let external: (keys: JWTKeyCollection, kids: Set<String>, provider: ExternalIdentityProvider)?
    private let clock: WallClock

    public init(signingKey: SymmetricKey, external provider: ExternalIdentityProvider? = nil, clock: WallClock = .system) async throws {
        let keyBytes = signingKey.withUnsafeBytes { Array($0) }
        local = JWTKeyCollection()
        await local.add(hmac: HMACKey(from: keyBytes), digestAlgorithm: .sha256, kid: Self.localKID)
        if let provider {
            let keys = JWTKeyCollection()
            try await keys.add(jwksJSON: provider.jwksJSON)
            external = (keys, try Self.keyIDs(inJWKS: provider.jwksJSON), provider)
        } else {
            external = nil
        }
        self.clock = clock
    }

    /// Loads the signing key from `DIR/keys/token.key`, creating it (mode 0600) on first start.
    public convenience init(dataDirectory: URL, external: ExternalIdentityProvider? = nil, clock: WallClock = .system) async throws {
        let key = try KeyFile.loadOrCreate(at: dataDirectory.appending(path: "keys/token.key"), byteCount: 32)
        try await self.init(signingKey: SymmetricKey(data: key), external: external, clock: clock)
    }

    public func issueStaffToken(subject: SubjectRef, role: Role, ttl: TimeInterval) async throws -> String {
        let now = clock.now()
        let claims = StaffClaims(
            iss: .init(value: Self.issuer), aud: .init(value: TokenAudience.staff), sub: .init(value: subject.rawValue),
            role: role.rawValue, iat: .init(value: now), exp: .init(value: now.addingTimeInterval(ttl)),
            jti: .init(value: UUID().uuidString))
        return try await local.sign(claims, kid: Self.localKID)
    }

    /// The citizen's invite, or with `guest` a further participant's invite for that place. The
    /// same `id` (its `jti`) gives an equivalent link: the meeting names the one id it accepts.
    public func issueInvite(meeting: MeetingID, expiresAt: Date, guest: PeerID? = nil,
                            id: String = UUID().uuidString) async throws -> String {
        let claims = InviteClaims(
            iss: .init(value: Self.issuer), aud: .init(value: TokenAudience.invite), mid: meeting.rawValue,
            role: (guest == nil ? Role.citizen : .guest).rawValue, peer: guest?.rawValue,
            iat: .init(value: clock.now()), exp: .init(value: expiresAt),
            jti: .init(value: id))
        return try await local.sign(claims, kid: Self.localKID)
    }

    /// A bearer token for the HTTP API: ours, or the configured IdP's.
    public func verifyStaff(_ token: String) async throws(AuthenticationError) -> StaffIdentity {
        let now = clock.now()
        if let claims = try? await local.verify(token, as: StaffClaims.self) {
            guard let subject = SubjectRef(validating: claims.sub.value) else { throw .invalid }
            let role = Role(rawValue: claims.role)
            guard Role.staff.contains(role), claims.iss.value == Self.issuer else { throw .invalid }
            guard now < claims.exp.value else { throw .expired }
            return StaffIdentity(subject: subject, role: role, expiresAt: claims.exp.value)
        }
        return try await verifyExternal(token, now: now)
    }

    /// A `hello` token: an invite or a staff token. `acceptingExpiredInvite` lets a genuine invite
    /// past its expiry through: it still names its place, which is enough to take back a place the
    /// signalling keeps for it (a resume); staff tokens are always checked for expiry.
    public func verifyCredential(_ token: String, acceptingExpiredInvite: Bool = false) async throws(AuthenticationError) -> Credential {
        if let claims = try? await local.verify(token, as: InviteClaims.self) {
            guard let meeting = MeetingID(validating: claims.mid), let place = claims.place, claims.iss.value == Self.issuer
            else { throw .invalid }
            guard acceptingExpiredInvite || clock.now() < claims.exp.value else { throw .expired }
            return .invite(Invite(meetingId: meeting, inviteId: claims.jti.value, expiresAt: claims.exp.value,
                                  role: place.role, peer: place.peer))
        }
        return .staff(try await verifyStaff(token))
    }

    /// A resume ticket for `peer` in `meeting`, valid until `expiresAt`. Signed with the same key
    /// as invites (`keys/token.key`, shared by every node), under its own audience, so any node
    /// can verify it and it can never pass as an invite or a staff token.
    public func issueResumeTicket(_ ticket: ResumeTicket) async throws -> String {
        let claims = ResumeClaims(
            iss: .init(value: Self.issuer), aud: .init(value: TokenAudience.resume), mid: ticket.meetingId.rawValue,
            peer: ticket.peer.rawValue, role: ticket.role.rawValue, iat: .init(value: clock.now()),
            exp: .init(value: ticket.expiresAt), jti: .init(value: ticket.id))
        return try await local.sign(claims, kid: Self.localKID)
    }

    /// A resume ticket this deployment signed and that has not expired.
    public func verifyResumeTicket(_ token: String) async throws(AuthenticationError) -> ResumeTicket {
        guard let claims = try? await local.verify(token, as: ResumeClaims.self), claims.iss.value == Self.issuer,
              let meeting = MeetingID(validating: claims.mid), let peer = PeerID(validating: claims.peer)
        else { throw .invalid }
        let role = Role(rawValue: claims.role)
        guard role.isCallParticipant else { throw .invalid }
        guard clock.now() < claims.exp.value else { throw .expired }
        return ResumeTicket(id: claims.jti.value, meetingId: meeting, peer: peer, role: role, expiresAt: claims.exp.value)
    }

    /// An ID token from the sign-in flow: the IdP's, for our client, echoing our nonce.
    public func verifyIDToken(_ token: String, clientID: String, nonce: String) async throws(AuthenticationError) -> StaffIdentity {
        try await verifyExternal(token, now: clock.now(), audience: clientID, nonce: nonce)
    }

    /// Clock skew tolerated between the IdP and this server for `nbf` and `iat`.
    public static let allowedClockSkew: TimeInterval = 60

    private func verifyExternal(_ token: String, now: Date, audience: String? = nil,
                                nonce: String? = nil) async throws(AuthenticationError) -> StaffIdentity {
        guard let (keys, kids, provider) = external,
              let kid = Self.headerKeyID(token), kids.contains(kid),
              let claims = try? await keys.verify(token, as: ExternalClaims.self),
              claims.iss.value == provider.issuer,
              claims.aud.value.contains(audience ?? provider.audience),
              nonce == nil || claims.nonce == nonce,
              let subject = SubjectRef(validating: claims.sub.value)
        else { throw .invalid }
        // A token from the future is either forged or from an IdP whose clock is wrong: both refused.
        let latest = now.addingTimeInterval(Self.allowedClockSkew)
        if let notBefore = claims.nbf?.value, notBefore > latest { throw .invalid }
        if let issuedAt = claims.iat?.value, issuedAt > latest { throw .invalid }
        let offered = (claims.roles ?? []) + (claims.role.map { [$0] } ?? [])
        // The most privileged mapping is not chosen implicitly: the first mapped role wins, in token order.
        guard let role = offered.lazy.compactMap({ provider.roleMapping[$0] }).first else { throw .invalid }
        guard now < claims.exp.value else { throw .expired }
        return StaffIdentity(subject: subject, role: role, expiresAt: claims.exp.value)
    }

    private struct KeyIDs: Decodable {
        struct Key: Decodable { var kid: String? }
        var keys: [Key]
    }

    static func keyIDs(inJWKS json: String) throws -> Set<String> {
        Set(try JSONDecoder().decode(KeyIDs.self, from: Data(json.utf8)).keys.compactMap(\.kid))
    }

    /// The `kid` of a compact JWS header, read before any key is chosen.
    static func headerKeyID(_ token: String) -> String? {
        guard let header = token.split(separator: ".", omittingEmptySubsequences: false).first else { return nil }
        var base64 = header.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        struct Header: Decodable { var kid: String? }
        guard let data = Data(base64Encoded: base64) else { return nil }
        return (try? JSONDecoder().decode(Header.self, from: data))?.kid
    }
}
