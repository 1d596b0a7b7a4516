import AuditStore
import Foundation
import GRDB
import Identity
import Logging
import SamtalerumCore
import Signalling
import SignallingProtocol
import Synchronization
import Testing

/// Two signalling nodes in one process sharing one audit store and one `keys/` (as every node
/// of a deployment does). Node A dies mid-call: its connections break off without a `leave` and
/// it never writes again; both participants resume on node B with the tickets A gave them.
@Suite(.timeLimit(.minutes(2))) struct NodeFailoverTests {
    /// One node: its own registry and endpoint over the shared store, its own token authority
    /// instance reading the shared key file.
    struct Node {
        let name: String
        let registry: RoomRegistry
        let endpoint: SignallingEndpoint

        init(name: String, store: AuditDatabase, dataDirectory: URL, graceSeconds: TimeInterval = 30) async throws {
            self.name = name
            var logger = Logger(label: "test-\(name)")
            logger.logLevel = .warning
            let tokens = try await TokenAuthority(dataDirectory: dataDirectory)
            registry = RoomRegistry(directory: store, recorder: NodeRecorder(store: store, node: name), iceServers: { _, _ in [] },
                                    tokens: tokens, node: name, policy: RoomPolicy(autoAdmit: true, graceSeconds: graceSeconds),
                                    logger: logger)
            endpoint = SignallingEndpoint(registry: registry, authority: tokens,
                                          settings: EndpointSettings(resumeGraceSeconds: Int(graceSeconds)), logger: logger)
        }
    }

    /// A client connection to one node's endpoint, without a network in between: what the
    /// endpoint writes lands in `inbox`; `crash` breaks the connection off as a dying node's
    /// sockets do (no close frame, no `leave`).
    final class Connection: Sendable {
        struct Broken: Error {}
        private let frames: AsyncThrowingStream<InboundFrame, any Error>.Continuation
        private let inbox = Inbox()
        let done: Task<Void, Never>

        init(to node: Node) {
            let (stream, frames) = AsyncThrowingStream.makeStream(of: InboundFrame.self)
            self.frames = frames
            let inbox = inbox
            done = Task {
                try? await node.endpoint.run(inbound: stream, writer: Writer(inbox: inbox), classifyFailure: { _ in .connectionLost })
                await inbox.finish()
            }
        }

        func send(_ message: ClientMessage) { frames.yield(.text(message.encoded())) }

        func crash() async {
            frames.finish(throwing: Broken())
            await done.value
        }

        func next(within seconds: Double = 10) async throws -> ServerMessage {
            try await withThrowingTaskGroup(of: ServerMessage.self) { group in
                group.addTask {
                    guard let text = await self.inbox.next() else { throw TestFailure("connection ended") }
                    return try ServerMessage.decode(text)
                }
                group.addTask {
                    try await Task.sleep(for: .seconds(seconds))
                    throw TestFailure("no message within \(seconds) s")
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
        }

        /// Skips what is not asked for (e.g. `quality`), up to a bound.
        func next(matching wanted: (ServerMessage) -> Bool) async throws -> ServerMessage {
            for _ in 0..<20 {
                let message = try await next()
                if wanted(message) { return message }
            }
            throw TestFailure("the expected message did not come")
        }

        struct Writer: FrameWriter {
            let inbox: Inbox
            func send(_ text: String) async throws { await inbox.push(text) }
            func close(_ code: CloseCode, reason: String) async throws { await inbox.finish() }
            func abort(lastWords: String?, _ code: CloseCode, reason: String) async {
                if let lastWords { await inbox.push(lastWords) }
                await inbox.finish()
            }
        }
    }

    struct Fixture {
        let directory: URL
        let store: AuditDatabase
        let meeting: Meeting
        let workerToken: String
        let invite: String

        static func make() async throws -> Fixture {
            let directory = FileManager.default.temporaryDirectory.appending(path: "samtalerum-nodes-\(UUID().uuidString)")
            let store = try AuditDatabase.open(dataDirectory: directory, node: "node-a")
            let authority = try await TokenAuthority(dataDirectory: directory)
            let now = Date()
            let meeting = Meeting(id: .random(), workerRef: SubjectRef(rawValue: "w-nodes"), citizenRef: SubjectRef(rawValue: "sag-2026-0001"),
                                  createdAt: now, inviteExpiresAt: now.addingTimeInterval(3600), citizenInviteId: "invite-1")
            try await store.record(.meetingCreated(meeting))
            return Fixture(
                directory: directory, store: store, meeting: meeting,
                workerToken: try await authority.issueStaffToken(subject: meeting.workerRef, role: .worker, ttl: 600),
                invite: try await authority.issueInvite(meeting: meeting.id, expiresAt: meeting.inviteExpiresAt, id: "invite-1"))
        }

        func enter(_ node: Node, token: String, meeting: MeetingID? = nil) async throws -> (Connection, Joined) {
            let connection = Connection(to: node)
            connection.send(.hello(Hello(token: token)))
            guard case .welcome = try await connection.next() else { throw TestFailure("no welcome") }
            connection.send(.join(Join(meetingId: meeting)))
            guard case .joined(let joined) = try await connection.next() else { throw TestFailure("no joined") }
            return (connection, joined)
        }

        func resume(_ node: Node, token: String, ticket: String?) async throws -> (Connection, ServerMessage) {
            let connection = Connection(to: node)
            connection.send(.hello(Hello(token: token, resumeToken: ticket)))
            guard case .welcome = try await connection.next() else { throw TestFailure("no welcome") }
            return (connection, try await connection.next())
        }

        func records(_ sql: String) throws -> [Row] {
            let queue = try DatabaseQueue(path: directory.appending(path: AuditDatabase.databaseFileName).path,
                                          configuration: { var c = Configuration(); c.readonly = true; return c }())
            defer { try? queue.close() }
            return try queue.read { db in try Row.fetchAll(db, sql: sql) }
        }
    }

    @Test func aCallResumesOnAnotherNodeWithTheSameSessionAndTheMoveIsRecorded() async throws {
        let fixture = try await Fixture.make()
        defer { withTemporaryDirectoryRemoved(fixture.directory) }
        let nodeA = try await Node(name: "node-a", store: fixture.store, dataDirectory: fixture.directory)
        let nodeB = try await Node(name: "node-b", store: fixture.store, dataDirectory: fixture.directory)

        let (worker, workerJoined) = try await fixture.enter(nodeA, token: fixture.workerToken, meeting: fixture.meeting.id)
        let (citizen, citizenJoined) = try await fixture.enter(nodeA, token: fixture.invite)
        guard case .peerJoined(let paired) = try await worker.next(), case .peerJoined = try await citizen.next() else {
            throw TestFailure("the call did not start on node A")
        }
        let session = paired.sessionId

        // Node A dies: the connections break off, nothing more is heard from it.
        await worker.crash()
        await citizen.crash()

        let started = ContinuousClock.now
        let (workerBack, workerAnswer) = try await fixture.resume(nodeB, token: fixture.workerToken, ticket: workerJoined.resumeToken)
        let handover = ContinuousClock.now - started
        guard case .resumed(let workerResumed) = workerAnswer else { throw TestFailure("worker not resumed on node B: \(workerAnswer)") }
        #expect(workerResumed.sessionId == session)
        #expect(workerResumed.peers.map(\.peer) == [.citizen])
        #expect(workerResumed.resumeToken != nil)

        let (citizenBack, citizenAnswer) = try await fixture.resume(nodeB, token: fixture.invite, ticket: citizenJoined.resumeToken)
        guard case .resumed(let citizenResumed) = citizenAnswer else { throw TestFailure("citizen not resumed on node B: \(citizenAnswer)") }
        #expect(citizenResumed.sessionId == session)
        #expect(citizenResumed.waiting == false)
        #expect(try await workerBack.next(matching: { if case .peerReconnected = $0 { true } else { false } })
                == .peerReconnected(PeerInfo(role: .citizen, peer: .citizen)))

        // Node A's ticket took the place back once; replayed on node B it is spent.
        let (replay, replayed) = try await fixture.resume(nodeB, token: fixture.invite, ticket: citizenJoined.resumeToken)
        guard case .error(let spent) = replayed, spent.code == .resumeFailed else { throw TestFailure("a spent ticket worked: \(replayed)") }
        await replay.crash()

        // The pair is connected again: the worker's ICE-restart offer reaches the citizen.
        workerBack.send(.offer(SessionDescription(sdp: "v=0 restart")))
        guard case .offer(let offer) = try await citizenBack.next(matching: { if case .offer = $0 { true } else { false } }) else {
            throw TestFailure("offer not relayed on node B")
        }
        #expect(offer.sdp == "v=0 restart" && offer.peer == .worker)
        let open = try #require(try await fixture.store.openSession(of: fixture.meeting.id))
        #expect(open.id == session && open.hostNode == "node-b")

        workerBack.send(.leave)
        _ = try await citizenBack.next(matching: { if case .peerLeft = $0 { true } else { false } })
        citizenBack.send(.leave)
        await workerBack.done.value
        await citizenBack.done.value

        let moved = try fixture.records("SELECT detail FROM audit_event WHERE kind = 'session_moved' AND sessionId = '\(session.rawValue)'")
        #expect(moved.count == 1)
        #expect((moved.first?["detail"] as String?) == #"{"fromNode":"node-a","toNode":"node-b"}"#)
        let ended = try fixture.records("SELECT detail FROM audit_event WHERE kind = 'session_ended' AND sessionId = '\(session.rawValue)'")
        #expect(ended.count == 1)
        let endDetail = try #require(ended.first?["detail"] as String?)
        #expect(endDetail.contains(#""moves":1"#) && endDetail.contains(#""reason":"hangup""#))
        #expect(try fixture.records("SELECT id FROM session").count == 1)
        #expect(try await fixture.store.verify().isIntact)
        print("node handover: resume hello to resumed on node B took \(handover)")
    }

    @Test func aResumeTicketFromAnotherDeploymentOrTamperedIsRefusedAndTheClientJoinsAfresh() async throws {
        let fixture = try await Fixture.make()
        defer { withTemporaryDirectoryRemoved(fixture.directory) }
        let nodeA = try await Node(name: "node-a", store: fixture.store, dataDirectory: fixture.directory)
        let nodeB = try await Node(name: "node-b", store: fixture.store, dataDirectory: fixture.directory)
        let (worker, _) = try await fixture.enter(nodeA, token: fixture.workerToken, meeting: fixture.meeting.id)
        let (citizen, citizenJoined) = try await fixture.enter(nodeA, token: fixture.invite)
        _ = try await worker.next()
        _ = try await citizen.next()
        await worker.crash()
        await citizen.crash()
        let genuine = try #require(citizenJoined.resumeToken)

        // The same claims signed by another deployment's key.
        let otherDirectory = FileManager.default.temporaryDirectory.appending(path: "samtalerum-other-\(UUID().uuidString)")
        defer { withTemporaryDirectoryRemoved(otherDirectory) }
        let other = try await TokenAuthority(dataDirectory: otherDirectory)
        let foreign = try await other.issueResumeTicket(ResumeTicket(meetingId: fixture.meeting.id, peer: .citizen, role: .citizen,
                                                                      expiresAt: Date().addingTimeInterval(600)))
        // A genuine ticket with its payload changed (another ticket id), signature kept.
        let parts = genuine.split(separator: ".").map(String.init)
        var payload = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        payload += String(repeating: "=", count: (4 - payload.count % 4) % 4)
        let claims = String(decoding: try #require(Data(base64Encoded: payload)), as: UTF8.self)
            .replacingOccurrences(of: #""jti":""#, with: #""jti":"x"#)
        let tampered = [parts[0], Data(claims.utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_"), parts[2]].joined(separator: ".")

        for ticket in [foreign, tampered, "not-a-ticket"] {
            let (connection, answer) = try await fixture.resume(nodeB, token: fixture.invite, ticket: ticket)
            guard case .error(let error) = answer else { throw TestFailure("a bad ticket was accepted: \(answer)") }
            #expect(error.code == .resumeFailed && !error.fatal)
            await connection.crash()
        }
        #expect(try fixture.records("SELECT seq FROM audit_event WHERE kind = 'session_moved'").isEmpty)
        // The genuine one still works afterwards: nothing above consumed the place.
        let (_, answer) = try await fixture.resume(nodeB, token: fixture.invite, ticket: genuine)
        guard case .resumed = answer else { throw TestFailure("the genuine ticket was refused: \(answer)") }
    }

    @Test func aSessionAlreadyClosedInTheStoreIsNotResumedElsewhere() async throws {
        let fixture = try await Fixture.make()
        defer { withTemporaryDirectoryRemoved(fixture.directory) }
        let nodeA = try await Node(name: "node-a", store: fixture.store, dataDirectory: fixture.directory)
        let nodeB = try await Node(name: "node-b", store: fixture.store, dataDirectory: fixture.directory)
        let (worker, workerJoined) = try await fixture.enter(nodeA, token: fixture.workerToken, meeting: fixture.meeting.id)
        let (citizen, _) = try await fixture.enter(nodeA, token: fixture.invite)
        _ = try await worker.next()
        _ = try await citizen.next()
        await worker.crash()
        await citizen.crash()
        // Node A never came back and nobody resumed in time: another node closed the session.
        let closed = try await fixture.store.closeAbandonedSessions(seenBy: "node-b", now: Date().addingTimeInterval(3600), silence: 60)
        #expect(closed == 1)

        let (connection, answer) = try await fixture.resume(nodeB, token: fixture.workerToken, ticket: workerJoined.resumeToken)
        guard case .error(let error) = answer else { throw TestFailure("a closed session was resumed: \(answer)") }
        #expect(error.code == .resumeFailed)
        // The page then joins as new.
        connection.send(.join(Join(meetingId: fixture.meeting.id)))
        guard case .joined(let fresh) = try await connection.next() else { throw TestFailure("no fresh join") }
        #expect(fresh.peers.isEmpty)
        let lost = try fixture.records("SELECT endReason FROM session")
        #expect(lost.map { $0["endReason"] as String? } == ["connection_lost"])
    }
}
