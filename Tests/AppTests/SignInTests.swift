import Foundation
import Hummingbird
import HummingbirdTesting
import Identity
@testable import SamtalerumApp
import SamtalerumCore
import Testing

/// The sign-in bookkeeping (the flow itself runs against a real provider in Tests/e2e/test_oidc.py).
@Suite struct SignInTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func aSignInStateIsUsedOnceAndOnlyWhileFresh() {
        var table = SignInTable()
        let login = SignInTable.Pending(verifier: "v", nonce: "n", next: "/worker", startedAt: start)
        table.begin(state: "s-1", login, now: start)
        #expect(table.finish(state: "s-1", now: start.addingTimeInterval(5))?.nonce == "n")
        #expect(table.finish(state: "s-1", now: start.addingTimeInterval(6)) == nil, "a replayed callback finds nothing")

        table.begin(state: "s-2", login, now: start)
        #expect(table.finish(state: "s-2", now: start.addingTimeInterval(SignInTable.pendingLifetime + 1)) == nil)
    }

    @Test func aSessionEndsAtItsTimeOrWhenClosed() {
        var table = SignInTable()
        let identity = StaffIdentity(subject: SubjectRef(rawValue: "emp-1"), role: .worker, expiresAt: start.addingTimeInterval(3600))
        table.open(id: "a", .init(identity: identity, idToken: "t"), now: start)
        #expect(table.session(id: "a", now: start.addingTimeInterval(3599))?.identity == identity)
        #expect(table.session(id: "a", now: start.addingTimeInterval(3600)) == nil)
        table.open(id: "b", .init(identity: identity, idToken: "t"), now: start)
        #expect(table.close(id: "b") != nil)
        #expect(table.session(id: "b", now: start) == nil)
    }

    @Test func pkceChallengeIsTheBase64URLSHA256OfTheVerifier() {
        // Computed independently: python3 -c "import hashlib,base64; print(base64.urlsafe_b64encode(
        //   hashlib.sha256(b'dBjftJeZ4CVP-mJ0kYeHrR7i7IPOo5Tz4Hbx9b_m6VM').digest()).rstrip(b'='))"
        #expect(StaffSessions.challenge(for: "dBjftJeZ4CVP-mJ0kYeHrR7i7IPOo5Tz4Hbx9b_m6VM") == "KrrFrmQWyv6CT4TSnElc387qpgxZN8xSOcEDJzPUwW0")
        #expect(StaffSessions.randomToken().count == 43)
    }

    @Test func withoutAnIdentityProviderThePagesKeepTheTokenFieldAndCookiesOpenNothing() async throws {
        let (_, directory) = try await TestServer.run { server in
            let methods = try await server.client.execute(uri: "/auth/methods", method: .get)
            #expect(String(buffer: methods.body) == #"{"identityProvider":false}"#)
            #expect(try await server.client.execute(uri: "/auth/login?next=/worker", method: .get).status == .notFound)
            let cookie = try await server.client.execute(uri: "/api/whoami", method: .get,
                                                         headers: [.cookie: "__Host-samtalerum-session=guessed"])
            #expect(cookie.status == .unauthorized)
            #expect(try await server.client.execute(uri: "/auth/ticket", method: .post,
                                                    headers: [.cookie: "__Host-samtalerum-session=guessed"]).status == .unauthorized)
        }
        withTemporaryDirectoryRemoved(directory)
    }

    @Test func anIdPSignInNeedsAnHTTPSIssuerExceptOnLoopback() throws {
        for (issuer, allowed) in [("https://login.example", true), ("http://127.0.0.1:9000", true),
                                  ("http://localhost:9000", true), ("http://idp.kommune.example", false)] {
            let settings = OIDCSettings(issuer: issuer, clientID: "c", clientSecret: nil,
                                        publicBaseURL: "https://samtale.example", sessionTTL: 3600)
            #expect(((try? OIDCClient(settings: settings)) != nil) == allowed, "\(issuer)")
        }
    }
}
