import Foundation
import SamtalerumCore
@testable import Signalling
import SignallingProtocol
import Testing

/// A room rebuilt on another node after the node holding it died (`Room(takingOver:)`).
@Suite struct TakeoverRoomTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let meeting = Meeting(id: MeetingID(rawValue: "m-takeover"), workerRef: SubjectRef(rawValue: "w-1"),
                          citizenRef: SubjectRef(rawValue: "case-42"), createdAt: Date(timeIntervalSince1970: 1_800_000_000),
                          inviteExpiresAt: Date(timeIntervalSince1970: 1_800_086_400))
    let worker = Participant(role: .worker, ref: SubjectRef(rawValue: "w-1"))
    let citizen = Participant(role: .citizen, ref: SubjectRef(rawValue: "case-42"))
    let session = SessionID(rawValue: "s-moved")
    let w = EndpointID(rawValue: "e-worker-b")
    let c = EndpointID(rawValue: "e-citizen-b")

    /// The old node's last known time was t0 + 100; the new node takes over at t0 + 110.
    func takenOver(grace: TimeInterval = 60) -> Room {
        Room(meeting: meeting, takingOver: session, startedAt: t0, places: [.worker: worker, .citizen: citizen],
             interruptedSince: t0.addingTimeInterval(100), graceSeconds: grace, now: t0.addingTimeInterval(110))
    }

    @Test func bothComeBackIntoTheSameSessionAndQueuedMessagesFollow() throws {
        var room = takenOver()
        #expect(room.members.values.allSatisfy { $0.endpoint == nil && $0.awaitsHandover })
        #expect(room.session?.id == session && room.session?.peers == [.worker, .citizen])
        #expect(!room.isWaiting(.citizen))

        let back = t0.addingTimeInterval(111)
        let workerBack = try room.reattach(peer: .worker, endpoint: w, iceServers: [], resumeToken: "t-w", now: back).get()
        #expect(workerBack.contains(.send(w, .resumed(Resumed(
            meetingId: meeting.id, role: .worker, peer: .worker, sessionId: session, peers: [PeerInfo(role: .citizen, peer: .citizen)],
            iceServers: [], replayed: 0, waiting: false, resumeToken: "t-w")))))
        #expect(room.members[.worker]?.awaitsHandover == false)
        // The worker's ICE-restart offer waits for the citizen.
        #expect(try room.relay(from: w, .offer(SessionDescription(sdp: "restart"))).get().isEmpty)
        #expect(room.session?.interruptions == 0)

        let citizenBack = try room.reattach(peer: .citizen, endpoint: c, iceServers: [], now: back.addingTimeInterval(2)).get()
        #expect(citizenBack.contains(.send(c, .offer(RelayedDescription(sdp: "restart", from: .worker, peer: .worker)))))
        #expect(citizenBack.contains(.send(w, .peerReconnected(PeerInfo(role: .citizen, peer: .citizen)))))
        // One interruption, from the old node's last known time until both were back.
        #expect(room.session?.interruptions == 1)
        #expect(room.session?.interruptedSeconds == 13)
    }

    @Test func someoneWhoNeverComesBackEndsTheSessionAsLostAfterTheGrace() throws {
        var room = takenOver(grace: 30)
        _ = try room.reattach(peer: .worker, endpoint: w, iceServers: [], now: t0.addingTimeInterval(111)).get()
        #expect(room.expire(now: t0.addingTimeInterval(139)).isEmpty)
        let actions = room.expire(now: t0.addingTimeInterval(140))
        #expect(actions.contains(.record(.sessionEnded(session: session, meeting: meeting.id, reason: .connectionLost,
                                                       at: t0.addingTimeInterval(140)))))
        #expect(room.session == nil && room.members[.citizen] == nil)
    }
}
