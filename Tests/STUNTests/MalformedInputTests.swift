import STUN
import Testing

/// Wraps `body` in a Binding request header whose length field is the body's size.
func stunMessage(_ body: [UInt8], type: UInt16 = 0x0001) -> [UInt8] {
    [UInt8(type >> 8), UInt8(type & 0xFF), UInt8(body.count >> 8), UInt8(body.count & 0xFF), 0x21, 0x12, 0xA4, 0x42]
        + [UInt8](repeating: 0xAB, count: 12) + body
}

/// One TLV with an explicit declared length and raw (already padded, or deliberately not) value bytes.
func tlv(_ type: AttributeType, length: Int? = nil, _ value: [UInt8]) -> [UInt8] {
    let declared = length ?? value.count
    let padding = [UInt8](repeating: 0, count: length == nil ? (4 - value.count % 4) % 4 : 0)
    return [UInt8(type.rawValue >> 8), UInt8(type.rawValue & 0xFF), UInt8(declared >> 8), UInt8(declared & 0xFF)]
        + value + padding
}

struct MalformedCase: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    let error: STUNParseError
    var testDescription: String { name }
}

@Suite("Malformed input")
struct MalformedInputTests {
    static let good = stunMessage(tlv(.software, Array("abc".utf8)))

    static func mutate(_ change: (inout [UInt8]) -> Void) -> [UInt8] {
        var bytes = good
        change(&bytes)
        return bytes
    }

    static let messageCases: [MalformedCase] = [
        MalformedCase(name: "empty", bytes: [], error: .truncatedHeader),
        MalformedCase(name: "19-byte header", bytes: Array(good.prefix(19)), error: .truncatedHeader),
        MalformedCase(name: "first bit set", bytes: mutate { $0[0] |= 0x80 }, error: .notSTUN),
        MalformedCase(name: "second bit set (ChannelData)", bytes: mutate { $0[0] |= 0x40 }, error: .notSTUN),
        MalformedCase(name: "bad magic cookie", bytes: mutate { $0[7] ^= 0x01 }, error: .badMagicCookie),
        MalformedCase(name: "length not multiple of 4", bytes: mutate { $0[3] = 6 }, error: .lengthNotMultipleOf4),
        MalformedCase(name: "length beyond data", bytes: mutate { $0[3] = 12 }, error: .lengthMismatch),
        MalformedCase(name: "length short of data", bytes: mutate { $0[3] = 4 }, error: .lengthMismatch),
        MalformedCase(name: "trailing bytes", bytes: good + [0, 0, 0, 0], error: .lengthMismatch),
        MalformedCase(name: "truncated datagram", bytes: Array(good.dropLast()), error: .lengthMismatch),
        MalformedCase(name: "attribute overruns message", bytes: mutate { $0[23] = 9 }, error: .truncatedAttribute),
        MalformedCase(name: "attribute padding overruns message",
                      bytes: stunMessage(tlv(.software, length: 5, [1, 2, 3, 4])), error: .truncatedAttribute),
        MalformedCase(name: "attribute after FINGERPRINT",
                      bytes: stunMessage(tlv(.fingerprint, [1, 2, 3, 4]) + tlv(.software, [1])),
                      error: .attributeAfterFingerprint),
        MalformedCase(name: "short MESSAGE-INTEGRITY",
                      bytes: stunMessage(tlv(.messageIntegrity, [UInt8](repeating: 0, count: 16))),
                      error: .malformedAttribute(.messageIntegrity)),
        MalformedCase(name: "long FINGERPRINT", bytes: stunMessage(tlv(.fingerprint, [UInt8](repeating: 0, count: 8))),
                      error: .malformedAttribute(.fingerprint)),
        MalformedCase(name: "12-byte MESSAGE-INTEGRITY-SHA256",
                      bytes: stunMessage(tlv(.messageIntegritySHA256, [UInt8](repeating: 0, count: 12))),
                      error: .malformedAttribute(.messageIntegritySHA256)),
        MalformedCase(name: "36-byte MESSAGE-INTEGRITY-SHA256",
                      bytes: stunMessage(tlv(.messageIntegritySHA256, [UInt8](repeating: 0, count: 36))),
                      error: .malformedAttribute(.messageIntegritySHA256)),
        MalformedCase(name: "unaligned MESSAGE-INTEGRITY-SHA256",
                      bytes: stunMessage(tlv(.messageIntegritySHA256, [UInt8](repeating: 0, count: 18))),
                      error: .malformedAttribute(.messageIntegritySHA256)),
    ]

    @Test(arguments: messageCases)
    func messageRejected(_ input: MalformedCase) {
        #expect(throws: input.error) { try STUNMessage(bytes: input.bytes) }
        #expect(throws: input.error) { try STUNMessage.parse(input.bytes[...]) }
        #expect(throws: input.error) { try STUNMessage(bytes: AnyCollection(input.bytes)) }
    }

    @Test func goodBaseParses() throws {
        #expect(try STUNMessage(bytes: Self.good).software == "abc")
    }

    enum Accessor: Sendable {
        case xorAddress, address, lifetime, channelNumber, requestedTransport, addressFamily, evenPort
        case reservationToken, errorCode, unknownAttributes, string, passwordAlgorithms, passwordAlgorithm

        func read(_ message: STUNMessage, _ type: AttributeType) throws(STUNParseError) {
            switch self {
            case .xorAddress: _ = try message.xorAddress(type)
            case .address: _ = try message.address(type)
            case .lifetime: _ = try message.lifetime
            case .channelNumber: _ = try message.channelNumber
            case .requestedTransport: _ = try message.requestedTransport
            case .addressFamily: _ = try message.addressFamily(type)
            case .evenPort: _ = try message.evenPort
            case .reservationToken: _ = try message.reservationToken
            case .errorCode: _ = try message.errorCode
            case .unknownAttributes: _ = try message.unknownAttributes
            case .string: _ = try message.string(type)
            case .passwordAlgorithms: _ = try message.passwordAlgorithms
            case .passwordAlgorithm: _ = try message.passwordAlgorithm
            }
        }
    }

    struct AttributeCase: Sendable, CustomTestStringConvertible {
        let name: String
        let type: AttributeType
        let value: [UInt8]
        let accessor: Accessor
        var testDescription: String { name }
    }

    static let attributeCases: [AttributeCase] = [
        AttributeCase(name: "XOR address family 3", type: .xorMappedAddress, value: [0, 3, 0, 0, 1, 2, 3, 4],
                      accessor: .xorAddress),
        AttributeCase(name: "XOR IPv4 with 16 address bytes", type: .xorPeerAddress,
                      value: [0, 1, 0, 0] + [UInt8](repeating: 1, count: 16), accessor: .xorAddress),
        AttributeCase(name: "XOR IPv6 with 4 address bytes", type: .xorRelayedAddress, value: [0, 2, 0, 0, 1, 2, 3, 4],
                      accessor: .xorAddress),
        AttributeCase(name: "MAPPED-ADDRESS too short", type: .mappedAddress, value: [0, 1, 0], accessor: .address),
        AttributeCase(name: "LIFETIME 3 bytes", type: .lifetime, value: [0, 0, 1], accessor: .lifetime),
        AttributeCase(name: "CHANNEL-NUMBER 2 bytes", type: .channelNumber, value: [0x40, 0], accessor: .channelNumber),
        AttributeCase(name: "REQUESTED-TRANSPORT 1 byte", type: .requestedTransport, value: [17],
                      accessor: .requestedTransport),
        AttributeCase(name: "REQUESTED-ADDRESS-FAMILY 8 bytes", type: .requestedAddressFamily,
                      value: [1, 0, 0, 0, 0, 0, 0, 0], accessor: .addressFamily),
        AttributeCase(name: "EVEN-PORT 4 bytes", type: .evenPort, value: [0x80, 0, 0, 0], accessor: .evenPort),
        AttributeCase(name: "RESERVATION-TOKEN 4 bytes", type: .reservationToken, value: [1, 2, 3, 4],
                      accessor: .reservationToken),
        AttributeCase(name: "ERROR-CODE 3 bytes", type: .errorCode, value: [0, 0, 4], accessor: .errorCode),
        AttributeCase(name: "ERROR-CODE class 2", type: .errorCode, value: [0, 0, 2, 0], accessor: .errorCode),
        AttributeCase(name: "ERROR-CODE number 100", type: .errorCode, value: [0, 0, 4, 100], accessor: .errorCode),
        AttributeCase(name: "ERROR-CODE reason not UTF-8", type: .errorCode, value: [0, 0, 4, 0, 0xC3, 0x28],
                      accessor: .errorCode),
        AttributeCase(name: "UNKNOWN-ATTRIBUTES odd length", type: .unknownAttributes, value: [0, 1, 0],
                      accessor: .unknownAttributes),
        AttributeCase(name: "USERNAME not UTF-8", type: .username, value: [0x61, 0xFF], accessor: .string),
        AttributeCase(name: "USERNAME 514 bytes", type: .username, value: [UInt8](repeating: 0x61, count: 514),
                      accessor: .string),
        AttributeCase(name: "REALM 764 bytes", type: .realm, value: [UInt8](repeating: 0x61, count: 764),
                      accessor: .string),
        AttributeCase(name: "PASSWORD-ALGORITHMS parameters overrun", type: .passwordAlgorithms,
                      value: [0, 1, 0, 8, 0, 0, 0, 0], accessor: .passwordAlgorithms),
        AttributeCase(name: "PASSWORD-ALGORITHMS trailing 2 bytes", type: .passwordAlgorithms,
                      value: [0, 1, 0, 0, 0, 2], accessor: .passwordAlgorithms),
        AttributeCase(name: "PASSWORD-ALGORITHM 2 bytes", type: .passwordAlgorithm, value: [0, 1],
                      accessor: .passwordAlgorithm),
    ]

    /// The message parses (values are opaque at that level); the typed accessor rejects the value.
    @Test(arguments: attributeCases)
    func attributeRejected(_ input: AttributeCase) throws {
        let message = try STUNMessage(bytes: stunMessage(tlv(input.type, input.value)))
        #expect(throws: STUNParseError.malformedAttribute(input.type)) { try input.accessor.read(message, input.type) }
    }

    @Test func absentAttributesReadAsNil() throws {
        let message = try STUNMessage(bytes: Self.good)
        #expect(try message.xorAddress() == nil)
        #expect(try message.lifetime == nil)
        #expect(try message.errorCode == nil)
        #expect(try message.username == nil)
        #expect(message.data == nil)
        #expect(!message.verifyMessageIntegrity(key: .shortTerm(password: "x")))
        #expect(!message.verifyFingerprint())
    }
}
