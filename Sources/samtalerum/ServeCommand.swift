import ArgumentParser
import Foundation
import Hummingbird
import SamtalerumApp
import TURN

/// How every command finds its configuration, the same way as `serve`: defaults < the file
/// (`--config` or SAMTALERUM_CONFIG) < SAMTALERUM_* variables < flags. So `token issue` signs
/// with the key the server uses, and `audit purge` keeps what the server keeps.
struct ConfigurationOptions: ParsableArguments {
    @Option(help: "YAML configuration file (see Config/samtalerum.yaml). Also SAMTALERUM_CONFIG.")
    var config: String?
    @Option(name: .customLong("data-dir"), help: "Data directory (database, keys, certificates).")
    var dataDir: String?

    /// `flags` applies the command's own options; the result is validated after them.
    func resolve(flags: (inout AppConfiguration) -> Void = { _ in }) throws -> AppConfiguration {
        let environment = ProcessInfo.processInfo.environment
        let file = (config ?? environment[ConfigurationLoader.configFileVariable]).map { URL(fileURLWithPath: $0) }
        return try ConfigurationLoader.load(file: file, environment: environment) { configuration in
            if let dataDir { configuration.server.dataDir = dataDir }
            flags(&configuration)
        }
    }
}

/// Flags `serve` and `relay` share: the relay's ports and the log output.
struct RelayAndLogFlags: ParsableArguments {
    @Option(name: .customLong("turn-port"), help: "TURN/STUN port over UDP and TCP (0 picks a free port).")
    var turnPort: Int?
    @Option(name: .customLong("turns-port"), help: "TURN over TLS port.")
    var turnsPort: Int?
    @Flag(name: .customLong("turn-allow-loopback-peers"), help: "UNSAFE, tests only: let the relay reach loopback peers.")
    var turnAllowLoopbackPeers = false
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error, critical.")
    var logLevel: String?
    @Option(name: .customLong("log-format"), help: "text, or json (one object per line).")
    var logFormat: String?

    func apply(to configuration: inout AppConfiguration) {
        if let turnPort { configuration.turn.port = turnPort }
        if let turnsPort { configuration.turn.tlsPort = turnsPort }
        if turnAllowLoopbackPeers { configuration.turn.allowLoopbackPeers = true }
        if let logLevel { configuration.logging.level = logLevel }
        if let logFormat { configuration.logging.format = logFormat }
    }

    /// The line scripts and tests wait for once a relay listens, from `serve` and `relay` alike.
    static func listeningLine(_ ports: TURNRelayService.BoundPorts) -> String {
        let udp = ports.udp.map(String.init) ?? "-", tcp = ports.tcp.map(String.init) ?? "-", tls = ports.tls.map(String.init) ?? "-"
        return "TURN relay listening: udp \(udp), tcp \(tcp), tls \(tls)"
    }
}

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run the HTTPS/WSS server and the TURN relay.")

    @OptionGroup var settings: ConfigurationOptions
    @Option(help: "Listen address for HTTPS/WSS.") var host: String?
    @Option(help: "Listen port for HTTPS/WSS.") var port: Int?
    @Option(name: .customLong("public-url"), help: "Base URL people use to reach this server (for invite links).")
    var publicURL: String?
    @Flag(name: .customLong("no-turn"), help: "Do not run the built-in TURN relay.")
    var noTurn = false
    @OptionGroup var relayAndLog: RelayAndLogFlags

    func run() async throws {
        let configuration = try resolvedConfiguration()
        let format = configuration.logFormat
        LogOutput.bootstrap(format: format)
        // Scripts and tests wait for these lines on stdout; in json mode they are log objects too.
        let announce: @Sendable (String) -> Void = { line in LogOutput.announce(line, format: format) }
        let server = try await buildServer(configuration: configuration) { port in
            var announced = configuration
            announced.server.port = port
            announce("Samtalerum is listening on \(announced.publicBaseURL)/  (worker page: \(announced.publicBaseURL)/worker)")
            announce("data directory: \(configuration.dataDirectory.path)")
        } onRelayRunning: { ports in
            announce(RelayAndLogFlags.listeningLine(ports))
        }
        try await server.run()
    }

    func resolvedConfiguration() throws -> AppConfiguration {
        try settings.resolve { configuration in
            if let host { configuration.server.host = host }
            if let port { configuration.server.port = port }
            if let publicURL { configuration.server.publicURL = publicURL }
            if noTurn { configuration.turn.enabled = false }
            relayAndLog.apply(to: &configuration)
        }
    }
}
