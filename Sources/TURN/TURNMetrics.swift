import Metrics
import Synchronization

/// swift-metrics instruments; the app's bootstrapped backend (Prometheus) exports them.
/// Data-path counts are added per read batch, not per packet.
final class TURNMetrics: Sendable {
    private let allocations = Gauge(label: "turn_allocations")
    private let allocationsCreated = Counter(label: "turn_allocations_created_total")
    private let bytesToPeer = Counter(label: "turn_relayed_bytes_total", dimensions: [("direction", "to_peer")])
    private let bytesFromPeer = Counter(label: "turn_relayed_bytes_total", dimensions: [("direction", "from_peer")])
    private let packetsToPeer = Counter(label: "turn_relayed_packets_total", dimensions: [("direction", "to_peer")])
    private let packetsFromPeer = Counter(label: "turn_relayed_packets_total", dimensions: [("direction", "from_peer")])
    private let open = Atomic<Int>(0)

    func allocationOpened() {
        allocationsCreated.increment()
        allocations.record(open.add(1, ordering: .relaxed).newValue)
    }

    func allocationClosed() {
        allocations.record(open.subtract(1, ordering: .relaxed).newValue)
    }

    func relayed(toPeer: Bool, packets: Int, bytes: Int) {
        guard packets > 0 else { return }
        if toPeer {
            packetsToPeer.increment(by: packets)
            bytesToPeer.increment(by: bytes)
        } else {
            packetsFromPeer.increment(by: packets)
            bytesFromPeer.increment(by: bytes)
        }
    }
}
