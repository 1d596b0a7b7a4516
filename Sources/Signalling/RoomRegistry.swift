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

/// All live rooms. Owns the mapping from endpoints to rooms and performs the rooms' actions:
/// awaits each audit record, then delivers messages to outboxes.
public actor RoomRegistry {
    private struct Connection {
        var outbox: Outbox
        var meeting: MeetingID?
    }

    private var rooms: [MeetingID: Room] = [:]
    private var connections: [EndpointID: Connection] = [:]
    private let directory: any MeetingDirectory
    private let recorder: any AuditRecorder
    private let iceServers: IceServerProvider
    private let clock: WallClock
    private let logger: Logger

    public init(
        directory: any MeetingDirectory, recorder: any AuditRecorder, iceServers: @escaping IceServerProvider,
        clock: WallClock = .system, logger: Logger = Logger(label: "samtalerum.signalling")
    ) {
        self.directory = directory
        self.recorder = recorder
        self.iceServers = iceServers
        self.clock = clock
        self.logger = logger
    }

    public func connect(_ endpoint: EndpointID, outbox: Outbox) {
        connections[endpoint] = Connection(outbox: outbox)
    }

    /// Puts the endpoint into the meeting's room if its credential allows it.
    public func join(_ endpoint: EndpointID, credential: Credential, request: Join) async throws(SignallingErrorCode) {
        guard connections[endpoint] != nil else { return }
        guard connections[endpoint]?.meeting == nil else { throw .alreadyJoined }
        let (meetingID, participantOf) = try Self.admission(credential: credential, request: request)
        let meeting: Meeting
        do {
            guard let found = try await directory.meeting(id: meetingID) else { throw SignallingErrorCode.meetingNotFound }
            meeting = found
        } catch let code as SignallingErrorCode {
            throw code
        } catch {
            logger.error("meeting lookup failed", metadata: ["error": "\(error)"])
            throw .internal
        }
        let participant = try participantOf(meeting)
        // The lookup suspended: the endpoint may have gone, or joined elsewhere, meanwhile.
        guard connections[endpoint] != nil, connections[endpoint]?.meeting == nil else { return }

        var room = rooms[meeting.id] ?? Room(meeting: meeting)
        let actions = try room.join(
            endpoint: endpoint, participant: participant, iceServers: iceServers(endpoint, meeting.id), now: clock.now()
        ).get()
        rooms[meeting.id] = room
        connections[endpoint]?.meeting = meeting.id
        await perform(actions)
    }

    /// Which meeting a credential may enter, and as whom.
    static func admission(
        credential: Credential, request: Join
    ) throws(SignallingErrorCode) -> (MeetingID, (Meeting) throws(SignallingErrorCode) -> Participant) {
        switch credential {
        case .invite(let invite):
            if let asked = request.meetingId, asked != invite.meetingId { throw .notInvited }
            return (invite.meetingId, { meeting in Participant(role: .citizen, ref: meeting.citizenRef) })
        case .staff(let staff):
            guard staff.role == .worker else { throw .roleNotAllowed }
            guard let asked = request.meetingId else { throw .invalidMessage }
            return (asked, { meeting throws(SignallingErrorCode) in
                guard meeting.workerRef == staff.subject else { throw .notInvited }
                return Participant(role: .worker, ref: staff.subject)
            })
        }
    }

    public func relay(from endpoint: EndpointID, _ message: ClientMessage) async throws(SignallingErrorCode) {
        guard let meeting = connections[endpoint]?.meeting, let room = rooms[meeting] else { throw .notJoined }
        await perform(try room.relay(from: endpoint, message).get())
    }

    /// The endpoint is gone. Idempotent: a hang-up followed by the socket closing records once.
    public func disconnect(_ endpoint: EndpointID, reason: EndReason) async {
        guard let connection = connections.removeValue(forKey: endpoint) else { return }
        guard let meetingID = connection.meeting, var room = rooms[meetingID] else { return }
        let actions = room.leave(endpoint: endpoint, reason: reason, now: clock.now())
        rooms[meetingID] = room.isEmpty ? nil : room
        await perform(actions)
    }

    /// Orderly stop: every session ends as `server_shutdown`, every client is told.
    public func shutdown() async {
        for (endpoint, connection) in connections {
            connection.outbox.yield(.close(.goingAway, reason: "server shutting down"))
            await disconnect(endpoint, reason: .serverShutdown)
        }
    }

    public func send(_ endpoint: EndpointID, _ message: ServerMessage) {
        deliver(.message(message), to: endpoint)
    }

    public var snapshot: [RoomSnapshot] {
        rooms.values.map { room in
            RoomSnapshot(meetingId: room.meeting.id, sessionId: room.session?.id, sessionStartedAt: room.session?.startedAt,
                         roles: room.members.keys.sorted { $0.rawValue < $1.rawValue })
        }
    }

    public var connectionCount: Int { connections.count }

    private func perform(_ actions: [RoomAction]) async {
        for action in actions {
            switch action {
            case .record(let event):
                do {
                    try await recorder.record(event)
                } catch {
                    // Nothing after this point may be acknowledged: the record is what makes it true.
                    logger.error("audit record failed", metadata: ["error": "\(error)"])
                    failEveryone(in: actions)
                    return
                }
            case .send(let endpoint, let message):
                deliver(.message(message), to: endpoint)
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
        guard let outbox = connections[endpoint]?.outbox else { return }
        if case .dropped = outbox.yield(item) {
            // The client stopped reading; end it rather than buffer without bound.
            outbox.finish()
        }
    }
}

/// A room as ops may see it: no names, no addresses.
public struct RoomSnapshot: Sendable, Equatable {
    public var meetingId: MeetingID
    public var sessionId: SessionID?
    public var sessionStartedAt: Date?
    public var roles: [Role]
}
