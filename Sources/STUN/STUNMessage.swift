/// One TLV attribute. `value` excludes padding; for parsed messages it shares the received buffer.
public struct STUNAttribute: Hashable, Sendable, CustomStringConvertible {
    public var type: AttributeType
    public var value: ArraySlice<UInt8>

    public init(type: AttributeType, value: ArraySlice<UInt8>) {
        self.type = type
        self.value = value
    }

    public init(type: AttributeType, value: some Sequence<UInt8>) {
        self.init(type: type, value: ArraySlice(value))
    }

    public var description: String { "\(type)(\(value.count))" }
}

/// What a datagram or stream chunk starts with, judged from its first byte (RFC 7983 demultiplexing).
public enum PacketKind: Sendable, Hashable {
    case stun
    case channelData
    case other

    @inlinable
    public init(firstByte: UInt8) {
        switch firstByte {
        case 0x00...0x3F: self = .stun
        case 0x40...0x7F: self = .channelData
        default: self = .other
        }
    }
}

/// A STUN message: header fields plus the ordered attribute list.
///
/// Parsing keeps the received bytes so integrity and fingerprint checks run over exactly what was
/// sent (padding included); any mutation drops that copy and the message is re-encoded on demand.
public struct STUNMessage: Sendable, Hashable, CustomStringConvertible {
    public static let magicCookie: UInt32 = 0x2112_A442
    public static let headerLength = 20
    /// Largest encodable attribute section (the header's 16-bit length field).
    public static let maxBodyLength = 0xFFFF

    public var type: STUNMessageType { didSet { wire = nil } }
    public var transactionID: TransactionID { didSet { wire = nil } }
    public var attributes: [STUNAttribute] { didSet { wire = nil } }
    /// The exact encoding of the current contents, when known.
    private var wire: ArraySlice<UInt8>?

    public init(type: STUNMessageType, transactionID: TransactionID, attributes: [STUNAttribute] = []) {
        self.type = type
        self.transactionID = transactionID
        self.attributes = attributes
    }

    public init(
        method: STUNMethod, class: STUNClass, transactionID: TransactionID = .random(),
        attributes: [STUNAttribute] = []
    ) {
        self.init(type: STUNMessageType(method: method, class: `class`), transactionID: transactionID,
                  attributes: attributes)
    }

    /// A response skeleton with the same method and transaction id.
    public func response(_ cls: STUNClass) -> STUNMessage {
        STUNMessage(method: method, class: cls, transactionID: transactionID)
    }

    public var method: STUNMethod {
        get { type.method }
        set { type.method = newValue }
    }

    public var `class`: STUNClass {
        get { type.class }
        set { type.class = newValue }
    }

    // MARK: Parsing

    /// Parses exactly one message; `bytes` must hold the whole message and nothing else.
    public init(bytes: ArraySlice<UInt8>) throws(STUNParseError) {
        self = try Self.decode(bytes)
    }

    public init(bytes: [UInt8]) throws(STUNParseError) {
        self = try Self.decode(bytes[...])
    }

    public init(bytes: some Collection<UInt8>) throws(STUNParseError) {
        self = try Self.parse(bytes)
    }

    public static func parse(_ bytes: some Collection<UInt8>) throws(STUNParseError) -> STUNMessage {
        if let slice = bytes as? ArraySlice<UInt8> { return try decode(slice) }
        if let array = bytes as? [UInt8] { return try decode(array[...]) }
        return try decode(ArraySlice(bytes))
    }

    private static func decode(_ raw: ArraySlice<UInt8>) throws(STUNParseError) -> STUNMessage {
        guard raw.count >= headerLength else { throw .truncatedHeader }
        let start = raw.startIndex
        guard raw[start] & 0xC0 == 0 else { throw .notSTUN }
        guard raw.uint32(at: 4) == magicCookie else { throw .badMagicCookie }
        let length = Int(raw.uint16(at: 2))
        guard length % 4 == 0 else { throw .lengthNotMultipleOf4 }
        guard headerLength + length == raw.count else { throw .lengthMismatch }

        var attributes: [STUNAttribute] = []
        attributes.reserveCapacity(8)
        var afterIntegrity = false
        var afterIntegritySHA256 = false
        var afterFingerprint = false
        var offset = headerLength
        while offset < raw.count {
            guard raw.count - offset >= 4 else { throw .truncatedAttribute }
            let type = AttributeType(rawValue: raw.uint16(at: offset))
            let valueLength = Int(raw.uint16(at: offset + 2))
            let valueStart = offset + 4
            guard raw.count - valueStart >= (valueLength + 3) & ~3 else { throw .truncatedAttribute }
            guard !afterFingerprint else { throw .attributeAfterFingerprint }
            offset = valueStart + (valueLength + 3) & ~3

            // RFC 8489 §14.5/§14.6: only MESSAGE-INTEGRITY-SHA256 and FINGERPRINT count after an integrity attribute.
            switch type {
            case .fingerprint:
                guard valueLength == 4 else { throw .malformedAttribute(type) }
                afterFingerprint = true
            case .messageIntegrity where !afterIntegrity && !afterIntegritySHA256:
                guard valueLength == 20 else { throw .malformedAttribute(type) }
                afterIntegrity = true
            case .messageIntegritySHA256 where !afterIntegritySHA256:
                guard valueLength >= 16, valueLength <= 32, valueLength % 4 == 0 else {
                    throw .malformedAttribute(type)
                }
                afterIntegritySHA256 = true
            default:
                if afterIntegrity || afterIntegritySHA256 { continue }
            }
            let s = start + valueStart
            attributes.append(STUNAttribute(type: type, value: raw[s..<(s + valueLength)]))
        }

        var message = STUNMessage(
            type: STUNMessageType(rawValue: raw.uint16(at: 0)),
            transactionID: TransactionID(high: raw.uint32(at: 8), low: raw.uint64(at: 12)),
            attributes: attributes)
        message.wire = raw
        return message
    }

    // MARK: Demultiplexing

    /// First-byte test only: the two leading bits of every STUN message are zero.
    @inlinable
    public static func isSTUN(firstByte: UInt8) -> Bool { firstByte & 0xC0 == 0 }

    /// Cheap test that `bytes` plausibly begins a STUN message: leading bits and magic cookie.
    public static func isSTUN(_ bytes: some Collection<UInt8>) -> Bool {
        guard bytes.count >= headerLength, let first = bytes.first, isSTUN(firstByte: first) else { return false }
        return bytes.uint32(at: 4) == magicCookie
    }

    // MARK: Encoding

    /// The encoded size, header included.
    public var encodedLength: Int {
        if let wire { return wire.count }
        var total = Self.headerLength
        for attribute in attributes { total += 4 + (attribute.value.count + 3) & ~3 }
        return total
    }

    /// Encodes the message. Traps if the attributes exceed `maxBodyLength`: callers bound what they append.
    public func serialize() -> [UInt8] {
        if let wire { return Array(wire) }
        return encode()
    }

    /// The encoded bytes, shared with the parsed buffer when unchanged.
    var wireBytes: ArraySlice<UInt8> { wire ?? encode()[...] }

    private func encode() -> [UInt8] {
        let total = encodedLength
        precondition(total - Self.headerLength <= Self.maxBodyLength, "STUN message too large to encode")
        var out = [UInt8]()
        out.reserveCapacity(total)
        out.appendBigEndian(type.rawValue)
        out.appendBigEndian(UInt16(total - Self.headerLength))
        out.appendBigEndian(Self.magicCookie)
        out.appendBigEndian(transactionID.high)
        out.appendBigEndian(transactionID.low)
        for attribute in attributes {
            out.appendBigEndian(attribute.type.rawValue)
            out.appendBigEndian(UInt16(attribute.value.count))
            out.append(contentsOf: attribute.value)
            for _ in 0..<((4 - attribute.value.count % 4) % 4) { out.append(0) }
        }
        return out
    }

    /// Appends an already-encoded attribute and installs `bytes` as the cached encoding.
    mutating func append(_ attribute: STUNAttribute, encoding bytes: [UInt8]) {
        attributes.append(attribute)
        wire = bytes[...]
    }

    // MARK: Attributes

    /// Appends one attribute. Traps if the value is longer than 65535 bytes.
    public mutating func append(_ attribute: STUNAttribute) {
        precondition(attribute.value.count <= 0xFFFF, "STUN attribute value too long")
        attributes.append(attribute)
    }

    public mutating func append(_ type: AttributeType, value: some Sequence<UInt8>) {
        append(STUNAttribute(type: type, value: value))
    }

    /// The first attribute of `type`; later duplicates are ignored as RFC 8489 §14 allows.
    public func attribute(_ type: AttributeType) -> STUNAttribute? {
        attributes.first { $0.type == type }
    }

    /// The value of the first attribute of `type`.
    public subscript(_ type: AttributeType) -> ArraySlice<UInt8>? {
        attribute(type)?.value
    }

    /// Every attribute of `type` in order (XOR-PEER-ADDRESS may repeat in CreatePermission).
    public func attributes(_ type: AttributeType) -> [STUNAttribute] {
        attributes.filter { $0.type == type }
    }

    public func contains(_ type: AttributeType) -> Bool {
        attributes.contains { $0.type == type }
    }

    /// Comprehension-required attribute types not in `understood`, for a 420 response's UNKNOWN-ATTRIBUTES.
    public func unknownComprehensionRequiredAttributes(
        understood: (AttributeType) -> Bool = { $0.isKnown }
    ) -> [AttributeType] {
        var unknown: [AttributeType] = []
        for attribute in attributes
        where attribute.type.isComprehensionRequired && !understood(attribute.type) && !unknown.contains(attribute.type) {
            unknown.append(attribute.type)
        }
        return unknown
    }

    // MARK: Equality ignores the cached encoding.

    public static func == (lhs: STUNMessage, rhs: STUNMessage) -> Bool {
        lhs.type == rhs.type && lhs.transactionID == rhs.transactionID && lhs.attributes == rhs.attributes
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(type)
        hasher.combine(transactionID)
        hasher.combine(attributes)
    }

    public var description: String {
        "\(type) \(transactionID) [\(attributes.map(\.description).joined(separator: ", "))]"
    }
}
