import Foundation
import SamtalerumCore
import SignallingProtocol

/// What the I/O side must do after the room changed. Records come before the sends they
/// justify: a client hears about a join or a hang-up only once it is on disk.
public enum RoomAction: Sendable, Equatable {
    case record(AuditEvent)
    case send(EndpointID, ServerMessage)
}

/// A closed room for one meeting: at most one worker endpoint and one citizen endpoint.
/// Pure state: every method takes `now` and returns actions; nothing here does I/O.
public struct Room: Sendable {
    public struct Member: Sendable, Equatable {
        public var endpoint: EndpointID
        public var participant: Participant
        public var joinedAt: Date
    }

    public struct ActiveSession: Sendable, Equatable {
        public var id: SessionID
        public var startedAt: Date
    }

    public let meeting: Meeting
    public private(set) var members: [Role: Member] = [:]
    public private(set) var session: ActiveSession?
    private let makeSessionID: @Sendable () -> SessionID

    public init(meeting: Meeting, makeSessionID: @escaping @Sendable () -> SessionID = { .random() }) {
        self.meeting = meeting
        self.makeSessionID = makeSessionID
    }

    public var isEmpty: Bool { members.isEmpty }

    public func member(_ endpoint: EndpointID) -> Member? {
        members.values.first { $0.endpoint == endpoint }
    }

    /// The worker is the fixed offerer so the two sides never both send an offer.
    static func isInitiator(_ role: Role) -> Bool { role == .worker }

    public mutating func join(
        endpoint: EndpointID, participant: Participant, iceServers: [IceServer], now: Date
    ) -> Result<[RoomAction], SignallingErrorCode> {
        guard participant.role.isCallParticipant else { return .failure(.roleNotAllowed) }
        guard members[participant.role] == nil else { return .failure(.roomFull) }
        guard now < meeting.inviteExpiresAt else { return .failure(.meetingEnded) }

        let peers = members.values.map { PeerInfo(role: $0.participant.role) }
        members[participant.role] = Member(endpoint: endpoint, participant: participant, joinedAt: now)
        var actions: [RoomAction] = [
            .record(.participantJoined(meeting: meeting.id, participant: participant, at: now)),
        ]
        var sends: [RoomAction] = [
            .send(endpoint, .joined(Joined(meetingId: meeting.id, role: participant.role, peers: peers, iceServers: iceServers))),
        ]
        if session == nil, let worker = members[.worker], let citizen = members[.citizen] {
            let started = ActiveSession(id: makeSessionID(), startedAt: now)
            session = started
            actions.append(.record(.sessionStarted(
                session: started.id, meeting: meeting.id,
                participants: [worker.participant, citizen.participant], at: now)))
            for (me, other) in [(worker, citizen), (citizen, worker)] {
                sends.append(.send(me.endpoint, .peerJoined(PeerJoined(
                    role: other.participant.role, initiator: Self.isInitiator(me.participant.role), sessionId: started.id))))
            }
        }
        return .success(actions + sends)
    }

    /// The endpoint is gone (hang-up, lost connection, protocol violation, shutdown).
    public mutating func leave(endpoint: EndpointID, reason: EndReason, now: Date) -> [RoomAction] {
        guard let leaving = member(endpoint) else { return [] }
        members[leaving.participant.role] = nil
        var actions: [RoomAction] = [
            .record(.participantLeft(meeting: meeting.id, participant: leaving.participant, reason: reason, at: now)),
        ]
        if let ended = session {
            session = nil
            actions.append(.record(.sessionEnded(session: ended.id, meeting: meeting.id, reason: reason, at: now)))
        }
        for remaining in members.values {
            actions.append(.send(remaining.endpoint, .peerLeft(PeerLeft(role: leaving.participant.role, reason: reason))))
        }
        return actions
    }

    /// Offer, answer and candidates go to the paired peer only, never anywhere else.
    public func relay(from endpoint: EndpointID, _ message: ClientMessage) -> Result<[RoomAction], SignallingErrorCode> {
        guard let sender = member(endpoint) else { return .failure(.notJoined) }
        let from = sender.participant.role
        guard let peer = members.values.first(where: { $0.endpoint != endpoint }) else { return .failure(.noPeer) }
        let relayed: ServerMessage
        switch message {
        case .offer(let description): relayed = .offer(RelayedDescription(sdp: description.sdp, from: from))
        case .answer(let description): relayed = .answer(RelayedDescription(sdp: description.sdp, from: from))
        case .candidate(let body): relayed = .candidate(RelayedCandidate(candidate: body.candidate, from: from))
        case .hello, .join, .leave, .ping: return .failure(.invalidMessage)
        }
        return .success([.send(peer.endpoint, relayed)])
    }
}
