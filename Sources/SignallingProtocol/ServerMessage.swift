import SamtalerumCore

/// Everything the server sends (Docs/PROTOCOL.md, "Server → client").
public enum ServerMessage: Sendable, Equatable {
    case welcome(Welcome)
    case joined(Joined)
    case peerJoined(PeerJoined)
    case peerLeft(PeerLeft)
    case offer(RelayedDescription)
    case answer(RelayedDescription)
    case candidate(RelayedCandidate)
    case pong(Ping)
    case error(ErrorMessage)

    public var type: MessageType {
        switch self {
        case .welcome: .welcome
        case .joined: .joined
        case .peerJoined: .peerJoined
        case .peerLeft: .peerLeft
        case .offer: .offer
        case .answer: .answer
        case .candidate: .candidate
        case .pong: .pong
        case .error: .error
        }
    }
}

public struct Welcome: Codable, Sendable, Equatable {
    public var v: Int
    public var role: Role
    public var meetingId: MeetingID?
    public var endpointId: EndpointID
    public var pingInterval: Int
    public init(v: Int = ProtocolVersion.current, role: Role, meetingId: MeetingID?, endpointId: EndpointID, pingInterval: Int) {
        self.v = v
        self.role = role
        self.meetingId = meetingId
        self.endpointId = endpointId
        self.pingInterval = pingInterval
    }
}

public struct PeerInfo: Codable, Sendable, Equatable {
    public var role: Role
    public init(role: Role) { self.role = role }
}

/// `RTCIceServer` as the browser's `RTCPeerConnection` constructor takes it.
public struct IceServer: Codable, Sendable, Equatable {
    public var urls: [String]
    public var username: String?
    public var credential: String?
    public init(urls: [String], username: String? = nil, credential: String? = nil) {
        self.urls = urls
        self.username = username
        self.credential = credential
    }
}

public struct Joined: Codable, Sendable, Equatable {
    public var meetingId: MeetingID
    public var role: Role
    public var peers: [PeerInfo]
    public var iceServers: [IceServer]
    public init(meetingId: MeetingID, role: Role, peers: [PeerInfo], iceServers: [IceServer]) {
        self.meetingId = meetingId
        self.role = role
        self.peers = peers
        self.iceServers = iceServers
    }
}

public struct PeerJoined: Codable, Sendable, Equatable {
    public var role: Role
    public var initiator: Bool
    public var sessionId: SessionID
    public init(role: Role, initiator: Bool, sessionId: SessionID) {
        self.role = role
        self.initiator = initiator
        self.sessionId = sessionId
    }
}

public struct PeerLeft: Codable, Sendable, Equatable {
    public var role: Role
    public var reason: EndReason
    public init(role: Role, reason: EndReason) {
        self.role = role
        self.reason = reason
    }
}

public struct RelayedDescription: Codable, Sendable, Equatable {
    public var sdp: String
    public var from: Role
    public init(sdp: String, from: Role) {
        self.sdp = sdp
        self.from = from
    }
}

public struct RelayedCandidate: Codable, Sendable, Equatable {
    public var candidate: IceCandidate?
    public var from: Role
    public init(candidate: IceCandidate?, from: Role) {
        self.candidate = candidate
        self.from = from
    }

    enum CodingKeys: String, CodingKey { case candidate, from }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        candidate = try c.decode(IceCandidate?.self, forKey: .candidate)
        from = try c.decode(Role.self, forKey: .from)
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(candidate, forKey: .candidate)
        try c.encode(from, forKey: .from)
    }
}

public struct ErrorMessage: Codable, Sendable, Equatable {
    public var code: SignallingErrorCode
    public var message: String
    public var fatal: Bool
    public var inReplyTo: MessageType?
    public init(code: SignallingErrorCode, message: String, inReplyTo: MessageType? = nil) {
        self.code = code
        self.message = message
        self.fatal = code.isFatal
        self.inReplyTo = inReplyTo
    }
}
