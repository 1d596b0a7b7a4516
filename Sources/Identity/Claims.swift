import Foundation
import JWTKit
import SamtalerumCore

/// Audiences keep the two kinds of token apart: an invite can never pass as a staff token.
enum TokenAudience {
    static let staff = "samtalerum"
    static let invite = "samtalerum-invite"
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

/// A citizen's invite: bound to one meeting and the citizen role, short-lived.
struct InviteClaims: JWTPayload {
    var iss: IssuerClaim
    var aud: AudienceClaim
    var mid: String
    var role: String
    var iat: IssuedAtClaim
    var exp: ExpirationClaim
    var jti: IDClaim

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try aud.verifyIntendedAudience(includes: TokenAudience.invite)
        guard role == Role.citizen.rawValue else {
            throw JWTError.claimVerificationFailure(failedClaim: nil, reason: "invite is not for a citizen")
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
    var roles: [String]?
    var role: String?

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
