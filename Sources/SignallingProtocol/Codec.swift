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

private enum TypeKey: String, CodingKey { case type }

extension ClientMessage: Decodable {
    /// Decodes one text frame in a single JSON parse. Never traps; every failure is a typed
    /// `DecodeFailure`.
    public static func decode(_ text: String) throws(DecodeFailure) -> ClientMessage {
        do {
            return try sharedDecoder.decode(ClientMessage.self, from: Data(text.utf8))
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
        } catch let failure as DecodeFailure {
            throw failure
        } catch {
            // Foundation reports a number that does not fit the field (`"id": 1.5`) with an error
            // of its own that names no field; the frame itself was valid JSON.
            throw DecodeFailure.invalidMessage(type, detail: "a number does not fit its field")
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

    /// Decodes what the server sent, in one JSON parse; used by clients written in Swift
    /// (tests, load tool).
    public static func decode(_ text: String) throws -> ServerMessage {
        try sharedDecoder.decode(ServerMessage.self, from: Data(text.utf8))
    }
}

extension ServerMessage: Decodable {
    public init(from decoder: any Decoder) throws {
        let raw = try decoder.container(keyedBy: TypeKey.self).decodeIfPresent(String.self, forKey: .type)
        switch MessageType(rawValue: raw ?? "") {
        case .welcome: self = .welcome(try Welcome(from: decoder))
        case .joined: self = .joined(try Joined(from: decoder))
        case .peerJoined: self = .peerJoined(try PeerJoined(from: decoder))
        case .peerLeft: self = .peerLeft(try PeerLeft(from: decoder))
        case .offer: self = .offer(try RelayedDescription(from: decoder))
        case .answer: self = .answer(try RelayedDescription(from: decoder))
        case .candidate: self = .candidate(try RelayedCandidate(from: decoder))
        case .pong: self = .pong(try Ping(from: decoder))
        case .error: self = .error(try ErrorMessage(from: decoder))
        case .peerWaiting: self = .peerWaiting(try PeerInfo(from: decoder))
        case .admitted: self = .admitted
        case .note: self = .note(try RelayedNote(from: decoder))
        case .chat: self = .chat(try RelayedNote(from: decoder))
        case .peerReconnecting: self = .peerReconnecting(try PeerInfo(from: decoder))
        case .peerReconnected: self = .peerReconnected(try PeerInfo(from: decoder))
        case .resumed: self = .resumed(try Resumed(from: decoder))
        case .quality: self = .quality(try QualityUpdate(from: decoder))
        default: throw DecodeFailure.unknownType(raw)
        }
    }
}

/// Decoding and encoding keep no per-call state, and making a coder per message showed up in
/// the server's profile under load.
private let sharedDecoder = JSONDecoder()

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
