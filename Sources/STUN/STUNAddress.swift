/// An IP address and port as carried by the STUN address attributes. Stored inline (no heap) so it can
/// key dictionaries on the relay's hot path.
public struct STUNAddress: Hashable, Sendable, CustomStringConvertible {
    public let family: AddressFamily
    public var port: UInt16
    /// IPv6 bytes 0-7 (zero for IPv4).
    public let ipHigh: UInt64
    /// IPv6 bytes 8-15, or the IPv4 address in the low 32 bits.
    public let ipLow: UInt64

    public init(ipv4: UInt32, port: UInt16) {
        self.family = .ipv4
        self.port = port
        self.ipHigh = 0
        self.ipLow = UInt64(ipv4)
    }

    public init(ipv6High: UInt64, ipv6Low: UInt64, port: UInt16) {
        self.family = .ipv6
        self.port = port
        self.ipHigh = ipv6High
        self.ipLow = ipv6Low
    }

    /// From network-order address bytes: 4 for IPv4, 16 for IPv6; nil for any other count.
    public init?(ipBytes: some Collection<UInt8>, port: UInt16) {
        switch ipBytes.count {
        case 4: self.init(ipv4: ipBytes.uint32(at: 0), port: port)
        case 16: self.init(ipv6High: ipBytes.uint64(at: 0), ipv6Low: ipBytes.uint64(at: 8), port: port)
        default: return nil
        }
    }

    /// From a textual IP ("192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1"); nil if it is not one.
    public init?(ip: some StringProtocol, port: UInt16) {
        if let v4 = IPText.parseIPv4(ip.utf8) {
            self.init(ipv4: v4, port: port)
        } else if let v6 = IPText.parseIPv6(ip.utf8) {
            self.init(ipv6High: v6.high, ipv6Low: v6.low, port: port)
        } else {
            return nil
        }
    }

    /// From "ip:port", "[ipv6]:port".
    public init?(_ text: some StringProtocol) {
        let ip: Substring
        let portText: Substring
        let s = Substring(text)
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]") else { return nil }
            ip = s[s.index(after: s.startIndex)..<close]
            let rest = s[s.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = s.lastIndex(of: ":") else { return nil }
            ip = s[..<colon]
            portText = s[s.index(after: colon)...]
            guard !ip.contains(":") else { return nil }
        }
        guard !portText.isEmpty, portText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let port = UInt16(portText) else { return nil }
        self.init(ip: ip, port: port)
    }

    /// The IPv4 address as a host-order integer, or nil for IPv6.
    public var ipv4: UInt32? { family == .ipv4 ? UInt32(truncatingIfNeeded: ipLow) : nil }

    /// Network-order address bytes (4 or 16).
    public var ipBytes: [UInt8] {
        var out = [UInt8]()
        if family == .ipv4 {
            out.appendBigEndian(UInt32(truncatingIfNeeded: ipLow))
        } else {
            out.reserveCapacity(16)
            out.appendBigEndian(ipHigh)
            out.appendBigEndian(ipLow)
        }
        return out
    }

    /// Canonical text (RFC 5952 for IPv6).
    public var ipString: String {
        family == .ipv4 ? IPText.formatIPv4(UInt32(truncatingIfNeeded: ipLow)) : IPText.formatIPv6(ipHigh, ipLow)
    }

    public var isLoopback: Bool {
        family == .ipv4 ? ipLow >> 24 == 127 : ipHigh == 0 && ipLow == 1
    }

    /// "192.0.2.1:3478" or "[2001:db8::1]:3478".
    public var description: String {
        family == .ipv4 ? "\(ipString):\(port)" : "[\(ipString)]:\(port)"
    }
}

/// Textual IP parsing and formatting without Foundation or libc.
enum IPText {
    static func parseIPv4(_ utf8: some Collection<UInt8>) -> UInt32? {
        var value: UInt32 = 0
        var octet: UInt32 = 0
        var digits = 0
        var dots = 0
        for c in utf8 {
            if c == UInt8(ascii: ".") {
                guard digits > 0, dots < 3 else { return nil }
                value = value << 8 | octet
                octet = 0
                digits = 0
                dots += 1
            } else if c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") {
                digits += 1
                octet = octet * 10 + UInt32(c - UInt8(ascii: "0"))
                guard digits <= 3, octet <= 255 else { return nil }
            } else {
                return nil
            }
        }
        guard dots == 3, digits > 0 else { return nil }
        return value << 8 | octet
    }

    static func parseIPv6(_ utf8: some Collection<UInt8>) -> (high: UInt64, low: UInt64)? {
        let chars = Array(utf8)
        guard chars.count >= 2, chars.count <= 45 else { return nil }
        var groups: [UInt16] = []
        var gap: Int? = nil
        var i = 0
        if chars.starts(with: [UInt8(ascii: ":"), UInt8(ascii: ":")]) {
            gap = 0
            i = 2
        } else if chars[0] == UInt8(ascii: ":") {
            return nil
        }
        while i < chars.count {
            // An embedded IPv4 tail fills the last two groups.
            if let dot = chars[i...].firstIndex(of: UInt8(ascii: ".")),
               !chars[i..<dot].contains(UInt8(ascii: ":")) {
                guard let v4 = parseIPv4(chars[i...]) else { return nil }
                groups.append(UInt16(truncatingIfNeeded: v4 >> 16))
                groups.append(UInt16(truncatingIfNeeded: v4))
                i = chars.count
                break
            }
            var group: UInt16 = 0
            var digits = 0
            while i < chars.count, let h = hexValue(chars[i]) {
                guard digits < 4 else { return nil }
                group = group << 4 | UInt16(h)
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            groups.append(group)
            guard groups.count <= 8 else { return nil }
            if i == chars.count { break }
            guard chars[i] == UInt8(ascii: ":") else { return nil }
            i += 1
            if i < chars.count, chars[i] == UInt8(ascii: ":") {
                guard gap == nil else { return nil }
                gap = groups.count
                i += 1
            } else if i == chars.count {
                return nil
            }
        }
        if let gap {
            guard groups.count <= 7 else { return nil }
            groups.insert(contentsOf: repeatElement(0, count: 8 - groups.count), at: gap)
        }
        guard groups.count == 8 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for (n, g) in groups.enumerated() {
            if n < 4 { high = high << 16 | UInt64(g) } else { low = low << 16 | UInt64(g) }
        }
        return (high, low)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    static func formatIPv4(_ v: UInt32) -> String {
        "\(v >> 24).\(v >> 16 & 0xFF).\(v >> 8 & 0xFF).\(v & 0xFF)"
    }

    static func formatIPv6(_ high: UInt64, _ low: UInt64) -> String {
        if high == 0, low >> 32 == 0xFFFF {
            return "::ffff:" + formatIPv4(UInt32(truncatingIfNeeded: low))
        }
        let groups = (0..<8).map { n -> UInt16 in
            UInt16(truncatingIfNeeded: (n < 4 ? high : low) >> (16 * (3 - UInt64(n % 4))))
        }
        // RFC 5952 §4.2: compress the longest run of two or more zero groups, the first on a tie.
        var bestStart = -1
        var bestLength = 1
        var n = 0
        while n < 8 {
            guard groups[n] == 0 else { n += 1; continue }
            var end = n
            while end < 8, groups[end] == 0 { end += 1 }
            if end - n > bestLength { bestStart = n; bestLength = end - n }
            n = end
        }
        func hex(_ range: Range<Int>) -> String {
            groups[range].map { String($0, radix: 16) }.joined(separator: ":")
        }
        guard bestStart >= 0 else { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }
}
