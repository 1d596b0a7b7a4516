import Foundation
import SamtalerumCore
import SignallingProtocol

/// What the I/O side must do after the room changed. Records come before the sends they
/// justify: a client hears about a join or a hang-up only once it is on disk.
public enum RoomAction: Sendable, Equatable {
    case record(AuditEvent)
    case send(EndpointID, ServerMessage)
    /// A newer connection took this endpoint's place: close it without treating it as a leave.
    case detach(EndpointID)
}

/// A closed room for one meeting: at most one worker and one citizen. A citizen waits until the
/// worker admits them (unless auto-admit); a participant whose connection drops is `away` for a
/// grace period, during which messages for them are queued and they may resume the same session.
/// Pure state: every method takes `now` and returns actions; nothing here does I/O.
public struct Room: Sendable {
    public enum Presence: Sendable, Equatable {
        case present(EndpointID)
        case away(since: Date)
    }

    public struct Member: Sendable, Equatable {
        public var participant: Participant
        public var presence: Presence
        public var joinedAt: Date
        /// Messages that arrived while away, replayed on resume.
        var pending: [ServerMessage] = []

        public var endpoint: EndpointID? {
            if case .present(let endpoint) = presence { endpoint } else { nil }
        }
    }

    public struct ActiveSession: Sendable, Equatable {
        public var id: SessionID
        public var startedAt: Date
        public var interruptions = 0
        public var interruptedSeconds: TimeInterval = 0
        /// Set while a participant is away; the interruption counts once both are back.
        public var interruptedSince: Date?
    }

    /// Replay is for the few messages of a short gap; beyond this the oldest are dropped (the
    /// ICE restart after a resume renegotiates anyway).
    static let maxPending = 256

    public let meeting: Meeting
    public private(set) var members: [Role: Member] = [:]
    public private(set) var session: ActiveSession?
    /// Once admitted, a citizen who drops and comes back does not wait again.
    public private(set) var citizenAdmitted: Bool
    public let graceSeconds: TimeInterval
    private let makeSessionID: @Sendable () -> SessionID

    public init(meeting: Meeting, autoAdmit: Bool = false, graceSeconds: TimeInterval = 60,
                makeSessionID: @escaping @Sendable () -> SessionID = { .random() }) {
        self.meeting = meeting
        self.citizenAdmitted = autoAdmit
        self.graceSeconds = graceSeconds
        self.makeSessionID = makeSessionID
    }

    public var isEmpty: Bool { members.isEmpty }

    public func member(_ endpoint: EndpointID) -> Member? {
        members.values.first { $0.endpoint == endpoint }
    }

    public var citizenIsWaiting: Bool { members[.citizen] != nil && !citizenAdmitted }

    /// The worker is the fixed offerer so the two sides never both send an offer.
    static func isInitiator(_ role: Role) -> Bool { role == .worker }

    static func other(than role: Role) -> Role { role == .worker ? .citizen : .worker }

    public mutating func join(
        endpoint: EndpointID, participant: Participant, iceServers: [IceServer], resumeToken: String? = nil, now: Date
    ) -> Result<[RoomAction], SignallingErrorCode> {
        guard participant.role.isCallParticipant else { return .failure(.roleNotAllowed) }
        guard members[participant.role] == nil else { return .failure(.roomFull) }
        guard now < meeting.inviteExpiresAt else { return .failure(.meetingEnded) }

        let role = participant.role
        let peers = members.values.map { PeerInfo(role: $0.participant.role) }
        members[role] = Member(participant: participant, presence: .present(endpoint), joinedAt: now)
        let waiting = role == .citizen && !citizenAdmitted
        var actions: [RoomAction] = [
            .record(.participantJoined(meeting: meeting.id, participant: participant, at: now)),
            .send(endpoint, .joined(Joined(meetingId: meeting.id, role: role, peers: peers, iceServers: iceServers, waiting: waiting,
                                             resumeToken: resumeToken))),
        ]
        if citizenIsWaiting, let worker = members[.worker]?.endpoint {
            actions.append(.send(worker, .peerWaiting(PeerInfo(role: .citizen))))
        }
        return .success(Self.recordsFirst(actions + startSessionIfReady(now: now)))
    }

    /// The worker lets the waiting citizen in.
    public mutating func admit(by endpoint: EndpointID, now: Date) -> Result<[RoomAction], SignallingErrorCode> {
        guard let worker = member(endpoint), worker.participant.role == .worker else { return .failure(.notAllowed) }
        guard let citizen = members[.citizen], !citizenAdmitted else { return .failure(.notWaiting) }
        citizenAdmitted = true
        var actions: [RoomAction] = [
            .record(.participantAdmitted(meeting: meeting.id, participant: citizen.participant, by: worker.participant.ref, at: now)),
        ]
        actions += sendOrQueue(to: .citizen, .admitted)
        return .success(Self.recordsFirst(actions + startSessionIfReady(now: now)))
    }

    /// A one-way note from the worker to the citizen, waiting or in the call.
    public mutating func note(from endpoint: EndpointID, text: String) -> Result<[RoomAction], SignallingErrorCode> {
        guard let sender = member(endpoint), sender.participant.role == .worker else { return .failure(.notAllowed) }
        guard members[.citizen] != nil else { return .failure(.noPeer) }
        return .success(sendOrQueue(to: .citizen, .note(RelayedNote(text: text, from: .worker))))
    }

    /// Offer, answer, candidates and chat go to the paired peer only, and only in a session.
    public mutating func relay(from endpoint: EndpointID, _ message: ClientMessage) -> Result<[RoomAction], SignallingErrorCode> {
        guard let sender = member(endpoint) else { return .failure(.notJoined) }
        let from = sender.participant.role
        guard session != nil else { return .failure(.noPeer) }
        let relayed: ServerMessage
        switch message {
        case .offer(let description): relayed = .offer(RelayedDescription(sdp: description.sdp, from: from))
        case .answer(let description): relayed = .answer(RelayedDescription(sdp: description.sdp, from: from))
        case .candidate(let body): relayed = .candidate(RelayedCandidate(candidate: body.candidate, from: from))
        case .chat(let chat): relayed = .chat(RelayedNote(text: chat.text, from: from))
        case .hello, .join, .leave, .ping, .admit, .note, .stats: return .failure(.invalidMessage)
        }
        return .success(sendOrQueue(to: Self.other(than: from), relayed))
    }

    /// The endpoint is gone for good (hang-up, protocol violation, shutdown, grace expired).
    public mutating func leave(endpoint: EndpointID, reason: EndReason, now: Date) -> [RoomAction] {
        guard let leaving = member(endpoint) else { return [] }
        return remove(leaving.participant.role, reason: reason, now: now)
    }

    /// The connection dropped without `leave`: keep the place for `graceSeconds`.
    public mutating func disconnect(endpoint: EndpointID, now: Date) -> [RoomAction] {
        guard let dropped = member(endpoint) else { return [] }
        let role = dropped.participant.role
        members[role]?.presence = .away(since: now)
        if session != nil, session?.interruptedSince == nil { session?.interruptedSince = now }
        guard let peer = members[Self.other(than: role)]?.endpoint else { return [] }
        return [.send(peer, .peerReconnecting(PeerInfo(role: role)))]
    }

    /// The same participant is back on a new connection (resume, or a reload of the page):
    /// same place, same session; queued messages follow `resumed`.
    public mutating func reattach(
        role: Role, endpoint: EndpointID, iceServers: [IceServer], resumeToken: String? = nil, now: Date
    ) -> Result<[RoomAction], SignallingErrorCode> {
        guard let returning = members[role] else { return .failure(.resumeFailed) }
        var actions: [RoomAction] = []
        if let stale = returning.endpoint {
            // The old socket is not dead yet as far as we know (e.g. Wi-Fi → 4G): this one wins.
            actions.append(.detach(stale))
        }
        members[role]?.presence = .present(endpoint)
        members[role]?.pending = []
        actions.append(.record(.participantReconnected(meeting: meeting.id, participant: returning.participant, at: now)))
        if let since = session?.interruptedSince, members.values.allSatisfy({ $0.endpoint != nil }) {
            session?.interruptions += 1
            session?.interruptedSeconds += now.timeIntervalSince(since)
            session?.interruptedSince = nil
        }
        let peers = members.values.filter { $0.participant.role != role }.map { PeerInfo(role: $0.participant.role) }
        actions.append(.send(endpoint, .resumed(Resumed(
            meetingId: meeting.id, role: role, sessionId: session?.id, peers: peers, iceServers: iceServers,
            replayed: returning.pending.count, waiting: role == .citizen && !citizenAdmitted, resumeToken: resumeToken))))
        actions += returning.pending.map { .send(endpoint, $0) }
        if let peer = members[Self.other(than: role)]?.endpoint {
            actions.append(.send(peer, .peerReconnected(PeerInfo(role: role))))
        }
        return .success(actions)
    }

    /// Participants away longer than the grace period have left; their session ends as lost.
    public mutating func expire(now: Date) -> [RoomAction] {
        var actions: [RoomAction] = []
        for member in members.values {
            if case .away(let since) = member.presence, now.timeIntervalSince(since) >= graceSeconds {
                actions += remove(member.participant.role, reason: .connectionLost, now: now)
            }
        }
        return actions
    }

    /// When the next `expire` has something to do.
    public var nextDeadline: Date? {
        members.values.compactMap { member -> Date? in
            if case .away(let since) = member.presence { since.addingTimeInterval(graceSeconds) } else { nil }
        }.min()
    }

    /// Gives up a place at once, present or away (server shutdown).
    public mutating func expireNow(role: Role, reason: EndReason, now: Date) -> [RoomAction] {
        remove(role, reason: reason, now: now)
    }

    private mutating func remove(_ role: Role, reason: EndReason, now: Date) -> [RoomAction] {
        guard let leaving = members.removeValue(forKey: role) else { return [] }
        var actions: [RoomAction] = [
            .record(.participantLeft(meeting: meeting.id, participant: leaving.participant, reason: reason, at: now)),
        ]
        if let ended = session {
            session = nil
            actions.append(.record(.sessionEnded(session: ended.id, meeting: meeting.id, reason: reason, at: now)))
        }
        actions += sendOrQueue(to: Self.other(than: role), .peerLeft(PeerLeft(role: role, reason: reason)))
        return actions
    }

    private mutating func startSessionIfReady(now: Date) -> [RoomAction] {
        guard session == nil, citizenAdmitted,
              let worker = members[.worker], let citizen = members[.citizen] else { return [] }
        let started = ActiveSession(id: makeSessionID(), startedAt: now)
        session = started
        var actions: [RoomAction] = [.record(.sessionStarted(
            session: started.id, meeting: meeting.id, participants: [worker.participant, citizen.participant], at: now))]
        for (me, other) in [(worker, citizen), (citizen, worker)] {
            actions += sendOrQueue(to: me.participant.role, .peerJoined(PeerJoined(
                role: other.participant.role, initiator: Self.isInitiator(me.participant.role), sessionId: started.id)))
        }
        return actions
    }

    /// Nothing is said to a client before the records that make it true (stable otherwise).
    static func recordsFirst(_ actions: [RoomAction]) -> [RoomAction] {
        let isRecord = { (action: RoomAction) -> Bool in if case .record = action { true } else { false } }
        return actions.filter(isRecord) + actions.filter { !isRecord($0) }
    }

    /// Present members get the message now; away members find it waiting when they resume.
    private mutating func sendOrQueue(to role: Role, _ message: ServerMessage) -> [RoomAction] {
        guard let target = members[role] else { return [] }
        if let endpoint = target.endpoint { return [.send(endpoint, message)] }
        members[role]?.pending.append(message)
        if let count = members[role]?.pending.count, count > Self.maxPending {
            members[role]?.pending.removeFirst(count - Self.maxPending)
        }
        return []
    }
}
