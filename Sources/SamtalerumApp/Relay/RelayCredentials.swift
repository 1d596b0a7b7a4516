import Foundation
import SamtalerumCore
import SignallingProtocol
import Synchronization
import TURN

/// Hands out TURN credentials in coturn's REST format, so a deployment can add or swap in coturn
/// nodes sharing the same secret. The secret lives in DATA/keys/turn.secret.
public final class RelayCredentials: Sendable {
    public struct Ports: Sendable, Equatable {
        public var port: Int
        public var tlsPort: Int
    }

    public let secret: String
    public let ttl: Duration
    private let host: String
    /// The configured ports until the relay has bound (port 0 in tests picks free ones).
    private let ports: Mutex<Ports>

    public init(configuration: AppConfiguration) throws {
        let raw = try KeyFile.loadOrCreate(at: configuration.dataDirectory.appending(path: "keys/turn.secret"), byteCount: 32)
        secret = raw.map { String(format: "%02x", $0) }.joined()
        ttl = .seconds(configuration.turn.credentialTTLSeconds)
        let turn = configuration.turn
        host = Self.uriHost(turn.publicHost.isEmpty ? configuration.turnListenHost : turn.publicHost)
        ports = Mutex(Ports(port: turn.port, tlsPort: turn.tlsPort))
    }

    /// IPv6 literals need brackets inside URIs.
    static func uriHost(_ host: String) -> String {
        host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
    }

    public func relayBound(_ bound: Ports) {
        ports.withLock { $0 = bound }
    }

    public var stunURIs: [String] {
        ["stun:\(host):\(ports.withLock { $0.port })"]
    }

    public var turnURIs: [String] {
        let current = ports.withLock { $0 }
        return ["turn:\(host):\(current.port)?transport=udp", "turn:\(host):\(current.port)?transport=tcp",
                "turns:\(host):\(current.tlsPort)?transport=tcp"]
    }

    public func issue(id: String, ttl: Duration? = nil, now: Date) -> TURNCredentials.Issued {
        TURNCredentials.issue(secret: secret, id: id, ttl: ttl ?? self.ttl, now: now)
    }

    /// What a browser passes to `RTCPeerConnection`: STUN plus TURN over UDP, TCP and TLS. For a
    /// joining endpoint the credential id is the endpoint, so the relay's counters can be tied to
    /// the session.
    public func iceServers(id: String, ttl: Duration? = nil, now: Date) -> [IceServer] {
        let issued = issue(id: id, ttl: ttl, now: now)
        return [IceServer(urls: stunURIs), IceServer(urls: turnURIs, username: issued.username, credential: issued.password)]
    }
}

extension AppConfiguration {
    var turnListenHost: String { turn.listenHost.isEmpty ? server.host : turn.listenHost }
}
