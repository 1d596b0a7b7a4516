import Foundation
import Identity
import SamtalerumCore
@testable import Signalling
import SignallingProtocol
import Testing

@Suite struct RoomTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let meeting = Meeting(id: MeetingID(rawValue: "m-room-test"), workerRef: SubjectRef(rawValue: "w-1"),
                          citizenRef: SubjectRef(rawValue: "case-42"), createdAt: Date(timeIntervalSince1970: 1_800_000_000),
                          inviteExpiresAt: Date(timeIntervalSince1970: 1_800_086_400))
    let worker = Participant(role: .worker, ref: SubjectRef(rawValue: "w-1"))
    let citizen = Participant(role: .citizen, ref: SubjectRef(rawValue: "case-42"))
    let w = EndpointID(rawValue: "e-worker")
    let c = EndpointID(rawValue: "e-citizen")
    let session = SessionID(rawValue: "s-fixed")

    func room(autoAdmit: Bool = true, grace: TimeInterval = 60) -> Room {
        Room(meeting: meeting, autoAdmit: autoAdmit, graceSeconds: grace, makeSessionID: { SessionID(rawValue: "s-fixed") })
    }

    /// Worker and citizen in a running session.
    func inCall() throws -> Room {
        var room = room()
        _ = try room.join(endpoint: w, participant: worker, iceServers: [], now: t0).get()
        _ = try room.join(endpoint: c, participant: citizen, iceServers: [], now: t0).get()
        return room
    }

    @Test func firstJoinerWaitsAlone() throws {
        var room = room()
        let actions = try room.join(endpoint: w, participant: worker, iceServers: [], now: t0).get()
        #expect(actions == [
            .record(.participantJoined(meeting: meeting.id, participant: worker, at: t0)),
            .send(w, .joined(Joined(meetingId: meeting.id, role: .worker, peers: [], iceServers: []))),
        ])
        #expect(room.session == nil)
    }

    @Test func secondJoinerStartsTheSessionAndWorkerOffers() throws {
        var room = room()
        _ = try room.join(endpoint: w, participant: worker, iceServers: [], now: t0).get()
        let later = t0.addingTimeInterval(30)
        let actions = try room.join(endpoint: c, participant: citizen, iceServers: [], now: later).get()
        #expect(actions == [
            .record(.participantJoined(meeting: meeting.id, participant: citizen, at: later)),
            .record(.sessionStarted(session: session, meeting: meeting.id, participants: [worker, citizen], at: later)),
            .send(c, .joined(Joined(meetingId: meeting.id, role: .citizen, peers: [PeerInfo(role: .worker)], iceServers: []))),
            .send(w, .peerJoined(PeerJoined(role: .citizen, initiator: true, sessionId: session))),
            .send(c, .peerJoined(PeerJoined(role: .worker, initiator: false, sessionId: session))),
        ])
        #expect(room.session == Room.ActiveSession(id: session, startedAt: later))
    }

    @Test func recordsComeBeforeTheMessagesTheyJustify() throws {
        var room = room()
        _ = try room.join(endpoint: w, participant: worker, iceServers: [], now: t0).get()
        let actions = try room.join(endpoint: c, participant: citizen, iceServers: [], now: t0).get()
        let firstSend = try #require(actions.firstIndex { if case .send = $0 { true } else { false } })
        let lastRecord = try #require(actions.lastIndex { if case .record = $0 { true } else { false } })
        #expect(lastRecord < firstSend)
    }

    @Test func aSecondEndpointOfTheSameRoleIsRefused() throws {
        var room = room()
        _ = try room.join(endpoint: c, participant: citizen, iceServers: [], now: t0).get()
        let second = room.join(endpoint: EndpointID(rawValue: "e-other"), participant: citizen, iceServers: [], now: t0)
        #expect(second == .failure(.roomFull))
        #expect(room.members.count == 1)
    }

    @Test func onlyCallRolesMayJoin() {
        var room = room()
        let ops = Participant(role: .ops, ref: SubjectRef(rawValue: "ops-1"))
        #expect(room.join(endpoint: w, participant: ops, iceServers: [], now: t0) == .failure(.roleNotAllowed))
    }

    @Test func anExpiredMeetingCannotBeEntered() {
        var room = room()
        #expect(room.join(endpoint: c, participant: citizen, iceServers: [], now: meeting.inviteExpiresAt) == .failure(.meetingEnded))
    }

    @Test(arguments: [EndReason.hangup, .connectionLost, .protocolError])
    func leavingEndsTheSessionWithTheReasonAndTellsThePeer(reason: EndReason) throws {
        var room = room()
        _ = try room.join(endpoint: w, participant: worker, iceServers: [], now: t0).get()
        _ = try room.join(endpoint: c, participant: citizen, iceServers: [], now: t0).get()
        let end = t0.addingTimeInterval(600)
        let actions = room.leave(endpoint: c, reason: reason, now: end)
        #expect(actions == [
            .record(.participantLeft(meeting: meeting.id, participant: citizen, reason: reason, at: end)),
            .record(.sessionEnded(session: session, meeting: meeting.id, reason: reason, at: end)),
            .send(w, .peerLeft(PeerLeft(role: .citizen, reason: reason))),
        ])
        #expect(room.session == nil)
        #expect(room.leave(endpoint: c, reason: reason, now: end).isEmpty, "leaving twice records once")
    }

    @Test func relayGoesOnlyToThePairedPeer() throws {
        var room = room()
        #expect(room.relay(from: w, .offer(SessionDescription(sdp: "x"))) == .failure(.notJoined))
        _ = try room.join(endpoint: w, participant: worker, iceServers: [], now: t0).get()
        #expect(room.relay(from: w, .offer(SessionDescription(sdp: "x"))) == .failure(.noPeer))
        _ = try room.join(endpoint: c, participant: citizen, iceServers: [], now: t0).get()
        #expect(room.relay(from: w, .offer(SessionDescription(sdp: "x"))) == .success([.send(c, .offer(RelayedDescription(sdp: "x", from: .worker)))]))
        #expect(room.relay(from: c, .candidate(CandidateMessage(candidate: nil))) == .success([.send(w, .candidate(RelayedCandidate(candidate: nil, from: .citizen)))]))
    }

    @Test func admissionBindsInvitesAndWorkersToTheirMeetings() throws {
        let invite = CitizenInvite(meetingId: meeting.id, inviteId: "i", expiresAt: meeting.inviteExpiresAt)
        #expect(throws: SignallingErrorCode.notInvited) {
            _ = try RoomRegistry.admission(credential: .invite(invite), request: Join(meetingId: MeetingID(rawValue: "m-other")))
        }
        let (id, citizenOf) = try RoomRegistry.admission(credential: .invite(invite), request: Join(meetingId: nil))
        #expect(id == meeting.id)
        #expect(try citizenOf(meeting) == citizen)

        let otherWorker = StaffIdentity(subject: SubjectRef(rawValue: "w-2"), role: .worker, expiresAt: meeting.inviteExpiresAt)
        let (_, workerOf) = try RoomRegistry.admission(credential: .staff(otherWorker), request: Join(meetingId: meeting.id))
        #expect(throws: SignallingErrorCode.notInvited) { _ = try workerOf(meeting) }
        #expect(throws: SignallingErrorCode.invalidMessage) {
            _ = try RoomRegistry.admission(credential: .staff(otherWorker), request: Join(meetingId: nil))
        }
        let auditor = StaffIdentity(subject: SubjectRef(rawValue: "a-1"), role: .auditor, expiresAt: meeting.inviteExpiresAt)
        #expect(throws: SignallingErrorCode.roleNotAllowed) {
            _ = try RoomRegistry.admission(credential: .staff(auditor), request: Join(meetingId: meeting.id))
        }
    }

    // MARK: waiting room

    @Test func aCitizenWaitsUntilTheWorkerAdmitsThem() throws {
        var room = room(autoAdmit: false)
        let joined = try room.join(endpoint: c, participant: citizen, iceServers: [], now: t0).get()
        #expect(joined.contains(.send(c, .joined(Joined(meetingId: meeting.id, role: .citizen, peers: [], iceServers: [], waiting: true)))))
        let workerJoins = try room.join(endpoint: w, participant: worker, iceServers: [], now: t0).get()
        #expect(workerJoins.contains(.send(w, .peerWaiting(PeerInfo(role: .citizen)))))
        #expect(room.session == nil, "no session before admission")
        #expect(room.relay(from: w, .offer(SessionDescription(sdp: "x"))) == .failure(.noPeer))

        #expect(room.admit(by: c, now: t0) == .failure(.notAllowed), "a citizen cannot admit themselves")
        let later = t0.addingTimeInterval(5)
        let admitted = try room.admit(by: w, now: later).get()
        #expect(admitted.first == .record(.participantAdmitted(meeting: meeting.id, participant: citizen, by: worker.ref, at: later)))
        #expect(admitted.contains(.send(c, .admitted)))
        #expect(admitted.contains(.record(.sessionStarted(session: session, meeting: meeting.id, participants: [worker, citizen], at: later))))
        #expect(room.admit(by: w, now: later) == .failure(.notWaiting))
    }

    @Test func theWorkerCanSendANoteToTheWaitingCitizen() throws {
        var room = room(autoAdmit: false)
        _ = try room.join(endpoint: w, participant: worker, iceServers: [], now: t0).get()
        #expect(room.note(from: w, text: "5 min") == .failure(.noPeer))
        _ = try room.join(endpoint: c, participant: citizen, iceServers: [], now: t0).get()
        #expect(room.note(from: w, text: "Jeg er 5 minutter forsinket") == .success([.send(c, .note(RelayedNote(text: "Jeg er 5 minutter forsinket", from: .worker)))]))
        #expect(room.note(from: c, text: "hi") == .failure(.notAllowed))
    }

    // MARK: resume

    @Test func aDroppedParticipantKeepsThePlaceAndResumesTheSameSession() throws {
        var room = try inCall()
        let drop = t0.addingTimeInterval(100)
        #expect(room.disconnect(endpoint: c, now: drop) == [.send(w, .peerReconnecting(PeerInfo(role: .citizen)))])
        #expect(room.session?.interruptedSince == drop)
        // What the worker sends meanwhile waits for the citizen.
        #expect(try room.relay(from: w, .candidate(CandidateMessage(candidate: nil))).get().isEmpty)
        #expect(room.join(endpoint: EndpointID(rawValue: "e-new"), participant: citizen, iceServers: [], now: drop) == .failure(.roomFull))

        let back = drop.addingTimeInterval(7)
        let fresh = EndpointID(rawValue: "e-citizen-2")
        let actions = try room.reattach(role: .citizen, endpoint: fresh, iceServers: [], resumeToken: "r2", now: back).get()
        #expect(actions == [
            .record(.participantReconnected(meeting: meeting.id, participant: citizen, at: back)),
            .send(fresh, .resumed(Resumed(meetingId: meeting.id, role: .citizen, sessionId: session, peers: [PeerInfo(role: .worker)],
                                          iceServers: [], replayed: 1, resumeToken: "r2"))),
            .send(fresh, .candidate(RelayedCandidate(candidate: nil, from: .worker))),
            .send(w, .peerReconnected(PeerInfo(role: .citizen))),
        ])
        #expect(room.session?.id == session, "same session")
        #expect(room.session?.interruptions == 1)
        #expect(room.session?.interruptedSeconds == 7)
        #expect(room.member(fresh)?.participant == citizen)
    }

    @Test func aNewerConnectionReplacesOneThatIsNotYetKnownToBeDead() throws {
        var room = try inCall()
        let fresh = EndpointID(rawValue: "e-citizen-4g")
        let actions = try room.reattach(role: .citizen, endpoint: fresh, iceServers: [], now: t0).get()
        #expect(actions.first == .detach(c))
        #expect(room.member(c) == nil)
        #expect(room.session?.interruptions == 0, "never away, so no interruption")
    }

    @Test func afterTheGracePeriodTheSessionEndsAsConnectionLost() throws {
        var room = try inCall()
        let drop = t0.addingTimeInterval(100)
        _ = room.disconnect(endpoint: c, now: drop)
        #expect(room.nextDeadline == drop.addingTimeInterval(60))
        #expect(room.expire(now: drop.addingTimeInterval(59)).isEmpty)
        let deadline = drop.addingTimeInterval(60)
        #expect(room.expire(now: deadline) == [
            .record(.participantLeft(meeting: meeting.id, participant: citizen, reason: .connectionLost, at: deadline)),
            .record(.sessionEnded(session: session, meeting: meeting.id, reason: .connectionLost, at: deadline)),
            .send(w, .peerLeft(PeerLeft(role: .citizen, reason: .connectionLost))),
        ])
        #expect(room.nextDeadline == nil)
        #expect(room.reattach(role: .citizen, endpoint: c, iceServers: [], now: deadline) == .failure(.resumeFailed))
    }
}
