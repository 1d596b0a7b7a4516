import Foundation

/// A meeting as the rest of the system needs to know it. The citizen reference is the worker's
/// case reference; the audit store keeps it pseudonymised/encrypted at rest.
public struct Meeting: Sendable, Equatable {
    public var id: MeetingID
    public var workerRef: SubjectRef
    public var citizenRef: SubjectRef
    public var createdAt: Date
    public var inviteExpiresAt: Date
    /// Further participants the worker invited, by their place in the room.
    public var guests: [PeerID: SubjectRef]
    /// When the worker planned it; nil for a meeting held straight away.
    public var startsAt: Date?
    /// Set once the worker cancelled it: no invite for it is let in any more.
    public var cancelledAt: Date?
    /// The one citizen invite (`jti`) that still opens it; a replaced link is refused. Nil for
    /// meetings made before links could be replaced: any of their citizen invites is valid.
    public var citizenInviteId: String?

    /// A room holds the worker, the citizen and at most this many guests: a mesh of four.
    public static let maxGuests = 2

    public init(id: MeetingID, workerRef: SubjectRef, citizenRef: SubjectRef, createdAt: Date, inviteExpiresAt: Date,
                guests: [PeerID: SubjectRef] = [:], startsAt: Date? = nil, cancelledAt: Date? = nil,
                citizenInviteId: String? = nil) {
        self.id = id
        self.workerRef = workerRef
        self.citizenRef = citizenRef
        self.createdAt = createdAt
        self.inviteExpiresAt = inviteExpiresAt
        self.guests = guests
        self.startsAt = startsAt
        self.cancelledAt = cancelledAt
        self.citizenInviteId = citizenInviteId
    }
}

public struct Participant: Sendable, Equatable, Codable {
    public var role: Role
    public var ref: SubjectRef
    public init(role: Role, ref: SubjectRef) {
        self.role = role
        self.ref = ref
    }
}

/// Everything the call side tells the audit trail. Metadata only: never media, chat, names or
/// network addresses. Each case is one durable record; callers await `record` before answering
/// the client, so an acknowledged action is always on disk.
public enum AuditEvent: Sendable, Equatable {
    case meetingCreated(Meeting)
    case inviteIssued(meeting: MeetingID, by: SubjectRef, expiresAt: Date, at: Date)
    /// The worker invited a further participant, who gets their own invite for place `peer`.
    case guestInvited(meeting: MeetingID, peer: PeerID, guest: SubjectRef, by: SubjectRef, expiresAt: Date, at: Date)
    case participantJoined(meeting: MeetingID, participant: Participant, at: Date)
    case participantLeft(meeting: MeetingID, participant: Participant, reason: EndReason, at: Date)
    case sessionStarted(session: SessionID, meeting: MeetingID, participants: [Participant], at: Date)
    case sessionEnded(session: SessionID, meeting: MeetingID, reason: EndReason, at: Date)
    /// A guest entered a session that was already running.
    case sessionJoined(session: SessionID, meeting: MeetingID, participant: Participant, at: Date)
    /// The same participant came back (resume) without the session ending.
    case participantReconnected(meeting: MeetingID, participant: Participant, at: Date)
    /// The worker let a waiting participant into the room.
    case participantAdmitted(meeting: MeetingID, participant: Participant, by: SubjectRef, at: Date)
    /// The worker called the meeting off: its invites stop working.
    case meetingCancelled(meeting: MeetingID, by: SubjectRef, at: Date)
    /// The worker replaced the citizen's link (e.g. it was sent to the wrong person): only
    /// the `replacement` invite id opens the meeting from now on. An `inviteIssued` for the new link follows.
    case inviteRevoked(meeting: MeetingID, replacement: String, by: SubjectRef, at: Date)
    /// The worker had the citizen's (unchanged) link shown again, e.g. to send it once more.
    case inviteShown(meeting: MeetingID, by: SubjectRef, at: Date)
    /// The node that hosted the session went away and `to` took the call over (a participant
    /// resumed there); `from` is the node the store last knew as the host.
    case sessionMoved(session: SessionID, meeting: MeetingID, from: String?, to: String, at: Date)
    /// End-of-session connection quality, numbers only.
    case qualitySummary(session: SessionID, meeting: MeetingID, summary: QualitySummary, at: Date)
}

/// Aggregate call quality for one session; nil when not measured. No addresses, no media.
public struct QualitySummary: Sendable, Equatable, Codable {
    public var medianRoundTripMilliseconds: Int?
    public var packetLossPermille: Int?
    public var relayed: Bool?
    public var reconnects: Int
    /// Lowest and time-weighted average MOS over both directions (Docs/QUALITY.md).
    public var minMOS: Double?
    public var averageMOS: Double?
    /// Share of the session either direction spent poor or lost, 0…100.
    public var percentTimePoor: Double?
    public init(medianRoundTripMilliseconds: Int? = nil, packetLossPermille: Int? = nil, relayed: Bool? = nil, reconnects: Int = 0,
                minMOS: Double? = nil, averageMOS: Double? = nil, percentTimePoor: Double? = nil) {
        self.medianRoundTripMilliseconds = medianRoundTripMilliseconds
        self.packetLossPermille = packetLossPermille
        self.relayed = relayed
        self.reconnects = reconnects
        self.minMOS = minMOS
        self.averageMOS = averageMOS
        self.percentTimePoor = percentTimePoor
    }
}

/// The durable side of a call: implemented by the audit store, faked nowhere in production.
public protocol AuditRecorder: Sendable {
    func record(_ event: AuditEvent) async throws
    /// A call in `meeting` is alive (its statistics arrived). The store moves the open session's
    /// last known time on from these, at a bounded write rate, so a crash closes the session near
    /// its real end. Returns at once: never waits for the disk.
    func noteActivity(meeting: MeetingID, at: Date)
}

extension AuditRecorder {
    public func noteActivity(meeting: MeetingID, at: Date) {}
}

/// Looks up meetings so signalling can decide who may enter a room.
public protocol MeetingDirectory: Sendable {
    func meeting(id: MeetingID) async throws -> Meeting?
    /// The meeting's session that is still open in the shared record, for a node taking over a
    /// call whose node went away; nil when there is none (or no shared record).
    func openSession(of meeting: MeetingID) async throws -> OpenSession?
}

extension MeetingDirectory {
    public func openSession(of meeting: MeetingID) async throws -> OpenSession? { nil }
}

/// A session as the record has it while it is open: what another node needs to rebuild the room.
public struct OpenSession: Sendable, Equatable {
    public var id: SessionID
    public var meeting: MeetingID
    public var startedAt: Date
    /// The node that hosts it (nil: recorded before nodes were named).
    public var hostNode: String?
    /// The last time the record heard of the call (its statistics, its events).
    public var lastKnownAt: Date
    /// Who is in the call: the worker, the citizen and the guests who had not left it.
    public var participants: [Participant]

    public init(id: SessionID, meeting: MeetingID, startedAt: Date, hostNode: String?, lastKnownAt: Date,
                participants: [Participant]) {
        self.id = id
        self.meeting = meeting
        self.startedAt = startedAt
        self.hostNode = hostNode
        self.lastKnownAt = lastKnownAt
        self.participants = participants
    }
}

/// A worker's own meetings, for their list ("My meetings").
public protocol MeetingCalendar: Sendable {
    /// The worker's meetings planned (or, unplanned, created) at or after `from`, earliest first.
    func meetings(of worker: SubjectRef, from: Date, limit: Int) async throws -> [Meeting]
}

/// Injected wall clock so state machines and tests never read the real time themselves.
public struct WallClock: Sendable {
    public let now: @Sendable () -> Date
    public init(now: @escaping @Sendable () -> Date) { self.now = now }
    public static let system = WallClock { Date() }
}
