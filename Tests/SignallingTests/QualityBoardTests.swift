import Foundation
import SamtalerumCore
@testable import Signalling
import SignallingProtocol
import Testing

/// What each participant of a three-way call is told about quality.
@Suite struct QualityBoardTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let guest = PeerID(rawValue: "guest-aaaaaaaa")

    func threeWayCall() throws -> Room {
        let meeting = Meeting(id: MeetingID(rawValue: "m-quality"), workerRef: SubjectRef(rawValue: "w"),
                              citizenRef: SubjectRef(rawValue: "c"), createdAt: t0, inviteExpiresAt: t0.addingTimeInterval(3600),
                              guests: [guest: SubjectRef(rawValue: "g")])
        var room = Room(meeting: meeting, autoAdmit: true)
        _ = try room.join(endpoint: EndpointID(rawValue: "e-w"), participant: Participant(role: .worker, ref: meeting.workerRef),
                          peer: .worker, iceServers: [], now: t0).get()
        _ = try room.join(endpoint: EndpointID(rawValue: "e-c"), participant: Participant(role: .citizen, ref: meeting.citizenRef),
                          peer: .citizen, iceServers: [], now: t0).get()
        _ = try room.join(endpoint: EndpointID(rawValue: "e-g"), participant: Participant(role: .guest, ref: SubjectRef(rawValue: "g")),
                          peer: guest, iceServers: [], now: t0).get()
        return room
    }

    func updates(_ actions: [RoomAction]) -> [EndpointID: QualityUpdate] {
        var found: [EndpointID: QualityUpdate] = [:]
        for case .send(let endpoint, .quality(let update)) in actions { found[endpoint] = update }
        return found
    }

    @Test func whatYouSendIsJudgedByTheWorstOfTheOthers() throws {
        let room = try threeWayCall()
        let id = room.meeting.id
        var board = QualityBoard()
        board.sessionStarted(meeting: id, peers: room.session?.peers ?? [], at: t0)
        let clean = CallStats(rttMs: 40, jitterMs: 2, packetLossIn: 0, framesPerSecondIn: 30)
        let lossy = CallStats(rttMs: 400, jitterMs: 60, packetLossIn: 0.2, framesPerSecondIn: 5)
        var now = t0
        for _ in 0..<5 {
            now = now.addingTimeInterval(2)
            board.ingest(clean, meeting: id, peer: .worker, now: now)
            board.ingest(clean, meeting: id, peer: .citizen, now: now)
            board.ingest(lossy, meeting: id, peer: guest, now: now)
        }
        let told = updates(board.updates(for: room, now: now))
        let worker = try #require(told[EndpointID(rawValue: "e-w")])
        let guestUpdate = try #require(told[EndpointID(rawValue: "e-g")])
        #expect(worker.receiving?.class == "excellent")
        #expect(worker.sending?.class == "poor" || worker.sending?.class == "lost", "the guest receives the worker badly")
        #expect(guestUpdate.receiving.map { $0.class == "poor" || $0.class == "lost" } == true)
        #expect(guestUpdate.sending?.class == "excellent", "both others receive the guest well")
        #expect(updates(board.updates(for: room, now: now)).isEmpty, "nothing new, nothing sent")
    }

    /// "Vis ikke mit ansigt": the others receive no picture from that participant, which is no
    /// frozen video; the one who chose it still has the others' video judged.
    @Test func aParticipantWhoSendsNoVideoIsNotAFrozenPicture() throws {
        let room = try threeWayCall()
        let id = room.meeting.id
        var board = QualityBoard()
        board.sessionStarted(meeting: id, peers: [.worker, .citizen], at: t0)
        // The worker receives no frames, as from a citizen without a picture; the citizen's video
        // from the worker is choppy.
        let noPicture = CallStats(rttMs: 40, jitterMs: 2, packetLossIn: 0, framesPerSecondIn: 0, freezeCountIn: 1, audioOnly: false)
        let choppy = CallStats(rttMs: 40, jitterMs: 2, packetLossIn: 0, framesPerSecondIn: 2, freezeCountIn: 2, audioOnly: true)
        var now = t0
        for _ in 0..<5 {
            now = now.addingTimeInterval(2)
            board.ingest(choppy, meeting: id, peer: .citizen, now: now)
            board.ingest(noPicture, meeting: id, peer: .worker, now: now)
        }
        #expect(board.report(meeting: id, peer: .worker, now: now)?.class == "excellent", "the citizen sends no video by choice")
        #expect(board.report(meeting: id, peer: .citizen, now: now)?.class == "poor", "the worker's video still counts")
    }

    @Test func theSweepLooksOnlyAtCallsWithSomeoneSilentAndSeesThemTurnLost() throws {
        let room = try threeWayCall()
        let id = room.meeting.id
        var board = QualityBoard()
        board.sessionStarted(meeting: id, peers: room.session?.peers ?? [], at: t0)
        let clean = CallStats(rttMs: 40, jitterMs: 2, packetLossIn: 0, framesPerSecondIn: 30)
        var now = t0
        for _ in 0..<4 {
            now = now.addingTimeInterval(2)
            #expect(board.hasQuietParticipant(in: room, now: now), "nobody has reported yet this interval")
            for peer in [PeerID.worker, .citizen, guest] { board.ingest(clean, meeting: id, peer: peer, now: now) }
            #expect(!board.hasQuietParticipant(in: room, now: now.addingTimeInterval(1)))
        }
        _ = board.updates(for: room, now: now)
        // The guest's browser stops reporting; the others go on.
        for _ in 0..<4 {
            now = now.addingTimeInterval(2)
            board.ingest(clean, meeting: id, peer: .worker, now: now)
            board.ingest(clean, meeting: id, peer: .citizen, now: now)
        }
        #expect(board.hasQuietParticipant(in: room, now: now))
        let told = updates(board.updates(for: room, now: now))
        #expect(told[EndpointID(rawValue: "e-g")]?.receiving?.class == "lost")
    }
}
