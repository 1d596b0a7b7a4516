import CoreMetrics
import Foundation
import Hummingbird
import Prometheus
import SamtalerumCore
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
        // A commit is one fsync: milliseconds on a healthy disk, seconds on a failing one.
        factory.durationHistogramBuckets[auditWriteDuration] =
            [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500].map { Duration.milliseconds($0) }
        MetricsSystem.bootstrap(factory)
        Gauge(label: buildInfo, dimensions: [("version", BuildInfo.version)]).record(1)
        // Exported from the start at 0, so an alert on their rate has a series before the first failure.
        Counter(label: auditWriteFailures).increment(by: 0)
        Counter(label: connectionFailures).increment(by: 0)
        return registry
    }()

    static let buildInfo = "samtalerum_build_info"
    static let auditWriteDuration = "samtalerum_audit_write_duration_seconds"
    static let auditWriteFailures = "samtalerum_audit_write_failures_total"
    static let httpRequests = "samtalerum_http_requests_total"
    static let httpRequestDuration = "samtalerum_http_request_duration_seconds"
    static let httpRequestsInFlight = "samtalerum_http_requests_in_flight"
    static let connectionFailures = "samtalerum_connection_failures_total"

    /// HELP text of every metric family the server exports, emitted above its TYPE line. The
    /// factory behind swift-metrics registers families without help, so it is added here, in one
    /// place for every module; Docs/METRICS.md documents each name (OperationsTests holds it to this).
    static let help: [String: String] = [
        buildInfo: "Always 1; the label version names the running build.",
        auditWriteDuration: "Time to commit one audit record or readiness probe durably (WAL append and fsync).",
        auditWriteFailures: "Audit commits that failed (disk full, read-only file system, I/O error), records and readiness probes.",
        httpRequests: "HTTP requests answered, by method, matched route and status code.",
        httpRequestDuration: "Time from receiving an HTTP request to the end of its response body, by method and route.",
        httpRequestsInFlight: "HTTP requests being answered now.",
        connectionFailures: "Connections to the HTTPS port that failed before a request (TLS handshake or HTTP framing errors).",
        "samtalerum_connections": "Open signalling WebSocket connections.",
        "samtalerum_sessions": "Rooms with someone in them, by state (waiting, in-call, reconnecting).",
        "samtalerum_participants": "Participants in rooms now, present or within their resume grace, by role.",
        "samtalerum_quality_participants": "Participants by the quality class of the media they receive.",
        "samtalerum_relay_allocations": "TURN allocations the built-in relay holds now.",
        "samtalerum_relay_session_bytes": "Bytes relayed by the allocations held now, by direction.",
        "samtalerum_relay_assignments_total": "Participants and network checks given a relay of turn.relays, by relay.",
        "samtalerum_relay_up": "Whether a relay of turn.relays answers its status URL (1) or is skipped (0), by relay.",
        "samtalerum_relay_reported_allocations": "Allocations a relay of turn.relays reported at its last status poll, by relay.",
        "samtalerum_resident_memory_bytes": "Resident memory of the server process.",
        "samtalerum_signalling_errors_total": "Signalling errors sent to clients, by error code.",
        "samtalerum_auth_failures_total": "Refused credentials, by where they were presented (http, websocket) and why.",
        "samtalerum_session_duration_seconds": "Length of ended sessions.",
        "samtalerum_ice_check_requests_total": "Requests for network-check TURN credentials, by outcome.",
        "turn_allocations": "TURN allocations alive in the relay.",
        "turn_allocations_created_total": "TURN allocations created since start.",
        "turn_relayed_bytes_total": "Bytes relayed by TURN, by direction.",
        "turn_relayed_packets_total": "Packets relayed by TURN, by direction.",
        "connections_open": "Open client connections, by listener.",
        "connections_refused_total": "Client connections closed at accept because a limit was reached, by listener and limit.",
    ]

    /// Makes sure the system is bootstrapped before anything records.
    static func bootstrap() { _ = registry }

    static func recordElapsed(_ timer: String, dimensions: [(String, String)] = [], since start: ContinuousClock.Instant) {
        let elapsed = (ContinuousClock.now - start).components
        CoreMetrics.Timer(label: timer, dimensions: dimensions).recordNanoseconds(elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000)
    }

    /// The exposition text with a HELP line above every family that has one.
    static func exposition() -> String {
        let text = String(decoding: registry.emitToBuffer(), as: UTF8.self)
        var lines: [Substring] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# TYPE "), let name = line.dropFirst(7).split(separator: " ").first,
               let help = help[String(name)] {
                lines.append("# HELP \(name) \(help)")
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    /// Gauges of the current state, taken when scraped, so they are live rather than summed at
    /// session end.
    static func refreshGauges(rooms: [RoomSnapshot], connections: Int, relay: [AllocationStatistics]) {
        Gauge(label: "samtalerum_connections").record(connections)
        var states = ["waiting": 0, "in-call": 0, "reconnecting": 0]
        var classes = ["excellent": 0, "good": 0, "poor": 0, "lost": 0]
        var roles = Dictionary(uniqueKeysWithValues: ([.worker, .citizen, .guest] as [Role]).map { ($0.rawValue, 0) })
        for room in rooms {
            states[room.state, default: 0] += 1
            for participant in room.participants {
                roles[participant.role.rawValue, default: 0] += 1
                if let quality = participant.quality { classes[quality.class, default: 0] += 1 }
            }
        }
        for (state, count) in states { Gauge(label: "samtalerum_sessions", dimensions: [("state", state)]).record(count) }
        for (role, count) in roles { Gauge(label: "samtalerum_participants", dimensions: [("role", role)]).record(count) }
        for (name, count) in classes { Gauge(label: "samtalerum_quality_participants", dimensions: [("class", name)]).record(count) }
        refreshRelayGauges(relay: relay)
    }

    /// The relay's share of the gauges, also all a `samtalerum relay` node exports of its own.
    static func refreshRelayGauges(relay: [AllocationStatistics]) {
        Gauge(label: "samtalerum_relay_allocations").record(relay.count)
        Gauge(label: "samtalerum_relay_session_bytes", dimensions: [("direction", "to_peer")]).record(relay.reduce(0) { $0 + Int($1.bytesToPeer) })
        Gauge(label: "samtalerum_relay_session_bytes", dimensions: [("direction", "from_peer")]).record(relay.reduce(0) { $0 + Int($1.bytesFromPeer) })
        if let memory = ProcessMemory.residentBytes() { Gauge(label: "samtalerum_resident_memory_bytes").record(memory) }
    }
}
