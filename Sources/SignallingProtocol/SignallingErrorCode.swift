/// Stable error codes of `error` messages; the table in Docs/PROTOCOL.md is the contract.
public struct SignallingErrorCode: Error, RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let invalidJSON = Self(rawValue: "invalid-json")
    public static let unknownType = Self(rawValue: "unknown-type")
    public static let invalidMessage = Self(rawValue: "invalid-message")
    public static let unsupportedFrame = Self(rawValue: "unsupported-frame")
    public static let notAuthenticated = Self(rawValue: "not-authenticated")
    public static let alreadyAuthenticated = Self(rawValue: "already-authenticated")
    public static let notJoined = Self(rawValue: "not-joined")
    public static let alreadyJoined = Self(rawValue: "already-joined")
    public static let noPeer = Self(rawValue: "no-peer")
    public static let notAllowed = Self(rawValue: "not-allowed")
    public static let notWaiting = Self(rawValue: "not-waiting")
    public static let resumeFailed = Self(rawValue: "resume-failed")
    /// A newer connection with the same credential took this place over.
    public static let replaced = Self(rawValue: "replaced")

    public static let unsupportedVersion = Self(rawValue: "unsupported-version")
    public static let tokenInvalid = Self(rawValue: "token-invalid")
    public static let tokenExpired = Self(rawValue: "token-expired")
    public static let roleNotAllowed = Self(rawValue: "role-not-allowed")
    public static let meetingNotFound = Self(rawValue: "meeting-not-found")
    public static let meetingEnded = Self(rawValue: "meeting-ended")
    public static let notInvited = Self(rawValue: "not-invited")
    /// The worker cancelled the meeting.
    public static let meetingCancelled = Self(rawValue: "meeting-cancelled")
    /// The worker replaced this invite with a new link.
    public static let inviteRevoked = Self(rawValue: "invite-revoked")
    public static let roomFull = Self(rawValue: "room-full")
    public static let slowConsumer = Self(rawValue: "slow-consumer")
    public static let `internal` = Self(rawValue: "internal")

    static let fatalCodes: Set<SignallingErrorCode> = [
        .unsupportedVersion, .tokenInvalid, .tokenExpired, .roleNotAllowed, .meetingNotFound,
        .meetingEnded, .notInvited, .meetingCancelled, .inviteRevoked, .roomFull, .slowConsumer, .replaced, .internal,
    ]

    /// Fatal errors are followed by a close; the others leave the connection usable.
    public var isFatal: Bool { Self.fatalCodes.contains(self) }

    /// The WebSocket close code that follows a fatal error.
    public var closeCode: CloseCode { self == .internal ? .internalError : .policyViolation }
}

/// WebSocket close codes used by the protocol (RFC 6455 §7.4.1).
public struct CloseCode: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let normal = CloseCode(rawValue: 1000)
    public static let goingAway = CloseCode(rawValue: 1001)
    public static let policyViolation = CloseCode(rawValue: 1008)
    public static let messageTooBig = CloseCode(rawValue: 1009)
    public static let internalError = CloseCode(rawValue: 1011)
    /// The client sent nothing for three ping intervals (Docs/PROTOCOL.md, "Limits"); its place is
    /// kept for the grace period, so it may resume.
    public static let silent = CloseCode(rawValue: 4000)
}
