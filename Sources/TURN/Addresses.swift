import NIOCore
import STUN
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An IP address as plain integers: cheap to hash and compare on the relay's hot path,
/// where NIO's `SocketAddress` (a boxed `sockaddr` plus host string) would cost an allocation.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// Host byte order.
    case v4(UInt32)
    /// Host byte order, most significant half first.
    case v6(UInt64, UInt64)

    public init?(_ text: String) {
        guard let parsed = STUNAddress(ip: text, port: 0) else { return nil }
        self.init(parsed)
    }

    public init(_ address: STUNAddress) {
        self = address.family == .ipv4 ? .v4(UInt32(truncatingIfNeeded: address.ipLow)) : .v6(address.ipHigh, address.ipLow)
    }

    /// The 4 or 16 address bytes in network order.
    public init?(bytes: some Collection<UInt8>) {
        guard let parsed = STUNAddress(ipBytes: bytes, port: 0) else { return nil }
        self.init(parsed)
    }

    public var bytes: [UInt8] { STUNAddress(self, port: 0).ipBytes }

    public var isIPv4: Bool { if case .v4 = self { true } else { false } }

    public var description: String { STUNAddress(self, port: 0).ipString }
}

extension STUNAddress {
    public init(_ ip: IPAddress, port: UInt16) {
        switch ip {
        case .v4(let a): self.init(ipv4: a, port: port)
        case .v6(let hi, let lo): self.init(ipv6High: hi, ipv6Low: lo, port: port)
        }
    }
}

/// An IP address and port: one end of a 5-tuple.
public struct TransportAddress: Hashable, Sendable, CustomStringConvertible {
    public var ip: IPAddress
    public var port: UInt16

    public init(ip: IPAddress, port: UInt16) {
        self.ip = ip
        self.port = port
    }

    public init(_ address: STUNAddress) {
        self.init(ip: IPAddress(address), port: address.port)
    }

    public var stunAddress: STUNAddress { STUNAddress(ip, port: port) }

    public init?(_ address: SocketAddress) {
        guard let kernel = KernelAddress(address) else { return nil }
        self.init(kernel)
    }

    public var description: String { stunAddress.description }
}

/// The transport between the client and the server. A small integer because it is part of
/// the 5-tuple hashed on every relayed packet.
public struct ClientTransport: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let udp = ClientTransport(rawValue: 17)
    public static let tcp = ClientTransport(rawValue: 6)
    public static let tls = ClientTransport(rawValue: 56)
    public var description: String {
        switch self {
        case .udp: "udp"
        case .tcp: "tcp"
        case .tls: "tls"
        default: "transport(\(rawValue))"
        }
    }
}

/// Identifies one client's session with the server (RFC 8656 §2: the 5-tuple).
public struct FiveTuple: Hashable, Sendable, CustomStringConvertible {
    public var client: TransportAddress
    public var server: TransportAddress
    public var transport: ClientTransport

    public init(client: TransportAddress, server: TransportAddress, transport: ClientTransport) {
        self.client = client
        self.server = server
        self.transport = transport
    }

    public var description: String { "\(transport) \(client)->\(server)" }
}
