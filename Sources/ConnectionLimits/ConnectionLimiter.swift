import Logging
import Metrics
import NIOCore
import Synchronization

/// A client address as the per-address cap sees it: an IPv4 address, or an IPv6 /64 (one
/// subscriber usually holds a whole /64, so counting single IPv6 addresses would cap nothing).
public struct ClientAddressKey: Hashable, Sendable {
    let high: UInt64
    let low: UInt64

    public init?(_ address: SocketAddress) {
        switch address {
        case .v4(let v4):
            self.init(ipv4: UInt32(bigEndian: v4.address.sin_addr.s_addr))
        case .v6(let v6):
            let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            // An IPv4 client on a dual-stack listener arrives as ::ffff:a.b.c.d.
            if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
                self.init(ipv4: bytes[12..<16].reduce(0) { $0 << 8 | UInt32($1) })
            } else {
                self.init(high: bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) }, low: 0)
            }
        default:
            return nil
        }
    }

    private init(ipv4: UInt32) {
        self.init(high: .max, low: UInt64(ipv4))
    }

    private init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }
}

/// The caps of one listener, applied at accept: a connection beyond them is closed at once,
/// which costs the descriptor only for that moment. Reaching a cap is logged once per episode
/// (a flood would otherwise write a line per connection) and counted in
/// `connections_refused_total{listener,limit}`; `connections_open{listener}` is the gauge.
public final class ConnectionLimiter: Sendable {
    public let listener: String
    private let counter: Mutex<ConnectionCounter<ClientAddressKey>>
    private let logger: Logger
    private let openGauge: Gauge
    private let refusedListenerFull: Counter
    private let refusedAddressFull: Counter

    public init(listener: String, maxConnections: Int, maxPerAddress: Int, logger: Logger,
                quietPeriod: Duration = .seconds(60)) {
        self.listener = listener
        self.counter = Mutex(ConnectionCounter(maxConnections: maxConnections, maxPerAddress: maxPerAddress,
                                               quietPeriod: quietPeriod))
        self.logger = logger
        openGauge = Gauge(label: "connections_open", dimensions: [("listener", listener)])
        refusedListenerFull = Counter(label: "connections_refused_total",
                                      dimensions: [("listener", listener), ("limit", ConnectionCounter<ClientAddressKey>.Refusal.listenerFull.rawValue)])
        refusedAddressFull = Counter(label: "connections_refused_total",
                                     dimensions: [("listener", listener), ("limit", ConnectionCounter<ClientAddressKey>.Refusal.addressFull.rawValue)])
    }

    public var maxConnections: Int { counter.withLock { $0.maxConnections } }
    public var open: Int { counter.withLock { $0.open } }

    /// Counts `channel` until it closes; false when it is beyond a cap and must be closed now.
    public func admit(_ channel: any Channel) -> Bool {
        let address = channel.remoteAddress.flatMap(ClientAddressKey.init)
        let (refusal, notice, open) = counter.withLock { counter in
            let (refusal, notice) = counter.admit(address, now: .now)
            return (refusal, notice, counter.open)
        }
        report(notice)
        switch refusal {
        case .listenerFull: refusedListenerFull.increment()
        case .addressFull: refusedAddressFull.increment()
        case nil:
            openGauge.record(open)
            channel.closeFuture.whenComplete { _ in self.release(address) }
        }
        return refusal == nil
    }

    private func release(_ address: ClientAddressKey?) {
        let (notice, open) = counter.withLock { counter in (counter.release(address, now: .now), counter.open) }
        openGauge.record(open)
        report(notice)
    }

    private func report(_ notice: ConnectionCounter<ClientAddressKey>.Notice?) {
        switch notice {
        case .capReached(.listenerFull):
            logger.warning("connection limit reached: new connections are closed at accept", metadata: [
                "listener": "\(listener)", "limit": "listener", "max": "\(counter.withLock { $0.maxConnections })",
            ])
        case .capReached(.addressFull):
            logger.warning("connection limit reached: new connections are closed at accept", metadata: [
                "listener": "\(listener)", "limit": "address", "max": "\(counter.withLock { $0.maxPerAddress })",
            ])
        case .capCleared(let refused):
            logger.notice("connection limit no longer reached", metadata: ["listener": "\(listener)", "refused": "\(refused)"])
        case nil:
            break
        }
    }
}
