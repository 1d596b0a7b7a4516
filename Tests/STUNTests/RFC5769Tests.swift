import STUN
import Testing

@Suite("RFC 5769 test vectors")
struct RFC5769Tests {
    let shortTermKey = STUNKey.shortTerm(password: RFC5769.shortTermPassword)

    @Test func sampleRequest() throws {
        let message = try STUNMessage(bytes: RFC5769.request)
        #expect(message.type == STUNMessageType(method: .binding, class: .request))
        #expect(message.transactionID == RFC5769.transactionID)
        #expect(try message.software == "STUN test client")
        #expect(try message.username == "evtj:h6vY")
        #expect(message[.priority] == [0x6e, 0x00, 0x01, 0xff])
        #expect(message.verifyFingerprint())
        #expect(message.verifyMessageIntegrity(key: shortTermKey))
        #expect(message.checkIntegrity(key: shortTermKey) == .valid)
        #expect(message.checkIntegrity(key: .shortTerm(password: "wrong")) == .invalid)
        #expect(message.serialize() == RFC5769.request)
    }

    @Test func ipv4Response() throws {
        let message = try STUNMessage(bytes: RFC5769.ipv4Response)
        #expect(message.type == STUNMessageType(method: .binding, class: .successResponse))
        #expect(try message.software == "test vector")
        let mapped = try #require(try message.xorAddress(.xorMappedAddress))
        #expect(mapped == STUNAddress(ip: "192.0.2.1", port: 32853))
        #expect(mapped.description == "192.0.2.1:32853")
        #expect(message.verifyFingerprint())
        #expect(message.verifyMessageIntegrity(key: shortTermKey))
    }

    @Test func ipv6Response() throws {
        let message = try STUNMessage(bytes: RFC5769.ipv6Response)
        let mapped = try #require(try message.xorAddress())
        #expect(mapped == STUNAddress(ip: "2001:db8:1234:5678:11:2233:4455:6677", port: 32853))
        #expect(mapped.family == .ipv6)
        #expect(message.verifyFingerprint())
        #expect(message.verifyMessageIntegrity(key: shortTermKey))
    }

    @Test func longTermRequest() throws {
        let message = try STUNMessage(bytes: RFC5769.longTermRequest)
        #expect(try message.username == RFC5769.longTermUsername)
        #expect(try message.nonce == RFC5769.longTermNonce)
        #expect(try message.realm == RFC5769.longTermRealm)
        #expect(!message.contains(.fingerprint))
        #expect(!message.verifyFingerprint())
        let key = STUNKey.longTerm(
            username: RFC5769.longTermUsername, realm: RFC5769.longTermRealm, password: RFC5769.longTermPassword)
        #expect(message.verifyMessageIntegrity(key: key))
        let wrong = STUNKey.longTerm(
            username: RFC5769.longTermUsername, realm: RFC5769.longTermRealm, password: "thematrix")
        #expect(!message.verifyMessageIntegrity(key: wrong))
    }

    /// Building the §2.4 request from its parts must reproduce the published bytes exactly.
    @Test func longTermRequestReencodes() throws {
        let parsed = try STUNMessage(bytes: RFC5769.longTermRequest)
        var built = STUNMessage(method: .binding, class: .request, transactionID: parsed.transactionID)
        built.appendString(.username, RFC5769.longTermUsername)
        built.appendString(.nonce, RFC5769.longTermNonce)
        built.appendString(.realm, RFC5769.longTermRealm)
        built.appendMessageIntegrity(key: .longTerm(
            username: RFC5769.longTermUsername, realm: RFC5769.longTermRealm, password: RFC5769.longTermPassword))
        #expect(built.serialize() == RFC5769.longTermRequest)
        #expect(built == parsed)
    }

    @Test func xorAddressesReencode() throws {
        for vector in [RFC5769.ipv4Response, RFC5769.ipv6Response] {
            let parsed = try STUNMessage(bytes: vector)
            let address = try #require(try parsed.xorAddress())
            var built = STUNMessage(method: .binding, class: .successResponse, transactionID: parsed.transactionID)
            built.appendXORAddress(.xorMappedAddress, address)
            #expect(built[.xorMappedAddress] == parsed[.xorMappedAddress])
        }
    }

    static let vectors: [(name: String, bytes: [UInt8], key: STUNKey)] = [
        ("2.1", RFC5769.request, .shortTerm(password: RFC5769.shortTermPassword)),
        ("2.2", RFC5769.ipv4Response, .shortTerm(password: RFC5769.shortTermPassword)),
        ("2.3", RFC5769.ipv6Response, .shortTerm(password: RFC5769.shortTermPassword)),
        ("2.4", RFC5769.longTermRequest, .longTerm(
            username: RFC5769.longTermUsername, realm: RFC5769.longTermRealm, password: RFC5769.longTermPassword)),
    ]

    /// Every bit before MESSAGE-INTEGRITY's end is protected: a flip either breaks parsing or the MAC.
    @Test(arguments: vectors.indices, [0, 1, 3, 7, 8, 11, 19, 20, 23, 24, 30, 35, 40, 47])
    func singleBitFlipFailsIntegrity(vector: Int, position: Int) throws {
        let (_, bytes, key) = Self.vectors[vector]
        let original = try STUNMessage(bytes: bytes)
        let integrityEnd = try #require(Self.integrityEnd(in: bytes))
        #expect(original.verifyMessageIntegrity(key: key))
        for bit in 0..<8 {
            for target in [position, integrityEnd - 1 - position] where target >= 0 && target < integrityEnd {
                var flipped = bytes
                flipped[target] ^= 1 << bit
                let message = try? STUNMessage(bytes: flipped)
                #expect(message?.verifyMessageIntegrity(key: key) != true, "byte \(target) bit \(bit)")
                if original.contains(.fingerprint) {
                    #expect(message?.verifyFingerprint() != true, "byte \(target) bit \(bit)")
                }
            }
        }
    }

    static func integrityEnd(in bytes: [UInt8]) -> Int? {
        var offset = 20
        while offset + 4 <= bytes.count {
            let type = UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
            let length = Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            if type == AttributeType.messageIntegrity.rawValue { return offset + 4 + length }
            offset += 4 + (length + 3) / 4 * 4
        }
        return nil
    }
}
