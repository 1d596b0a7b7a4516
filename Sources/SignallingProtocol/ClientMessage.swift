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
    case admit(Admit)
    case note(Note)
    case chat(Chat)
    case stats(CallStats)

    public var type: MessageType {
        switch self {
        case .hello: .hello
        case .join: .join
        case .offer: .offer
        case .answer: .answer
        case .candidate: .candidate
        case .leave: .leave
        case .ping: .ping
        case .admit: .admit
        case .note: .note
        case .chat: .chat
        case .stats: .stats
        }
    }
}

public struct Hello: Codable, Sendable, Equatable {
    public var v: Int
    public var token: String
    /// From an earlier `welcome`: re-attach to the same room and session after a dropped socket.
    public var resumeToken: String?
    public init(v: Int = ProtocolVersion.current, token: String, resumeToken: String? = nil) {
        self.v = v
        self.token = token
        self.resumeToken = resumeToken
    }
}

/// A short one-way note from the worker, e.g. "I'm 5 minutes late".
public struct Note: Codable, Sendable, Equatable {
    public static let maxLength = 280
    public var text: String
    public init(text: String) { self.text = text }
}

/// In-call text chat. Relayed to the peer, never stored.
public struct Chat: Codable, Sendable, Equatable {
    public static let maxLength = 2000
    public var text: String
    public init(text: String) { self.text = text }
}

/// What the browser's `getStats()` says about the last interval (every 2 s). All optional:
/// browsers differ, and audio-only calls have no video figures.
public struct CallStats: Codable, Sendable, Equatable {
    public var rttMs: Double?
    public var jitterMs: Double?
    /// Fraction 0…1 of packets lost on the way to this client in the interval.
    public var packetLossIn: Double?
    /// Fraction 0…1 lost on the way from this client (from the peer's receiver reports).
    public var packetLossOut: Double?
    public var bitrateInKbps: Double?
    public var bitrateOutKbps: Double?
    public var framesPerSecondIn: Double?
    public var freezeCountIn: Int?
    public var freezeSecondsIn: Double?
    public var audioOnly: Bool?
    /// `host`, `srflx`, `prflx` or `relay`, from the selected candidate pair.
    public var localCandidateType: String?
    public var remoteCandidateType: String?
    /// `udp`, `tcp` or `tls` when the local candidate is a relay.
    public var relayProtocol: String?

    public init(rttMs: Double? = nil, jitterMs: Double? = nil, packetLossIn: Double? = nil, packetLossOut: Double? = nil,
                bitrateInKbps: Double? = nil, bitrateOutKbps: Double? = nil, framesPerSecondIn: Double? = nil,
                freezeCountIn: Int? = nil, freezeSecondsIn: Double? = nil, audioOnly: Bool? = nil,
                localCandidateType: String? = nil, remoteCandidateType: String? = nil, relayProtocol: String? = nil) {
        self.rttMs = rttMs
        self.jitterMs = jitterMs
        self.packetLossIn = packetLossIn
        self.packetLossOut = packetLossOut
        self.bitrateInKbps = bitrateInKbps
        self.bitrateOutKbps = bitrateOutKbps
        self.framesPerSecondIn = framesPerSecondIn
        self.freezeCountIn = freezeCountIn
        self.freezeSecondsIn = freezeSecondsIn
        self.audioOnly = audioOnly
        self.localCandidateType = localCandidateType
        self.remoteCandidateType = remoteCandidateType
        self.relayProtocol = relayProtocol
    }
}

public struct Join: Codable, Sendable, Equatable {
    public var meetingId: MeetingID?
    public init(meetingId: MeetingID?) { self.meetingId = meetingId }
}

public struct SessionDescription: Codable, Sendable, Equatable {
    public var sdp: String
    /// The recipient; needed once a call has more than one other participant.
    public var to: PeerID?
    public init(sdp: String, to: PeerID? = nil) {
        self.sdp = sdp
        self.to = to
    }
}

/// Worker only: let a waiting participant in; without `peer`, the citizen or the only one waiting.
public struct Admit: Codable, Sendable, Equatable {
    public var peer: PeerID?
    public init(peer: PeerID? = nil) { self.peer = peer }
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
    public var to: PeerID?
    public init(candidate: IceCandidate?, to: PeerID? = nil) {
        self.candidate = candidate
        self.to = to
    }

    enum CodingKeys: String, CodingKey { case candidate, to }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        candidate = try c.decode(IceCandidate?.self, forKey: .candidate)
        to = try c.decodeIfPresent(PeerID.self, forKey: .to)
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(candidate, forKey: .candidate)
        try c.encodeIfPresent(to, forKey: .to)
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
    public static let admit = MessageType(rawValue: "admit")
    public static let note = MessageType(rawValue: "note")
    public static let chat = MessageType(rawValue: "chat")
    public static let stats = MessageType(rawValue: "stats")

    public static let welcome = MessageType(rawValue: "welcome")
    public static let joined = MessageType(rawValue: "joined")
    public static let peerJoined = MessageType(rawValue: "peer-joined")
    public static let peerLeft = MessageType(rawValue: "peer-left")
    public static let pong = MessageType(rawValue: "pong")
    public static let peerWaiting = MessageType(rawValue: "peer-waiting")
    public static let admitted = MessageType(rawValue: "admitted")
    public static let peerReconnecting = MessageType(rawValue: "peer-reconnecting")
    public static let peerReconnected = MessageType(rawValue: "peer-reconnected")
    public static let resumed = MessageType(rawValue: "resumed")
    public static let quality = MessageType(rawValue: "quality")
    public static let error = MessageType(rawValue: "error")
}

extension CallStats {
    /// The same figures with every value inside what a browser can report (Docs/QUALITY.md:
    /// negative values become 0, loss stays within 0…1, absurd magnitudes are capped, non-finite
    /// numbers and overlong labels count as missing), so one buggy or hostile client cannot skew
    /// its peer's quality verdict or the audit summary, and the rest of its report still counts.
    public var clamped: CallStats {
        func clamp(_ value: Double?, _ range: ClosedRange<Double>) -> Double? {
            value.flatMap { $0.isFinite ? min(max($0, range.lowerBound), range.upperBound) : nil }
        }
        func label(_ value: String?) -> String? { value.flatMap { $0.count <= 16 ? $0 : nil } }
        return CallStats(
            rttMs: clamp(rttMs, 0...60_000), jitterMs: clamp(jitterMs, 0...60_000),
            packetLossIn: clamp(packetLossIn, 0...1), packetLossOut: clamp(packetLossOut, 0...1),
            bitrateInKbps: clamp(bitrateInKbps, 0...1_000_000), bitrateOutKbps: clamp(bitrateOutKbps, 0...1_000_000),
            framesPerSecondIn: clamp(framesPerSecondIn, 0...1000), freezeCountIn: freezeCountIn.map { min(max($0, 0), 10_000) },
            freezeSecondsIn: clamp(freezeSecondsIn, 0...3600), audioOnly: audioOnly,
            localCandidateType: label(localCandidateType), remoteCandidateType: label(remoteCandidateType),
            relayProtocol: label(relayProtocol))
    }
}
