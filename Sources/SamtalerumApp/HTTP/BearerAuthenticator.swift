import CoreMetrics
import Hummingbird
import Identity
import SamtalerumCore

/// Turns `Authorization: Bearer …`, or else the sign-in session cookie, into a staff identity
/// with one of the allowed roles.
public struct BearerAuthenticator: Sendable {
    let authority: TokenAuthority
    /// Browsers signed in through the identity provider; nil when none is configured.
    var sessions: StaffSessions? = nil

    public func require(_ roles: Set<Role>, in request: Request) async throws -> StaffIdentity {
        let identity: StaffIdentity
        if let header = request.headers[.authorization] {
            guard header.count > 7, header.prefix(7).lowercased() == "bearer " else {
                throw failure(Problem(.unauthorized, detail: "send Authorization: Bearer <token>"))
            }
            do {
                identity = try await authority.verifyStaff(String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces))
            } catch .expired {
                throw failure(Problem(.tokenExpired))
            } catch {
                throw failure(Problem(.unauthorized, detail: "the token is not valid here"))
            }
        } else if let sessions, let cookie = request.cookies[SignInCookie.session]?.value {
            // An ended or unknown session reads as expired: the page offers to sign in again.
            guard let signedIn = sessions.identity(session: cookie) else { throw failure(Problem(.tokenExpired)) }
            identity = signedIn
        } else {
            throw failure(Problem(.unauthorized, detail: "send Authorization: Bearer <token>, or sign in"))
        }
        guard roles.contains(identity.role) else {
            throw failure(Problem(.forbidden, detail: "role \(identity.role) may not use this endpoint"))
        }
        return identity
    }

    private func failure(_ problem: Problem) -> Problem {
        Counter(label: "samtalerum_auth_failures_total", dimensions: [("via", "http"), ("code", problem.type.replacingOccurrences(of: Problem.typePrefix, with: ""))]).increment()
        return problem
    }
}
