import Foundation
import Identity
import Logging
import SamtalerumCore
import SignallingProtocol

/// What a connection's writer drains. A bounded queue per endpoint keeps one slow client from
/// holding up its room or the registry.
public enum Outgoing: Sendable, Equatable {
    case message(ServerMessage)
    case close(CloseCode, reason: String)
}

public typealias Outbox = AsyncStream<Outgoing>.Continuation

/// Gives each joining endpoint its ICE servers (with its own short-lived TURN credential).
public typealias IceServerProvider = @Sendable (_ endpoint: EndpointID, _ meeting: MeetingID) -> [IceServer]

/// Ends what these connections' TURN credentials hold in the relay: their holder left the call.
public typealias RelayRelease = @Sendable (_ endpoints: [EndpointID]) -> Void

public struct RoomPolicy: Sendable {
    /// Let an invited citizen straight in instead of into the waiting room.
    public var autoAdmit: Bool
    /// How long a dropped participant keeps their place (and the session goes on).
    public var graceSeconds: TimeInterval

    public init(autoAdmit: Bool = false, graceSeconds: TimeInterval = 60) {
        self.autoAdmit = autoAdmit
        self.graceSeconds = graceSeconds
    }

    /// How long after a call's last known time another node may still take it over (and after
    /// which, with its node silent as long, the call is closed as lost): the grace period plus
    /// the store's last-known-time write interval and a statistics period, twice over.
    public var handoverSilence: TimeInterval { graceSeconds + 15 }
}

/// All live rooms. Owns the mapping from endpoints to rooms and performs the rooms' actions:
/// awaits each audit record, then delivers messages to outboxes.
public actor RoomRegistry {
    private struct Connection {
        var outbox: Outbox
        /// Told once the outbox overflowed: the client stopped reading (`slow-consumer`).
        var overflowed: @Sendable () -> Void
        var meeting: MeetingID?
        /// The id of the resume ticket this connection was given last.
        var ticket: String?
    }

    /// A place a resume ticket (by its id) takes back. The tickets are signed, so any node can
    /// read them; the node holding the room accepts only the latest one it issued per place.
    private struct KeptPlace {
        var meeting: MeetingID
        var peer: PeerID
    }

    private var rooms: [MeetingID: Room] = [:]
    /// Rooms whose actions are being performed, with the batches queued behind them. The actor
    /// is re-entrant at every awaited record, so without this a later change's messages (a
    /// `peer-waiting`) could overtake an earlier one's (the `joined` it follows).
    private var performing: [MeetingID: [CheckedContinuation<Void, Never>]] = [:]
    private var connections: [EndpointID: Connection] = [:]
    private var tickets: [String: KeptPlace] = [:]
    /// Meetings being taken over from another node, with the resumes waiting for that.
    private var takeovers: [MeetingID: [CheckedContinuation<Void, Never>]] = [:]
    /// Joins looking a meeting up right now, and how often `evict` ran for it meanwhile; only
    /// while lookups are in flight, so it stays as small as they are.
    private var lookups: [MeetingID: Int] = [:]
    private var evictionsDuringLookup: [MeetingID: Int] = [:]
    private var lastStats: [EndpointID: CallStats] = [:]
    private var quality = QualityBoard()
    /// Session starts, for the duration metric when they end.
    private var sessionStarts: [SessionID: Date] = [:]
    private let directory: any MeetingDirectory
    private let recorder: any AuditRecorder
    private let iceServers: IceServerProvider
    private let releaseRelay: RelayRelease
    private let policy: RoomPolicy
    private let tokens: TokenAuthority
    /// This node's name, for the record of a call taken over from another node.
    public let node: String
    private let clock: WallClock
    private let logger: Logger

    public init(
        directory: any MeetingDirectory, recorder: any AuditRecorder, iceServers: @escaping IceServerProvider,
        releaseRelay: @escaping RelayRelease = { _ in }, tokens: TokenAuthority, node: String = "local",
        policy: RoomPolicy = RoomPolicy(), clock: WallClock = .system, logger: Logger = Logger(label: "samtalerum.signalling")
    ) {
        self.directory = directory
        self.recorder = recorder
        self.iceServers = iceServers
        self.releaseRelay = releaseRelay
        self.tokens = tokens
        self.node = node
        self.policy = policy
        self.clock = clock
        self.logger = logger
    }

    public func connect(_ endpoint: EndpointID, outbox: Outbox, overflowed: @escaping @Sendable () -> Void = {}) {
        connections[endpoint] = Connection(outbox: outbox, overflowed: overflowed)
    }

    /// Puts the endpoint into the meeting's room if its credential allows it.
    public func join(_ endpoint: EndpointID, credential: Credential, request: Join) async throws(SignallingErrorCode) {
        guard connections[endpoint] != nil else { return }
        guard connections[endpoint]?.meeting == nil else { throw .alreadyJoined }
        let (meetingID, participantOf) = try Self.admission(credential: credential, request: request)
        let meeting = try await currentMeeting(meetingID)
        guard meeting.cancelledAt == nil else { throw .meetingCancelled }
        let (participant, peer) = try participantOf(meeting)
        let ticket = await signTicket(meeting: meeting, peer: peer, role: participant.role)
        // The lookup suspended: the endpoint may have gone, or joined elsewhere, meanwhile.
        guard connections[endpoint] != nil, connections[endpoint]?.meeting == nil else { return }

        var room = rooms[meeting.id] ?? Room(meeting: meeting, autoAdmit: policy.autoAdmit, graceSeconds: policy.graceSeconds)
        if room.members[peer] != nil {
            // A takeover: the previous holder's resume tickets must not win the place back.
            tickets = tickets.filter { $0.value.meeting != meeting.id || $0.value.peer != peer }
        }
        keep(ticket.id, for: endpoint, meeting: meeting.id, peer: peer)
        let actions: [RoomAction]
        do {
            actions = try room.join(endpoint: endpoint, participant: participant, peer: peer,
                                    iceServers: iceServers(endpoint, meeting.id), resumeToken: ticket.token, now: clock.now()).get()
        } catch {
            revokeTicket(of: endpoint)
            throw error
        }
        rooms[meeting.id] = room
        connections[endpoint]?.meeting = meeting.id
        await perform(actions, in: meeting.id)
    }

    /// Whether `token` would take a kept place back for this credential. An invite that expired
    /// during the call still names its place; the resume ticket, not the invite, says how long
    /// the place is kept.
    public func canResume(credential: Credential, token: String) async -> Bool {
        guard let ticket = try? await tokens.verifyResumeTicket(token), Self.credential(credential, names: ticket) else { return false }
        // No room here: the call may be taken over from another node (`resume` finds out).
        guard let room = rooms[ticket.meetingId] else { return true }
        return room.members[ticket.peer] != nil
    }

    /// Puts a returning participant back in their place, same session, if the token and the
    /// credential both match. A ticket for a meeting this node holds no room for may come from a
    /// node that went away: the room is rebuilt from the record of its open session.
    public func resume(_ endpoint: EndpointID, credential: Credential, token: String) async throws(SignallingErrorCode) {
        guard connections[endpoint]?.meeting == nil else { throw .alreadyJoined }
        let ticket: ResumeTicket
        do { ticket = try await tokens.verifyResumeTicket(token) } catch { throw .resumeFailed }
        guard Self.credential(credential, names: ticket) else { throw .resumeFailed }
        if rooms[ticket.meetingId] == nil { try await takeOver(ticket.meetingId) }
        guard let meeting = rooms[ticket.meetingId]?.meeting else { throw .resumeFailed }
        let fresh = await signTicket(meeting: meeting, peer: ticket.peer, role: ticket.role)
        // Everything below runs without suspending: the checks hold for the change they allow.
        guard connections[endpoint] != nil, connections[endpoint]?.meeting == nil else { return }
        guard var room = rooms[ticket.meetingId], let member = room.members[ticket.peer] else { throw .resumeFailed }
        // The latest ticket this node issued for the place; or, for a place taken over from a node
        // that went away and not back yet, a ticket that node issued (this one cannot tell which
        // of them was its latest).
        if let kept = tickets[ticket.id] {
            guard kept.meeting == ticket.meetingId, kept.peer == ticket.peer else { throw .resumeFailed }
        } else {
            guard member.awaitsHandover else { throw .resumeFailed }
        }
        if case .staff(let staff) = credential, staff.subject != member.participant.ref { throw .resumeFailed }
        tickets[ticket.id] = nil
        keep(fresh.id, for: endpoint, meeting: ticket.meetingId, peer: ticket.peer)
        let actions = try room.reattach(peer: ticket.peer, endpoint: endpoint, iceServers: iceServers(endpoint, ticket.meetingId),
                                        resumeToken: fresh.token, now: clock.now()).get()
        rooms[ticket.meetingId] = room
        connections[endpoint]?.meeting = ticket.meetingId
        await perform(actions, in: ticket.meetingId)
    }

    /// Rebuilds the room of a call whose node went away, from the shared record of its open
    /// session, and records the move. One takeover per meeting at a time; the resumes that
    /// arrive meanwhile wait for it. Fails (`resume-failed`) when the record holds no open
    /// session, its last known time is too old, or it was closed meanwhile.
    private func takeOver(_ id: MeetingID) async throws(SignallingErrorCode) {
        if takeovers[id] != nil {
            await withCheckedContinuation { takeovers[id, default: []].append($0) }
            return
        }
        takeovers[id] = []
        defer {
            for waiting in takeovers.removeValue(forKey: id) ?? [] { waiting.resume() }
        }
        let meeting: Meeting
        do { meeting = try await currentMeeting(id) } catch .internal { throw .internal } catch { throw .resumeFailed }
        let open: OpenSession?
        do { open = try await directory.openSession(of: id) } catch {
            logger.error("open session lookup failed", metadata: ["meeting": "\(id)", "error": "\(error)"])
            throw .internal
        }
        let now = clock.now()
        guard meeting.cancelledAt == nil, rooms[id] == nil, let open, open.hostNode != node,
              now.timeIntervalSince(open.lastKnownAt) <= policy.handoverSilence else { throw .resumeFailed }
        var places: [PeerID: Participant] = [:]
        for participant in open.participants {
            switch participant.role {
            case .worker: places[.worker] = participant
            case .citizen: places[.citizen] = participant
            default:
                if let peer = meeting.guests.first(where: { $0.value == participant.ref })?.key { places[peer] = participant }
            }
        }
        guard places[.worker] != nil, places[.citizen] != nil else { throw .resumeFailed }
        do {
            try await recorder.record(.sessionMoved(session: open.id, meeting: id, from: open.hostNode, to: node, at: now))
        } catch {
            logger.warning("session not taken over", metadata: ["session": "\(open.id)", "error": "\(error)"])
            throw .resumeFailed
        }
        // A join may have opened a room while the move was recorded: that room stays.
        guard rooms[id] == nil else { return }
        rooms[id] = Room(meeting: meeting, takingOver: open.id, startedAt: open.startedAt, places: places,
                         interruptedSince: open.lastKnownAt, autoAdmit: policy.autoAdmit, graceSeconds: policy.graceSeconds, now: now)
        quality.sessionStarted(meeting: id, peers: Set(places.keys), at: now)
        sessionStarts[open.id] = open.startedAt
    }

    private static func credential(_ credential: Credential, names ticket: ResumeTicket) -> Bool {
        switch credential {
        case .invite(let invite): invite.meetingId == ticket.meetingId && invite.peer == ticket.peer
        case .staff: ticket.peer == .worker
        }
    }

    /// A signed resume ticket for the place, valid while the meeting's invites are (and the grace
    /// period after): how long the place is really kept is the room's, or the record's, to say.
    private func signTicket(meeting: Meeting, peer: PeerID, role: Role) async -> (id: String, token: String?) {
        let ticket = ResumeTicket(meetingId: meeting.id, peer: peer, role: role,
                                  expiresAt: max(meeting.inviteExpiresAt, clock.now()).addingTimeInterval(policy.graceSeconds))
        do {
            return (ticket.id, try await tokens.issueResumeTicket(ticket))
        } catch {
            logger.error("resume ticket not signed", metadata: ["error": "\(error)"])
            return (ticket.id, nil)
        }
    }

    private func keep(_ ticket: String, for endpoint: EndpointID, meeting: MeetingID, peer: PeerID) {
        tickets[ticket] = KeptPlace(meeting: meeting, peer: peer)
        connections[endpoint]?.ticket = ticket
    }

    private func revokeTicket(of endpoint: EndpointID) {
        if let ticket = connections[endpoint]?.ticket { tickets[ticket] = nil }
        connections[endpoint]?.ticket = nil
    }

    public func admit(_ peer: PeerID?, by endpoint: EndpointID) async throws(SignallingErrorCode) {
        try await mutateRoom(of: endpoint) { room, now throws(SignallingErrorCode) in try room.admit(peer, by: endpoint, now: now).get() }
    }

    public func note(from endpoint: EndpointID, text: String) async throws(SignallingErrorCode) {
        try await mutateRoom(of: endpoint) { room, _ throws(SignallingErrorCode) in try room.note(from: endpoint, text: text).get() }
    }

    /// A participant's view of the media it receives: feeds the quality estimate, which is pushed
    /// to both sides when its class or hint changes.
    public func stats(from endpoint: EndpointID, _ stats: CallStats) async throws(SignallingErrorCode) {
        guard let meeting = connections[endpoint]?.meeting, let room = rooms[meeting],
              let member = room.member(endpoint) else { throw .notJoined }
        lastStats[endpoint] = stats
        let now = clock.now()
        recorder.noteActivity(meeting: meeting, at: now)
        quality.ingest(stats, meeting: meeting, peer: member.peer, now: now)
        await perform(quality.updates(for: room, now: now), in: meeting)
    }

    /// Ends the places of everyone away longer than the grace period, and notices media that
    /// stopped reporting (quality `lost`). Called every second by `RoomSweeper`.
    public func expire() async {
        let now = clock.now()
        // Each room is read afresh: the awaits below let other calls change the rooms meanwhile.
        for (index, id) in Array(rooms.keys).enumerated() {
            // Thousands of rooms: let the messages waiting for this actor in between.
            if index % Self.sweepSlice == Self.sweepSlice - 1 { await Task.yield() }
            if var room = rooms[id], room.nextDeadline.map({ $0 <= now }) ?? false {
                let actions = room.expire(now: now)
                store(room, id)
                await perform(actions, in: id)
            }
            if let current = rooms[id], quality.hasQuietParticipant(in: current, now: now) {
                await perform(quality.updates(for: current, now: now), in: id)
            }
        }
    }

    static let sweepSlice = 128

    /// Keeps a room while anyone holds a place in it.
    private func store(_ room: Room, _ id: MeetingID) {
        if room.isEmpty {
            rooms[id] = nil
            quality.forget(meeting: id)
        } else {
            rooms[id] = room
        }
    }

    private func mutateRoom(
        of endpoint: EndpointID, _ change: (inout Room, Date) throws(SignallingErrorCode) -> [RoomAction]
    ) async throws(SignallingErrorCode) {
        guard let meeting = connections[endpoint]?.meeting, var room = rooms[meeting] else { throw .notJoined }
        let actions = try change(&room, clock.now())
        rooms[meeting] = room
        await perform(actions, in: meeting)
    }

    /// The meeting as the directory has it, read again if `evict` ran meanwhile: what the first
    /// read found (not yet cancelled, the old invite id) may already be out of date.
    private func currentMeeting(_ id: MeetingID) async throws(SignallingErrorCode) -> Meeting {
        lookups[id, default: 0] += 1
        defer {
            lookups[id, default: 1] -= 1
            if lookups[id] == 0 {
                lookups[id] = nil
                evictionsDuringLookup[id] = nil
            }
        }
        while true {
            let seen = evictionsDuringLookup[id, default: 0]
            let meeting: Meeting
            do {
                guard let found = try await directory.meeting(id: id) else { throw SignallingErrorCode.meetingNotFound }
                meeting = found
            } catch let code as SignallingErrorCode {
                throw code
            } catch {
                logger.error("meeting lookup failed", metadata: ["error": "\(error)"])
                throw .internal
            }
            if evictionsDuringLookup[id, default: 0] == seen { return meeting }
        }
    }

    /// Which meeting a credential may enter, and as whom, in which place.
    static func admission(
        credential: Credential, request: Join
    ) throws(SignallingErrorCode) -> (MeetingID, (Meeting) throws(SignallingErrorCode) -> (Participant, PeerID)) {
        switch credential {
        case .invite(let invite):
            if let asked = request.meetingId, asked != invite.meetingId { throw .notInvited }
            return (invite.meetingId, { meeting throws(SignallingErrorCode) in
                if invite.peer == .citizen {
                    if let current = meeting.citizenInviteId, current != invite.inviteId { throw .inviteRevoked }
                    return (Participant(role: .citizen, ref: meeting.citizenRef), .citizen)
                }
                guard invite.role == .guest, let guest = meeting.guests[invite.peer] else { throw .notInvited }
                return (Participant(role: .guest, ref: guest), invite.peer)
            })
        case .staff(let staff):
            guard staff.role == .worker else { throw .roleNotAllowed }
            guard let asked = request.meetingId else { throw .invalidMessage }
            return (asked, { meeting throws(SignallingErrorCode) in
                guard meeting.workerRef == staff.subject else { throw .notInvited }
                return (Participant(role: .worker, ref: staff.subject), .worker)
            })
        }
    }

    public func relay(from endpoint: EndpointID, _ message: ClientMessage) async throws(SignallingErrorCode) {
        try await mutateRoom(of: endpoint) { room, _ throws(SignallingErrorCode) in try room.relay(from: endpoint, message).get() }
    }

    /// The endpoint is gone. A lost connection keeps its place for the grace period (resume);
    /// anything else leaves at once. Idempotent: a hang-up then the socket closing records once.
    public func disconnect(_ endpoint: EndpointID, reason: EndReason) async {
        guard let connection = connections.removeValue(forKey: endpoint) else { return }
        lastStats[endpoint] = nil
        let keepsPlace = reason == .connectionLost && policy.graceSeconds > 0
        if !keepsPlace, let ticket = connection.ticket { tickets[ticket] = nil }
        guard let meetingID = connection.meeting, var room = rooms[meetingID] else { return }
        let actions = keepsPlace ? room.disconnect(endpoint: endpoint, now: clock.now())
                                 : room.leave(endpoint: endpoint, reason: reason, now: clock.now())
        store(room, meetingID)
        await perform(actions, in: meetingID)
    }

    /// The meeting was cancelled (every place) or the citizen's link replaced (`peers`): whoever
    /// holds those places is told `code` and removed now, and no resume ticket brings them back.
    public func evict(meeting: MeetingID, peers: Set<PeerID>? = nil, code: SignallingErrorCode, reason: EndReason) async {
        if lookups[meeting] != nil { evictionsDuringLookup[meeting, default: 0] += 1 }
        let affected = { (peer: PeerID) in peers?.contains(peer) ?? true }
        tickets = tickets.filter { $0.value.meeting != meeting || !affected($0.value.peer) }
        guard let room = rooms[meeting] else { return }
        for member in room.members.values.sorted(by: { $0.peer < $1.peer }) where affected(member.peer) {
            if let endpoint = member.endpoint, let connection = connections[endpoint] {
                SignallingMetrics.error(code)
                connection.outbox.yield(.message(.error(ErrorMessage(code: code, message: reason.rawValue))))
                connection.outbox.yield(.close(code.closeCode, reason: code.rawValue))
                await disconnect(endpoint, reason: reason)
            } else if var current = rooms[meeting], current.members[member.peer] != nil {
                let actions = current.expireNow(peer: member.peer, reason: reason, now: clock.now())
                store(current, meeting)
                await perform(actions, in: meeting)
            }
        }
    }

    /// Orderly stop: every session ends as `server_shutdown`, every client is told, and
    /// places kept for absent participants are given up.
    public func shutdown() async {
        for (endpoint, connection) in connections {
            connection.outbox.yield(.close(.goingAway, reason: "server shutting down"))
            await disconnect(endpoint, reason: .serverShutdown)
        }
        let now = clock.now()
        for id in Array(rooms.keys) {
            guard var room = rooms[id] else { continue }
            var actions: [RoomAction] = []
            for peer in room.members.keys.sorted() {
                actions += room.expireNow(peer: peer, reason: .serverShutdown, now: now)
            }
            rooms[id] = nil
            await perform(actions, in: id)
            quality.forget(meeting: id)
        }
        tickets = [:]
    }

    public func send(_ endpoint: EndpointID, _ message: ServerMessage) {
        deliver(.message(message), to: endpoint)
    }

    public var snapshot: [RoomSnapshot] {
        let now = clock.now()
        return rooms.values.map { room in
            RoomSnapshot(
                meetingId: room.meeting.id, sessionId: room.session?.id, sessionStartedAt: room.session?.startedAt,
                interruptions: room.session?.interruptions ?? 0,
                participants: room.members.values.sorted { $0.peer < $1.peer }.map { member in
                    ParticipantSnapshot(role: member.participant.role, peer: member.peer, endpoint: member.endpoint,
                                        away: member.endpoint == nil, waiting: room.isWaiting(member.peer),
                                        stats: member.endpoint.flatMap { lastStats[$0] },
                                        quality: quality.report(meeting: room.meeting.id, peer: member.peer, now: now))
                })
        }
    }

    public var connectionCount: Int { connections.count }

    /// Performs one room's batches one at a time, in the order the room produced them; returns
    /// when this batch's records are committed and its messages handed to the outboxes.
    private func perform(_ actions: [RoomAction], in meeting: MeetingID) async {
        guard !actions.isEmpty else { return }
        if performing[meeting] != nil {
            await withCheckedContinuation { performing[meeting, default: []].append($0) }
        } else {
            performing[meeting] = []
        }
        await performInOrder(actions)
        if var queue = performing[meeting], !queue.isEmpty {
            // The turn passes straight to the next batch; the room stays marked as performing.
            let next = queue.removeFirst()
            performing[meeting] = queue
            next.resume()
        } else {
            performing[meeting] = nil
        }
    }

    private func performInOrder(_ actions: [RoomAction]) async {
        for action in actions {
            switch action {
            case .record(let event):
                do {
                    if case .sessionEnded(let session, let meeting, _, let at) = event {
                        if let summary = quality.sessionEnded(meeting: meeting, at: at) {
                            // The end below is recorded (or kept for later by the store) even if this fails.
                            do {
                                try await recorder.record(.qualitySummary(session: session, meeting: meeting, summary: summary, at: at))
                            } catch {
                                logger.error("quality summary not recorded", metadata: ["error": "\(error)"])
                            }
                        }
                        if let start = sessionStarts.removeValue(forKey: session) {
                            SignallingMetrics.sessionDuration.recordSeconds(at.timeIntervalSince(start))
                        }
                    }
                    try await recorder.record(event)
                    switch event {
                    case .sessionStarted(let session, let meeting, _, let at):
                        quality.sessionStarted(meeting: meeting, peers: rooms[meeting]?.session?.peers ?? [.worker, .citizen], at: at)
                        sessionStarts[session] = at
                    case .sessionJoined(_, let meeting, _, let at):
                        for peer in rooms[meeting]?.session?.peers ?? [] { quality.entered(meeting: meeting, peer: peer, at: at) }
                    case .participantReconnected(let meeting, _, _):
                        quality.reconnected(meeting: meeting)
                    default:
                        break
                    }
                } catch {
                    // Nothing after this point may be acknowledged: the record is what makes it true.
                    logger.error("audit record failed", metadata: ["error": "\(error)"])
                    // But a departure or an end happened anyway: the store keeps what it cannot write yet.
                    for case .record(let later) in actions.drop(while: { $0 != action }).dropFirst() {
                        if case .sessionEnded = later { try? await recorder.record(later) }
                        if case .participantLeft = later { try? await recorder.record(later) }
                    }
                    failEveryone(in: actions)
                    return
                }
            case .send(let endpoint, let message):
                deliver(.message(message), to: endpoint)
            case .detach(let endpoint):
                lastStats[endpoint] = nil
                if let stale = connections.removeValue(forKey: endpoint) {
                    // Fatal, so the old tab does not reconnect and take the place back in turn.
                    let replaced = SignallingErrorCode.replaced
                    SignallingMetrics.error(replaced)
                    stale.outbox.yield(.message(.error(ErrorMessage(code: replaced, message: "a newer connection took this place over"))))
                    stale.outbox.yield(.close(replaced.closeCode, reason: replaced.rawValue))
                    stale.outbox.finish()
                }
            case .retire(let endpoints):
                releaseRelay(endpoints)
            }
        }
    }

    private func failEveryone(in actions: [RoomAction]) {
        for case .send(let endpoint, _) in actions {
            deliver(.message(.error(ErrorMessage(code: .internal, message: "the meeting could not be recorded"))), to: endpoint)
            deliver(.close(SignallingErrorCode.internal.closeCode, reason: SignallingErrorCode.internal.rawValue), to: endpoint)
        }
    }

    private func deliver(_ item: Outgoing, to endpoint: EndpointID) {
        guard let connection = connections[endpoint] else { return }
        if case .dropped = connection.outbox.yield(item) {
            // The client stopped reading: its endpoint closes it and tells the room, rather than
            // buffering without bound or losing messages silently.
            connection.outbox.finish()
            connection.overflowed()
        }
    }
}

/// A room as ops may see it: no names, no addresses.
public struct RoomSnapshot: Sendable, Equatable {
    public var meetingId: MeetingID
    public var sessionId: SessionID?
    public var sessionStartedAt: Date?
    public var interruptions: Int
    public var participants: [ParticipantSnapshot]

    /// `reconnecting` while anyone is away, `waiting` before the session starts, else `in-call`.
    public var state: String {
        participants.contains(where: \.away) ? "reconnecting" : sessionId == nil ? "waiting" : "in-call"
    }
}

public struct ParticipantSnapshot: Sendable, Equatable {
    public var role: Role
    public var peer: PeerID
    /// The connection, when present; its TURN credential id, to find its relay counters.
    public var endpoint: EndpointID?
    public var away: Bool
    public var waiting: Bool
    public var stats: CallStats?
    /// Quality of the media this participant receives.
    public var quality: QualityReport?
}
