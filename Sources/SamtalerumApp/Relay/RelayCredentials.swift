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
        secret = try Self.loadSecret(at: configuration.dataDirectory.appending(path: "keys/turn.secret"))
        ttl = .seconds(configuration.turn.credentialTTLSeconds)
        let turn = configuration.turn
        host = Self.uriHost(turn.publicHost.isEmpty ? configuration.turnListenHost : turn.publicHost)
        ports = Mutex(Ports(port: turn.port, tlsPort: turn.tlsPort))
    }

    public enum SecretFileError: Error, CustomStringConvertible {
        case unreadable(path: String)
        public var description: String {
            switch self {
            case .unreadable(let path):
                "\(path) holds neither a text secret nor the 32 raw bytes older versions wrote; refusing to overwrite it"
            }
        }
    }

    /// The REST secret as text, exactly what coturn's `static-auth-secret` takes: 64 hex digits
    /// when we create it, or whatever printable secret an operator put there (surrounding
    /// whitespace and a final newline ignored). Older versions stored 32 raw bytes and used their
    /// hex form as the secret: such a file is rewritten as that hex text, so credentials stay valid.
    static func loadSecret(at url: URL) throws -> String {
        let fm = FileManager.default
        guard let contents = fm.contents(atPath: url.path) else {
            var generator = SystemRandomNumberGenerator()
            let secret = hex((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
            try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true,
                                   attributes: [.posixPermissions: 0o700])
            try write(secret, to: url)
            return secret
        }
        let text = contents.drop { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
            .reversed().drop { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }.reversed()
        if !text.isEmpty, text.allSatisfy({ (0x21...0x7E).contains($0) }) {
            return String(decoding: text, as: UTF8.self)
        }
        guard contents.count == 32 else { throw SecretFileError.unreadable(path: url.path) }
        let secret = hex(Array(contents))
        try write(secret, to: url)
        return secret
    }

    private static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// Written beside the file and renamed over it, so a crash leaves the old or the new secret.
    private static func write(_ secret: String, to url: URL) throws {
        let fm = FileManager.default
        let temporary = url.deletingLastPathComponent().appending(path: ".\(url.lastPathComponent).new")
        try? fm.removeItem(at: temporary)
        guard fm.createFile(atPath: temporary.path, contents: Data(secret.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: temporary.path])
        }
        guard rename(temporary.path, url.path) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
        }
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
