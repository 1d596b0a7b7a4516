/// A CIDR block such as `10.0.0.0/8` or `fe80::/10`.
public struct IPRange: Hashable, Sendable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    public init?(address: IPAddress, prefixLength: Int) {
        guard prefixLength >= 0, prefixLength <= (address.isIPv4 ? 32 : 128) else { return nil }
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Parses `a.b.c.d/n`, `x::/n`, or a bare address (a single host).
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        let full = address.isIPv4 ? 32 : 128
        if parts.count == 2 {
            guard let length = Int(parts[1]) else { return nil }
            self.init(address: address, prefixLength: length)
        } else {
            self.init(address: address, prefixLength: full)
        }
    }

    public func contains(_ ip: IPAddress) -> Bool {
        switch (address, ip) {
        case (.v4(let net), .v4(let a)):
            let mask: UInt32 = prefixLength == 0 ? 0 : ~0 << (32 - prefixLength)
            return net & mask == a & mask
        case (.v6(let netHi, let netLo), .v6(let hi, let lo)):
            let hiBits = min(prefixLength, 64), loBits = max(prefixLength - 64, 0)
            let hiMask: UInt64 = hiBits == 0 ? 0 : ~0 << (64 - hiBits)
            let loMask: UInt64 = loBits == 0 ? 0 : ~0 << (64 - loBits)
            return netHi & hiMask == hi & hiMask && netLo & loMask == lo & loMask
        default:
            return false
        }
    }

    public var description: String { "\(address)/\(prefixLength)" }
}

/// Which peers an allocation may talk to. Without this a TURN server is an open proxy into the
/// host's own network: loopback services, cloud metadata endpoints, the office LAN.
public struct PeerPolicy: Sendable {
    public enum Decision: Hashable, Sendable {
        case allowed
        case denied(reason: String)
    }

    /// Ranges no peer may be in unless explicitly allowed.
    public static let deniedByDefault: [(range: IPRange, reason: String)] = [
        ("0.0.0.0/8", "this network"),
        ("127.0.0.0/8", "loopback"),
        ("10.0.0.0/8", "private (RFC 1918)"),
        ("172.16.0.0/12", "private (RFC 1918)"),
        ("192.168.0.0/16", "private (RFC 1918)"),
        ("100.64.0.0/10", "carrier-grade NAT"),
        ("169.254.0.0/16", "link-local"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("198.18.0.0/15", "benchmarking"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("255.255.255.255/32", "broadcast"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "IPv4-compatible (deprecated)"),
        ("fe80::/10", "link-local"),
        ("fc00::/7", "unique local"),
        ("fec0::/10", "site-local (deprecated)"),
        ("ff00::/8", "multicast"),
        ("100::/64", "discard-only"),
    ].compactMap { text, reason in IPRange(text).map { ($0, reason) } }

    static let loopback: [IPRange] = ["127.0.0.0/8", "::1/128"].compactMap(IPRange.init)

    /// IPv6 forms that carry an IPv4 address: judged by the embedded address, so a denied IPv4
    /// range can't be reached through its mapped (::ffff:), NAT64 (64:ff9b::) or 6to4 (2002::) form.
    static let ipv4Mapped = IPRange("::ffff:0:0/96")
    static let nat64 = IPRange("64:ff9b::/96")
    static let sixToFour = IPRange("2002::/16")

    public var allowLoopback: Bool
    public var allowed: [IPRange]
    public var denied: [IPRange]
    public var ownAddresses: Set<IPAddress>

    /// - Parameters:
    ///   - allowLoopback: UNSAFE outside tests: lets clients reach services on the server's loopback.
    ///   - allowed: ranges permitted even though the default list denies them.
    ///   - denied: extra ranges to deny.
    ///   - ownAddresses: the relay's and listeners' addresses; relaying to itself is never useful.
    public init(allowLoopback: Bool = false, allowed: [IPRange] = [], denied: [IPRange] = [], ownAddresses: Set<IPAddress> = []) {
        self.allowLoopback = allowLoopback
        self.allowed = allowed
        self.denied = denied
        self.ownAddresses = ownAddresses
    }

    public func permits(_ ip: IPAddress) -> Bool { decision(for: ip) == .allowed }

    public func decision(for ip: IPAddress) -> Decision {
        if let embedded = Self.embeddedIPv4(ip) {
            if case .denied(let reason) = decision(for: embedded) { return .denied(reason: "embedded IPv4: \(reason)") }
        }
        let isLoopback = Self.loopback.contains { $0.contains(ip) }
        if allowLoopback && isLoopback { return .allowed }
        if allowed.contains(where: { $0.contains(ip) }) { return .allowed }
        if ownAddresses.contains(ip) { return .denied(reason: "relay's own address") }
        if denied.contains(where: { $0.contains(ip) }) { return .denied(reason: "configured deny") }
        if let hit = Self.deniedByDefault.first(where: { $0.range.contains(ip) }) { return .denied(reason: hit.reason) }
        return .allowed
    }

    static func embeddedIPv4(_ ip: IPAddress) -> IPAddress? {
        guard case .v6(let hi, let lo) = ip else { return nil }
        if ipv4Mapped?.contains(ip) == true || nat64?.contains(ip) == true {
            return .v4(UInt32(truncatingIfNeeded: lo))
        }
        if sixToFour?.contains(ip) == true {
            return .v4(UInt32(truncatingIfNeeded: hi >> 16))
        }
        return nil
    }
}
