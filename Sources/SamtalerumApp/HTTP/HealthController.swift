import Hummingbird
import Signalling

struct HealthStatus: ResponseEncodable {
    var status: String
    var connections: Int
    /// Which node answered (`server.nodeName`), for a load balancer's or an operator's eyes.
    var node: String?
}

/// Liveness: the process answers. Readiness: the signalling registry answers and the audit
/// store can commit now, tried with a real commit per call: a server that cannot record cannot
/// create a meeting or start a session, so a load balancer should send people elsewhere.
/// HEAD answers the same status without a body, for probes that only read the status line.
struct HealthController<Context: RequestContext> {
    let registry: RoomRegistry
    let recorder: ObservedAuditRecorder
    let node: String

    var routes: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.get("live") { _, _ in live() }
        routes.head("live") { _, _ in HTTPResponse.Status.ok }
        routes.get("ready") { _, _ in try await ready() }
        routes.head("ready") { _, _ -> HTTPResponse.Status in
            _ = try await ready()
            return .ok
        }
        return routes
    }

    func live() -> HealthStatus { HealthStatus(status: "ok", connections: 0) }

    func ready() async throws -> HealthStatus {
        let connections = await registry.connectionCount
        try await recorder.probe()
        return HealthStatus(status: "ready", connections: connections, node: node)
    }
}
