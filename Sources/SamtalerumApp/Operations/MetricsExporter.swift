import CoreMetrics
import Foundation
import Hummingbird
import Prometheus
import Signalling
import TURN

/// One Prometheus registry per process behind swift-metrics: the metrics system can be
/// bootstrapped once, and every module reports through the standard API.
enum MetricsExporter {
    static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets["samtalerum_session_duration_seconds"] =
            [60, 300, 600, 900, 1800, 2700, 3600, 5400, 7200].map { Duration.seconds($0) }
        MetricsSystem.bootstrap(factory)
        return registry
    }()

    /// Makes sure the system is bootstrapped before anything records.
    static func bootstrap() { _ = registry }

    /// Gauges of the current state, taken when scraped, so they are live rather than summed at
    /// session end.
    static func refreshGauges(rooms: [RoomSnapshot], connections: Int, relay: [AllocationStatistics]) {
        Gauge(label: "samtalerum_connections").record(connections)
        var states = ["waiting": 0, "in-call": 0, "reconnecting": 0]
        var classes = ["excellent": 0, "good": 0, "poor": 0, "lost": 0]
        for room in rooms {
            states[room.state, default: 0] += 1
            for participant in room.participants {
                if let quality = participant.quality { classes[quality.class, default: 0] += 1 }
            }
        }
        for (state, count) in states { Gauge(label: "samtalerum_sessions", dimensions: [("state", state)]).record(count) }
        for (name, count) in classes { Gauge(label: "samtalerum_quality_participants", dimensions: [("class", name)]).record(count) }
        Gauge(label: "samtalerum_relay_allocations").record(relay.count)
        Gauge(label: "samtalerum_relay_session_bytes", dimensions: [("direction", "to_peer")]).record(relay.reduce(0) { $0 + Int($1.bytesToPeer) })
        Gauge(label: "samtalerum_relay_session_bytes", dimensions: [("direction", "from_peer")]).record(relay.reduce(0) { $0 + Int($1.bytesFromPeer) })
        if let memory = ProcessMemory.residentBytes() { Gauge(label: "samtalerum_resident_memory_bytes").record(memory) }
    }
}
