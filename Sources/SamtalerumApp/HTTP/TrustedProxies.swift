import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The load balancers whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed
/// (`server.trustedProxies`). From any other peer those headers are ignored: anyone can send them.
struct TrustedProxies: Sendable {
    /// An address range; IPv4 is kept as IPv4-mapped IPv6 so one comparison serves both.
    struct Network: Sendable, Equatable {
        var bytes: [UInt8]
        var prefix: Int

        /// `10.0.0.0/8`, `2001:db8::/32`, or one address (`127.0.0.1`, `::1`).
        init?(_ text: String) {
            let parts = text.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count <= 2, let address = try? SocketAddress(ipAddress: String(parts[0]), port: 0),
                  let bytes = TrustedProxies.bytes(of: address) else { return nil }
            let isV4 = if case .v4 = address { true } else { false }
            let width = isV4 ? 32 : 128
            guard let length = parts.count == 2 ? Int(parts[1]) : width, (0...width).contains(length) else { return nil }
            self.bytes = bytes
            prefix = isV4 ? 96 + length : length
        }

        func contains(_ other: [UInt8]) -> Bool {
            var left = prefix
            for index in 0..<16 where left > 0 {
                let bits = min(8, left)
                let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
                if bytes[index] & mask != other[index] & mask { return false }
                left -= bits
            }
            return true
        }
    }

    let networks: [Network]

    /// The first entry that is not a CIDR, or the ranges.
    static func parse(_ entries: [String]) -> Result<TrustedProxies, InvalidEntry> {
        var networks: [Network] = []
        for (index, entry) in entries.enumerated() {
            guard let network = Network(entry.trimmingCharacters(in: .whitespaces)) else { return .failure(InvalidEntry(index: index, text: entry)) }
            networks.append(network)
        }
        return .success(TrustedProxies(networks: networks))
    }

    struct InvalidEntry: Error, Equatable {
        var index: Int
        var text: String
    }

    func trusts(_ address: SocketAddress?) -> Bool {
        guard let bytes = address.flatMap(Self.bytes(of:)) else { return false }
        return networks.contains { $0.contains(bytes) }
    }

    /// Who the request is from: the peer, or, when the peer is a trusted proxy, the nearest address
    /// in `X-Forwarded-For` that is not one (proxies append, so the right end is the most trusted).
    func client(peer: SocketAddress?, fields: HTTPFields) -> SocketAddress? {
        guard trusts(peer) else { return peer }
        let hops = fields[values: .xForwardedFor].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces) }
        var client = peer
        for hop in hops.reversed() {
            guard let address = Self.address(hop) else { break }
            client = address
            if !trusts(address) { break }
        }
        return client
    }

    /// `https` or `http` as the trusted proxy received the request; nil when not told by one.
    func forwardedScheme(peer: SocketAddress?, fields: HTTPFields) -> String? {
        guard trusts(peer), let value = fields[.xForwardedProto] else { return nil }
        return value.split(separator: ",").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
    }

    /// An `X-Forwarded-For` entry: an address, IPv6 perhaps bracketed, perhaps with a port.
    static func address(_ hop: String) -> SocketAddress? {
        if let plain = try? SocketAddress(ipAddress: hop, port: 0) { return plain }
        if hop.hasPrefix("["), let end = hop.firstIndex(of: "]") {
            return try? SocketAddress(ipAddress: String(hop[hop.index(after: hop.startIndex)..<end]), port: 0)
        }
        if let colon = hop.lastIndex(of: ":"), hop.firstIndex(of: ":") == colon {
            return try? SocketAddress(ipAddress: String(hop[..<colon]), port: 0)
        }
        return nil
    }

    static func bytes(of address: SocketAddress) -> [UInt8]? {
        switch address {
        case .v4(let v4):
            let value = UInt32(bigEndian: v4.address.sin_addr.s_addr)
            return [UInt8](repeating: 0, count: 10) + [0xFF, 0xFF] + (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) }
        case .v6(let v6):
            return withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
        default:
            return nil
        }
    }
}

extension HTTPField.Name {
    static let xForwardedFor = Self("X-Forwarded-For")!
    static let xForwardedProto = Self("X-Forwarded-Proto")!
}

/// Puts the client's address (as `TrustedProxies` believes it) into the context, for the limits
/// per client address; and sends a request a trusted proxy says came over plain HTTP to HTTPS,
/// since the session cookie is `Secure` and the pages need a secure context.
struct ForwardedClientMiddleware: RouterMiddleware {
    typealias Context = ClientAddressContext
    let proxies: TrustedProxies
    let publicBaseURL: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !proxies.networks.isEmpty else { return try await next(request, context) }
        if proxies.forwardedScheme(peer: context.remoteAddress, fields: request.headers) == "http" {
            return Response(status: .permanentRedirect, headers: [.location: publicBaseURL + (request.uri.path.isEmpty ? "/" : request.uri.path)])
        }
        var context = context
        context.clientAddress = proxies.client(peer: context.remoteAddress, fields: request.headers)
        return try await next(request, context)
    }
}
