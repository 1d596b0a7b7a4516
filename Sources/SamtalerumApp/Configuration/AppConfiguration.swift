import Foundation
import Logging
import TURN

/// Everything `samtalerum serve` can be told. Defaults are the embedded development setup:
/// loopback only, self-signed certificate and SQLite file in the data directory.
/// Config/samtalerum.yaml documents every key; precedence is defaults < file < environment < flags.
/// These initial values are the only defaults: the relay's come from `TURNConfiguration`, and
/// ConfigurationTests holds the yaml to them. Bounds are in AppConfiguration+Validation.swift.
public struct AppConfiguration: Sendable, Equatable, Codable {
    public var server = Server()
    public var signalling = Signalling()
    public var identity = Identity()
    public var turn = TURN()
    public var audit = Audit()
    public var logging = Logging()

    public init() {}

    public struct Server: Sendable, Equatable, Codable {
        public var host = "127.0.0.1"
        public var port = 8443
        /// The address citizens and workers use (links in invites). Empty: https://host:port.
        public var publicURL = ""
        public var dataDir = "./data"
        /// PEM files; both empty means a self-signed development certificate in dataDir/tls.
        public var tlsCertificate = ""
        public var tlsPrivateKey = ""
        /// 0 disables the plain-HTTP listener; otherwise it only redirects to HTTPS.
        public var httpRedirectPort = 0
        /// Concurrent connections to `port`; beyond it new ones are closed at accept. Lowered with
        /// the relay's caps when the open-file limit cannot hold them all (`DescriptorBudget`).
        public var maxConnections = 10_000
        /// Concurrent connections from one client address (an IPv6 /64); 0: no such cap.
        public var maxConnectionsPerAddress = 512
        /// A new connection must finish TLS and send its first request head within this long.
        public var handshakeTimeoutSeconds = 10
        /// A kept-alive connection with no request in progress is closed after this long.
        public var idleTimeoutSeconds = 60
        /// This process among several nodes sharing one audit store: in logs, in the record of the
        /// sessions it hosts, in /health/ready. Empty: the host name.
        public var nodeName = ""
        /// A plain-HTTP listener with the same routes (pages, API, /ws) for a load balancer that
        /// terminates TLS; 0: none.
        public var plainHTTPPort = 0
        /// Loopback unless `allowPlainHTTPOffLoopback`: the traffic on it is not encrypted.
        public var plainHTTPHost = "127.0.0.1"
        public var allowPlainHTTPOffLoopback = false
        /// Load balancers (CIDRs) whose X-Forwarded-For / X-Forwarded-Proto are believed.
        public var trustedProxies: [String] = []
    }

    public struct Signalling: Sendable, Equatable, Codable {
        public var helloTimeoutSeconds = 5.0
        public var pingIntervalSeconds = 15
        public var inviteTTLSeconds = 7 * 24 * 3600
        /// Let an invited citizen straight into the call instead of the waiting room.
        public var autoAdmit = false
        /// A dropped participant keeps their place this long and may resume the same session.
        public var resumeGraceSeconds = 60
    }

    public struct Identity: Sendable, Equatable, Codable {
        public var externalIssuer = ""
        public var externalAudience = ""
        public var externalJWKSFile = ""
        public var externalRoleMapping: [String: String] = [:]
        /// The client id registered at the IdP for signing staff in on /worker, /ops and /auditor
        /// (authorization code flow with PKCE). Empty: the pages offer the development token field.
        public var signInClientID = ""
        /// A file holding the client secret; empty for a public client (PKCE only).
        public var signInClientSecretFile = ""
        /// How long a sign-in lasts before the IdP is asked again.
        public var sessionTTLSeconds = 3600
    }

    public struct TURN: Sendable, Equatable, Codable {
        public var enabled = true
        /// Listen address of the relay; empty: the server's host.
        public var listenHost = ""
        public var port = Self.relay.port
        public var tlsPort = Self.relay.tlsPort
        /// Host name or address put into turn:/turns:/stun: URIs; empty: the listen address.
        public var publicHost = ""
        /// Address relayed media leaves from; empty: the listen address.
        public var relayAddress = ""
        public var relayPortMin = Self.relay.relayPortRange.lowerBound
        public var relayPortMax = Self.relay.relayPortRange.upperBound
        public var realm = Self.relay.realm
        public var credentialTTLSeconds = 4 * 3600
        public var maxAllocationsPerUser = Self.relay.maxAllocationsPerUser
        public var maxAllocations = Self.relay.maxAllocations
        /// 0: no cap.
        public var maxBytesPerSecondPerAllocation = Self.relay.maxBandwidthBytesPerSecond ?? 0
        /// TCP/TLS clients that hold no allocation are closed after this long.
        public var unallocatedConnectionTimeoutSeconds = Int(Self.relay.unallocatedConnectionTimeout.components.seconds)
        /// Concurrent TCP/TLS client connections; beyond it new ones are closed at accept.
        public var maxStreamConnections = Self.relay.maxStreamConnections
        /// Of those, from one client address (an IPv6 /64); 0: no such cap.
        public var maxStreamConnectionsPerAddress = Self.relay.maxStreamConnectionsPerAddress
        /// UNSAFE outside tests: lets the relay reach 127.0.0.0/8 and ::1.
        public var allowLoopbackPeers = Self.relay.allowLoopbackPeers
        /// Relays signalling hands out; empty: this node's own relay (Docs/TURN.md, "Relay nodes").
        public var relays: [RelayNode] = []
        /// How one of `relays` is chosen for a participant (`RelayPolicy`).
        public var relayPolicy = RelayPolicy.nearest.rawValue
        /// How often each relay's `statusURL` is asked for its load, and how long one answer may take.
        public var relayStatusIntervalSeconds = 5
        public var relayStatusTimeoutSeconds = 2
        /// `samtalerum relay` only: its plain-HTTP health and metrics listener (/health/live,
        /// /health/ready with the allocation count, /metrics). Port 0 picks a free port.
        public var statusHost = "127.0.0.1"
        public var statusPort = 9478

        /// The relay module's own defaults, so the two never disagree.
        static let relay = TURNConfiguration(authSecret: "")
    }

    public struct Audit: Sendable, Equatable, Codable {
        public var retentionDays = 180
        /// Empty: the embedded SQLite file in dataDir. Otherwise the PostgreSQL database that
        /// every node shares, `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=…]`.
        public var postgresURL = ""
        /// A file whose first line is the database password (wins over one in the URL).
        public var postgresPasswordFile = ""
    }

    public struct Logging: Sendable, Equatable, Codable {
        public var level = "info"
        /// `text` or `json` (one object per line, for a log collector).
        public var format = LogFormat.text.rawValue
        /// Off by default (GDPR): client addresses appear in logs only when debugging.
        public var logIPAddresses = false
    }

    public var dataDirectory: URL { URL(fileURLWithPath: server.dataDir, isDirectory: true).standardizedFileURL }

    public var publicBaseURL: String {
        if !server.publicURL.isEmpty { return server.publicURL.hasSuffix("/") ? String(server.publicURL.dropLast()) : server.publicURL }
        let host = server.host.contains(":") ? "[\(server.host)]" : server.host
        return "https://\(host):\(server.port)"
    }

    /// `server.nodeName`, or the host name (the kernel's, without a DNS look-up).
    public var nodeName: String {
        guard server.nodeName.isEmpty else { return server.nodeName }
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count - 1) == 0 else { return "localhost" }
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public var logLevel: Logger.Level { Logger.Level(rawValue: logging.level) ?? .info }
    public var logFormat: LogFormat { LogFormat(rawValue: logging.format) ?? .text }
}
