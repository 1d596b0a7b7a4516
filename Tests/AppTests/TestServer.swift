import AuditStore
import Foundation
import Hummingbird
import HummingbirdTesting
import Identity
import SamtalerumApp
import SamtalerumCore

/// The real server on an ephemeral loopback port with its own data directory.
struct TestServer {
    let client: any TestClientProtocol
    let authority: TokenAuthority
    let dataDirectory: URL

    var port: Int { client.port ?? 0 }

    static func configuration(dataDirectory: URL) -> AppConfiguration {
        var configuration = AppConfiguration()
        configuration.server.dataDir = dataDirectory.path
        configuration.server.port = 0
        configuration.turn.enabled = false
        configuration.logging.level = "warning"
        return configuration
    }

    /// Runs `body` against a live server, then stops it so the audit store can be inspected.
    static func run<Value: Sendable>(
        adjust: (inout AppConfiguration) -> Void = { _ in },
        clock: WallClock = .system,
        _ body: @Sendable (TestServer) async throws -> Value
    ) async throws -> (Value, URL) {
        let directory = FileManager.default.temporaryDirectory.appending(path: "samtalerum-test-\(UUID().uuidString)")
        var configuration = configuration(dataDirectory: directory)
        adjust(&configuration)
        let authority = try await TokenAuthority(dataDirectory: directory)
        let app = try await buildApplication(configuration: configuration, clock: clock)
        let value = try await app.test(.ahc(.https)) { client in
            try await body(TestServer(client: client, authority: authority, dataDirectory: directory))
        }
        return (value, directory)
    }

    func token(_ role: Role, subject: String) async throws -> String {
        try await authority.issueStaffToken(subject: SubjectRef(rawValue: subject), role: role, ttl: 600)
    }

    struct Created: Decodable {
        var meetingId: String
        var workerJoinUrl: String
        var citizenInviteUrl: String
        var invite: String { String(citizenInviteUrl.split(separator: "#invite=").last ?? "") }
    }

    func createMeeting(worker: String, citizenRef: String = "sag-2024-0042") async throws -> Created {
        let response = try await client.execute(
            uri: "/api/meetings", method: .post,
            headers: [.authorization: "Bearer \(try await token(.worker, subject: worker))", .contentType: "application/json"],
            body: ByteBuffer(string: #"{"citizenRef":"\#(citizenRef)"}"#))
        guard response.status == .created else { throw TestFailure("create meeting answered \(response.status)") }
        return try JSONDecoder().decode(Created.self, from: Data(buffer: response.body))
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func withTemporaryDirectoryRemoved(_ url: URL) {
    try? FileManager.default.removeItem(at: url)
}

