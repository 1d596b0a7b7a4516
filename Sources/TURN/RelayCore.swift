import ConnectionLimits
import Foundation
import Logging
import NIOCore
import STUN
import Synchronization

/// Where bytes for one client go: a datagram to its address from the UDP listener, or its stream.
enum ClientSink: Sendable {
    case datagram(listener: DatagramSocket, client: KernelAddress)
    case stream(any Channel)

    func writeAndFlush(_ buffer: ByteBuffer) {
        switch self {
        case .datagram(let listener, let client):
            buffer.withUnsafeReadableBytes { listener.send($0, to: client) }
        case .stream(let channel):
            channel.writeAndFlush(buffer, promise: nil)
        }
    }
}

/// What happens to a datagram a peer sent to a relayed address.
enum PeerDelivery {
    case drop
    case channelData(UInt16)
    case dataIndication
}

/// The state shared by every listener and relay socket: the pure handler behind a lock, plus
/// the relay sockets it refers to. Actions the handler returns are performed outside the lock.
final class RelayCore: Sendable {
    private struct State {
        var handler: TURNRequestHandler
        var relays: [TransportAddress: DatagramSocket] = [:]
    }

    let configuration: TURNConfiguration
    let logger: Logger
    let metrics: TURNMetrics
    let poller: DatagramPoller
    private let state: Mutex<State>
    /// Accepted TCP/TLS connections, closed at shutdown.
    private let connections = Mutex<[ObjectIdentifier: any Channel]>([:])
    /// `maxStreamConnections` and `maxStreamConnectionsPerAddress`, TCP and TLS together.
    let connectionLimiter: ConnectionLimiter

    init(configuration: TURNConfiguration, policy: PeerPolicy, logger: Logger, metrics: TURNMetrics, poller: DatagramPoller) {
        self.configuration = configuration
        self.poller = poller
        self.logger = logger
        self.metrics = metrics
        self.state = Mutex(State(handler: TURNRequestHandler(configuration: configuration, policy: policy)))
        self.connectionLimiter = ConnectionLimiter(
            listener: "turn", maxConnections: configuration.maxStreamConnections,
            maxPerAddress: configuration.maxStreamConnectionsPerAddress, logger: logger)
    }

    /// For logs: addresses are personal data and appear only with `logIPAddresses`.
    func redact(_ address: some CustomStringConvertible) -> String {
        configuration.logIPAddresses ? address.description : "<redacted>"
    }

    // MARK: - Control path

    func receiveSTUN(_ bytes: ByteBuffer, from tuple: FiveTuple, sink: ClientSink) {
        guard let message = try? STUNMessage(bytes: bytes.readableBytesView) else { return }
        let now = ContinuousClock.now, date = Date()
        let actions = state.withLock { $0.handler.handle(message, from: tuple, now: now, date: date) }
        if configuration.logIPAddresses {
            logger.debug("STUN \(message.type) from \(tuple)")
        }
        perform(actions, sink: sink)
    }

    func perform(_ actions: [TURNAction], sink: ClientSink?) {
        for action in actions {
            switch action {
            case .respond(let bytes):
                sink?.writeAndFlush(ByteBuffer(bytes: bytes))
            case .openRelay(let request):
                guard let sink else { continue }
                openRelay(request, sink: sink)
            case .sendToPeer(let relay, let peer, let data):
                guard let socket = state.withLock({ $0.relays[relay] }) else { continue }
                data.withUnsafeBytes { socket.send($0, to: KernelAddress(peer)) }
                metrics.relayed(toPeer: true, packets: 1, bytes: data.count)
            case .closeRelay(let relay):
                if let socket = state.withLock({ $0.relays.removeValue(forKey: relay) }) { poller.remove(socket) }
                metrics.allocationClosed()
                logger.debug("allocation closed", metadata: ["relay": "\(redact(relay))"])
            }
        }
    }

    private func openRelay(_ request: PendingAllocation, sink: ClientSink) {
        let host = request.family == .ipv4 ? configuration.relayIPv4 : configuration.relayIPv6
        let now = ContinuousClock.now, date = Date()
        let response: [UInt8]
        do {
            let (socket, relay) = try bindRelay(host: host ?? "", evenPort: request.evenPort)
            do {
                // Read before the allocation exists: what arrives first finds no permission and is dropped.
                try poller.add(socket, receiver: RelayReceiver(core: self, sink: sink, relay: relay))
            } catch {
                poller.remove(socket)
                throw error
            }
            let completed = state.withLock { state in
                let response = state.handler.completeAllocation(request, relay: relay, now: now, date: date)
                if response != nil { state.relays[relay] = socket }
                return response
            }
            guard let completed else {
                poller.remove(socket)
                return
            }
            metrics.allocationOpened()
            logger.debug("allocation created", metadata: [
                "credential": "\(request.credentialID)", "transport": "\(request.fiveTuple.transport)",
                "relay": "\(redact(relay))",
            ])
            response = completed
        } catch {
            logger.warning("no relay port could be bound", metadata: ["error": "\(error)"])
            response = state.withLock { $0.handler.failAllocation(request) }
        }
        sink.writeAndFlush(ByteBuffer(bytes: response))
    }

    /// A socket on a free port of the relay range; a few ports are tried, as others may be taken.
    private func bindRelay(host: String, evenPort: Bool) throws -> (DatagramSocket, TransportAddress) {
        let range = configuration.relayPortRange
        var attemptsLeft = 16
        while true {
            var port = Int.random(in: range)
            if evenPort { port &= ~1; if port < range.lowerBound { port += 2 } }
            do {
                let socket = try DatagramSocket.bind(try SocketAddress(ipAddress: host, port: port))
                guard let relay = socket.localAddress else {
                    poller.remove(socket)
                    throw ChannelError.unknownLocalAddress
                }
                return (socket, relay)
            } catch where attemptsLeft > 1 {
                attemptsLeft -= 1
            }
        }
    }

    // MARK: - Data path

    /// A ChannelData message from the client: the relay socket and peer to send it to, or nil to drop.
    func channelDataToPeer(from tuple: FiveTuple, channel: UInt16, bytes: Int, now: Instant) -> (DatagramSocket, TransportAddress)? {
        state.withLock { state in
            guard let route = state.handler.channelDataToPeer(from: tuple, channel: channel, bytes: bytes, now: now),
                  let relay = state.relays[route.relay]
            else { return nil }
            return (relay, route.peer)
        }
    }

    func peerData(relay: TransportAddress, peer: TransportAddress, bytes: Int, now: Instant) -> PeerDelivery {
        state.withLock { state in
            guard let route = state.handler.peerDataToClient(relay: relay, peer: peer, bytes: bytes, now: now) else {
                return .drop
            }
            return route.channel.map(PeerDelivery.channelData) ?? .dataIndication
        }
    }

    // MARK: - Lifecycle

    func expire() {
        let now = ContinuousClock.now
        perform(state.withLock { $0.handler.expire(now: now) }, sink: nil)
    }

    func release(credentialIDs: Set<String>) {
        let now = ContinuousClock.now
        perform(state.withLock { $0.handler.release(credentialIDs: credentialIDs, now: now) }, sink: nil)
    }

    func clientDisconnected(_ tuple: FiveTuple) {
        perform(state.withLock { $0.handler.clientDisconnected(tuple) }, sink: nil)
    }

    func hasAllocation(_ tuple: FiveTuple) -> Bool {
        state.withLock { $0.handler.hasAllocation(for: tuple) }
    }

    /// Registers an accepted connection; false when a cap is reached and it must be closed.
    func admitConnection(_ channel: any Channel) -> Bool {
        guard connectionLimiter.admit(channel) else { return false }
        let id = ObjectIdentifier(channel)
        connections.withLock { $0[id] = channel }
        channel.closeFuture.whenComplete { _ in self.connections.withLock { _ = $0.removeValue(forKey: id) } }
        return true
    }

    func openConnections() -> [any Channel] {
        connections.withLock { Array($0.values) }
    }

    func statistics() -> [AllocationStatistics] {
        state.withLock { $0.handler.table.statistics() }
    }

    /// Closes every relay socket; used at shutdown.
    func closeAllRelays() {
        let sockets = state.withLock { state in
            defer { state.relays.removeAll() }
            return Array(state.relays.values)
        }
        for socket in sockets { poller.remove(socket) }
    }
}
