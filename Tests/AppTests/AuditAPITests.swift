import Foundation
import Hummingbird
import HummingbirdTesting
import SamtalerumCore
import SignallingProtocol
import Testing

/// The auditor's view over HTTP, against a real call recorded by the live server.
@Suite(.timeLimit(.minutes(2))) struct AuditAPITests {
    struct Row: Decodable {
        var meeting: String
        var session: String
        var durationSeconds: Int?
        var endReason: String?
        var citizenRef: String?
        var workerRef: String?
    }

    struct List: Decodable {
        var count: Int
        var sessions: [Row]
    }

    @Test func anAuditorFindsTheCitizensSessionsAndTheExportShowsTheLookUp() async throws {
        let (_, directory) = try await TestServer.run { server in
            let call = try await SignallingIntegrationTests.startCall(server)
            try await Task.sleep(for: .milliseconds(1100))
            call.worker.send(.leave)
            _ = try await call.citizen.next()

            let auditor = "Bearer \(try await server.token(.auditor, subject: "dpo-1"))"
            let query = "/api/audit/sessions?subject=sag-2024-0042&purpose=Aktindsigt%202024-17"
            let response = try await server.client.execute(uri: query, method: .get, headers: [.authorization: auditor])
            #expect(response.status == .ok)
            let rows = try JSONDecoder().decode(List.self, from: Data(buffer: response.body)).sessions
            let row = try #require(rows.first)
            #expect(rows.count == 1)
            #expect(row.session == call.session.rawValue)
            #expect(row.citizenRef == "sag-2024-0042" && row.workerRef == "w-1")
            #expect(row.endReason == "hangup")
            #expect((row.durationSeconds ?? 0) >= 1)

            let csv = try await server.client.execute(uri: query + "&format=csv", method: .get, headers: [.authorization: auditor])
            #expect(csv.headers[.contentType]?.hasPrefix("text/csv") == true)
            #expect(String(buffer: csv.body).contains(call.session.rawValue))

            for role in [Role.worker, .ops] {
                let denied = try await server.client.execute(
                    uri: query, method: .get, headers: [.authorization: "Bearer \(try await server.token(role, subject: "x"))"])
                #expect(denied.status == .forbidden, "\(role) must never read the audit")
            }
            let noPurpose = try await server.client.execute(
                uri: "/api/audit/sessions?subject=sag-2024-0042", method: .get, headers: [.authorization: auditor])
            #expect(noPurpose.status == .badRequest)
            #expect(noPurpose.headers[.contentType] == "application/problem+json")

            let export = try await server.client.execute(
                uri: "/api/audit/subjects/sag-2024-0042/export?purpose=Art.%2015%20request", method: .get, headers: [.authorization: auditor])
            #expect(export.status == .ok)
            let text = String(buffer: export.body)
            #expect(text.contains(call.session.rawValue))
            #expect(text.contains("Aktindsigt 2024-17"), "the earlier look-up and its purpose are listed")
            #expect(!text.contains("dpo-1"), "but not who looked")
        }
        withTemporaryDirectoryRemoved(directory)
    }
}
