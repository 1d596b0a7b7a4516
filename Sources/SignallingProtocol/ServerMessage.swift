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
    case peerWaiting(PeerInfo)
    case admitted
    case note(RelayedNote)
    case chat(RelayedNote)
    case peerReconnecting(PeerInfo)
    case peerReconnected(PeerInfo)
    case resumed(Resumed)
    case quality(QualityUpdate)

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
        case .peerWaiting: .peerWaiting
        case .admitted: .admitted
        case .note: .note
        case .chat: .chat
        case .peerReconnecting: .peerReconnecting
        case .peerReconnected: .peerReconnected
        case .resumed: .resumed
        case .quality: .quality
        }
    }
}

public struct Welcome: Codable, Sendable, Equatable {
    public var v: Int
    public var role: Role
    public var meetingId: MeetingID?
    /// Your place in the room: fixed by an invite, `worker` for the worker.
    public var peer: PeerID
    public var endpointId: EndpointID
    public var pingInterval: Int
    /// How long after a dropped connection `hello.resumeToken` still gets the place back.
    public var resumeGraceSeconds: Int?
    public init(v: Int = ProtocolVersion.current, role: Role, peer: PeerID, meetingId: MeetingID?, endpointId: EndpointID,
                pingInterval: Int, resumeGraceSeconds: Int? = nil) {
        self.v = v
        self.role = role
        self.peer = peer
        self.meetingId = meetingId
        self.endpointId = endpointId
        self.pingInterval = pingInterval
        self.resumeGraceSeconds = resumeGraceSeconds
    }
}

public struct RelayedNote: Codable, Sendable, Equatable {
    public var text: String
    public var from: Role
    public var peer: PeerID
    public init(text: String, from: Role, peer: PeerID) {
        self.text = text
        self.from = from
        self.peer = peer
    }
}

/// The answer to a successful resume: the endpoint is back in its room, same session.
public struct Resumed: Codable, Sendable, Equatable {
    public var meetingId: MeetingID
    public var role: Role
    public var peer: PeerID
    public var sessionId: SessionID?
    public var peers: [PeerInfo]
    public var iceServers: [IceServer]
    /// Messages for this endpoint that arrived while it was away; they follow right after.
    public var replayed: Int
    public var waiting: Bool
    /// A fresh token for the next resume.
    public var resumeToken: String?
    public init(meetingId: MeetingID, role: Role, peer: PeerID, sessionId: SessionID?, peers: [PeerInfo], iceServers: [IceServer],
                replayed: Int, waiting: Bool = false, resumeToken: String? = nil) {
        self.meetingId = meetingId
        self.role = role
        self.peer = peer
        self.sessionId = sessionId
        self.peers = peers
        self.iceServers = iceServers
        self.replayed = replayed
        self.waiting = waiting
        self.resumeToken = resumeToken
    }
}

/// A quality class with its score and a plain-language hint code the page translates.
public struct QualityReport: Codable, Sendable, Equatable {
    /// `excellent`, `good`, `poor` or `lost`.
    public var `class`: String
    public var mos: Double
    /// e.g. `try-audio-only`, `peer-weak-connection`, `reconnecting`; absent when all is well.
    public var hint: String?
    public init(class: String, mos: Double, hint: String?) {
        self.class = `class`
        self.mos = mos
        self.hint = hint
    }
}

/// `receiving`: media arriving at you; `sending`: your media as the peer receives it.
public struct QualityUpdate: Codable, Sendable, Equatable {
    public var receiving: QualityReport?
    public var sending: QualityReport?
    public init(receiving: QualityReport?, sending: QualityReport?) {
        self.receiving = receiving
        self.sending = sending
    }
}

public struct PeerInfo: Codable, Sendable, Equatable {
    public var role: Role
    public var peer: PeerID
    public init(role: Role, peer: PeerID) {
        self.role = role
        self.peer = peer
    }
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
    public var peer: PeerID
    public var peers: [PeerInfo]
    public var iceServers: [IceServer]
    /// A citizen waits here until the worker admits them (`admitted`).
    public var waiting: Bool
    /// Send it in `hello.resumeToken` after a dropped connection to get this place back.
    public var resumeToken: String?
    public init(meetingId: MeetingID, role: Role, peer: PeerID, peers: [PeerInfo], iceServers: [IceServer], waiting: Bool = false,
                resumeToken: String? = nil) {
        self.meetingId = meetingId
        self.role = role
        self.peer = peer
        self.peers = peers
        self.iceServers = iceServers
        self.waiting = waiting
        self.resumeToken = resumeToken
    }
}

/// One per other participant you are now in a call with: `initiator` says who offers to whom.
public struct PeerJoined: Codable, Sendable, Equatable {
    public var role: Role
    public var peer: PeerID
    public var initiator: Bool
    public var sessionId: SessionID
    public init(role: Role, peer: PeerID, initiator: Bool, sessionId: SessionID) {
        self.role = role
        self.peer = peer
        self.initiator = initiator
        self.sessionId = sessionId
    }
}

public struct PeerLeft: Codable, Sendable, Equatable {
    public var role: Role
    public var peer: PeerID
    public var reason: EndReason
    public init(role: Role, peer: PeerID, reason: EndReason) {
        self.role = role
        self.peer = peer
        self.reason = reason
    }
}

/// `from` is the sender's role, `peer` its place (what `to` names in replies).
public struct RelayedDescription: Codable, Sendable, Equatable {
    public var sdp: String
    public var from: Role
    public var peer: PeerID
    public init(sdp: String, from: Role, peer: PeerID) {
        self.sdp = sdp
        self.from = from
        self.peer = peer
    }
}

public struct RelayedCandidate: Codable, Sendable, Equatable {
    public var candidate: IceCandidate?
    public var from: Role
    public var peer: PeerID
    public init(candidate: IceCandidate?, from: Role, peer: PeerID) {
        self.candidate = candidate
        self.from = from
        self.peer = peer
    }

    enum CodingKeys: String, CodingKey { case candidate, from, peer }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        candidate = try c.decode(IceCandidate?.self, forKey: .candidate)
        from = try c.decode(Role.self, forKey: .from)
        peer = try c.decode(PeerID.self, forKey: .peer)
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(candidate, forKey: .candidate)
        try c.encode(from, forKey: .from)
        try c.encode(peer, forKey: .peer)
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
