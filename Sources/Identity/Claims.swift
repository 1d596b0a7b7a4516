import Foundation
import JWTKit
import SamtalerumCore

/// Audiences keep the two kinds of token apart: an invite can never pass as a staff token.
enum TokenAudience {
    static let staff = "samtalerum"
    static let invite = "samtalerum-invite"
    static let resume = "samtalerum-resume"
}

/// A bearer token for staff (worker, ops, auditor) issued by this server.
struct StaffClaims: JWTPayload {
    var iss: IssuerClaim
    var aud: AudienceClaim
    var sub: SubjectClaim
    var role: String
    var iat: IssuedAtClaim
    var exp: ExpirationClaim
    var jti: IDClaim

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try aud.verifyIntendedAudience(includes: TokenAudience.staff)
    }
}

/// An invite: bound to one meeting and one place in it (the citizen, or a guest's `peer`), short-lived.
struct InviteClaims: JWTPayload {
    var iss: IssuerClaim
    var aud: AudienceClaim
    var mid: String
    var role: String
    /// The guest's place; absent for the citizen, whose place is fixed.
    var peer: String?
    var iat: IssuedAtClaim
    var exp: ExpirationClaim
    var jti: IDClaim

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try aud.verifyIntendedAudience(includes: TokenAudience.invite)
        guard place != nil else {
            throw JWTError.claimVerificationFailure(failedClaim: nil, reason: "invite is not for a call participant's place")
        }
    }

    /// The role and place this invite opens, or nil for anything a worker could not have issued.
    var place: (role: Role, peer: PeerID)? {
        switch Role(rawValue: role) {
        case .citizen where peer == nil: (.citizen, .citizen)
        case .guest: peer.flatMap(PeerID.init(validating:)).flatMap { $0.rawValue.hasPrefix("guest-") ? (.guest, $0) : nil }
        default: nil
        }
    }
}

/// A token from the municipality's identity provider. Roles come from a `roles` array (app roles,
/// as Entra ID/Keycloak issue them) or a single `role` claim, mapped through configuration.
struct ExternalClaims: JWTPayload {
    var iss: IssuerClaim
    var aud: AudienceClaim
    var sub: SubjectClaim
    var exp: ExpirationClaim
    var nbf: NotBeforeClaim?
    var iat: IssuedAtClaim?
    /// Set in ID tokens from the sign-in flow; must echo the nonce this server sent.
    var nonce: String?
    var roles: [String]?
    var role: String?

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// A resume ticket: takes one place in one meeting back after a dropped connection, on whichever
/// node the load balancer picks. It names nothing the holder's own credential does not already
/// name (meeting, place, role); the credential must still be presented beside it.
struct ResumeClaims: JWTPayload {
    var iss: IssuerClaim
    var aud: AudienceClaim
    var mid: String
    var peer: String
    var role: String
    var iat: IssuedAtClaim
    var exp: ExpirationClaim
    var jti: IDClaim

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try aud.verifyIntendedAudience(includes: TokenAudience.resume)
    }
}
