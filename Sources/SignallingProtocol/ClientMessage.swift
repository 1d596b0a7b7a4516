import SamtalerumCore

/// Everything a client may send (Docs/PROTOCOL.md, "Client → server"). One case per `type`.
public enum ClientMessage: Sendable, Equatable {
    case hello(Hello)
    case join(Join)
    case offer(SessionDescription)
    case answer(SessionDescription)
    case candidate(CandidateMessage)
    case leave
    case ping(Ping)

    public var type: MessageType {
        switch self {
        case .hello: .hello
        case .join: .join
        case .offer: .offer
        case .answer: .answer
        case .candidate: .candidate
        case .leave: .leave
        case .ping: .ping
        }
    }
}

public struct Hello: Codable, Sendable, Equatable {
    public var v: Int
    public var token: String
    public init(v: Int = ProtocolVersion.current, token: String) {
        self.v = v
        self.token = token
    }
}

public struct Join: Codable, Sendable, Equatable {
    public var meetingId: MeetingID?
    public init(meetingId: MeetingID?) { self.meetingId = meetingId }
}

public struct SessionDescription: Codable, Sendable, Equatable {
    public var sdp: String
    public init(sdp: String) { self.sdp = sdp }
}

/// `RTCIceCandidateInit` as browsers produce it; relayed unchanged.
public struct IceCandidate: Codable, Sendable, Equatable {
    public var candidate: String
    public var sdpMid: String?
    public var sdpMLineIndex: Int?
    public var usernameFragment: String?
    public init(candidate: String, sdpMid: String? = nil, sdpMLineIndex: Int? = nil, usernameFragment: String? = nil) {
        self.candidate = candidate
        self.sdpMid = sdpMid
        self.sdpMLineIndex = sdpMLineIndex
        self.usernameFragment = usernameFragment
    }
}

/// `candidate: null` is meaningful (end of candidates), so the key is required and null is kept.
public struct CandidateMessage: Codable, Sendable, Equatable {
    public var candidate: IceCandidate?
    public init(candidate: IceCandidate?) { self.candidate = candidate }

    enum CodingKeys: String, CodingKey { case candidate }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        candidate = try c.decode(IceCandidate?.self, forKey: .candidate)
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(candidate, forKey: .candidate)
    }
}

public struct Ping: Codable, Sendable, Equatable {
    public var id: Int
    public init(id: Int) { self.id = id }
}

public enum ProtocolVersion {
    public static let current = 1
    public static let supported: Set<Int> = [1]
}

/// The `type` field of every frame, in both directions.
public struct MessageType: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let hello = MessageType(rawValue: "hello")
    public static let join = MessageType(rawValue: "join")
    public static let offer = MessageType(rawValue: "offer")
    public static let answer = MessageType(rawValue: "answer")
    public static let candidate = MessageType(rawValue: "candidate")
    public static let leave = MessageType(rawValue: "leave")
    public static let ping = MessageType(rawValue: "ping")

    public static let welcome = MessageType(rawValue: "welcome")
    public static let joined = MessageType(rawValue: "joined")
    public static let peerJoined = MessageType(rawValue: "peer-joined")
    public static let peerLeft = MessageType(rawValue: "peer-left")
    public static let pong = MessageType(rawValue: "pong")
    public static let error = MessageType(rawValue: "error")
}
