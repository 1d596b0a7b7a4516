import ArgumentParser
import SamtalerumApp

/// A relay node: only the TURN relay, for scaling relays apart from signalling (Docs/TURN.md,
/// "Relay nodes"). Same configuration file, environment and data directory as `serve`.
struct RelayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay", abstract: "Run only the TURN relay (no signalling, no audit store), with a status listener.")

    @OptionGroup var settings: ConfigurationOptions
    @OptionGroup var relayAndLog: RelayAndLogFlags
    @Option(name: .customLong("listen-host"), help: "Listen address of the relay (turn.listenHost).")
    var listenHost: String?
    @Option(name: .customLong("relay-address"), help: "Address relayed media leaves from (turn.relayAddress).")
    var relayAddress: String?
    @Option(name: .customLong("status-port"), help: "Port of the health and metrics listener (turn.statusPort; 0 picks a free port).")
    var statusPort: Int?

    func run() async throws {
        let configuration = try settings.resolve { configuration in
            if let listenHost { configuration.turn.listenHost = listenHost }
            if let relayAddress { configuration.turn.relayAddress = relayAddress }
            if let statusPort { configuration.turn.statusPort = statusPort }
            relayAndLog.apply(to: &configuration)
        }
        let format = configuration.logFormat
        LogOutput.bootstrap(format: format)
        // Scripts and tests wait for these lines, the same relay line as `serve` prints.
        let announce: @Sendable (String) -> Void = { line in LogOutput.announce(line, format: format) }
        let host = configuration.turn.statusHost.contains(":") ? "[\(configuration.turn.statusHost)]" : configuration.turn.statusHost
        let server = try await RelayNodeServer(configuration: configuration) { ports in
            announce(RelayAndLogFlags.listeningLine(ports))
        } onStatusRunning: { port in
            announce("relay status listening on http://\(host):\(port)/health/ready")
        }
        try await server.run()
    }
}
