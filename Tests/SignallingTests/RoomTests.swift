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
        _ = try room.join(endpoint: w, participant: worker, peer: .worker, iceServers: [], now: t0).get()
        _ = try room.join(endpoint: c, participant: citizen, peer: .citizen, iceServers: [], now: t0).get()
        return room
    }

    @Test func firstJoinerWaitsAlone() throws {
        var room = room()
        let actions = try room.join(endpoint: w, participant: worker, peer: .worker, iceServers: [], now: t0).get()
        #expect(actions == [
            .record(.participantJoined(meeting: meeting.id, participant: worker, at: t0)),
            .send(w, .joined(Joined(meetingId: meeting.id, role: .worker, peer: .worker, peers: [], iceServers: []))),
        ])
        #expect(room.session == nil)
    }

    @Test func secondJoinerStartsTheSessionAndWorkerOffers() throws {
        var room = room()
        _ = try room.join(endpoint: w, participant: worker, peer: .worker, iceServers: [], now: t0).get()
        let later = t0.addingTimeInterval(30)
        let actions = try room.join(endpoint: c, participant: citizen, peer: .citizen, iceServers: [], now: later).get()
        #expect(actions == [
            .record(.participantJoined(meeting: meeting.id, participant: citizen, at: later)),
            .record(.sessionStarted(session: session, meeting: meeting.id, participants: [worker, citizen], at: later)),
            .send(c, .joined(Joined(meetingId: meeting.id, role: .citizen, peer: .citizen, peers: [PeerInfo(role: .worker, peer: .worker)], iceServers: []))),
            .send(w, .peerJoined(PeerJoined(role: .citizen, peer: .citizen, initiator: true, sessionId: session))),
            .send(c, .peerJoined(PeerJoined(role: .worker, peer: .worker, initiator: false, sessionId: session))),
        ])
        #expect(room.session == Room.ActiveSession(id: session, startedAt: later, peers: [.worker, .citizen]))
    }

    @Test func recordsComeBeforeTheMessagesTheyJustify() throws {
        var room = room()
        _ = try room.join(endpoint: w, participant: worker, peer: .worker, iceServers: [], now: t0).get()
        let actions = try room.join(endpoint: c, participant: citizen, peer: .citizen, iceServers: [], now: t0).get()
        let firstSend = try #require(actions.firstIndex { if case .send = $0 { true } else { false } })
        let lastRecord = try #require(actions.lastIndex { if case .record = $0 { true } else { false } })
        #expect(lastRecord < firstSend)
    }

    @Test func aSecondEndpointForTheSamePlaceTakesItOverAndWaitsToBeLetIn() throws {
        var room = room(autoAdmit: false)
        _ = try room.join(endpoint: w, participant: worker, peer: .worker, iceServers: [], now: t0).get()
        _ = try room.join(endpoint: c, participant: citizen, peer: .citizen, iceServers: [], now: t0).get()
        _ = try room.admit(by: w, now: t0).get()
        #expect(room.session != nil)

        let device = EndpointID(rawValue: "e-other")
        let later = t0.addingTimeInterval(30)
        let actions = try room.join(endpoint: device, participant: citizen, peer: .citizen, iceServers: [], now: later).get()
        #expect(actions == [
            .record(.participantLeft(meeting: meeting.id, participant: citizen, reason: .connectionLost, at: later)),
            .record(.sessionEnded(session: session, meeting: meeting.id, reason: .connectionLost, at: later)),
            .record(.participantJoined(meeting: meeting.id, participant: citizen, at: later)),
            .send(w, .peerLeft(PeerLeft(role: .citizen, peer: .citizen, reason: .connectionLost))),
            .retire([c]),
            .detach(c),
            .send(device, .joined(Joined(meetingId: meeting.id, role: .citizen, peer: .citizen,
                                         peers: [PeerInfo(role: .worker, peer: .worker)], iceServers: [], waiting: true))),
            .send(w, .peerWaiting(PeerInfo(role: .citizen, peer: .citizen))),
        ])
        #expect(room.member(device)?.peer == .citizen && room.member(c) == nil)
        #expect(room.session == nil, "the new device is a new entry: the worker lets it in")

        // The worker reopening their tab takes their place over too; the worker never waits.
        let tab = EndpointID(rawValue: "e-worker-tab-2")
        let reopened = try room.join(endpoint: tab, participant: worker, peer: .worker, iceServers: [], now: later).get()
        #expect(reopened.contains(.detach(w)))
        #expect(reopened.contains(.send(tab, .peerWaiting(PeerInfo(role: .citizen, peer: .citizen)))))
        #expect(!room.isWaiting(.worker) && room.isWaiting(.citizen))

        // A guest's place likewise, while the old connection is away.
        _ = try room.join(endpoint: g1, participant: jobCentre, peer: guestA, iceServers: [], now: later).get()
        _ = room.disconnect(endpoint: g1, now: later)
        let guestBack = try room.join(endpoint: g2, participant: jobCentre, peer: guestA, iceServers: [], now: later).get()
        #expect(!guestBack.contains(.detach(g1)), "nothing to close: that connection is already gone")
        #expect(room.member(g2)?.peer == guestA && room.members.count == 3)
    }

    @Test func anAdmissionHoldsForOneEntryIntoOneSession() throws {
        var room = room(autoAdmit: false)
        _ = try room.join(endpoint: w, participant: worker, peer: .worker, iceServers: [], now: t0).get()
        _ = try room.join(endpoint: c, participant: citizen, peer: .citizen, iceServers: [], now: t0).get()
        _ = try room.admit(by: w, now: t0).get()
        let first = try #require(room.session?.id)

        // A resume within grace is not a new entry: the session goes on without the worker.
        _ = room.disconnect(endpoint: c, now: t0)
        _ = try room.reattach(peer: .citizen, endpoint: c, iceServers: [], now: t0).get()
        #expect(room.session?.id == first && !room.isWaiting(.citizen))

        // After a hang-up, the same link waits again.
        _ = room.leave(endpoint: c, reason: .hangup, now: t0)
        let again = try room.join(endpoint: c, participant: citizen, peer: .citizen, iceServers: [], now: t0).get()
        #expect(again.contains(.send(w, .peerWaiting(PeerInfo(role: .citizen, peer: .citizen)))))
        #expect(room.isWaiting(.citizen) && room.session == nil)
        _ = try room.admit(by: w, now: t0).get()
        #expect(room.session != nil)

        // The worker leaving ends the session: coming back, they let the citizen (and a guest) in anew.
        _ = try room.join(endpoint: g1, participant: jobCentre, peer: guestA, iceServers: [], now: t0).get()
        _ = try room.admit(guestA, by: w, now: t0).get()
        _ = room.leave(endpoint: w, reason: .hangup, now: t0)
        let back = try room.join(endpoint: w, participant: worker, peer: .worker, iceServers: [], now: t0).get()
        #expect(room.session == nil)
        #expect(back.filter { if case .send(w, .peerWaiting) = $0 { true } else { false } }.count == 2)

        // The citizen leaving ends it too: the guest still in the room waits again, and the worker hears so.
        _ = try room.admit(by: w, now: t0).get()
        _ = try room.admit(guestA, by: w, now: t0).get()
        #expect(room.session?.peers == [.worker, .citizen, guestA])
        let citizenGone = room.leave(endpoint: c, reason: .hangup, now: t0)
        #expect(citizenGone.contains(.send(w, .peerWaiting(PeerInfo(role: .guest, peer: guestA)))))
        #expect(room.isWaiting(guestA))
    }

    @Test func onlyCallRolesMayJoin() {
        var room = room()
        let ops = Participant(role: .ops, ref: SubjectRef(rawValue: "ops-1"))
        #expect(room.join(endpoint: w, participant: ops, peer: .worker, iceServers: [], now: t0) == .failure(.roleNotAllowed))
    }

    @Test func anExpiredMeetingCannotBeEntered() {
        var room = room()
        #expect(room.join(endpoint: c, participant: citizen, peer: .citizen, iceServers: [], now: meeting.inviteExpiresAt) == .failure(.meetingEnded))
    }

    @Test(arguments: [EndReason.hangup, .connectionLost, .protocolError])
    func leavingEndsTheSessionWithTheReasonAndTellsThePeer(reason: EndReason) throws {
        var room = room()
        _ = try room.join(endpoint: w, participant: worker, peer: .worker, iceServers: [], now: t0).get()
        _ = try room.join(endpoint: c, participant: citizen, peer: .citizen, iceServers: [], now: t0).get()
        let end = t0.addingTimeInterval(600)
        let actions = room.leave(endpoint: c, reason: reason, now: end)
        #expect(actions == [
            .record(.participantLeft(meeting: meeting.id, participant: citizen, reason: reason, at: end)),
            .record(.sessionEnded(session: session, meeting: meeting.id, reason: reason, at: end)),
            .send(w, .peerLeft(PeerLeft(role: .citizen, peer: .citizen, reason: reason))),
            .retire([c]),
        ])
        #expect(room.session == nil)
        #expect(room.leave(endpoint: c, reason: reason, now: end).isEmpty, "leaving twice records once")
    }

    @Test func relayGoesOnlyToThePairedPeer() throws {
        var room = room()
        #expect(room.relay(from: w, .offer(SessionDescription(sdp: "x"))) == .failure(.notJoined))
        _ = try room.join(endpoint: w, participant: worker, peer: .worker, iceServers: [], now: t0).get()
        #expect(room.relay(from: w, .offer(SessionDescription(sdp: "x"))) == .failure(.noPeer))
        _ = try room.join(endpoint: c, participant: citizen, peer: .citizen, iceServers: [], now: t0).get()
        #expect(room.relay(from: w, .offer(SessionDescription(sdp: "x"))) == .success([.send(c, .offer(RelayedDescription(sdp: "x", from: .worker, peer: .worker)))]))
        #expect(room.relay(from: c, .candidate(CandidateMessage(candidate: nil))) == .success([.send(w, .candidate(RelayedCandidate(candidate: nil, from: .citizen, peer: .citizen)))]))
    }

    @Test func admissionBindsInvitesAndWorkersToTheirMeetings() throws {
        let invite = Invite(meetingId: meeting.id, inviteId: "i", expiresAt: meeting.inviteExpiresAt)
        #expect(throws: SignallingErrorCode.notInvited) {
            _ = try RoomRegistry.admission(credential: .invite(invite), request: Join(meetingId: MeetingID(rawValue: "m-other")))
        }
        let (id, citizenOf) = try RoomRegistry.admission(credential: .invite(invite), request: Join(meetingId: nil))
        #expect(id == meeting.id)
        #expect(try citizenOf(meeting) == (citizen, .citizen))

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
        let joined = try room.join(endpoint: c, participant: citizen, peer: .citizen, iceServers: [], now: t0).get()
        #expect(joined.contains(.send(c, .joined(Joined(meetingId: meeting.id, role: .citizen, peer: .citizen, peers: [], iceServers: [], waiting: true)))))
        let workerJoins = try room.join(endpoint: w, participant: worker, peer: .worker, iceServers: [], now: t0).get()
        #expect(workerJoins.contains(.send(w, .peerWaiting(PeerInfo(role: .citizen, peer: .citizen)))))
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
        _ = try room.join(endpoint: w, participant: worker, peer: .worker, iceServers: [], now: t0).get()
        #expect(room.note(from: w, text: "5 min") == .failure(.noPeer))
        _ = try room.join(endpoint: c, participant: citizen, peer: .citizen, iceServers: [], now: t0).get()
        #expect(room.note(from: w, text: "Jeg er 5 minutter forsinket") == .success([.send(c, .note(RelayedNote(text: "Jeg er 5 minutter forsinket", from: .worker, peer: .worker)))]))
        #expect(room.note(from: c, text: "hi") == .failure(.notAllowed))
    }

    // MARK: resume

    @Test func aDroppedParticipantKeepsThePlaceAndResumesTheSameSession() throws {
        var room = try inCall()
        let drop = t0.addingTimeInterval(100)
        #expect(room.disconnect(endpoint: c, now: drop) == [.send(w, .peerReconnecting(PeerInfo(role: .citizen, peer: .citizen)))])
        #expect(room.session?.interruptedSince == drop)
        // What the worker sends meanwhile waits for the citizen.
        #expect(try room.relay(from: w, .candidate(CandidateMessage(candidate: nil))).get().isEmpty)

        let back = drop.addingTimeInterval(7)
        let fresh = EndpointID(rawValue: "e-citizen-2")
        let actions = try room.reattach(peer: .citizen, endpoint: fresh, iceServers: [], resumeToken: "r2", now: back).get()
        #expect(actions == [
            .record(.participantReconnected(meeting: meeting.id, participant: citizen, at: back)),
            .send(fresh, .resumed(Resumed(meetingId: meeting.id, role: .citizen, peer: .citizen, sessionId: session, peers: [PeerInfo(role: .worker, peer: .worker)],
                                          iceServers: [], replayed: 1, resumeToken: "r2"))),
            .send(fresh, .candidate(RelayedCandidate(candidate: nil, from: .worker, peer: .worker))),
            .send(w, .peerReconnected(PeerInfo(role: .citizen, peer: .citizen))),
        ])
        #expect(room.session?.id == session, "same session")
        #expect(room.session?.interruptions == 1)
        #expect(room.session?.interruptedSeconds == 7)
        #expect(room.member(fresh)?.participant == citizen)
        #expect(room.leave(endpoint: fresh, reason: .hangup, now: back).last == .retire([c, fresh]),
                "the relay allocations of both connections go when the place is given up")
    }

    @Test func aNewerConnectionReplacesOneThatIsNotYetKnownToBeDead() throws {
        var room = try inCall()
        let fresh = EndpointID(rawValue: "e-citizen-4g")
        let actions = try room.reattach(peer: .citizen, endpoint: fresh, iceServers: [], now: t0).get()
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
            .send(w, .peerLeft(PeerLeft(role: .citizen, peer: .citizen, reason: .connectionLost))),
            .retire([c]),
        ])
        #expect(room.nextDeadline == nil)
        #expect(room.reattach(peer: .citizen, endpoint: c, iceServers: [], now: deadline) == .failure(.resumeFailed))
    }

    // MARK: mesh

    let guestA = PeerID(rawValue: "guest-aaaaaaaa")
    let guestB = PeerID(rawValue: "guest-bbbbbbbb")
    let jobCentre = Participant(role: .guest, ref: SubjectRef(rawValue: "jobcenter-7"))
    let g1 = EndpointID(rawValue: "e-guest-1")
    let g2 = EndpointID(rawValue: "e-guest-2")

    /// Who was told about whom, as (recipient, peer, initiator).
    func pairings(_ actions: [RoomAction]) -> [(EndpointID, PeerID, Bool)] {
        actions.compactMap { action in
            if case .send(let to, .peerJoined(let joined)) = action { (to, joined.peer, joined.initiator) } else { nil }
        }
    }

    @Test func guestsEnterARunningSessionAndEveryPairLearnsWhoOffers() throws {
        var room = try inCall()
        let later = t0.addingTimeInterval(10)
        let first = try room.join(endpoint: g1, participant: jobCentre, peer: guestA, iceServers: [], now: later).get()
        #expect(first.contains(.record(.sessionJoined(session: session, meeting: meeting.id, participant: jobCentre, at: later))))
        #expect(first.contains(.send(g1, .joined(Joined(
            meetingId: meeting.id, role: .guest, peer: guestA,
            peers: [PeerInfo(role: .worker, peer: .worker), PeerInfo(role: .citizen, peer: .citizen)], iceServers: [])))))
        let firstPairs = pairings(first)
        #expect(firstPairs.count == 4)
        #expect(firstPairs.contains { $0 == (w, guestA, true) } && firstPairs.contains { $0 == (g1, .worker, false) })
        #expect(firstPairs.contains { $0 == (c, guestA, true) } && firstPairs.contains { $0 == (g1, .citizen, false) })

        let second = try room.join(endpoint: g2, participant: jobCentre, peer: guestB, iceServers: [], now: later).get()
        let secondPairs = pairings(second)
        #expect(secondPairs.count == 6)
        #expect(secondPairs.contains { $0 == (g1, guestB, true) } && secondPairs.contains { $0 == (g2, guestA, false) })
        #expect(room.session?.peers == [.worker, .citizen, guestA, guestB])

        let fifth = room.join(endpoint: EndpointID(rawValue: "e-5"), participant: jobCentre,
                              peer: PeerID(rawValue: "guest-cccccccc"), iceServers: [], now: later)
        #expect(fifth == .failure(.roomFull))
    }

    @Test func inAMeshSignalsNeedARecipientAndChatReachesEveryone() throws {
        var room = try inCall()
        _ = try room.join(endpoint: g1, participant: jobCentre, peer: guestA, iceServers: [], now: t0).get()
        #expect(room.relay(from: w, .offer(SessionDescription(sdp: "x"))) == .failure(.invalidMessage))
        #expect(room.relay(from: w, .offer(SessionDescription(sdp: "x", to: guestB))) == .failure(.noPeer))
        #expect(room.relay(from: w, .offer(SessionDescription(sdp: "x", to: .worker))) == .failure(.noPeer), "not to oneself")
        #expect(room.relay(from: w, .offer(SessionDescription(sdp: "x", to: guestA)))
                == .success([.send(g1, .offer(RelayedDescription(sdp: "x", from: .worker, peer: .worker)))]))
        #expect(room.relay(from: g1, .candidate(CandidateMessage(candidate: nil, to: .citizen)))
                == .success([.send(c, .candidate(RelayedCandidate(candidate: nil, from: .guest, peer: guestA)))]))
        let line = ServerMessage.chat(RelayedNote(text: "hej", from: .guest, peer: guestA))
        #expect(room.relay(from: g1, .chat(Chat(text: "hej"))) == .success([.send(w, line), .send(c, line)]))
    }

    @Test func aGuestLeavingKeepsTheSessionTheCitizenLeavingEndsItForEveryone() throws {
        var room = try inCall()
        _ = try room.join(endpoint: g1, participant: jobCentre, peer: guestA, iceServers: [], now: t0).get()
        let guestLeaves = room.leave(endpoint: g1, reason: .hangup, now: t0)
        #expect(guestLeaves == [
            .record(.participantLeft(meeting: meeting.id, participant: jobCentre, reason: .hangup, at: t0)),
            .send(w, .peerLeft(PeerLeft(role: .guest, peer: guestA, reason: .hangup))),
            .send(c, .peerLeft(PeerLeft(role: .guest, peer: guestA, reason: .hangup))),
            .retire([g1]),
        ])
        #expect(room.session?.peers == [.worker, .citizen])

        _ = try room.join(endpoint: g1, participant: jobCentre, peer: guestA, iceServers: [], now: t0).get()
        let end = t0.addingTimeInterval(60)
        let citizenLeaves = room.leave(endpoint: c, reason: .hangup, now: end)
        #expect(citizenLeaves.contains(.record(.sessionEnded(session: session, meeting: meeting.id, reason: .hangup, at: end))))
        #expect(citizenLeaves.contains(.send(g1, .peerLeft(PeerLeft(role: .citizen, peer: .citizen, reason: .hangup)))))
        #expect(room.session == nil)
        #expect(room.relay(from: w, .offer(SessionDescription(sdp: "x", to: guestA))) == .failure(.noPeer), "no call without the citizen")
    }

    @Test func waitingGuestsAreAdmittedOneByOneAndJoinTheSessionWhenItStarts() throws {
        var room = room(autoAdmit: false)
        _ = try room.join(endpoint: w, participant: worker, peer: .worker, iceServers: [], now: t0).get()
        let guestJoins = try room.join(endpoint: g1, participant: jobCentre, peer: guestA, iceServers: [], now: t0).get()
        #expect(guestJoins.contains(.send(w, .peerWaiting(PeerInfo(role: .guest, peer: guestA)))))
        _ = try room.join(endpoint: c, participant: citizen, peer: .citizen, iceServers: [], now: t0).get()
        #expect(room.isWaiting(.citizen) && room.isWaiting(guestA))
        #expect(room.admit(by: g1, now: t0) == .failure(.notAllowed))
        #expect(room.admit(guestB, by: w, now: t0) == .failure(.notWaiting))

        let guestIn = try room.admit(guestA, by: w, now: t0).get()
        #expect(guestIn.contains(.send(g1, .admitted)))
        #expect(room.session == nil, "the session waits for the citizen")

        // With only the citizen still waiting, `admit` without a peer means them.
        let citizenIn = try room.admit(by: w, now: t0).get()
        #expect(citizenIn.contains(.record(.sessionStarted(
            session: session, meeting: meeting.id, participants: [worker, citizen, jobCentre], at: t0))))
        #expect(pairings(citizenIn).count == 6)
        #expect(room.admit(by: w, now: t0) == .failure(.notWaiting))
    }

    @Test func aWorkerArrivingLaterHearsOfEveryoneWaiting() throws {
        var room = room(autoAdmit: false)
        _ = try room.join(endpoint: c, participant: citizen, peer: .citizen, iceServers: [], now: t0).get()
        _ = try room.join(endpoint: g1, participant: jobCentre, peer: guestA, iceServers: [], now: t0).get()
        let workerJoins = try room.join(endpoint: w, participant: worker, peer: .worker, iceServers: [], now: t0).get()
        #expect(workerJoins.filter { if case .send(w, .peerWaiting) = $0 { true } else { false } } == [
            .send(w, .peerWaiting(PeerInfo(role: .citizen, peer: .citizen))),
            .send(w, .peerWaiting(PeerInfo(role: .guest, peer: guestA))),
        ])
        #expect(try room.admit(by: w, now: t0).get().contains(.send(c, .admitted)), "the citizen is admitted first")
        #expect(room.isWaiting(guestA))
    }
}
