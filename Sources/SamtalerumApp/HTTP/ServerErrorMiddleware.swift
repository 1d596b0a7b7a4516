import Hummingbird
import Logging

/// Every 5xx leaves with a problem+json body and a log line naming the route and the cause:
/// an audit store that cannot commit becomes `unavailable` (503, retry), any other error that is
/// not already a client-facing `Problem` (a bug) becomes `internal`, so nothing internal reaches
/// the client and nothing fails silently.
struct ServerErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let problem as Problem where problem.statusCode < 500 {
            throw problem
        } catch let error as any HTTPResponseError where error.status.code < 500 {
            throw error
        } catch {
            let problem = (error as? Problem)
                ?? (error is StoreUnavailable ? Problem(.unavailable, detail: "the audit store cannot record now") : Problem(.internal))
            let level: Logger.Level = problem.status == .serviceUnavailable ? .warning : .error
            // The matched route, not the path: a path may carry an invite or a meeting id typed by hand.
            logger.log(level: level, "request failed", metadata: [
                "method": "\(request.method)", "route": "\(context.endpointPath ?? "unmatched")",
                "status": "\(problem.statusCode)", "error": "\(error)",
            ])
            throw problem
        }
    }
}
