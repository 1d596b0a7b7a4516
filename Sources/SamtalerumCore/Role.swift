/// Who someone is to Samtalerum. Citizens have no account: their role comes from an invite.
public struct Role: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let citizen = Role(rawValue: "citizen")
    public static let worker = Role(rawValue: "worker")
    public static let ops = Role(rawValue: "ops")
    public static let auditor = Role(rawValue: "auditor")
    /// A further participant the worker invited into a meeting (e.g. a job-centre caseworker).
    public static let guest = Role(rawValue: "guest")

    /// Roles a staff bearer token may carry (citizens only ever hold invites).
    public static let staff: [Role] = [.worker, .ops, .auditor]
    /// Roles that take part in a call.
    public var isCallParticipant: Bool { self == .citizen || self == .worker || self == .guest }
}

/// Why a participant left or a session ended. Stable strings: they are stored and queried.
public struct EndReason: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    /// A participant pressed hang up (sent `leave`).
    public static let hangup = EndReason(rawValue: "hangup")
    /// The WebSocket closed without a `leave` (and no resume happened in time).
    public static let connectionLost = EndReason(rawValue: "connection_lost")
    /// The server was stopped in an orderly way during the session.
    public static let serverShutdown = EndReason(rawValue: "server_shutdown")
    /// Found open at start-up after a crash; closed at its last known time.
    public static let serverRestart = EndReason(rawValue: "server_restart")
    /// The worker cancelled the meeting while this participant was in it.
    public static let meetingCancelled = EndReason(rawValue: "meeting_cancelled")
    /// The worker replaced the link this participant came in with.
    public static let inviteRevoked = EndReason(rawValue: "invite_revoked")
    /// A participant was removed for a protocol violation (e.g. oversized message).
    public static let protocolError = EndReason(rawValue: "protocol_error")
}
