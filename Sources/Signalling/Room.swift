import Foundation
import SamtalerumCore
import SignallingProtocol

/// What the I/O side must do after the room changed. Records come before the sends they
/// justify: a client hears about a join or a hang-up only once it is on disk.
public enum RoomAction: Sendable, Equatable {
    case record(AuditEvent)
    case send(EndpointID, ServerMessage)
    /// A newer connection took this endpoint's place: close it (`replaced`) without treating it as a leave.
    case detach(EndpointID)
    /// A place was given up: whatever these connections held outside the room (relay
    /// allocations made with their TURN credentials) can go.
    case retire([EndpointID])
}

/// A closed room for one meeting: the worker, the citizen and at most `Meeting.maxGuests` guests,
/// each in their own place (`PeerID`). Everyone but the worker waits until the worker admits them
/// (unless auto-admit). The session is the worker meeting the citizen: it starts when both are in
/// and ends when either leaves; admitted guests join it and leave it without ending it. In a call
/// every pair of participants has its own media connection (a mesh), signalled through here.
/// A participant whose connection drops is `away` for a grace period, during which messages for
/// them are queued and they may resume the same session.
/// Pure state: every method takes `now` and returns actions; nothing here does I/O.
public struct Room: Sendable {
    public enum Presence: Sendable, Equatable {
        case present(EndpointID)
        case away(since: Date)
    }

    public struct Member: Sendable, Equatable {
        public var participant: Participant
        public var peer: PeerID
        public var presence: Presence
        public var joinedAt: Date
        /// Messages that arrived while away, replayed on resume.
        var pending: [ServerMessage] = []
        /// Every connection that held this place, newest last: a resumed browser may still use
        /// relay allocations made with an earlier connection's credentials.
        var connections: [EndpointID]

        public var endpoint: EndpointID? {
            if case .present(let endpoint) = presence { endpoint } else { nil }
        }

        var info: PeerInfo { PeerInfo(role: participant.role, peer: peer) }

        /// Taken over from a node that went away and not back yet: no connection of this node held it.
        var awaitsHandover: Bool { connections.isEmpty }
    }

    public struct ActiveSession: Sendable, Equatable {
        public var id: SessionID
        public var startedAt: Date
        /// Who is in the call: the worker, the citizen and the admitted guests present.
        public var peers: Set<PeerID>
        public var interruptions = 0
        public var interruptedSeconds: TimeInterval = 0
        /// Set while a participant is away; the interruption counts once everyone is back.
        public var interruptedSince: Date?
    }

    /// Replay is for the few messages of a short gap; beyond this the oldest are dropped (the
    /// ICE restart after a resume renegotiates anyway).
    static let maxPending = 256
    /// Connections remembered per place for `retire`; beyond this, the oldest credentials have
    /// long been replaced by the browser's ICE restarts.
    static let maxConnectionsRemembered = 32
    /// The worker plus the citizen plus the guests: beyond four, a browser mesh gets too heavy.
    public static let capacity = 2 + Meeting.maxGuests

    public let meeting: Meeting
    public private(set) var members: [PeerID: Member] = [:]
    public private(set) var session: ActiveSession?
    /// Who the worker let in. An admission is for one entry into one session: it goes when the
    /// participant leaves (a resume within grace is not leaving) and when the session ends, so a
    /// later entry with the same link waits again. The worker is never in here and never waits.
    public private(set) var admitted: Set<PeerID> = []
    public let autoAdmit: Bool
    public let graceSeconds: TimeInterval
    private let makeSessionID: @Sendable () -> SessionID

    public init(meeting: Meeting, autoAdmit: Bool = false, graceSeconds: TimeInterval = 60,
                makeSessionID: @escaping @Sendable () -> SessionID = { .random() }) {
        self.meeting = meeting
        self.autoAdmit = autoAdmit
        self.graceSeconds = graceSeconds
        self.makeSessionID = makeSessionID
    }

    /// A room rebuilt on another node from the record of its open session, after the node that
    /// held it went away: everyone who was in the call is away since `now` (each with the grace
    /// period to come back), admitted, and the same session goes on. The interruption began at the
    /// call's last known time and counts once everyone is back.
    public init(meeting: Meeting, takingOver session: SessionID, startedAt: Date, places: [PeerID: Participant],
                interruptedSince: Date, autoAdmit: Bool = false, graceSeconds: TimeInterval = 60, now: Date) {
        self.init(meeting: meeting, autoAdmit: autoAdmit, graceSeconds: graceSeconds)
        for (peer, participant) in places {
            members[peer] = Member(participant: participant, peer: peer, presence: .away(since: now), joinedAt: now, connections: [])
        }
        admitted = Set(places.keys).subtracting([.worker])
        self.session = ActiveSession(id: session, startedAt: startedAt, peers: Set(places.keys), interruptedSince: interruptedSince)
    }

    public var isEmpty: Bool { members.isEmpty }

    public func member(_ endpoint: EndpointID) -> Member? {
        members.values.first { $0.endpoint == endpoint }
    }

    public func isWaiting(_ peer: PeerID) -> Bool { members[peer] != nil && !isAdmitted(peer) }

    func isAdmitted(_ peer: PeerID) -> Bool { autoAdmit || peer == .worker || admitted.contains(peer) }

    public mutating func join(
        endpoint: EndpointID, participant: Participant, peer: PeerID, iceServers: [IceServer], resumeToken: String? = nil, now: Date
    ) -> Result<[RoomAction], SignallingErrorCode> {
        guard participant.role.isCallParticipant else { return .failure(.roleNotAllowed) }
        guard members[peer] != nil || members.count < Self.capacity else { return .failure(.roomFull) }
        guard now < meeting.inviteExpiresAt else { return .failure(.meetingEnded) }

        // The same credential entering anew (a reopened tab, a second device) takes the place over:
        // the previous holder, present or away, leaves, and the newcomer enters like anyone new.
        var actions: [RoomAction] = []
        if let previous = members[peer] {
            actions += remove(peer, reason: .connectionLost, now: now)
            if let stale = previous.endpoint { actions.append(.detach(stale)) }
        }
        let others = members.values.sorted { $0.peer < $1.peer }.map(\.info)
        let joining = Member(participant: participant, peer: peer, presence: .present(endpoint), joinedAt: now, connections: [endpoint])
        members[peer] = joining
        actions += [
            .record(.participantJoined(meeting: meeting.id, participant: participant, at: now)),
            .send(endpoint, .joined(Joined(meetingId: meeting.id, role: participant.role, peer: peer, peers: others,
                                             iceServers: iceServers, waiting: !isAdmitted(peer), resumeToken: resumeToken))),
        ]
        if let worker = members[.worker]?.endpoint {
            let waiting = peer == .worker ? members.keys.filter(isWaiting).sorted() : isWaiting(peer) ? [peer] : []
            actions += waiting.compactMap { members[$0].map { .send(worker, .peerWaiting($0.info)) } }
        }
        return .success(Self.recordsFirst(actions + startOrEnterSession(peer, now: now)))
    }

    /// The worker lets a waiting participant in: `peer`, or else the citizen, or else the only one waiting.
    public mutating func admit(_ peer: PeerID? = nil, by endpoint: EndpointID, now: Date) -> Result<[RoomAction], SignallingErrorCode> {
        guard let worker = member(endpoint), worker.peer == .worker else { return .failure(.notAllowed) }
        let waiting = members.keys.filter(isWaiting)
        guard let target = peer ?? (isWaiting(.citizen) ? .citizen : waiting.count == 1 ? waiting.first : nil),
              isWaiting(target), let admittedMember = members[target] else { return .failure(.notWaiting) }
        admitted.insert(target)
        var actions: [RoomAction] = [
            .record(.participantAdmitted(meeting: meeting.id, participant: admittedMember.participant, by: worker.participant.ref, at: now)),
        ]
        actions += sendOrQueue(to: target, .admitted)
        return .success(Self.recordsFirst(actions + startOrEnterSession(target, now: now)))
    }

    /// A one-way note from the worker to the citizen, waiting or in the call.
    public mutating func note(from endpoint: EndpointID, text: String) -> Result<[RoomAction], SignallingErrorCode> {
        guard let sender = member(endpoint), sender.peer == .worker else { return .failure(.notAllowed) }
        guard members[.citizen] != nil else { return .failure(.noPeer) }
        return .success(sendOrQueue(to: .citizen, .note(RelayedNote(text: text, from: .worker, peer: .worker))))
    }

    /// Offer, answer and candidates go to one participant of the same call (`to`, or the only
    /// other one); chat goes to everyone else in the call. Nothing crosses outside a session.
    public mutating func relay(from endpoint: EndpointID, _ message: ClientMessage) -> Result<[RoomAction], SignallingErrorCode> {
        guard let sender = member(endpoint) else { return .failure(.notJoined) }
        guard let session, session.peers.contains(sender.peer) else { return .failure(.noPeer) }
        let others = session.peers.subtracting([sender.peer])
        let from = sender.participant.role
        func recipient(_ to: PeerID?) -> Result<PeerID, SignallingErrorCode> {
            if let to { return others.contains(to) ? .success(to) : .failure(.noPeer) }
            return others.count == 1 ? .success(others.first!) : .failure(.invalidMessage)
        }
        let relayed: ServerMessage
        let to: Result<PeerID, SignallingErrorCode>
        switch message {
        case .offer(let description):
            relayed = .offer(RelayedDescription(sdp: description.sdp, from: from, peer: sender.peer))
            to = recipient(description.to)
        case .answer(let description):
            relayed = .answer(RelayedDescription(sdp: description.sdp, from: from, peer: sender.peer))
            to = recipient(description.to)
        case .candidate(let body):
            relayed = .candidate(RelayedCandidate(candidate: body.candidate, from: from, peer: sender.peer))
            to = recipient(body.to)
        case .chat(let chat):
            let line = ServerMessage.chat(RelayedNote(text: chat.text, from: from, peer: sender.peer))
            return .success(others.sorted().flatMap { sendOrQueue(to: $0, line) })
        case .hello, .join, .leave, .ping, .admit, .note, .stats:
            return .failure(.invalidMessage)
        }
        return to.map { sendOrQueue(to: $0, relayed) }
    }

    /// The endpoint is gone for good (hang-up, protocol violation, shutdown, grace expired).
    public mutating func leave(endpoint: EndpointID, reason: EndReason, now: Date) -> [RoomAction] {
        guard let leaving = member(endpoint) else { return [] }
        return remove(leaving.peer, reason: reason, now: now)
    }

    /// The connection dropped without `leave`: keep the place for `graceSeconds`.
    public mutating func disconnect(endpoint: EndpointID, now: Date) -> [RoomAction] {
        guard let dropped = member(endpoint) else { return [] }
        members[dropped.peer]?.presence = .away(since: now)
        if session != nil, session?.interruptedSince == nil { session?.interruptedSince = now }
        return presentEndpoints(except: dropped.peer).map { .send($0, .peerReconnecting(dropped.info)) }
    }

    /// The same participant is back on a new connection (resume, or a reload of the page):
    /// same place, same session; queued messages follow `resumed`.
    public mutating func reattach(
        peer: PeerID, endpoint: EndpointID, iceServers: [IceServer], resumeToken: String? = nil, now: Date
    ) -> Result<[RoomAction], SignallingErrorCode> {
        guard let returning = members[peer] else { return .failure(.resumeFailed) }
        var actions: [RoomAction] = []
        if let stale = returning.endpoint {
            // The old socket is not dead yet as far as we know (e.g. Wi-Fi → 4G): this one wins.
            actions.append(.detach(stale))
        }
        members[peer]?.presence = .present(endpoint)
        members[peer]?.pending = []
        members[peer]?.connections = Array((returning.connections + [endpoint]).suffix(Self.maxConnectionsRemembered))
        actions.append(.record(.participantReconnected(meeting: meeting.id, participant: returning.participant, at: now)))
        if let since = session?.interruptedSince, members.values.allSatisfy({ $0.endpoint != nil }) {
            session?.interruptions += 1
            session?.interruptedSeconds += now.timeIntervalSince(since)
            session?.interruptedSince = nil
        }
        let others = members.values.filter { $0.peer != peer }.sorted { $0.peer < $1.peer }.map(\.info)
        actions.append(.send(endpoint, .resumed(Resumed(
            meetingId: meeting.id, role: returning.participant.role, peer: peer, sessionId: session?.id, peers: others,
            iceServers: iceServers, replayed: returning.pending.count, waiting: !isAdmitted(peer), resumeToken: resumeToken))))
        actions += returning.pending.map { .send(endpoint, $0) }
        actions += presentEndpoints(except: peer).map { .send($0, .peerReconnected(returning.info)) }
        return .success(actions)
    }

    /// Participants away longer than the grace period have left; a session they held ends as lost.
    public mutating func expire(now: Date) -> [RoomAction] {
        var actions: [RoomAction] = []
        for member in members.values.sorted(by: { $0.peer < $1.peer }) {
            if case .away(let since) = member.presence, now.timeIntervalSince(since) >= graceSeconds {
                actions += remove(member.peer, reason: .connectionLost, now: now)
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
    public mutating func expireNow(peer: PeerID, reason: EndReason, now: Date) -> [RoomAction] {
        remove(peer, reason: reason, now: now)
    }

    private mutating func remove(_ peer: PeerID, reason: EndReason, now: Date) -> [RoomAction] {
        guard let leaving = members.removeValue(forKey: peer) else { return [] }
        admitted.remove(peer)
        var actions: [RoomAction] = [
            .record(.participantLeft(meeting: meeting.id, participant: leaving.participant, reason: reason, at: now)),
        ]
        var sessionEnded = false
        if let current = session, current.peers.contains(peer) {
            if peer == .worker || peer == .citizen {
                session = nil
                sessionEnded = true
                actions.append(.record(.sessionEnded(session: current.id, meeting: meeting.id, reason: reason, at: now)))
            } else {
                session?.peers.remove(peer)
            }
        }
        let left = ServerMessage.peerLeft(PeerLeft(role: leaving.participant.role, peer: peer, reason: reason))
        for other in members.keys.sorted() { actions += sendOrQueue(to: other, left) }
        if sessionEnded {
            // Admission was for that session: whoever stays waits for the worker again.
            admitted = []
            if let worker = members[.worker]?.endpoint {
                actions += members.keys.filter(isWaiting).sorted().compactMap { members[$0].map { .send(worker, .peerWaiting($0.info)) } }
            }
        }
        return actions + [.retire(leaving.connections)]
    }

    /// Starts the session once the worker and the admitted citizen are both in, with every admitted
    /// guest; or brings a newly admitted guest into the running one.
    private mutating func startOrEnterSession(_ peer: PeerID, now: Date) -> [RoomAction] {
        guard isAdmitted(peer) else { return [] }
        if var current = session {
            guard !current.peers.contains(peer), let entering = members[peer] else { return [] }
            let already = current.peers.sorted()
            current.peers.insert(peer)
            session = current
            return [.record(.sessionJoined(session: current.id, meeting: meeting.id, participant: entering.participant, at: now))]
                + already.flatMap { pair(peer, $0, session: current.id) }
        }
        guard members[.worker] != nil, members[.citizen] != nil, isAdmitted(.citizen) else { return [] }
        let peers = members.keys.filter(isAdmitted).sorted()
        let started = ActiveSession(id: makeSessionID(), startedAt: now, peers: Set(peers))
        session = started
        var actions: [RoomAction] = [.record(.sessionStarted(
            session: started.id, meeting: meeting.id, participants: peers.compactMap { members[$0]?.participant }, at: now))]
        for (index, a) in peers.enumerated() {
            for b in peers[(index + 1)...] { actions += pair(a, b, session: started.id) }
        }
        return actions
    }

    /// Tells two participants of a call about each other; the one first in `PeerID` order offers.
    private mutating func pair(_ a: PeerID, _ b: PeerID, session: SessionID) -> [RoomAction] {
        guard let first = members[a], let second = members[b] else { return [] }
        return sendOrQueue(to: a, .peerJoined(PeerJoined(role: second.participant.role, peer: b, initiator: a < b, sessionId: session)))
            + sendOrQueue(to: b, .peerJoined(PeerJoined(role: first.participant.role, peer: a, initiator: b < a, sessionId: session)))
    }

    private func presentEndpoints(except peer: PeerID) -> [EndpointID] {
        members.values.filter { $0.peer != peer }.sorted { $0.peer < $1.peer }.compactMap(\.endpoint)
    }

    /// Nothing is said to a client before the records that make it true (stable otherwise).
    static func recordsFirst(_ actions: [RoomAction]) -> [RoomAction] {
        let isRecord = { (action: RoomAction) -> Bool in if case .record = action { true } else { false } }
        return actions.filter(isRecord) + actions.filter { !isRecord($0) }
    }

    /// Present members get the message now; away members find it waiting when they resume.
    private mutating func sendOrQueue(to peer: PeerID, _ message: ServerMessage) -> [RoomAction] {
        guard let target = members[peer] else { return [] }
        if let endpoint = target.endpoint { return [.send(endpoint, message)] }
        members[peer]?.pending.append(message)
        if let count = members[peer]?.pending.count, count > Self.maxPending {
            members[peer]?.pending.removeFirst(count - Self.maxPending)
        }
        return []
    }
}
