import ArgumentParser
import SamtalerumApp

/// A relay node: only the TURN relay, for scaling relays apart from signalling (Docs/TURN.md,
/// "Relay nodes"). Same configuration file, environment and data directory as `serve`.
struct RelayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay", abstract: "Run only the TURN relay (no signalling, no audit store), with a status listener.")

    @OptionGroup var settings: ConfigurationOptions
    @Option(name: .customLong("listen-host"), help: "Listen address of the relay (turn.listenHost).")
    var listenHost: String?
    @Option(name: .customLong("relay-address"), help: "Address relayed media leaves from (turn.relayAddress).")
    var relayAddress: String?
    @Option(name: .customLong("turn-port"), help: "TURN/STUN port over UDP and TCP (0 picks a free port).")
    var turnPort: Int?
    @Option(name: .customLong("turns-port"), help: "TURN over TLS port.")
    var turnsPort: Int?
    @Option(name: .customLong("status-port"), help: "Port of the health and metrics listener (turn.statusPort; 0 picks a free port).")
    var statusPort: Int?
    @Flag(name: .customLong("turn-allow-loopback-peers"), help: "UNSAFE, tests only: let the relay reach loopback peers.")
    var turnAllowLoopbackPeers = false
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error, critical.")
    var logLevel: String?
    @Option(name: .customLong("log-format"), help: "text, or json (one object per line).")
    var logFormat: String?

    func run() async throws {
        let configuration = try settings.resolve { configuration in
            if let listenHost { configuration.turn.listenHost = listenHost }
            if let relayAddress { configuration.turn.relayAddress = relayAddress }
            if let turnPort { configuration.turn.port = turnPort }
            if let turnsPort { configuration.turn.tlsPort = turnsPort }
            if let statusPort { configuration.turn.statusPort = statusPort }
            if turnAllowLoopbackPeers { configuration.turn.allowLoopbackPeers = true }
            if let logLevel { configuration.logging.level = logLevel }
            if let logFormat { configuration.logging.format = logFormat }
        }
        let format = configuration.logFormat
        LogOutput.bootstrap(format: format)
        // Scripts and tests wait for these lines, the same relay line as `serve` prints.
        let announce: @Sendable (String) -> Void = { line in LogOutput.announce(line, format: format) }
        let host = configuration.turn.statusHost.contains(":") ? "[\(configuration.turn.statusHost)]" : configuration.turn.statusHost
        let server = try await RelayNodeServer(configuration: configuration) { ports in
            let udp = ports.udp.map(String.init) ?? "-", tcp = ports.tcp.map(String.init) ?? "-", tls = ports.tls.map(String.init) ?? "-"
            announce("TURN relay listening: udp \(udp), tcp \(tcp), tls \(tls)")
        } onStatusRunning: { port in
            announce("relay status listening on http://\(host):\(port)/health/ready")
        }
        try await server.run()
    }
}
