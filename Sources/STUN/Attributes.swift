/// ERROR-CODE contents.
public struct ErrorCodeAttribute: Hashable, Sendable {
    public var code: ErrorCode
    public var reason: String

    public init(code: ErrorCode, reason: String? = nil) {
        self.code = code
        self.reason = reason ?? code.reasonPhrase
    }
}

// Typed accessors return nil when the attribute is absent and throw when it is present but malformed.
extension STUNMessage {
    // MARK: Addresses

    /// Decodes the first XOR-MAPPED-/XOR-PEER-/XOR-RELAYED-ADDRESS of `type`.
    public func xorAddress(_ type: AttributeType = .xorMappedAddress) throws(STUNParseError) -> STUNAddress? {
        guard let value = self[type] else { return nil }
        return try Self.decodeAddress(value, type: type, xor: transactionID)
    }

    /// Decodes every attribute of `type` (CreatePermission may carry several XOR-PEER-ADDRESS).
    public func xorAddresses(_ type: AttributeType) throws(STUNParseError) -> [STUNAddress] {
        var out: [STUNAddress] = []
        for attribute in attributes where attribute.type == type {
            out.append(try Self.decodeAddress(attribute.value, type: type, xor: transactionID))
        }
        return out
    }

    /// Decodes a plain (non-XOR) address such as MAPPED-ADDRESS or ALTERNATE-SERVER.
    public func address(_ type: AttributeType) throws(STUNParseError) -> STUNAddress? {
        guard let value = self[type] else { return nil }
        return try Self.decodeAddress(value, type: type, xor: nil)
    }

    public mutating func appendXORAddress(_ type: AttributeType, _ address: STUNAddress) {
        append(STUNAttribute(type: type, value: Self.encodeAddress(address, xor: transactionID)))
    }

    public mutating func appendAddress(_ type: AttributeType, _ address: STUNAddress) {
        append(STUNAttribute(type: type, value: Self.encodeAddress(address, xor: nil)))
    }

    /// The 16-byte IPv6 XOR mask: magic cookie then transaction id.
    private static func xorMask(_ id: TransactionID) -> (high: UInt64, low: UInt64) {
        (UInt64(magicCookie) << 32 | UInt64(id.high), id.low)
    }

    static func decodeAddress(
        _ value: ArraySlice<UInt8>, type: AttributeType, xor id: TransactionID?
    ) throws(STUNParseError) -> STUNAddress {
        guard value.count >= 4 else { throw .malformedAttribute(type) }
        let family = AddressFamily(rawValue: value[value.startIndex + 1])
        var port = value.uint16(at: 2)
        if id != nil { port ^= UInt16(truncatingIfNeeded: magicCookie >> 16) }
        switch family {
        case .ipv4 where value.count == 8:
            let mask = id == nil ? 0 : magicCookie
            return STUNAddress(ipv4: value.uint32(at: 4) ^ mask, port: port)
        case .ipv6 where value.count == 20:
            let mask = id.map(xorMask) ?? (high: 0, low: 0)
            return STUNAddress(ipv6High: value.uint64(at: 4) ^ mask.high, ipv6Low: value.uint64(at: 12) ^ mask.low,
                               port: port)
        default:
            throw .malformedAttribute(type)
        }
    }

    static func encodeAddress(_ address: STUNAddress, xor id: TransactionID?) -> [UInt8] {
        var out: [UInt8] = [0, address.family.rawValue]
        out.reserveCapacity(20)
        out.appendBigEndian(address.port ^ (id == nil ? 0 : UInt16(truncatingIfNeeded: magicCookie >> 16)))
        if address.family == .ipv4 {
            out.appendBigEndian(UInt32(truncatingIfNeeded: address.ipLow) ^ (id == nil ? 0 : magicCookie))
        } else {
            let mask = id.map(xorMask) ?? (high: 0, low: 0)
            out.appendBigEndian(address.ipHigh ^ mask.high)
            out.appendBigEndian(address.ipLow ^ mask.low)
        }
        return out
    }

    // MARK: Fixed-size values

    /// LIFETIME in seconds.
    public var lifetime: UInt32? {
        get throws(STUNParseError) { try fixed(.lifetime, 4).map { $0.uint32(at: 0) } }
    }

    public mutating func appendLifetime(_ seconds: UInt32) {
        var v = [UInt8]()
        v.appendBigEndian(seconds)
        append(.lifetime, value: v)
    }

    /// CHANNEL-NUMBER (the number, not checked against the TURN range; see `ChannelNumber.isValid`).
    public var channelNumber: ChannelNumber? {
        get throws(STUNParseError) { try fixed(.channelNumber, 4).map { ChannelNumber(rawValue: $0.uint16(at: 0)) } }
    }

    public mutating func appendChannelNumber(_ channel: ChannelNumber) {
        var v = [UInt8]()
        v.appendBigEndian(channel.rawValue)
        v.append(contentsOf: [0, 0])
        append(.channelNumber, value: v)
    }

    public var requestedTransport: TransportProtocol? {
        get throws(STUNParseError) { try fixed(.requestedTransport, 4).map { TransportProtocol(rawValue: $0.first ?? 0) } }
    }

    public mutating func appendRequestedTransport(_ transport: TransportProtocol) {
        append(.requestedTransport, value: [transport.rawValue, 0, 0, 0])
    }

    /// REQUESTED-ADDRESS-FAMILY, or ADDITIONAL-ADDRESS-FAMILY when `type` says so.
    public func addressFamily(_ type: AttributeType = .requestedAddressFamily) throws(STUNParseError) -> AddressFamily? {
        try fixed(type, 4).map { AddressFamily(rawValue: $0.first ?? 0) }
    }

    public mutating func appendAddressFamily(_ family: AddressFamily, type: AttributeType = .requestedAddressFamily) {
        append(type, value: [family.rawValue, 0, 0, 0])
    }

    /// EVEN-PORT's R bit (reserve the next port too).
    public var evenPort: Bool? {
        get throws(STUNParseError) { try fixed(.evenPort, 1).map { ($0.first ?? 0) & 0x80 != 0 } }
    }

    public mutating func appendEvenPort(reserveNext: Bool) {
        append(.evenPort, value: [reserveNext ? 0x80 : 0])
    }

    public var reservationToken: UInt64? {
        get throws(STUNParseError) { try fixed(.reservationToken, 8).map { $0.uint64(at: 0) } }
    }

    public mutating func appendReservationToken(_ token: UInt64) {
        var v = [UInt8]()
        v.appendBigEndian(token)
        append(.reservationToken, value: v)
    }

    public var dontFragment: Bool { contains(.dontFragment) }

    public mutating func appendDontFragment() {
        append(.dontFragment, value: EmptyCollection())
    }

    private func fixed(_ type: AttributeType, _ length: Int) throws(STUNParseError) -> ArraySlice<UInt8>? {
        guard let value = self[type] else { return nil }
        guard value.count == length else { throw .malformedAttribute(type) }
        return value
    }

    // MARK: ERROR-CODE, UNKNOWN-ATTRIBUTES

    public var errorCode: ErrorCodeAttribute? {
        get throws(STUNParseError) {
            guard let value = self[.errorCode] else { return nil }
            guard value.count >= 4, value.count <= 4 + 763 else { throw .malformedAttribute(.errorCode) }
            let s = value.startIndex
            let cls = UInt16(value[s + 2] & 0x07)
            let number = UInt16(value[s + 3])
            guard (3...6).contains(cls), number < 100,
                  let reason = String(validating: value[(s + 4)...], as: UTF8.self)
            else { throw .malformedAttribute(.errorCode) }
            return ErrorCodeAttribute(code: ErrorCode(rawValue: cls * 100 + number), reason: reason)
        }
    }

    /// Appends ERROR-CODE; `reason` defaults to the registered phrase. Traps on a code outside 300-699.
    public mutating func appendErrorCode(_ code: ErrorCode, reason: String? = nil) {
        precondition((300...699).contains(code.rawValue), "ERROR-CODE must be 300-699")
        var v: [UInt8] = [0, 0, UInt8(code.rawValue / 100), UInt8(code.rawValue % 100)]
        v.append(contentsOf: (reason ?? code.reasonPhrase).utf8.prefix(763))
        append(.errorCode, value: v)
    }

    public var unknownAttributes: [AttributeType]? {
        get throws(STUNParseError) {
            guard let value = self[.unknownAttributes] else { return nil }
            guard value.count % 2 == 0 else { throw .malformedAttribute(.unknownAttributes) }
            return stride(from: 0, to: value.count, by: 2).map { AttributeType(rawValue: value.uint16(at: $0)) }
        }
    }

    public mutating func appendUnknownAttributes(_ types: [AttributeType]) {
        var v = [UInt8]()
        for type in types { v.appendBigEndian(type.rawValue) }
        append(.unknownAttributes, value: v)
    }

    // MARK: DATA and text

    /// DATA payload, sharing the parsed buffer.
    public var data: ArraySlice<UInt8>? { self[.data] }

    public mutating func appendData(_ payload: some Sequence<UInt8>) {
        append(.data, value: payload)
    }

    /// A UTF-8 text attribute (USERNAME, REALM, NONCE, SOFTWARE, ...), bounded by RFC 8489's byte limits.
    public func string(_ type: AttributeType) throws(STUNParseError) -> String? {
        guard let value = self[type] else { return nil }
        let limit = type == .username ? 513 : 763
        guard value.count <= limit, let text = String(validating: value, as: UTF8.self) else {
            throw .malformedAttribute(type)
        }
        return text
    }

    public mutating func appendString(_ type: AttributeType, _ text: String) {
        append(type, value: text.utf8)
    }

    public var username: String? { get throws(STUNParseError) { try string(.username) } }
    public var realm: String? { get throws(STUNParseError) { try string(.realm) } }
    public var nonce: String? { get throws(STUNParseError) { try string(.nonce) } }
    public var software: String? { get throws(STUNParseError) { try string(.software) } }

    // MARK: Password algorithms (RFC 8489 §14.11-14.12)

    /// PASSWORD-ALGORITHMS entries; parameters are skipped (none are defined for MD5 or SHA-256).
    public var passwordAlgorithms: [PasswordAlgorithm]? {
        get throws(STUNParseError) {
            guard let value = self[.passwordAlgorithms] else { return nil }
            var out: [PasswordAlgorithm] = []
            var offset = 0
            while offset < value.count {
                guard value.count - offset >= 4 else { throw .malformedAttribute(.passwordAlgorithms) }
                let parameters = Int(value.uint16(at: offset + 2))
                let next = offset + 4 + (parameters + 3) & ~3
                guard next <= value.count else { throw .malformedAttribute(.passwordAlgorithms) }
                out.append(PasswordAlgorithm(rawValue: value.uint16(at: offset)))
                offset = next
            }
            return out
        }
    }

    public mutating func appendPasswordAlgorithms(_ algorithms: [PasswordAlgorithm]) {
        var v = [UInt8]()
        for algorithm in algorithms {
            v.appendBigEndian(algorithm.rawValue)
            v.appendBigEndian(UInt16(0))
        }
        append(.passwordAlgorithms, value: v)
    }

    public var passwordAlgorithm: PasswordAlgorithm? {
        get throws(STUNParseError) {
            guard let value = self[.passwordAlgorithm] else { return nil }
            guard value.count >= 4, 4 + Int(value.uint16(at: 2)) <= value.count else {
                throw .malformedAttribute(.passwordAlgorithm)
            }
            return PasswordAlgorithm(rawValue: value.uint16(at: 0))
        }
    }

    public mutating func appendPasswordAlgorithm(_ algorithm: PasswordAlgorithm) {
        var v = [UInt8]()
        v.appendBigEndian(algorithm.rawValue)
        v.appendBigEndian(UInt16(0))
        append(.passwordAlgorithm, value: v)
    }
}
