import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// The only plain-HTTP listener there may be: it answers every request with a permanent
/// redirect to the HTTPS address and serves nothing itself.
enum HTTPRedirect {
    struct RedirectEverything<Context: RequestContext>: RouterMiddleware {
        let baseURL: String

        func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
            var location = baseURL + request.uri.path
            if let query = request.uri.query, !query.isEmpty { location += "?" + query }
            return Response(status: .permanentRedirect, headers: [.location: location, .contentLength: "0"])
        }
    }

    static func application(host: String, port: Int, baseURL: String, gate: ConnectionGuard, idleTimeout: TimeAmount,
                            logger: Logger) -> some ApplicationProtocol {
        let router = Router()
        router.add(middleware: RedirectEverything(baseURL: baseURL))
        return Application(
            router: router,
            server: gate.serverBuilder { HTTP1Channel(responder: $0, configuration: .init(idleTimeout: idleTimeout)) },
            configuration: .init(address: .hostname(host, port: port), serverName: "Samtalerum"), logger: logger)
    }
}
