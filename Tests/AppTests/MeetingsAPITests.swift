import Foundation
import Hummingbird
import HummingbirdTesting
import SamtalerumCore
import Testing

@Suite(.timeLimit(.minutes(2))) struct MeetingsAPITests {
    struct ProblemBody: Decodable {
        var type: String
        var title: String
        var status: Int
    }

    @Test func aWorkerCreatesAMeetingWithAnInviteAndAWorkerLink() async throws {
        let (_, directory) = try await TestServer.run { server in
            let created = try await server.createMeeting(worker: "w-1")
            #expect(MeetingID.isWellFormed(created.meetingId))
            #expect(created.workerJoinUrl.hasSuffix("/worker#meeting=\(created.meetingId)"))
            #expect(created.citizenInviteUrl.contains("/join#invite="))
            #expect(created.invite.split(separator: ".").count == 3)
        }
        withTemporaryDirectoryRemoved(directory)
    }

    @Test(arguments: [
        ("", 401, "unauthorized"),
        ("Bearer nonsense", 401, "unauthorized"),
        ("Basic dXNlcjpwYXNz", 401, "unauthorized"),
    ])
    func missingOrBadTokensGetProblemJSON(authorization: String, status: Int, slug: String) async throws {
        let (_, directory) = try await TestServer.run { server in
            var headers: HTTPFields = [.contentType: "application/json"]
            if !authorization.isEmpty { headers[.authorization] = authorization }
            let response = try await server.client.execute(
                uri: "/api/meetings", method: .post, headers: headers, body: ByteBuffer(string: #"{"citizenRef":"x"}"#))
            #expect(response.status.code == status)
            #expect(response.headers[.contentType] == "application/problem+json")
            let problem = try JSONDecoder().decode(ProblemBody.self, from: Data(buffer: response.body))
            #expect(problem.type.hasSuffix("/\(slug)"))
            #expect(problem.status == status)
        }
        withTemporaryDirectoryRemoved(directory)
    }

    @Test func onlyWorkersCreateMeetingsAndBodiesAreValidated() async throws {
        let (_, directory) = try await TestServer.run { server in
            for (role, body, status, slug) in [
                (Role.auditor, #"{"citizenRef":"x"}"#, 403, "forbidden"),
                (.ops, #"{"citizenRef":"x"}"#, 403, "forbidden"),
                (.worker, #"{"citizen":"x"}"#, 400, "invalid-request"),
                (.worker, #"{"citizenRef":"   "}"#, 400, "invalid-request"),
                (.worker, "not json", 400, "invalid-request"),
                (.worker, #"{"citizenRef":"\#(String(repeating: "x", count: 5000))"}"#, 413, "payload-too-large"),
            ] {
                let response = try await server.client.execute(
                    uri: "/api/meetings", method: .post,
                    headers: [.authorization: "Bearer \(try await server.token(role, subject: "s-1"))"],
                    body: ByteBuffer(string: body))
                #expect(response.status.code == status, "\(role) \(body.prefix(30))")
                let problem = try JSONDecoder().decode(ProblemBody.self, from: Data(buffer: response.body))
                #expect(problem.type.hasSuffix("/\(slug)"))
            }
        }
        withTemporaryDirectoryRemoved(directory)
    }

    @Test func pagesAreServedWithAStrictContentSecurityPolicy() async throws {
        let (_, directory) = try await TestServer.run { server in
            for path in ["/", "/worker", "/join"] {
                let response = try await server.client.execute(uri: path, method: .get)
                #expect(response.status == .ok, "\(path)")
                #expect(response.headers[.contentType]?.hasPrefix("text/html") == true)
                #expect(response.headers[.contentSecurityPolicy]?.contains("script-src 'self'") == true)
            }
            let missing = try await server.client.execute(uri: "/nothing-here", method: .get)
            #expect(missing.status == .notFound)
            let health = try await server.client.execute(uri: "/health/ready", method: .get)
            #expect(health.status == .ok)
        }
        withTemporaryDirectoryRemoved(directory)
    }
}
