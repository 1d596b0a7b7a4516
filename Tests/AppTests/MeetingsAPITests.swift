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

@Suite(.timeLimit(.minutes(1))) struct RedirectTests {
    @Test func thePlainHTTPPortOnlyRedirectsToHTTPS() async throws {
        let socket = try ServerSocketProbe.freePort()
        let (_, directory) = try await TestServer.run(adjust: {
            $0.server.httpRedirectPort = socket
            $0.server.publicURL = "https://samtale.example"
        }) { server in
            let (data, response) = try await ServerSocketProbe.plainGET(port: socket, path: "/join?x=1")
            #expect(response.contains("308"))
            #expect(response.lowercased().contains("location: https://samtale.example/join?x=1"))
            #expect(data.isEmpty)
        }
        withTemporaryDirectoryRemoved(directory)
    }
}

/// Raw sockets, so the test sees exactly what a browser would on port 80.
enum ServerSocketProbe {
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func plainGET(port: Int, path: String) async throws -> (body: String, head: String) {
        for _ in 0..<50 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(port).bigEndian
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else {
                try await Task.sleep(for: .milliseconds(100))
                continue
            }
            let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            _ = request.withCString { send(fd, $0, strlen($0), 0) }
            var received = [UInt8]()
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = recv(fd, &buffer, buffer.count, 0)
                if count <= 0 { break }
                received += buffer[0..<count]
            }
            let text = String(decoding: received, as: UTF8.self)
            let parts = text.components(separatedBy: "\r\n\r\n")
            return (parts.dropFirst().joined(separator: "\r\n\r\n"), parts.first ?? "")
        }
        throw TestFailure("the redirect port never answered")
    }
}
