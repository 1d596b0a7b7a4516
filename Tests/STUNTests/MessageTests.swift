import STUN
import Testing

@Suite("STUN message encoding")
struct MessageTests {
    @Test(arguments: [
        (STUNMethod.binding, STUNClass.request, UInt16(0x0001)),
        (.binding, .successResponse, 0x0101),
        (.binding, .errorResponse, 0x0111),
        (.allocate, .request, 0x0003),
        (.allocate, .successResponse, 0x0103),
        (.allocate, .errorResponse, 0x0113),
        (.refresh, .request, 0x0004),
        (.send, .indication, 0x0016),
        (.data, .indication, 0x0017),
        (.createPermission, .request, 0x0008),
        (.channelBind, .successResponse, 0x0109),
        (STUNMethod(rawValue: 0xFFF), .errorResponse, 0x3FFF),
    ])
    func typeInterleaving(method: STUNMethod, cls: STUNClass, raw: UInt16) {
        let type = STUNMessageType(method: method, class: cls)
        #expect(type.rawValue == raw)
        #expect(STUNMessageType(rawValue: raw) == type)
    }

    @Test func allocateRoundTrip() throws {
        let key = STUNKey.longTerm(username: "u", realm: "r", password: "p")
        let peer = try #require(STUNAddress("[2001:db8::7]:9000"))
        var request = STUNMessage(method: .allocate, class: .request)
        request.appendRequestedTransport(.udp)
        request.appendLifetime(600)
        request.appendAddressFamily(.ipv6)
        request.appendAddressFamily(.ipv4, type: .additionalAddressFamily)
        request.appendEvenPort(reserveNext: true)
        request.appendDontFragment()
        request.appendXORAddress(.xorPeerAddress, peer)
        request.appendXORAddress(.xorPeerAddress, STUNAddress(ipv4: 0x7F00_0001, port: 1))
        request.appendChannelNumber(ChannelNumber(rawValue: 0x4001))
        request.appendReservationToken(0x0102_0304_0506_0708)
        request.appendData([1, 2, 3, 4, 5])
        request.appendString(.username, "u")
        request.appendString(.realm, "r")
        request.appendString(.nonce, "n0nce")
        request.appendString(.software, "Samtalerum")
        request.appendPasswordAlgorithms([.md5, .sha256])
        request.appendPasswordAlgorithm(.sha256)
        request.appendMessageIntegrity(key: key)
        request.appendMessageIntegritySHA256(key: key)
        request.appendFingerprint()

        let bytes = request.serialize()
        #expect(bytes.count == request.encodedLength)
        #expect(bytes.count % 4 == 0)
        #expect(STUNMessage.isSTUN(bytes))
        let parsed = try STUNMessage(bytes: bytes)
        #expect(parsed == request)
        #expect(try parsed.requestedTransport == .udp)
        #expect(try parsed.lifetime == 600)
        #expect(try parsed.addressFamily() == .ipv6)
        #expect(try parsed.addressFamily(.additionalAddressFamily) == .ipv4)
        #expect(try parsed.evenPort == true)
        #expect(parsed.dontFragment)
        #expect(try parsed.xorAddresses(.xorPeerAddress) == [peer, STUNAddress(ipv4: 0x7F00_0001, port: 1)])
        #expect(try parsed.channelNumber == ChannelNumber(rawValue: 0x4001))
        #expect(try parsed.reservationToken == 0x0102_0304_0506_0708)
        #expect(parsed.data == [1, 2, 3, 4, 5])
        #expect(try parsed.username == "u")
        #expect(try parsed.nonce == "n0nce")
        #expect(try parsed.passwordAlgorithms == [.md5, .sha256])
        #expect(try parsed.passwordAlgorithm == .sha256)
        #expect(parsed.verifyMessageIntegrity(key: key))
        #expect(parsed.verifyMessageIntegritySHA256(key: key))
        #expect(parsed.checkIntegrity(key: key) == .valid)
        #expect(parsed.verifyFingerprint())
        #expect(parsed.unknownComprehensionRequiredAttributes().isEmpty)
    }

    @Test func errorResponseRoundTrip() throws {
        let request = STUNMessage(method: .allocate, class: .request)
        var response = request.response(.errorResponse)
        response.appendErrorCode(.staleNonce)
        response.appendUnknownAttributes([AttributeType(rawValue: 0x0031), .icmp])
        response.appendErrorCode(.forbidden, reason: "ignored duplicate")
        let parsed = try STUNMessage(bytes: response.serialize())
        #expect(parsed.transactionID == request.transactionID)
        #expect(parsed.method == .allocate)
        #expect(parsed.class == .errorResponse)
        #expect(try parsed.errorCode == ErrorCodeAttribute(code: .staleNonce, reason: "Stale Nonce"))
        #expect(try parsed.unknownAttributes == [AttributeType(rawValue: 0x0031), .icmp])
    }

    @Test(arguments: [
        (ErrorCode.tryAlternate, "Try Alternate"), (.badRequest, "Bad Request"), (.unauthenticated, "Unauthenticated"),
        (.forbidden, "Forbidden"), (.unknownAttribute, "Unknown Attribute"), (.allocationMismatch, "Allocation Mismatch"),
        (.staleNonce, "Stale Nonce"), (.addressFamilyNotSupported, "Address Family not Supported"),
        (.wrongCredentials, "Wrong Credentials"), (.unsupportedTransportProtocol, "Unsupported Transport Protocol"),
        (.connectionAlreadyExists, "Connection Already Exists"),
        (.connectionTimeoutOrFailure, "Connection Timeout or Failure"),
        (.allocationQuotaReached, "Allocation Quota Reached"), (.serverError, "Server Error"),
        (.insufficientCapacity, "Insufficient Capacity"),
    ])
    func errorCodeReasons(code: ErrorCode, reason: String) throws {
        #expect(code.reasonPhrase == reason)
        var message = STUNMessage(method: .refresh, class: .errorResponse)
        message.appendErrorCode(code)
        #expect(try STUNMessage(bytes: message.serialize()).errorCode?.code == code)
    }

    @Test func unknownComprehensionRequired() {
        var message = STUNMessage(method: .binding, class: .request)
        message.append(AttributeType(rawValue: 0x7FFE), value: [1])
        message.append(AttributeType(rawValue: 0xC000), value: [1])
        message.append(AttributeType(rawValue: 0x7FFE), value: [2])
        #expect(message.unknownComprehensionRequiredAttributes() == [AttributeType(rawValue: 0x7FFE)])
        #expect(AttributeType.lifetime.isComprehensionRequired)
        #expect(!AttributeType.software.isComprehensionRequired)
    }

    /// RFC 8489 §14.5: attributes following MESSAGE-INTEGRITY other than MI-SHA256/FINGERPRINT are ignored.
    @Test func attributesAfterIntegrityAreIgnored() throws {
        let key = STUNKey.shortTerm(password: "k")
        var message = STUNMessage(method: .send, class: .indication)
        message.appendLifetime(1)
        message.appendMessageIntegrity(key: key)
        var bytes = message.serialize()
        bytes += [0x00, 0x13, 0x00, 0x04, 9, 9, 9, 9]
        bytes[3] += 8
        let parsed = try STUNMessage(bytes: bytes)
        #expect(parsed.data == nil)
        #expect(parsed.attributes.map(\.type) == [.lifetime, .messageIntegrity])
        #expect(parsed.verifyMessageIntegrity(key: key))
        #expect(parsed.serialize() == bytes)
    }

    @Test func mutationInvalidatesCachedEncoding() throws {
        let key = STUNKey.shortTerm(password: RFC5769.shortTermPassword)
        var message = try STUNMessage(bytes: RFC5769.request)
        message.transactionID = TransactionID(high: 1, low: 2)
        #expect(!message.verifyMessageIntegrity(key: key))
        #expect(try STUNMessage(bytes: message.serialize()).transactionID == TransactionID(high: 1, low: 2))
    }

    /// MESSAGE-INTEGRITY-SHA256 wins when both are present, so a broken SHA-256 MAC fails the check.
    @Test func sha256IntegrityIsPreferred() throws {
        let key = STUNKey.longTerm(username: "u", realm: "r", password: "p", algorithm: .sha256)
        var message = STUNMessage(method: .refresh, class: .request)
        message.appendLifetime(0)
        message.appendMessageIntegrity(key: key)
        message.appendMessageIntegritySHA256(key: key)
        var bytes = message.serialize()
        #expect(try STUNMessage(bytes: bytes).checkIntegrity(key: key) == .valid)
        bytes[bytes.count - 1] ^= 0x01
        let tampered = try STUNMessage(bytes: bytes)
        #expect(tampered.verifyMessageIntegrity(key: key))
        #expect(tampered.checkIntegrity(key: key) == .invalid)
        #expect(STUNMessage(method: .binding, class: .request).checkIntegrity(key: key) == .absent)
    }

    @Test func transactionIDBytes() throws {
        let id = try #require(RFC5769.transactionID)
        #expect(id.bytes == hex("b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"))
        #expect(id.description == "b7e7a701bc34d686fa87dfae")
        #expect(TransactionID(bytes: [1, 2, 3]) == nil)
        #expect(TransactionID.random() != TransactionID.random())
    }

    @Test func demux() {
        #expect(PacketKind(firstByte: 0x00) == .stun)
        #expect(PacketKind(firstByte: 0x3F) == .stun)
        #expect(PacketKind(firstByte: 0x40) == .channelData)
        #expect(PacketKind(firstByte: 0x7F) == .channelData)
        #expect(PacketKind(firstByte: 0x80) == .other)
        #expect(STUNMessage.isSTUN(firstByte: 0x01))
        #expect(!STUNMessage.isSTUN(firstByte: 0x40))
        #expect(STUNMessage.isSTUN(RFC5769.request))
        #expect(!STUNMessage.isSTUN(Array(RFC5769.request.prefix(19))))
        #expect(!STUNMessage.isSTUN([UInt8](repeating: 0, count: 20)))
    }
}
