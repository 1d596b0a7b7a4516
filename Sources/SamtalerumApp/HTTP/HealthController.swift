import Hummingbird
import Signalling

struct HealthStatus: ResponseEncodable {
    var status: String
    var connections: Int
}

/// Liveness: the process answers. Readiness: the signalling registry answers too.
struct HealthController<Context: RequestContext> {
    let registry: RoomRegistry

    var routes: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.get("live") { _, _ in HealthStatus(status: "ok", connections: 0) }
        routes.get("ready") { _, _ in
            HealthStatus(status: "ready", connections: await registry.connectionCount)
        }
        return routes
    }
}
