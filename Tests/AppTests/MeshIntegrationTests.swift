import AuditStore
import Foundation
import Hummingbird
import HummingbirdTesting
import SamtalerumCore
import SignallingProtocol
import Testing

/// A third participant (a job-centre caseworker) invited through the API, in a live three-way call.
@Suite(.timeLimit(.minutes(2))) struct MeshIntegrationTests {
    struct GuestInvite: Decodable {
        var meetingId: String
        var peer: String
        var guestInviteUrl: String
        var invite: String { String(guestInviteUrl.split(separator: "#invite=").last ?? "") }
    }

    static func inviteGuest(_ server: TestServer, meeting: String, worker: String, body: String = #"{"guestRef":"jobcenter-17"}"#)
        async throws -> (status: HTTPResponse.Status, body: ByteBuffer, type: String?) {
        let response = try await server.client.execute(
            uri: "/api/meetings/\(meeting)/guests", method: .post,
            headers: [.authorization: "Bearer \(try await server.token(.worker, subject: worker))", .contentType: "application/json"],
            body: ByteBuffer(string: body))
        return (response.status, response.body, response.headers[.contentType])
    }

    static func problemType(_ body: ByteBuffer) -> String? {
        (try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any])?["type"] as? String
    }

    /// Connects with `token`, joins and returns the peer and what `joined` said.
    static func enter(_ server: TestServer, token: String, meeting: String? = nil) async throws -> (WebSocketPeer, Joined) {
        let peer = WebSocketPeer(port: server.port)
        peer.send(.hello(Hello(token: token)))
        guard case .welcome = try await peer.next() else { throw TestFailure("no welcome") }
        peer.send(.join(Join(meetingId: meeting.map(MeetingID.init(rawValue:)))))
        guard case .joined(let joined) = try await peer.next() else { throw TestFailure("no joined") }
        return (peer, joined)
    }

    @Test func onlyTheMeetingsWorkerInvitesGuestsAndAtMostTwo() async throws {
        let (_, directory) = try await TestServer.run { server in
            let meeting = try await server.createMeeting(worker: "w-mesh")
            let other = try await Self.inviteGuest(server, meeting: meeting.meetingId, worker: "w-someone-else")
            #expect(other.status == .forbidden)
            #expect(Self.problemType(other.body)?.hasSuffix("/not-your-meeting") == true)
            #expect(other.type == "application/problem+json")
            let missing = try await Self.inviteGuest(server, meeting: "m-nosuchmeeting", worker: "w-mesh")
            #expect(missing.status == .notFound)
            let malformed = try await Self.inviteGuest(server, meeting: meeting.meetingId, worker: "w-mesh", body: #"{"guest":1}"#)
            #expect(malformed.status == .badRequest)

            for _ in 0..<Meeting.maxGuests {
                #expect(try await Self.inviteGuest(server, meeting: meeting.meetingId, worker: "w-mesh").status == .created)
            }
            let third = try await Self.inviteGuest(server, meeting: meeting.meetingId, worker: "w-mesh")
            #expect(third.status == .conflict)
            #expect(Self.problemType(third.body)?.hasSuffix("/too-many-guests") == true)
        }
        withTemporaryDirectoryRemoved(directory)
    }

    @Test func aGuestJoinsTheCallEveryPairSignalsAndTheAuditNamesThem() async throws {
        let (meetingID, directory) = try await TestServer.run(adjust: { $0.signalling.autoAdmit = true }) { server in
            let meeting = try await server.createMeeting(worker: "w-mesh")
            let created = try await Self.inviteGuest(server, meeting: meeting.meetingId, worker: "w-mesh")
            #expect(created.status == .created)
            let guestInvite = try JSONDecoder().decode(GuestInvite.self, from: Data(buffer: created.body))
            let guestPeer = try #require(PeerID(validating: guestInvite.peer))

            let (worker, _) = try await Self.enter(server, token: try await server.token(.worker, subject: "w-mesh"), meeting: meeting.meetingId)
            let (citizen, _) = try await Self.enter(server, token: meeting.invite)
            guard case .peerJoined = try await worker.next(), case .peerJoined = try await citizen.next() else {
                throw TestFailure("worker and citizen not paired")
            }

            let (guest, guestJoined) = try await Self.enter(server, token: guestInvite.invite)
            #expect(guestJoined.role == .guest && guestJoined.peer == guestPeer)
            #expect(guestJoined.peers.map(\.peer) == [.worker, .citizen])
            var toGuest: [PeerID: Bool] = [:]
            for _ in 0..<2 {
                guard case .peerJoined(let joined) = try await guest.next() else { throw TestFailure("guest not paired") }
                toGuest[joined.peer] = joined.initiator
            }
            #expect(toGuest == [.worker: false, .citizen: false], "the guest answers both")
            guard case .peerJoined(let workerSees) = try await worker.next(),
                  case .peerJoined(let citizenSees) = try await citizen.next() else { throw TestFailure("no pairing with the guest") }
            #expect(workerSees.peer == guestPeer && workerSees.initiator && citizenSees.peer == guestPeer && citizenSees.initiator)

            citizen.send(.offer(SessionDescription(sdp: "v=0 c→g", to: guestPeer)))
            #expect(try await guest.next() == .offer(RelayedDescription(sdp: "v=0 c→g", from: .citizen, peer: .citizen)))
            guest.send(.answer(SessionDescription(sdp: "v=0 g→c")))
            guard case .error(let ambiguous) = try await guest.next() else { throw TestFailure("an answer without `to` went somewhere") }
            #expect(ambiguous.code == .invalidMessage && !ambiguous.fatal)
            guest.send(.answer(SessionDescription(sdp: "v=0 g→c", to: .citizen)))
            #expect(try await citizen.next() == .answer(RelayedDescription(sdp: "v=0 g→c", from: .guest, peer: guestPeer)))
            guest.send(.chat(Chat(text: "Hej fra jobcentret")))
            let line = ServerMessage.chat(RelayedNote(text: "Hej fra jobcentret", from: .guest, peer: guestPeer))
            #expect(try await worker.next() == line)
            #expect(try await citizen.next() == line)

            guest.send(.leave)
            #expect(try await guest.closeCode() == 1000)
            let guestLeft = ServerMessage.peerLeft(PeerLeft(role: .guest, peer: guestPeer, reason: .hangup))
            #expect(try await worker.next() == guestLeft)
            #expect(try await citizen.next() == guestLeft)
            worker.send(.offer(SessionDescription(sdp: "v=0 still")))
            #expect(try await citizen.next() == .offer(RelayedDescription(sdp: "v=0 still", from: .worker, peer: .worker)),
                    "the call goes on, one-to-one again")
            citizen.send(.leave)
            worker.send(.leave)
            _ = try await worker.closeCode()
            return meeting.meetingId
        }
        defer { withTemporaryDirectoryRemoved(directory) }

        let audit = try AuditDatabase.open(dataDirectory: directory)
        let sessions = try await audit.sessions(
            matching: SessionQuery(), access: AuditorAccess(auditor: SubjectRef(rawValue: "test"), purpose: "mesh test", at: Date()))
        let session = try #require(sessions.first)
        #expect(sessions.count == 1 && session.meeting.rawValue == meetingID)
        #expect(session.guestRefs == [SubjectRef(rawValue: "jobcenter-17")])
        #expect(try await audit.verify().isIntact)
    }

    @Test func fourParticipantsAreEachPairedWithTheOtherThree() async throws {
        let (_, directory) = try await TestServer.run(adjust: { $0.signalling.autoAdmit = true }) { server in
            let meeting = try await server.createMeeting(worker: "w-four")
            var guestInvites: [GuestInvite] = []
            for ref in ["jobcenter-1", "jobcenter-2"] {
                let created = try await Self.inviteGuest(server, meeting: meeting.meetingId, worker: "w-four", body: #"{"guestRef":"\#(ref)"}"#)
                guestInvites.append(try JSONDecoder().decode(GuestInvite.self, from: Data(buffer: created.body)))
            }
            var peers: [PeerID: WebSocketPeer] = [:]
            (peers[.worker], _) = try await Self.enter(server, token: try await server.token(.worker, subject: "w-four"), meeting: meeting.meetingId)
            (peers[.citizen], _) = try await Self.enter(server, token: meeting.invite)
            for invite in guestInvites {
                (peers[PeerID(rawValue: invite.peer)], _) = try await Self.enter(server, token: invite.invite)
            }
            // Every participant hears of the three others, and exactly one side of each pair offers.
            var offers = 0
            for (place, socket) in peers {
                var heard: Set<PeerID> = []
                for _ in 0..<3 {
                    guard case .peerJoined(let joined) = try await socket.next() else { throw TestFailure("\(place) missed a peer") }
                    heard.insert(joined.peer)
                    if joined.initiator { offers += 1 }
                }
                #expect(heard == Set(peers.keys).subtracting([place]))
            }
            #expect(offers == 6, "one offerer for each of the six pairs")
            for socket in peers.values { socket.send(.leave) }
            for socket in peers.values { _ = try await socket.closeCode() }
        }
        withTemporaryDirectoryRemoved(directory)
    }

    /// The next message that is not `quality`, within the usual bound.
    static func nextNotQuality(_ peer: WebSocketPeer) async throws -> ServerMessage {
        for _ in 0..<20 {
            let message = try await peer.next()
            if case .quality = message { continue }
            return message
        }
        throw TestFailure("only quality messages")
    }

    @Test func aWaitingGuestHearsNothingOfTheCallAndASecondConnectionTakesTheGuestsPlaceOver() async throws {
        let (_, directory) = try await TestServer.run { server in
            let meeting = try await server.createMeeting(worker: "w-wait")
            let created = try await Self.inviteGuest(server, meeting: meeting.meetingId, worker: "w-wait")
            let guestInvite = try JSONDecoder().decode(GuestInvite.self, from: Data(buffer: created.body))
            let guestPeer = PeerID(rawValue: guestInvite.peer)
            let (worker, _) = try await Self.enter(server, token: try await server.token(.worker, subject: "w-wait"), meeting: meeting.meetingId)
            let (citizen, _) = try await Self.enter(server, token: meeting.invite)
            #expect(try await worker.next() == .peerWaiting(PeerInfo(role: .citizen, peer: .citizen)))
            worker.send(.admit(Admit()))
            #expect(try await citizen.next() == .admitted)
            guard case .peerJoined = try await worker.next(), case .peerJoined = try await citizen.next() else {
                throw TestFailure("worker and citizen not paired")
            }
            let (guest, guestJoined) = try await Self.enter(server, token: guestInvite.invite)
            #expect(guestJoined.waiting)
            #expect(try await worker.next() == .peerWaiting(PeerInfo(role: .guest, peer: guestPeer)))

            // A poor call, so verdicts are pushed; the two in it hear them, with values out of range
            // clamped rather than the report refused.
            let poor = CallStats(rttMs: 900, jitterMs: 80, packetLossIn: 1.7, framesPerSecondIn: -3)
            worker.send(.stats(poor))
            citizen.send(.stats(poor))
            guard case .quality = try await worker.next() else { throw TestFailure("the worker got no quality verdict") }
            guard case .quality = try await citizen.next() else { throw TestFailure("the citizen got no quality verdict") }
            guest.send(.ping(Ping(id: 4)))
            #expect(try await guest.next() == .pong(Ping(id: 4)), "the waiting guest got something before its pong")

            // The guest's link opened on a second device takes the place over; it waits again.
            let (copy, copyJoined) = try await Self.enter(server, token: guestInvite.invite)
            #expect(copyJoined.waiting && copyJoined.peer == guestPeer)
            guard case .error(let replaced) = try await guest.next() else { throw TestFailure("the first guest connection was not told") }
            #expect(replaced.code == .replaced && replaced.fatal)
            #expect(try await guest.closeCode() == 1008)
            #expect(try await Self.nextNotQuality(worker) == .peerLeft(PeerLeft(role: .guest, peer: guestPeer, reason: .connectionLost)))
            #expect(try await Self.nextNotQuality(worker) == .peerWaiting(PeerInfo(role: .guest, peer: guestPeer)))
            copy.send(.ping(Ping(id: 5)))
            #expect(try await copy.next() == .pong(Ping(id: 5)))
        }
        withTemporaryDirectoryRemoved(directory)
    }
}
