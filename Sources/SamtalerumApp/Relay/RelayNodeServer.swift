import ConnectionLimits
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import TURN
import UnixSignals

/// `samtalerum relay`: only the TURN relay, configured from the same `turn.*` keys, secret
/// file and certificate as `serve`, with a small plain-HTTP status listener beside it — no
/// signalling, no audit store. SIGTERM/SIGINT stop it (exit 0); SIGHUP reloads the certificate.
public struct RelayNodeServer: Sendable {
    let application: Application<RouterResponder<BasicRequestContext>>

    public enum StartError: Error, CustomStringConvertible {
        case disabled
        case noSecret(path: String)

        public var description: String {
            switch self {
            case .disabled: "turn.enabled is false: a relay node has nothing to run"
            case .noSecret(let path):
                "\(path) does not exist: copy keys/turn.secret from a signalling node's data directory (every relay shares it)"
            }
        }
    }

    /// Concurrent connections to the status listener: a load balancer, Prometheus, and each
    /// signalling node's poller.
    static let statusConnections = 64

    public init(
        configuration: AppConfiguration,
        onRelayRunning: @escaping @Sendable (TURNRelayService.BoundPorts) -> Void = { _ in },
        onStatusRunning: @escaping @Sendable (_ port: Int) async -> Void = { _ in }
    ) async throws {
        MetricsExporter.bootstrap()
        var logger = Logger(label: "samtalerum.relay")
        logger.logLevel = configuration.logLevel
        try configuration.validate()
        guard configuration.turn.enabled else { throw StartError.disabled }
        // A relay with a secret of its own would refuse every credential signalling issues.
        let secretFile = configuration.dataDirectory.appending(path: "keys/turn.secret")
        guard FileManager.default.fileExists(atPath: secretFile.path) else { throw StartError.noSecret(path: secretFile.path) }
        let credentials = try RelayCredentials(configuration: configuration)

        let openFiles = DescriptorBudget.raiseOpenFileLimit()
        let fitted = DescriptorBudget(limit: openFiles.after)
            .fit([Self.statusConnections, configuration.turn.maxStreamConnections, configuration.turn.maxAllocations])
        if fitted[1] < configuration.turn.maxStreamConnections || fitted[2] < configuration.turn.maxAllocations {
            logger.warning(
                "the open-file limit cannot hold the configured relay caps, so they are lowered; raise the hard limit (systemd: LimitNOFILE=)",
                metadata: ["openFileLimit": "\(openFiles.after)", "turnStreams": "\(fitted[1])", "relayAllocations": "\(fitted[2])"])
        }

        let certificate = try ServerCertificate(configuration: configuration)
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        var relayConfiguration = try configuration.turnConfiguration(secret: credentials.secret, certificate: certificate)
        relayConfiguration.maxStreamConnections = fitted[1]
        relayConfiguration.maxAllocations = fitted[2]
        let relay = TURNRelayService(configuration: relayConfiguration, logger: logger)
        let status = RelayNodeStatus(relay: relay, maxAllocations: fitted[2], node: configuration.nodeName)

        let router = Router(context: BasicRequestContext.self)
        router.get("health/live") { _, _ in RelayNodeStatus.Live(status: "ok") }
        router.get("health/ready") { _, _ -> Response in try status.readiness() }
        router.get("metrics") { _, _ -> Response in
            MetricsExporter.refreshRelayGauges(relay: relay.statistics())
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: MetricsExporter.exposition())))
        }
        application = Application(
            router: router,
            configuration: .init(address: .hostname(configuration.turn.statusHost, port: configuration.turn.statusPort),
                                 serverName: "Samtalerum relay"),
            services: [
                relay,
                RelayAnnouncer(relay: relay, credentials: credentials, logger: logger) { ports in
                    status.bound(ports)
                    onRelayRunning(ports)
                },
                CertificateReloadService(certificate: certificate, hangups: hangups, logger: logger),
            ],
            onServerRunning: { channel in await onStatusRunning(channel.localAddress?.port ?? configuration.turn.statusPort) },
            logger: { var quiet = logger; quiet.logLevel = max(quiet.logLevel, .debug); return quiet }())
    }

    public func run() async throws {
        try await application.runService(gracefulShutdownSignals: [.sigterm, .sigint])
    }
}

/// What the status listener reports: ready once the relay listens, with the allocation count
/// signalling's `least-loaded` policy reads (`RelayStatusMonitor.Report`).
final class RelayNodeStatus: Sendable {
    struct Live: ResponseEncodable {
        var status: String
    }

    struct Ready: Codable {
        var status: String
        /// `server.nodeName` (or the host name), as a signalling node's readiness names itself.
        var node: String
        var allocations: Int
        var maxAllocations: Int
        var udp: Int?
        var tcp: Int?
        var tls: Int?
    }

    private let relay: TURNRelayService
    private let maxAllocations: Int
    private let node: String
    private let ports = Mutex<TURNRelayService.BoundPorts?>(nil)

    init(relay: TURNRelayService, maxAllocations: Int, node: String) {
        self.relay = relay
        self.maxAllocations = maxAllocations
        self.node = node
    }

    func bound(_ bound: TURNRelayService.BoundPorts) {
        ports.withLock { $0 = bound }
    }

    /// 503 until the listeners are bound (and after they failed to), so no balancer or
    /// signalling node sends clients to a relay that is not there yet.
    func readiness() throws -> Response {
        let bound = ports.withLock { $0 }
        let ready = Ready(status: bound == nil ? "starting" : "ready", node: node, allocations: relay.statistics().count,
                          maxAllocations: maxAllocations, udp: bound?.udp, tcp: bound?.tcp, tls: bound?.tls)
        return Response(status: bound == nil ? .serviceUnavailable : .ok,
                        headers: [.contentType: "application/json", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(data: try JSONEncoder().encode(ready))))
    }
}
