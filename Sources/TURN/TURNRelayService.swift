import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import STUN

/// The TURN/STUN server: UDP and TCP listeners on one port, TLS on another, and the relay
/// sockets they create. Runs until graceful shutdown.
public final class TURNRelayService: Service, Sendable {
    /// The ports actually bound (useful when the configuration asked for port 0).
    public struct BoundPorts: Hashable, Sendable {
        public var udp: Int?
        public var tcp: Int?
        public var tls: Int?
    }

    public struct StartupError: Error, CustomStringConvertible {
        public var description: String
    }

    /// A TCP/TLS connection closed at accept because `maxStreamConnections` are open.
    struct ConnectionLimitReached: Error {}

    private let configuration: TURNConfiguration
    private let group: any EventLoopGroup
    private let core: RelayCore
    private let ready: EventLoopPromise<BoundPorts>

    public init(
        configuration: TURNConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "samtalerum.turn")
    ) {
        self.configuration = configuration
        self.group = group
        var own = Set<IPAddress>()
        for text in [configuration.listenHost, configuration.relayIPv4, configuration.relayIPv6] {
            if let text, let ip = IPAddress(text) { own.insert(ip) }
        }
        let policy = PeerPolicy(
            allowLoopback: configuration.allowLoopbackPeers, allowed: configuration.allowedPeerRanges,
            denied: configuration.deniedPeerRanges, ownAddresses: own)
        self.core = RelayCore(configuration: configuration, policy: policy, logger: logger, metrics: TURNMetrics(),
                              poller: DatagramPoller(batch: configuration.datagramVectorReadCount))
        self.ready = group.next().makePromise(of: BoundPorts.self)
    }

    /// Waits until the listeners are bound; throws if binding failed.
    public func boundPorts() async throws -> BoundPorts {
        try await ready.futureResult.get()
    }

    /// A consistent snapshot of every live allocation's counters.
    public func statistics() -> [AllocationStatistics] {
        core.statistics()
    }

    /// Ends the allocations made with these credentials (their holders hung up).
    public func releaseAllocations(credentialIDs: Set<String>) {
        guard !credentialIDs.isEmpty else { return }
        core.release(credentialIDs: credentialIDs)
    }

    public func run() async throws {
        let listeners: [any Channel]
        let ports: BoundPorts
        do {
            try core.poller.start()
            (listeners, ports) = try await bindListeners()
        } catch {
            ready.fail(error)
            await core.poller.stop()
            throw error
        }
        ready.succeed(ports)
        core.logger.info("TURN relay listening", metadata: [
            "udp": "\(ports.udp.map(String.init) ?? "-")", "tcp": "\(ports.tcp.map(String.init) ?? "-")",
            "tls": "\(ports.tls.map(String.init) ?? "-")",
        ])

        let core = self.core
        // Expiry runs once a second; lifetimes are minutes, so that is precise enough.
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(1))
                core.expire()
            }
        }

        for channel in listeners { try? await channel.close() }
        // Accepted connections are not children a listener's close reaches: close them too, so
        // clients see the end at once instead of a silent peer.
        for channel in core.openConnections() { try? await channel.close() }
        core.closeAllRelays()
        // Closes the UDP listener too.
        await core.poller.stop()
        core.logger.info("TURN relay stopped")
    }

    private func bindListeners() async throws -> ([any Channel], BoundPorts) {
        // With port 0, UDP picks a number TCP may not get: try a few.
        let attempts = configuration.port == 0 && configuration.enableUDP && configuration.enableTCP ? 8 : 1
        var attempt = 1
        while true {
            do {
                return try await bindListenersOnce()
            } catch where attempt < attempts {
                attempt += 1
                core.logger.debug("TURN listener bind retry", metadata: ["error": "\(error)"])
            }
        }
    }

    private func bindListenersOnce() async throws -> ([any Channel], BoundPorts) {
        var channels: [any Channel] = []
        var datagramListener: DatagramSocket?
        var ports = BoundPorts()
        let core = self.core
        do {
            if configuration.enableUDP {
                let address = try SocketAddress.makeAddressResolvingHost(configuration.listenHost, port: configuration.port)
                let udp = try DatagramSocket.bind(address, reuseAddress: true)
                guard let server = udp.localAddress else {
                    core.poller.remove(udp)
                    throw ChannelError.unknownLocalAddress
                }
                datagramListener = udp
                try core.poller.add(udp, receiver: DatagramListener(core: core, socket: udp, server: server))
                ports.udp = Int(server.port)
            }
            // TCP shares the UDP port number, as clients expect (turn:host:3478?transport=tcp).
            if configuration.enableTCP {
                let port = ports.udp ?? configuration.port
                let tcp = try await streamBootstrap(tls: nil).bind(host: configuration.listenHost, port: port).get()
                channels.append(tcp)
                ports.tcp = tcp.localAddress?.port
            }
            if let context = configuration.tlsContext {
                let tls = try await streamBootstrap(tls: context)
                    .bind(host: configuration.listenHost, port: configuration.tlsPort).get()
                channels.append(tls)
                ports.tls = tls.localAddress?.port
            }
        } catch {
            for channel in channels { try? await channel.close() }
            if let datagramListener { core.poller.remove(datagramListener) }
            throw StartupError(description: "TURN listener bind failed on \(configuration.listenHost): \(error)")
        }
        return (channels, ports)
    }

    private func streamBootstrap(tls: NIOSSLContext?) -> ServerBootstrap {
        let core = self.core
        return ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                // The limiter logs a flood once; a line per refused connection would be the flood again.
                guard core.admitConnection(channel) else {
                    return channel.eventLoop.makeFailedFuture(ConnectionLimitReached())
                }
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls { try sync.addHandler(NIOSSLServerHandler(context: tls)) }
                    let decoder = StreamFrameDecoder(maxFrameBytes: core.configuration.maxStreamFrameBytes)
                    try sync.addHandler(ByteToMessageHandler(decoder))
                    try sync.addHandler(StreamConnectionHandler(core: core, transport: tls == nil ? .tcp : .tls))
                }
            }
    }
}
