import Logging
import NIOSSL
import ServiceLifecycle
import TURN

extension AppConfiguration {
    /// The relay's own settings, derived from ours; TLS reuses the HTTPS certificate (and its reloads).
    func turnConfiguration(secret: String, certificate: ServerCertificate) throws -> TURNConfiguration {
        var relay = TURNConfiguration(authSecret: secret)
        relay.listenHost = turnListenHost
        relay.port = turn.port
        relay.tlsPort = turn.tlsPort
        relay.tlsContext = try NIOSSLContext(configuration: certificate.serverConfiguration)
        let relayAddress = turn.relayAddress.isEmpty ? turnListenHost : turn.relayAddress
        if relayAddress.contains(":") {
            relay.relayIPv4 = nil
            relay.relayIPv6 = relayAddress
        } else {
            relay.relayIPv4 = relayAddress == "0.0.0.0" ? nil : relayAddress
        }
        guard relay.relayIPv4 != nil || relay.relayIPv6 != nil else {
            throw ConfigurationError.invalid("turn.relayAddress must be a concrete address when listening on 0.0.0.0")
        }
        relay.relayPortRange = turn.relayPortMin...turn.relayPortMax
        relay.realm = turn.realm
        relay.maxAllocationsPerUser = turn.maxAllocationsPerUser
        relay.maxAllocations = turn.maxAllocations
        relay.maxBandwidthBytesPerSecond = turn.maxBytesPerSecondPerAllocation > 0 ? turn.maxBytesPerSecondPerAllocation : nil
        relay.unallocatedConnectionTimeout = .seconds(turn.unallocatedConnectionTimeoutSeconds)
        relay.maxStreamConnections = turn.maxStreamConnections
        relay.maxStreamConnectionsPerAddress = turn.maxStreamConnectionsPerAddress
        relay.allowLoopbackPeers = turn.allowLoopbackPeers
        // A left participant's credentials were issued at most one TTL ago: refused that long, none outlives it.
        relay.revokedCredentialRetention = .seconds(turn.credentialTTLSeconds)
        relay.logIPAddresses = logging.logIPAddresses
        return relay
    }
}

/// Publishes the relay's bound ports to the credentials (and the console) once it listens.
struct RelayAnnouncer: Service {
    let relay: TURNRelayService
    let credentials: RelayCredentials
    let logger: Logger
    let announce: @Sendable (TURNRelayService.BoundPorts) -> Void

    func run() async throws {
        let bound = try await relay.boundPorts()
        if let port = bound.udp ?? bound.tcp {
            credentials.relayBound(.init(port: port, tlsPort: bound.tls ?? 0))
        }
        announce(bound)
        try? await gracefulShutdown()
    }
}
