import Foundation
import SamtalerumCore

/// Why a frame could not become a `ClientMessage`. Each maps to one non-fatal protocol error.
public enum DecodeFailure: Error, Sendable, Equatable {
    case invalidJSON
    case unknownType(String?)
    case invalidMessage(MessageType, detail: String)

    public var errorMessage: ErrorMessage {
        switch self {
        case .invalidJSON:
            ErrorMessage(code: .invalidJSON, message: "the frame is not a JSON object")
        case .unknownType(let type):
            ErrorMessage(code: .unknownType, message: "unknown message type \(type.map { "'\($0.prefix(40))'" } ?? "(missing)")")
        case .invalidMessage(let type, let detail):
            ErrorMessage(code: .invalidMessage, message: "invalid '\(type)' message: \(detail)", inReplyTo: type)
        }
    }
}

private struct TypeOnly: Decodable {
    var type: String?
}

private enum TypeKey: String, CodingKey { case type }

extension ClientMessage: Decodable {
    /// Decodes one text frame in a single JSON parse. Never traps; every failure is a typed
    /// `DecodeFailure`.
    public static func decode(_ text: String) throws(DecodeFailure) -> ClientMessage {
        do {
            return try JSONDecoder().decode(ClientMessage.self, from: Data(text.utf8))
        } catch let failure as DecodeFailure {
            throw failure
        } catch {
            throw .invalidJSON
        }
    }

    public init(from decoder: any Decoder) throws {
        guard let container = try? decoder.container(keyedBy: TypeKey.self) else { throw DecodeFailure.invalidJSON }
        // A `type` that is missing or not a string is as good as an unknown one.
        guard let raw = try? container.decodeIfPresent(String.self, forKey: .type) else { throw DecodeFailure.unknownType(nil) }
        let type = MessageType(rawValue: raw)
        do {
            switch type {
            case .hello: self = .hello(try Hello(from: decoder))
            case .join: self = .join(try Join(from: decoder))
            case .offer: self = .offer(try SessionDescription(from: decoder))
            case .answer: self = .answer(try SessionDescription(from: decoder))
            case .candidate: self = .candidate(try CandidateMessage(from: decoder))
            case .leave: self = .leave
            case .ping: self = .ping(try Ping(from: decoder))
            case .admit: self = .admit(try Admit(from: decoder))
            case .note: self = .note(try Note(from: decoder))
            case .chat: self = .chat(try Chat(from: decoder))
            case .stats: self = .stats(try CallStats(from: decoder))
            default: throw DecodeFailure.unknownType(raw)
            }
        } catch let error as DecodingError {
            throw DecodeFailure.invalidMessage(type, detail: error.fieldDescription)
        }
    }

    /// Encodes as a client would; used by tests, load tools and the crash test.
    public func encoded() -> String {
        switch self {
        case .hello(let body): frame(type, body)
        case .join(let body): frame(type, body)
        case .offer(let body), .answer(let body): frame(type, body)
        case .candidate(let body): frame(type, body)
        case .leave: frame(type, Empty())
        case .admit(let body): frame(type, body)
        case .ping(let body): frame(type, body)
        case .note(let body): frame(type, body)
        case .chat(let body): frame(type, body)
        case .stats(let body): frame(type, body)
        }
    }
}

extension ServerMessage {
    public func encoded() -> String {
        switch self {
        case .welcome(let body): frame(type, body)
        case .joined(let body): frame(type, body)
        case .peerJoined(let body): frame(type, body)
        case .peerLeft(let body): frame(type, body)
        case .offer(let body), .answer(let body): frame(type, body)
        case .candidate(let body): frame(type, body)
        case .pong(let body): frame(type, body)
        case .error(let body): frame(type, body)
        case .peerWaiting(let body), .peerReconnecting(let body), .peerReconnected(let body): frame(type, body)
        case .admitted: frame(type, Empty())
        case .note(let body), .chat(let body): frame(type, body)
        case .resumed(let body): frame(type, body)
        case .quality(let body): frame(type, body)
        }
    }

    /// Decodes what the server sent; used by clients written in Swift (tests, load tool).
    public static func decode(_ text: String) throws -> ServerMessage {
        let data = Data(text.utf8)
        let decoder = JSONDecoder()
        let type = MessageType(rawValue: try decoder.decode(TypeOnly.self, from: data).type ?? "")
        switch type {
        case .welcome: return .welcome(try decoder.decode(Welcome.self, from: data))
        case .joined: return .joined(try decoder.decode(Joined.self, from: data))
        case .peerJoined: return .peerJoined(try decoder.decode(PeerJoined.self, from: data))
        case .peerLeft: return .peerLeft(try decoder.decode(PeerLeft.self, from: data))
        case .offer: return .offer(try decoder.decode(RelayedDescription.self, from: data))
        case .answer: return .answer(try decoder.decode(RelayedDescription.self, from: data))
        case .candidate: return .candidate(try decoder.decode(RelayedCandidate.self, from: data))
        case .pong: return .pong(try decoder.decode(Ping.self, from: data))
        case .error: return .error(try decoder.decode(ErrorMessage.self, from: data))
        case .peerWaiting: return .peerWaiting(try decoder.decode(PeerInfo.self, from: data))
        case .admitted: return .admitted
        case .note: return .note(try decoder.decode(RelayedNote.self, from: data))
        case .chat: return .chat(try decoder.decode(RelayedNote.self, from: data))
        case .peerReconnecting: return .peerReconnecting(try decoder.decode(PeerInfo.self, from: data))
        case .peerReconnected: return .peerReconnected(try decoder.decode(PeerInfo.self, from: data))
        case .resumed: return .resumed(try decoder.decode(Resumed.self, from: data))
        case .quality: return .quality(try decoder.decode(QualityUpdate.self, from: data))
        default: throw DecodeFailure.unknownType(type.rawValue)
        }
    }
}

private struct Empty: Encodable {}

/// The body's fields plus `type`, in one flat JSON object.
private struct Framed<Body: Encodable>: Encodable {
    var type: MessageType
    var body: Body
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: TypeKey.self)
        try container.encode(type, forKey: .type)
        try body.encode(to: encoder)
    }
}

private let sharedEncoder: JSONEncoder = {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return encoder
}()

private func frame(_ type: MessageType, _ body: some Encodable) -> String {
    // Encoding our own value types cannot fail; an empty object keeps the signature total.
    guard let data = try? sharedEncoder.encode(Framed(type: type, body: body)) else { return "{}" }
    return String(decoding: data, as: UTF8.self)
}

extension DecodingError {
    /// A short, client-safe description naming the offending field.
    var fieldDescription: String {
        func path(_ context: Context) -> String {
            context.codingPath.map(\.stringValue).joined(separator: ".")
        }
        switch self {
        case .keyNotFound(let key, let context):
            let prefix = path(context)
            return "missing field '\(prefix.isEmpty ? key.stringValue : prefix + "." + key.stringValue)'"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "field '\(path(context))' has the wrong type"
        case .dataCorrupted(let context):
            return "field '\(path(context))' is malformed"
        @unknown default:
            return "malformed"
        }
    }
}
