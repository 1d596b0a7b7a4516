import Foundation

/// A meeting a worker created for one citizen. Also the closed room's name.
public struct MeetingID: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init?(validating raw: String) {
        guard Self.isWellFormed(raw) else { return nil }
        self.rawValue = raw
    }
    public static func random() -> MeetingID { MeetingID(rawValue: RandomID.make(prefix: "m")) }
    public var description: String { rawValue }

    /// Accept only our own shape so a hostile id never reaches SQL, logs or URLs unescaped.
    public static func isWellFormed(_ raw: String) -> Bool {
        raw.count <= 64 && raw.count >= 3 && raw.utf8.allSatisfy { RandomID.allowed.contains($0) }
    }

    public init(from decoder: any Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(String.self)
        guard Self.isWellFormed(raw) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "malformed meeting id"))
        }
        self.rawValue = raw
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}

/// One continuous call between the worker and the citizen inside a meeting.
public struct SessionID: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static func random() -> SessionID { SessionID(rawValue: RandomID.make(prefix: "s")) }
    public var description: String { rawValue }
}

/// One WebSocket connection of one participant. Never persisted: it is not personal data.
public struct EndpointID: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static func random() -> EndpointID { EndpointID(rawValue: RandomID.make(prefix: "e")) }
    public var description: String { rawValue }
}

/// A participant's place in a room: `worker`, `citizen`, or `guest-…` for each further participant
/// the worker invited (e.g. a job-centre caseworker). Room-scoped and random, so not personal data;
/// the protocol calls it `peer`.
public struct PeerID: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let worker = PeerID(rawValue: "worker")
    public static let citizen = PeerID(rawValue: "citizen")
    public static func randomGuest() -> PeerID { PeerID(rawValue: "guest-" + RandomID.make(length: 8)) }

    public init?(validating raw: String) {
        guard raw == "worker" || raw == "citizen" || (raw.hasPrefix("guest-") && MeetingID.isWellFormed(raw) && raw.count <= 32)
        else { return nil }
        self.rawValue = raw
    }

    /// Offer order in a mesh: the worker offers to everyone, the citizen to guests, guests by id.
    public static func < (a: PeerID, b: PeerID) -> Bool { (a.rank, a.rawValue) < (b.rank, b.rawValue) }
    private var rank: Int { self == .worker ? 0 : self == .citizen ? 1 : 2 }

    public init(from decoder: any Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(String.self)
        guard let valid = PeerID(validating: raw) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "malformed peer id"))
        }
        self = valid
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}

/// A pseudonymous reference to a person: a worker's subject id from their token, or the
/// citizen's case reference. Never a name; the audit store keeps it pseudonymised at rest.
public struct SubjectRef: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    /// Case references and subject ids are short opaque codes; anything else is refused at the edge.
    public static let maxLength = 128
    public init?(validating raw: String) {
        let trimmed = raw.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.count <= Self.maxLength,
              trimmed.unicodeScalars.allSatisfy({ !CharacterSet.controlCharacters.contains($0) })
        else { return nil }
        self.rawValue = trimmed
    }
}

enum RandomID {
    static let alphabet = Array("abcdefghijkmnpqrstuvwxyz23456789".utf8)
    static let allowed = Set(Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_".utf8))

    /// 20 symbols of a 32-letter alphabet: 100 bits, unguessable, readable aloud if needed.
    static func make(prefix: String) -> String {
        prefix + "-" + make(length: 20)
    }

    static func make(length: Int) -> String {
        var rng = SystemRandomNumberGenerator()
        let body = (0..<length).map { _ in alphabet[Int(rng.next(upperBound: UInt32(alphabet.count)))] }
        return String(decoding: body, as: UTF8.self)
    }
}
