import AuditStore
import Foundation
import Hummingbird
import HummingbirdTesting
import SamtalerumCore
import SignallingProtocol
import Synchronization
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

/// "My meetings": planned times, the worker's list by day, cancelling, showing and replacing the
/// citizen's link, the calendar file, and what the citizen's page may ask.
@Suite(.timeLimit(.minutes(2))) struct MyMeetingsTests {
    /// 2026-06-15 08:00 UTC, 10:00 in Copenhagen.
    static let start = Date(timeIntervalSince1970: 1_781_510_400)

    struct Link: Decodable {
        var citizenInviteUrl: String
        var invite: String { String(citizenInviteUrl.split(separator: "#invite=").last ?? "") }
    }

    struct Status: Decodable {
        var startsAt: Date?
        var opensAt: Date?
    }

    @Test func theListHasTodayUpcomingAndPastByTheWorkersDayAndOnlyTheirOwn() async throws {
        let time = MovableClock(Self.start)
        let (_, directory) = try await TestServer.run(clock: time.clock) { server in
            _ = try await server.createMeeting(worker: "w-1", citizenRef: "sag-A")
            time.advance(2 * 86_400)
            let planned = try await server.call(.post, "/api/meetings", as: "w-1",
                                                body: #"{"citizenRef":"sag-B","startsAt":"2026-06-17T12:00:00.000Z"}"#)
            #expect(planned.status == .created)
            #expect(String(buffer: planned.body).contains(#""startsAt":"2026-06-17T12:00:00Z""#))
            _ = try await server.call(.post, "/api/meetings", as: "w-1", body: #"{"citizenRef":"sag-C","startsAt":"2026-06-18T08:00:00Z"}"#)
            _ = try await server.call(.post, "/api/meetings", as: "w-2", body: #"{"citizenRef":"sag-E","startsAt":"2026-06-17T09:00:00Z"}"#)

            let copenhagen = try await server.list(as: "w-1")
            #expect(copenhagen.timeZone == "Europe/Copenhagen")
            #expect(copenhagen.today.map(\.caseRef) == ["sag-B"])
            #expect(copenhagen.upcoming.map(\.caseRef) == ["sag-C"])
            #expect(copenhagen.past.map(\.caseRef) == ["sag-A"])
            #expect(copenhagen.today.first?.workerJoinUrl.contains("/worker#meeting=m-") == true)
            // 12:00 UTC on the 17th is already the 18th in Auckland, where it is evening of the 17th now.
            let auckland = try await server.list(as: "w-1", query: "?tz=Pacific/Auckland")
            #expect(auckland.today.isEmpty)
            #expect(auckland.upcoming.map(\.caseRef) == ["sag-B", "sag-C"])

            for (body, why) in [(#"{"citizenRef":"x","startsAt":"tomorrow"}"#, "not a time"),
                                (#"{"citizenRef":"x","startsAt":"2026-06-16T08:00:00Z"}"#, "a day ago"),
                                (#"{"citizenRef":"x","startsAt":"2028-06-16T08:00:00Z"}"#, "two years ahead")] {
                #expect(try await server.call(.post, "/api/meetings", as: "w-1", body: body).status == .badRequest, "\(why)")
            }
            #expect(try await server.call(.get, "/api/meetings?tz=Mars/Olympus", as: "w-1").status == .badRequest)
            #expect(try await server.call(.get, "/api/meetings", as: "a-1", role: .auditor).status == .forbidden)
        }
        withTemporaryDirectoryRemoved(directory)
    }

    @Test func cancellingSendsTheWaitingCitizenAwayAndTheInviteStopsWorking() async throws {
        let (_, directory) = try await TestServer.run { server in
            let meeting = try await server.createMeeting(worker: "w-1", citizenRef: "sag-2026-cancel")
            let (citizen, joined) = try await MeshIntegrationTests.enter(server, token: meeting.invite)
            #expect(joined.waiting == true)

            #expect(try await server.call(.delete, "/api/meetings/\(meeting.meetingId)", as: "w-2").status == .forbidden)
            #expect(try await server.call(.delete, "/api/meetings/\(meeting.meetingId)", as: "w-1").status == .noContent)
            guard case .error(let sentAway) = try await SignallingIntegrationTests.nextNotQuality(citizen) else {
                throw TestFailure("the waiting citizen was not told")
            }
            #expect(sentAway.code == .meetingCancelled)
            #expect(try await citizen.closeCode() == 1008)

            let again = WebSocketPeer(port: server.port)
            again.send(.hello(Hello(token: meeting.invite)))
            guard case .welcome = try await again.next() else { throw TestFailure("no welcome") }
            again.send(.join(Join(meetingId: nil)))
            guard case .error(let refused) = try await again.next() else { throw TestFailure("a cancelled meeting let the citizen in") }
            #expect(refused.code == .meetingCancelled)

            let status = try await server.call(.get, "/api/invite", bearer: meeting.invite)
            #expect(status.status == .gone)
            #expect(String(buffer: status.body).contains("meeting-cancelled"))
            #expect(try await server.call(.get, "/api/meetings/\(meeting.meetingId)/invite", as: "w-1").status == .gone)
            #expect(try await server.list(as: "w-1").today.first?.cancelled == true)
            // A second cancel changes nothing and is no error.
            #expect(try await server.call(.delete, "/api/meetings/\(meeting.meetingId)", as: "w-1").status == .noContent)
        }
        defer { withTemporaryDirectoryRemoved(directory) }
        let stored = try AuditFileText(directory)
        #expect(stored.contains("meeting_cancelled"))
        #expect(!stored.contains("sag-2026-cancel"), "the case reference is never stored in plain text")
        let report = try await AuditDatabase.open(dataDirectory: directory, mode: .readOnly).verify()
        #expect(report.isIntact)
    }

    @Test func aShownLinkIsTheSameLinkAndAReplacedOneShutsTheOldOneOut() async throws {
        let (_, directory) = try await TestServer.run { server in
            let meeting = try await server.createMeeting(worker: "w-1", citizenRef: "sag-2026-leak")
            let shown = try await server.call(.get, "/api/meetings/\(meeting.meetingId)/invite", as: "w-1")
            #expect(shown.status == .ok)
            let again = try JSONDecoder().decode(Link.self, from: Data(buffer: shown.body))
            let (citizen, _) = try await MeshIntegrationTests.enter(server, token: again.invite)
            #expect(try await server.call(.get, "/api/meetings/\(meeting.meetingId)/invite", as: "w-2").status == .forbidden)

            let replaced = try await server.call(.post, "/api/meetings/\(meeting.meetingId)/invite", as: "w-1")
            #expect(replaced.status == .created)
            let fresh = try JSONDecoder().decode(Link.self, from: Data(buffer: replaced.body))
            guard case .error(let sentAway) = try await SignallingIntegrationTests.nextNotQuality(citizen) else {
                throw TestFailure("whoever came in with the old link stayed")
            }
            #expect(sentAway.code == .inviteRevoked)

            for old in [meeting.invite, again.invite] {
                let peer = WebSocketPeer(port: server.port)
                peer.send(.hello(Hello(token: old)))
                guard case .welcome = try await peer.next() else { throw TestFailure("no welcome") }
                peer.send(.join(Join(meetingId: nil)))
                guard case .error(let refused) = try await peer.next() else { throw TestFailure("the old link still opens the meeting") }
                #expect(refused.code == .inviteRevoked)
                #expect(try await server.call(.get, "/api/invite", bearer: old).status == .gone)
            }
            let (_, joined) = try await MeshIntegrationTests.enter(server, token: fresh.invite)
            #expect(joined.waiting == true)
            #expect(try await server.call(.get, "/api/invite", bearer: fresh.invite).status == .ok)
        }
        defer { withTemporaryDirectoryRemoved(directory) }
        let stored = try AuditFileText(directory)
        #expect(stored.contains("invite_shown") && stored.contains("invite_revoked"))
        #expect(!stored.contains("sag-2026-leak"))
    }

    @Test func theCitizensPageLearnsWhenItOpensAndTheWorkerGetsACalendarFile() async throws {
        let time = MovableClock(Self.start)
        let (_, directory) = try await TestServer.run(clock: time.clock) { server in
            let created = try await server.call(.post, "/api/meetings", as: "w-1",
                                                body: #"{"citizenRef":"sag; 7,1","startsAt":"2026-06-15T09:30:00Z"}"#)
            let meeting = try JSONDecoder().decode(TestServer.Created.self, from: Data(buffer: created.body))
            let status = try await server.call(.get, "/api/invite", bearer: meeting.invite)
            #expect(status.status == .ok)
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            let times = try decoder.decode(Status.self, from: Data(buffer: status.body))
            #expect(times.startsAt == Self.start.addingTimeInterval(5400))
            #expect(times.opensAt == Self.start.addingTimeInterval(5400 - 600))
            #expect(!String(buffer: status.body).contains("sag"), "the citizen's page never sees the case reference")
            #expect(try await server.call(.get, "/api/invite", bearer: try await server.token(.worker, subject: "w-1")).status == .unauthorized)

            let ics = try await server.call(.get, "/api/meetings/\(meeting.meetingId)/calendar.ics", as: "w-1")
            #expect(ics.status == .ok)
            #expect(ics.headers[.contentType] == "text/calendar; charset=utf-8")
            let text = String(buffer: ics.body)
            #expect(text.contains("DTSTART:20260615T093000Z\r\n"))
            #expect(text.contains("SUMMARY:Videomøde – sag\\; 7\\,1\r\n"))
            #expect(text.contains("/worker#meeting=\(meeting.meetingId)"))
            #expect(!text.contains("invite="), "the citizen's link stays out of calendars")
            #expect(try await server.call(.get, "/api/meetings/\(meeting.meetingId)/calendar.ics", as: "w-2").status == .forbidden)
        }
        withTemporaryDirectoryRemoved(directory)
    }
}

/// A wall clock the test moves.
final class MovableClock: Sendable {
    private let current: Mutex<Date>
    init(_ start: Date) { current = Mutex(start) }
    var clock: WallClock { WallClock { [self] in current.withLock { $0 } } }
    func advance(_ seconds: TimeInterval) { current.withLock { $0.addTimeInterval(seconds) } }
}

/// The audit files' bytes as text (the server checkpoints the WAL when it stops).
func AuditFileText(_ directory: URL) throws -> String {
    var bytes = Data()
    for name in [AuditDatabase.databaseFileName, AuditDatabase.databaseFileName + "-wal"] {
        bytes += (try? Data(contentsOf: directory.appending(path: name))) ?? Data()
    }
    return String(decoding: bytes, as: UTF8.self)
}

extension TestServer {
    func call(_ method: HTTPRequest.Method, _ uri: String, as subject: String? = nil, role: Role = .worker,
              bearer: String? = nil, body: String? = nil) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let subject { headers[.authorization] = "Bearer \(try await token(role, subject: subject))" }
        if let bearer { headers[.authorization] = "Bearer \(bearer)" }
        return try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) })
    }

    func list(as worker: String, query: String = "") async throws -> MeetingListBody {
        let response = try await call(.get, "/api/meetings\(query)", as: worker)
        guard response.status == .ok else { throw TestFailure("list answered \(response.status)") }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(MeetingListBody.self, from: Data(buffer: response.body))
    }
}

struct MeetingListBody: Decodable {
    struct Item: Decodable {
        var meetingId: String
        var caseRef: String
        var cancelled: Bool
        var workerJoinUrl: String
        var waiting: [String]
    }
    var timeZone: String
    var today: [Item]
    var upcoming: [Item]
    var past: [Item]
}
