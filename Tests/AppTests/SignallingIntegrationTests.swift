import AuditStore
import Foundation
import SamtalerumCore
import SignallingProtocol
import Testing

/// The live server over real TLS WebSockets on loopback.
@Suite(.timeLimit(.minutes(2))) struct SignallingIntegrationTests {
    @Test func workerAndCitizenArePairedRelayedAndTheSessionIsRecorded() async throws {
        let (meetingID, directory) = try await TestServer.run { server in
            let meeting = try await server.createMeeting(worker: "w-100")
            let worker = WebSocketPeer(port: server.port)
            worker.send(.hello(Hello(token: try await server.token(.worker, subject: "w-100"))))
            guard case .welcome(let welcome) = try await worker.next() else { throw TestFailure("no welcome") }
            #expect(welcome.role == .worker)
            worker.send(.join(Join(meetingId: MeetingID(rawValue: meeting.meetingId))))
            guard case .joined(let joined) = try await worker.next() else { throw TestFailure("no joined") }
            #expect(joined.peers.isEmpty)

            let citizen = WebSocketPeer(port: server.port)
            citizen.send(.hello(Hello(token: meeting.invite)))
            guard case .welcome(let citizenWelcome) = try await citizen.next() else { throw TestFailure("no welcome") }
            #expect(citizenWelcome.role == .citizen)
            #expect(citizenWelcome.meetingId?.rawValue == meeting.meetingId)
            citizen.send(.join(Join(meetingId: nil)))
            guard case .joined(let citizenJoined) = try await citizen.next() else { throw TestFailure("no joined") }
            #expect(citizenJoined.peers == [PeerInfo(role: .worker, peer: .worker)])
            #expect(citizenJoined.waiting, "the citizen waits in the waiting room")
            #expect(try await worker.next() == .peerWaiting(PeerInfo(role: .citizen, peer: .citizen)))

            worker.send(.note(Note(text: "Et øjeblik")))
            #expect(try await citizen.next() == .note(RelayedNote(text: "Et øjeblik", from: .worker, peer: .worker)))
            citizen.send(.admit(Admit()))
            guard case .error(let notAllowed) = try await citizen.next() else { throw TestFailure("citizen admitted themselves") }
            #expect(notAllowed.code == .notAllowed)
            worker.send(.admit(Admit()))
            #expect(try await citizen.next() == .admitted)

            guard case .peerJoined(let toWorker) = try await worker.next(),
                  case .peerJoined(let toCitizen) = try await citizen.next() else { throw TestFailure("no peer-joined") }
            #expect(toWorker.initiator && !toCitizen.initiator)
            #expect(toWorker.sessionId == toCitizen.sessionId)

            worker.send(.offer(SessionDescription(sdp: "v=0 offer")))
            #expect(try await citizen.next() == .offer(RelayedDescription(sdp: "v=0 offer", from: .worker, peer: .worker)))
            citizen.send(.answer(SessionDescription(sdp: "v=0 answer")))
            #expect(try await worker.next() == .answer(RelayedDescription(sdp: "v=0 answer", from: .citizen, peer: .citizen)))
            let candidate = IceCandidate(candidate: "candidate:1 1 udp 2122260223 192.0.2.4 51234 typ host", sdpMid: "0", sdpMLineIndex: 0)
            citizen.send(.candidate(CandidateMessage(candidate: candidate)))
            #expect(try await worker.next() == .candidate(RelayedCandidate(candidate: candidate, from: .citizen, peer: .citizen)))

            worker.send(.ping(Ping(id: 9)))
            #expect(try await worker.next() == .pong(Ping(id: 9)))

            try await Task.sleep(for: .milliseconds(1100))
            citizen.send(.leave)
            #expect(try await citizen.closeCode() == 1000)
            #expect(try await worker.next() == .peerLeft(PeerLeft(role: .citizen, peer: .citizen, reason: .hangup)))
            worker.send(.leave)
            #expect(try await worker.closeCode() == 1000)
            return meeting.meetingId
        }
        defer { withTemporaryDirectoryRemoved(directory) }

        let audit = try AuditDatabase.open(dataDirectory: directory)
        let sessions = try await audit.sessions(
            matching: SessionQuery(), access: AuditorAccess(auditor: SubjectRef(rawValue: "test"), purpose: "integration test", at: Date()))
        let session = try #require(sessions.first)
        #expect(sessions.count == 1)
        #expect(session.meeting.rawValue == meetingID)
        #expect(session.endReason == .hangup)
        #expect((session.durationSeconds ?? 0) >= 1)
        #expect(session.workerRef == SubjectRef(rawValue: "w-100"))
        #expect(session.citizenRef == SubjectRef(rawValue: "sag-2024-0042"))
    }

    @Test func silenceAfterConnectingIsClosedAsAPolicyViolation() async throws {
        let (_, directory) = try await TestServer.run(adjust: { $0.signalling.helloTimeoutSeconds = 1 }) { server in
            let idle = WebSocketPeer(port: server.port)
            let code = try await idle.closeCode(within: 15)
            #expect(code == 1008)
        }
        withTemporaryDirectoryRemoved(directory)
    }

    @Test func aSecondCitizenConnectionTakesThePlaceOverAnotherWorkerAndForgedInvitesStayOut() async throws {
        let (_, directory) = try await TestServer.run { server in
            let meeting = try await server.createMeeting(worker: "w-1")
            let first = WebSocketPeer(port: server.port)
            first.send(.hello(Hello(token: meeting.invite)))
            _ = try await first.next()
            first.send(.join(Join(meetingId: nil)))
            guard case .joined = try await first.next() else { throw TestFailure("first citizen not joined") }

            let second = WebSocketPeer(port: server.port)
            second.send(.hello(Hello(token: meeting.invite)))
            _ = try await second.next()
            second.send(.join(Join(meetingId: nil)))
            guard case .joined(let taken) = try await second.next() else { throw TestFailure("second citizen connection not in") }
            #expect(taken.waiting)
            guard case .error(let replaced) = try await first.next() else { throw TestFailure("first connection not told") }
            #expect(replaced.code == .replaced && replaced.fatal)
            #expect(try await first.closeCode() == 1008)

            let intruder = WebSocketPeer(port: server.port)
            intruder.send(.hello(Hello(token: try await server.token(.worker, subject: "w-2"))))
            _ = try await intruder.next()
            intruder.send(.join(Join(meetingId: MeetingID(rawValue: meeting.meetingId))))
            guard case .error(let notInvited) = try await intruder.next() else { throw TestFailure("other worker admitted") }
            #expect(notInvited.code == .notInvited)
            #expect(try await intruder.closeCode() == 1008)

            var forged = meeting.invite
            forged.removeLast(3)
            forged += "AAA"
            let forger = WebSocketPeer(port: server.port)
            forger.send(.hello(Hello(token: forged)))
            guard case .error(let invalid) = try await forger.next() else { throw TestFailure("forged invite accepted") }
            #expect(invalid.code == .tokenInvalid)
            #expect(try await forger.closeCode() == 1008)

            let ops = WebSocketPeer(port: server.port)
            ops.send(.hello(Hello(token: try await server.token(.ops, subject: "ops-1"))))
            guard case .error(let notAllowed) = try await ops.next() else { throw TestFailure("ops joined a call") }
            #expect(notAllowed.code == .roleNotAllowed)

            // The citizen who holds the place noticed nothing.
            second.send(.ping(Ping(id: 1)))
            #expect(try await second.next() == .pong(Ping(id: 1)))
        }
        withTemporaryDirectoryRemoved(directory)
    }

    @Test func anExpiredInviteIsRefused() async throws {
        let (_, directory) = try await TestServer.run { server in
            let meeting = try await server.createMeeting(worker: "w-1")
            // Signed with the server's key, expired a minute ago (invite lifetimes are a minute at least).
            let stale = try await server.authority.issueInvite(meeting: MeetingID(rawValue: meeting.meetingId), expiresAt: Date() - 60)
            let late = WebSocketPeer(port: server.port)
            late.send(.hello(Hello(token: stale)))
            guard case .error(let expired) = try await late.next() else { throw TestFailure("expired invite accepted") }
            #expect(expired.code == .tokenExpired)
            #expect(try await late.closeCode() == 1008)
        }
        withTemporaryDirectoryRemoved(directory)
    }

    @Test func badInputGetsAnErrorAndTheConnectionStays() async throws {
        let (_, directory) = try await TestServer.run { server in
            let peer = WebSocketPeer(port: server.port)
            peer.sendRaw("{not json")
            guard case .error(let invalid) = try await peer.next() else { throw TestFailure("no error") }
            #expect(invalid.code == .invalidJSON && !invalid.fatal)
            peer.send(.ping(Ping(id: 1)))
            guard case .error(let early) = try await peer.next() else { throw TestFailure("no error") }
            #expect(early.code == .notAuthenticated)
            peer.send(.hello(Hello(token: try await server.token(.worker, subject: "w-1"))))
            guard case .welcome = try await peer.next() else { throw TestFailure("no welcome") }
            peer.sendRaw(#"{"type":"teleport"}"#)
            guard case .error(let unknown) = try await peer.next() else { throw TestFailure("no error") }
            #expect(unknown.code == .unknownType)
            peer.sendRaw(#"{"type":"offer"}"#)
            guard case .error(let missing) = try await peer.next() else { throw TestFailure("no error") }
            #expect(missing.code == .invalidMessage && missing.inReplyTo == .offer)
            peer.send(.offer(SessionDescription(sdp: "x")))
            guard case .error(let notJoined) = try await peer.next() else { throw TestFailure("no error") }
            #expect(notJoined.code == .notJoined)
            peer.send(.ping(Ping(id: 2)))
            #expect(try await peer.next() == .pong(Ping(id: 2)))
        }
        withTemporaryDirectoryRemoved(directory)
    }

    @Test func anOversizedMessageClosesOnlyThatEndpointWith1009() async throws {
        let (_, directory) = try await TestServer.run { server in
            let meeting = try await server.createMeeting(worker: "w-1")
            let worker = WebSocketPeer(port: server.port)
            worker.send(.hello(Hello(token: try await server.token(.worker, subject: "w-1"))))
            _ = try await worker.next()
            worker.send(.join(Join(meetingId: MeetingID(rawValue: meeting.meetingId))))
            _ = try await worker.next()
            let citizen = WebSocketPeer(port: server.port)
            citizen.send(.hello(Hello(token: meeting.invite)))
            _ = try await citizen.next()
            citizen.send(.join(Join(meetingId: nil)))
            _ = try await citizen.next()
            _ = try await worker.next()
            worker.send(.admit(Admit()))
            _ = try await citizen.next()
            _ = try await citizen.next()
            _ = try await worker.next()

            // A bystander in another meeting must be untouched.
            let other = try await server.createMeeting(worker: "w-9", citizenRef: "sag-other")
            let bystander = WebSocketPeer(port: server.port)
            bystander.send(.hello(Hello(token: other.invite)))
            _ = try await bystander.next()

            citizen.send(.offer(SessionDescription(sdp: String(repeating: "a", count: 70_000))))
            #expect(try await citizen.closeCode() == 1009)
            #expect(try await worker.next() == .peerLeft(PeerLeft(role: .citizen, peer: .citizen, reason: .protocolError)), "no grace for a protocol violation")
            bystander.send(.ping(Ping(id: 3)))
            #expect(try await bystander.next() == .pong(Ping(id: 3)))
        }
        withTemporaryDirectoryRemoved(directory)
    }

    /// Two connected endpoints in a running session.
    static func startCall(_ server: TestServer) async throws -> (worker: WebSocketPeer, citizen: WebSocketPeer, meeting: TestServer.Created, session: SessionID, citizenResume: String) {
        let meeting = try await server.createMeeting(worker: "w-1")
        let worker = WebSocketPeer(port: server.port)
        worker.send(.hello(Hello(token: try await server.token(.worker, subject: "w-1"))))
        _ = try await worker.next()
        worker.send(.join(Join(meetingId: MeetingID(rawValue: meeting.meetingId))))
        _ = try await worker.next()
        let citizen = WebSocketPeer(port: server.port)
        citizen.send(.hello(Hello(token: meeting.invite)))
        _ = try await citizen.next()
        citizen.send(.join(Join(meetingId: nil)))
        guard case .joined(let joined) = try await citizen.next(), let resume = joined.resumeToken else { throw TestFailure("no resume token") }
        _ = try await worker.next()
        worker.send(.admit(Admit()))
        _ = try await citizen.next()
        guard case .peerJoined(let started) = try await citizen.next() else { throw TestFailure("no session") }
        _ = try await worker.next()
        return (worker, citizen, meeting, started.sessionId, resume)
    }

    @Test func aDroppedCitizenResumesTheSameSessionAndGetsWhatWasSentMeanwhile() async throws {
        let (sessionID, directory) = try await TestServer.run { server in
            let call = try await Self.startCall(server)
            call.citizen.drop()
            #expect(try await call.worker.next() == .peerReconnecting(PeerInfo(role: .citizen, peer: .citizen)))
            call.worker.send(.candidate(CandidateMessage(candidate: nil)))
            try await Task.sleep(for: .milliseconds(300))

            let back = WebSocketPeer(port: server.port)
            back.send(.hello(Hello(token: call.meeting.invite, resumeToken: call.citizenResume)))
            guard case .welcome = try await back.next(), case .resumed(let resumed) = try await back.next() else {
                throw TestFailure("not resumed")
            }
            #expect(resumed.sessionId == call.session)
            #expect(resumed.replayed == 1)
            #expect(try await back.next() == .candidate(RelayedCandidate(candidate: nil, from: .worker, peer: .worker)))
            #expect(try await call.worker.next() == .peerReconnected(PeerInfo(role: .citizen, peer: .citizen)))

            // The old token is spent; only the fresh one works.
            let replay = WebSocketPeer(port: server.port)
            replay.send(.hello(Hello(token: call.meeting.invite, resumeToken: call.citizenResume)))
            _ = try await replay.next()
            guard case .error(let failed) = try await replay.next() else { throw TestFailure("spent token accepted") }
            #expect(failed.code == .resumeFailed && !failed.fatal)

            back.send(.leave)
            #expect(try await call.worker.next() == .peerLeft(PeerLeft(role: .citizen, peer: .citizen, reason: .hangup)))
            return call.session
        }
        defer { withTemporaryDirectoryRemoved(directory) }
        let audit = try AuditDatabase.open(dataDirectory: directory)
        let sessions = try await audit.sessions(
            matching: SessionQuery(), access: AuditorAccess(auditor: SubjectRef(rawValue: "test"), purpose: "integration test", at: Date()))
        #expect(sessions.map(\.session) == [sessionID], "one session across the interruption")
        #expect(sessions.first?.endReason == .hangup)
    }

    @Test func aCitizenWhoDoesNotComeBackEndsTheSessionAsConnectionLost() async throws {
        let (_, directory) = try await TestServer.run(adjust: { $0.signalling.resumeGraceSeconds = 1 }) { server in
            let call = try await Self.startCall(server)
            call.citizen.drop()
            #expect(try await call.worker.next() == .peerReconnecting(PeerInfo(role: .citizen, peer: .citizen)))
            #expect(try await call.worker.next(within: 5) == .peerLeft(PeerLeft(role: .citizen, peer: .citizen, reason: .connectionLost)))
        }
        defer { withTemporaryDirectoryRemoved(directory) }
        let audit = try AuditDatabase.open(dataDirectory: directory)
        let sessions = try await audit.sessions(
            matching: SessionQuery(), access: AuditorAccess(auditor: SubjectRef(rawValue: "test"), purpose: "integration test", at: Date()))
        #expect(sessions.first?.endReason == .connectionLost)
    }

    /// The next message that is not `quality` (pushed whenever a verdict changes).
    static func nextNotQuality(_ peer: WebSocketPeer, within seconds: Double = 10) async throws -> ServerMessage {
        for _ in 0..<20 {
            let message = try await peer.next(within: seconds)
            if case .quality = message { continue }
            return message
        }
        throw TestFailure("only quality messages")
    }

    @Test func anAdmissionIsForOneSessionAfterHangUpConnectionLostOrTheWorkerComingBackTheLinkWaitsAgain() async throws {
        let (_, directory) = try await TestServer.run(adjust: { $0.signalling.resumeGraceSeconds = 1 }) { server in
            let call = try await Self.startCall(server)
            let workerToken = try await server.token(.worker, subject: "w-1")
            let waitingCitizen = PeerInfo(role: .citizen, peer: .citizen)

            // After a hang-up.
            call.citizen.send(.leave)
            #expect(try await Self.nextNotQuality(call.worker) == .peerLeft(PeerLeft(role: .citizen, peer: .citizen, reason: .hangup)))
            var (citizen, joined) = try await MeshIntegrationTests.enter(server, token: call.meeting.invite)
            #expect(joined.waiting, "the same link entered straight into a new session after hang-up")
            #expect(try await Self.nextNotQuality(call.worker) == .peerWaiting(waitingCitizen))

            // After connection_lost.
            call.worker.send(.admit(Admit()))
            #expect(try await citizen.next() == .admitted)
            guard case .peerJoined = try await citizen.next() else { throw TestFailure("no second session") }
            guard case .peerJoined = try await Self.nextNotQuality(call.worker) else { throw TestFailure("no second session") }
            citizen.drop()
            #expect(try await Self.nextNotQuality(call.worker) == .peerReconnecting(waitingCitizen))
            #expect(try await Self.nextNotQuality(call.worker) == .peerLeft(PeerLeft(role: .citizen, peer: .citizen, reason: .connectionLost)))
            (citizen, joined) = try await MeshIntegrationTests.enter(server, token: call.meeting.invite)
            #expect(joined.waiting, "the same link entered straight into a new session after connection_lost")
            #expect(try await Self.nextNotQuality(call.worker) == .peerWaiting(waitingCitizen))

            // After the worker left and came back.
            call.worker.send(.admit(Admit()))
            #expect(try await citizen.next() == .admitted)
            guard case .peerJoined = try await citizen.next() else { throw TestFailure("no third session") }
            call.worker.send(.leave)
            #expect(try await Self.nextNotQuality(citizen) == .peerLeft(PeerLeft(role: .worker, peer: .worker, reason: .hangup)))
            let (worker, workerJoined) = try await MeshIntegrationTests.enter(server, token: workerToken, meeting: call.meeting.meetingId)
            #expect(!workerJoined.waiting)
            #expect(try await Self.nextNotQuality(worker) == .peerWaiting(waitingCitizen), "the citizen was let into a new session unasked")
            citizen.send(.ping(Ping(id: 1)))
            #expect(try await Self.nextNotQuality(citizen) == .pong(Ping(id: 1)), "a session started without the worker's admit")
        }
        withTemporaryDirectoryRemoved(directory)
    }

    @Test func aNewerConnectionTakesThePlaceOverForTheWorkerAndForACitizenOnASecondDevice() async throws {
        let (_, directory) = try await TestServer.run { server in
            let call = try await Self.startCall(server)
            let workerToken = try await server.token(.worker, subject: "w-1")

            // The worker closes the tab (the socket may linger) and opens the meeting again at once.
            let (worker, workerJoined) = try await MeshIntegrationTests.enter(server, token: workerToken, meeting: call.meeting.meetingId)
            #expect(!workerJoined.waiting)
            guard case .error(let replaced) = try await Self.nextNotQuality(call.worker) else { throw TestFailure("old tab not told") }
            #expect(replaced.code == .replaced && replaced.fatal)
            #expect(try await call.worker.closeCode() == 1008)
            #expect(try await Self.nextNotQuality(call.citizen) == .peerLeft(PeerLeft(role: .worker, peer: .worker, reason: .connectionLost)))
            #expect(try await Self.nextNotQuality(worker) == .peerWaiting(PeerInfo(role: .citizen, peer: .citizen)))
            worker.send(.admit(Admit()))
            #expect(try await Self.nextNotQuality(call.citizen) == .admitted)

            // The citizen's phone dies without a close; the second device gets in at once and waits.
            call.citizen.drop()
            let (laptop, laptopJoined) = try await MeshIntegrationTests.enter(server, token: call.meeting.invite)
            #expect(laptopJoined.waiting)
            var heard: [ServerMessage] = []
            while heard.last != .peerWaiting(PeerInfo(role: .citizen, peer: .citizen)) {
                heard.append(try await Self.nextNotQuality(worker))
            }
            #expect(heard.contains(.peerLeft(PeerLeft(role: .citizen, peer: .citizen, reason: .connectionLost))))
            worker.send(.admit(Admit()))
            #expect(try await laptop.next() == .admitted)
            guard case .peerJoined = try await laptop.next() else { throw TestFailure("no session with the second device") }
        }
        withTemporaryDirectoryRemoved(directory)
    }

    @Test func aClientThatSendsNothingIsClosedWith4000AndMayResume() async throws {
        let (_, directory) = try await TestServer.run(adjust: { $0.signalling.pingIntervalSeconds = 3 }) { server in
            let call = try await Self.startCall(server)
            // The worker keeps to the rule; the citizen's client answers WebSocket pings (the
            // library does) but sends no message.
            let keepAlive = Task {
                for id in 0..<60 {
                    call.worker.send(.ping(Ping(id: id)))
                    try await Task.sleep(for: .milliseconds(500))
                }
            }
            defer { keepAlive.cancel() }
            // The citizen's last message, at a known time.
            let started = ContinuousClock.now
            call.citizen.send(.ping(Ping(id: 1)))
            #expect(try await Self.nextNotQuality(call.citizen) == .pong(Ping(id: 1)))
            #expect(try await call.citizen.closeCode(within: 30) == 4000)
            let silence = ContinuousClock.now - started
            #expect(silence >= .seconds(8), "closed after \(silence), before 3 × pingInterval")
            var heard = try await Self.nextNotQuality(call.worker)
            while case .pong = heard { heard = try await Self.nextNotQuality(call.worker) }
            #expect(heard == .peerReconnecting(PeerInfo(role: .citizen, peer: .citizen)))

            let back = WebSocketPeer(port: server.port)
            back.send(.hello(Hello(token: call.meeting.invite, resumeToken: call.citizenResume)))
            guard case .welcome = try await back.next(), case .resumed(let resumed) = try await back.next() else {
                throw TestFailure("a silent client could not resume")
            }
            #expect(resumed.sessionId == call.session)
        }
        withTemporaryDirectoryRemoved(directory)
    }

    @Test func anInviteThatExpiredDuringTheCallStillResumesWithinGrace() async throws {
        let (_, directory) = try await TestServer.run(adjust: { $0.signalling.autoAdmit = true }) { server in
            let meeting = try await server.createMeeting(worker: "w-1")
            let (worker, _) = try await MeshIntegrationTests.enter(server, token: try await server.token(.worker, subject: "w-1"), meeting: meeting.meetingId)
            let (citizen, _) = try await MeshIntegrationTests.enter(server, token: meeting.invite)
            _ = (try await worker.next(), try await citizen.next())
            // A guest place whose invite runs out a few seconds into the call (invite lifetimes
            // are configured in minutes; the server's own key signs this shorter one).
            let created = try await MeshIntegrationTests.inviteGuest(server, meeting: meeting.meetingId, worker: "w-1")
            let guestPeer = PeerID(rawValue: try JSONDecoder().decode(MeshIntegrationTests.GuestInvite.self, from: Data(buffer: created.body)).peer)
            let expiry = Date() + 8
            let invite = try await server.authority.issueInvite(meeting: MeetingID(rawValue: meeting.meetingId), expiresAt: expiry, guest: guestPeer)
            let (guest, joined) = try await MeshIntegrationTests.enter(server, token: invite)
            let resume = try #require(joined.resumeToken)
            guard case .peerJoined(let inCall) = try await guest.next() else { throw TestFailure("the guest is not in the call") }
            try await Task.sleep(for: .seconds(max(0, expiry.timeIntervalSinceNow) + 1))

            guest.drop()
            var heard = try await Self.nextNotQuality(worker)
            while case .peerJoined = heard { heard = try await Self.nextNotQuality(worker) }
            #expect(heard == .peerReconnecting(PeerInfo(role: .guest, peer: guestPeer)))
            let back = WebSocketPeer(port: server.port)
            back.send(.hello(Hello(token: invite, resumeToken: resume)))
            guard case .welcome = try await back.next(), case .resumed(let resumed) = try await back.next() else {
                throw TestFailure("the expired invite could not take its kept place back")
            }
            #expect(resumed.sessionId == inCall.sessionId)
            #expect(try await Self.nextNotQuality(worker) == .peerReconnected(PeerInfo(role: .guest, peer: guestPeer)))

            // Without a place kept for it, the expired invite is refused as before.
            let stranger = WebSocketPeer(port: server.port)
            stranger.send(.hello(Hello(token: invite, resumeToken: "not-a-ticket")))
            guard case .error(let expired) = try await stranger.next() else { throw TestFailure("expired invite accepted") }
            #expect(expired.code == .tokenExpired)
            #expect(try await stranger.closeCode() == 1008)
        }
        withTemporaryDirectoryRemoved(directory)
    }
}
