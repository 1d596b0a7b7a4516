import Foundation
import SamtalerumCore
import SignallingProtocol
import TURN

/// Hands out TURN credentials in coturn's REST format, so a deployment can add or swap in coturn
/// nodes sharing the same secret. The secret lives in DATA/keys/turn.secret.
public struct RelayCredentials: Sendable {
    public let secret: String
    public let ttl: Duration
    public let uris: [String]
    public let stunURIs: [String]

    public init(configuration: AppConfiguration) throws {
        let raw = try KeyFile.loadOrCreate(at: configuration.dataDirectory.appending(path: "keys/turn.secret"), byteCount: 32)
        secret = raw.map { String(format: "%02x", $0) }.joined()
        ttl = .seconds(configuration.turn.credentialTTLSeconds)
        let turn = configuration.turn
        let host = Self.uriHost(turn.publicHost.isEmpty ? (turn.listenHost.isEmpty ? configuration.server.host : turn.listenHost) : turn.publicHost)
        stunURIs = ["stun:\(host):\(turn.port)"]
        uris = ["turn:\(host):\(turn.port)?transport=udp", "turn:\(host):\(turn.port)?transport=tcp",
                "turns:\(host):\(turn.tlsPort)?transport=tcp"]
    }

    /// IPv6 literals need brackets inside URIs.
    static func uriHost(_ host: String) -> String {
        host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
    }

    public func issue(id: String, now: Date) -> TURNCredentials.Issued {
        TURNCredentials.issue(secret: secret, id: id, ttl: ttl, now: now)
    }

    /// What a joining endpoint passes to `RTCPeerConnection`: STUN plus TURN over UDP, TCP and TLS.
    public func iceServers(for endpoint: EndpointID, now: Date) -> [IceServer] {
        let issued = issue(id: endpoint.rawValue, now: now)
        return [IceServer(urls: stunURIs), IceServer(urls: uris, username: issued.username, credential: issued.password)]
    }
}
