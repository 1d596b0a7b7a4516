#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Crypto

/// An integrity key: the short-term password bytes, or a long-term hash of username, realm and password.
///
/// Passwords are used as given (UTF-8); OpaqueString (RFC 8265) preparation is the caller's business.
public struct STUNKey: Sendable, Equatable {
    public let bytes: [UInt8]
    let symmetricKey: SymmetricKey

    public init(bytes: some Sequence<UInt8>) {
        self.bytes = Array(bytes)
        self.symmetricKey = SymmetricKey(data: self.bytes)
    }

    /// Short-term credentials (RFC 8489 §9.1): the key is the password itself.
    public static func shortTerm(password: String) -> STUNKey {
        STUNKey(bytes: password.utf8)
    }

    /// Long-term credentials (RFC 8489 §9.2.2): MD5 or SHA-256 of "username:realm:password".
    public static func longTerm(
        username: String, realm: String, password: String, algorithm: PasswordAlgorithm = .md5
    ) -> STUNKey {
        let input = Array("\(username):\(realm):\(password)".utf8)
        if algorithm == .sha256 {
            return STUNKey(bytes: SHA256.hash(data: input))
        }
        return STUNKey(bytes: Insecure.MD5.hash(data: input))
    }

    public static func == (lhs: STUNKey, rhs: STUNKey) -> Bool {
        constantTimeEqual(lhs.bytes[...], rhs.bytes[...])
    }
}

/// Outcome of checking a message's integrity attribute against a key.
public enum IntegrityCheck: Sendable, Hashable {
    case absent
    case valid
    case invalid
}

extension STUNMessage {
    static let fingerprintXOR: UInt32 = 0x5354_554E

    /// USERHASH value (RFC 8489 §14.4): SHA-256 of "username:realm".
    public static func userhash(username: String, realm: String) -> [UInt8] {
        Array(SHA256.hash(data: Array("\(username):\(realm)".utf8)))
    }

    // MARK: Adding

    /// Appends MESSAGE-INTEGRITY (HMAC-SHA1) over the message as it stands.
    public mutating func appendMessageIntegrity(key: STUNKey) {
        appendMAC(.messageIntegrity, length: 20) { bytes, end in
            Array(Self.mac(Insecure.SHA1.self, key: key, wire: bytes[...], end: end, length: bytes.count - 20))
        }
    }

    /// Appends the full 32-byte MESSAGE-INTEGRITY-SHA256 over the message as it stands.
    public mutating func appendMessageIntegritySHA256(key: STUNKey) {
        appendMAC(.messageIntegritySHA256, length: 32) { bytes, end in
            Array(Self.mac(SHA256.self, key: key, wire: bytes[...], end: end, length: bytes.count - 20))
        }
    }

    /// Appends FINGERPRINT; call last.
    public mutating func appendFingerprint() {
        appendMAC(.fingerprint, length: 4) { bytes, end in
            let crc = Self.fingerprint(wire: bytes[...], end: end, length: bytes.count - 20)
            return [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
        }
    }

    /// Encodes once, reserves the attribute (so the header length already counts it), then fills it in.
    private mutating func appendMAC(
        _ type: AttributeType, length: Int, compute: ([UInt8], Int) -> [UInt8]
    ) {
        var bytes = serialize()
        let end = bytes.count
        precondition(end + 4 + length - Self.headerLength <= Self.maxBodyLength, "STUN message too large to encode")
        bytes.reserveCapacity(end + 4 + length)
        bytes.appendBigEndian(type.rawValue)
        bytes.appendBigEndian(UInt16(length))
        bytes.append(contentsOf: repeatElement(0, count: length))
        bytes.setBigEndian(UInt16(bytes.count - Self.headerLength), at: 2)
        let value = compute(bytes, end)
        bytes.replaceSubrange((end + 4)..<(end + 4 + length), with: value)
        append(STUNAttribute(type: type, value: bytes[(end + 4)...]), encoding: bytes)
    }

    // MARK: Verifying

    /// Checks MESSAGE-INTEGRITY-SHA256 when present (preferred, RFC 8489 §9.2.4), else MESSAGE-INTEGRITY.
    public func checkIntegrity(key: STUNKey) -> IntegrityCheck {
        if contains(.messageIntegritySHA256) {
            return verifyMessageIntegritySHA256(key: key) ? .valid : .invalid
        }
        if contains(.messageIntegrity) {
            return verifyMessageIntegrity(key: key) ? .valid : .invalid
        }
        return .absent
    }

    /// False when MESSAGE-INTEGRITY is absent or does not match.
    public func verifyMessageIntegrity(key: STUNKey) -> Bool {
        guard let expected = self[.messageIntegrity], expected.count == 20 else { return false }
        let wire = wireBytes
        guard let offset = Self.offset(of: .messageIntegrity, in: wire) else { return false }
        let mac = Self.mac(Insecure.SHA1.self, key: key, wire: wire, end: offset, length: offset + 24 - 20)
        return mac.withUnsafeBytes { constantTimeEqual($0[...], expected) }
    }

    /// False when MESSAGE-INTEGRITY-SHA256 is absent or does not match (truncated values compare as a prefix).
    public func verifyMessageIntegritySHA256(key: STUNKey) -> Bool {
        guard let expected = self[.messageIntegritySHA256], (16...32).contains(expected.count) else { return false }
        let wire = wireBytes
        guard let offset = Self.offset(of: .messageIntegritySHA256, in: wire) else { return false }
        let mac = Self.mac(SHA256.self, key: key, wire: wire, end: offset, length: offset + 4 + expected.count - 20)
        return mac.withUnsafeBytes { constantTimeEqual($0.prefix(expected.count), expected) }
    }

    /// False when FINGERPRINT is absent or does not match.
    public func verifyFingerprint() -> Bool {
        guard let expected = self[.fingerprint], expected.count == 4 else { return false }
        let wire = wireBytes
        guard let offset = Self.offset(of: .fingerprint, in: wire) else { return false }
        return Self.fingerprint(wire: wire, end: offset, length: offset + 8 - 20) == expected.uint32(at: 0)
    }

    // MARK: Primitives

    /// Offset of the first attribute of `type` in an encoded message.
    static func offset(of type: AttributeType, in wire: ArraySlice<UInt8>) -> Int? {
        var offset = headerLength
        while wire.count - offset >= 4 {
            if wire.uint16(at: offset) == type.rawValue { return offset }
            offset += 4 + (Int(wire.uint16(at: offset + 2)) + 3) & ~3
        }
        return nil
    }

    /// HMAC over `wire[0..<end]` with the header length field replaced by `length` (RFC 8489 §14.5).
    static func mac<H: HashFunction>(
        _: H.Type, key: STUNKey, wire: ArraySlice<UInt8>, end: Int, length: Int
    ) -> HMAC<H>.MAC {
        let s = wire.startIndex
        var hmac = HMAC<H>(key: key.symmetricKey)
        hmac.update(data: wire[s..<(s + 2)])
        withUnsafeBytes(of: UInt16(truncatingIfNeeded: length).bigEndian) { hmac.update(data: $0) }
        hmac.update(data: wire[(s + 4)..<(s + end)])
        return hmac.finalize()
    }

    /// CRC-32 over `wire[0..<end]` with the length field replaced by `length`, XORed per RFC 8489 §14.7.
    static func fingerprint(wire: ArraySlice<UInt8>, end: Int, length: Int) -> UInt32 {
        let s = wire.startIndex
        var crc = CRC32.start
        crc = CRC32.update(crc, wire[s..<(s + 2)])
        crc = CRC32.update(crc, [UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)])
        crc = CRC32.update(crc, wire[(s + 4)..<(s + end)])
        return CRC32.finish(crc) ^ fingerprintXOR
    }
}

/// CRC-32/ISO-HDLC (reflected polynomial 0xEDB88320), table-driven.
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static let start: UInt32 = 0xFFFF_FFFF

    static func update(_ crc: UInt32, _ bytes: some Sequence<UInt8>) -> UInt32 {
        var c = crc
        table.withUnsafeBufferPointer { t in
            for b in bytes { c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        }
        return c
    }

    static func finish(_ crc: UInt32) -> UInt32 { crc ^ 0xFFFF_FFFF }
}

/// Compares without an early exit so timing does not reveal how many leading MAC bytes matched.
func constantTimeEqual(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
    guard a.count == b.count else { return false }
    var diff: UInt8 = 0
    for (x, y) in zip(a, b) { diff |= x ^ y }
    return diff == 0
}
