import CoreMetrics
import Hummingbird
import Identity
import SamtalerumCore

/// Turns `Authorization: Bearer …` into a staff identity with one of the allowed roles.
public struct BearerAuthenticator: Sendable {
    let authority: TokenAuthority

    public func require(_ roles: Set<Role>, in request: Request) async throws -> StaffIdentity {
        guard let header = request.headers[.authorization],
              header.count > 7, header.prefix(7).lowercased() == "bearer "
        else { throw failure(Problem(.unauthorized, detail: "send Authorization: Bearer <token>")) }
        let identity: StaffIdentity
        do {
            identity = try await authority.verifyStaff(String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces))
        } catch .expired {
            throw failure(Problem(.tokenExpired))
        } catch {
            throw failure(Problem(.unauthorized, detail: "the token is not valid here"))
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
