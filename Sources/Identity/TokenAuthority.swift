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
    private let external: (keys: JWTKeyCollection, provider: ExternalIdentityProvider)?
    private let clock: WallClock

    public init(signingKey: SymmetricKey, external provider: ExternalIdentityProvider? = nil, clock: WallClock = .system) async throws {
        let keyBytes = signingKey.withUnsafeBytes { Array($0) }
        local = JWTKeyCollection()
        await local.add(hmac: HMACKey(from: keyBytes), digestAlgorithm: .sha256, kid: Self.localKID)
        if let provider {
            let keys = JWTKeyCollection()
            try await keys.add(jwksJSON: provider.jwksJSON)
            external = (keys, provider)
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

    /// The citizen's invite, or with `guest` a further participant's invite for that place.
    public func issueInvite(meeting: MeetingID, expiresAt: Date, guest: PeerID? = nil) async throws -> String {
        let claims = InviteClaims(
            iss: .init(value: Self.issuer), aud: .init(value: TokenAudience.invite), mid: meeting.rawValue,
            role: (guest == nil ? Role.citizen : .guest).rawValue, peer: guest?.rawValue,
            iat: .init(value: clock.now()), exp: .init(value: expiresAt),
            jti: .init(value: UUID().uuidString))
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

    /// A `hello` token: an invite or a staff token.
    public func verifyCredential(_ token: String) async throws(AuthenticationError) -> Credential {
        if let claims = try? await local.verify(token, as: InviteClaims.self) {
            guard let meeting = MeetingID(validating: claims.mid), let place = claims.place, claims.iss.value == Self.issuer
            else { throw .invalid }
            guard clock.now() < claims.exp.value else { throw .expired }
            return .invite(Invite(meetingId: meeting, inviteId: claims.jti.value, expiresAt: claims.exp.value,
                                  role: place.role, peer: place.peer))
        }
        return .staff(try await verifyStaff(token))
    }

    private func verifyExternal(_ token: String, now: Date) async throws(AuthenticationError) -> StaffIdentity {
        guard let (keys, provider) = external,
              let claims = try? await keys.verify(token, as: ExternalClaims.self),
              claims.iss.value == provider.issuer,
              claims.aud.value.contains(provider.audience),
              let subject = SubjectRef(validating: claims.sub.value)
        else { throw .invalid }
        let offered = (claims.roles ?? []) + (claims.role.map { [$0] } ?? [])
        // The most privileged mapping is not chosen implicitly: the first mapped role wins, in token order.
        guard let role = offered.lazy.compactMap({ provider.roleMapping[$0] }).first else { throw .invalid }
        guard now < claims.exp.value else { throw .expired }
        return StaffIdentity(subject: subject, role: role, expiresAt: claims.exp.value)
    }
}
