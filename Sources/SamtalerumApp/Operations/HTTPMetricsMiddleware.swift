import CoreMetrics
import Hummingbird

/// Request counts and durations by matched route, with Prometheus-conforming names (the
/// framework's own middleware exports counters without `_total`). Unmatched paths share one
/// label so a scanner cannot create a series per URL.
struct HTTPMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let inFlight = Meter(label: MetricsExporter.httpRequestsInFlight)
        inFlight.increment()
        let method = request.method.rawValue
        do {
            var response = try await next(request, context)
            let status = response.status.code
            // Static pages are served by middleware, so they have no route of their own.
            let route = context.endpointPath ?? (status == 404 ? "unmatched" : "static")
            // Counted when the body is written, so a stream's duration is the whole stream.
            let body = response.body
            response.body = ResponseBody(contentLength: body.contentLength) { writer in
                defer {
                    Self.record(method: method, route: route, status: status, since: started)
                    inFlight.decrement()
                }
                try await body.write(writer)
            }
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            Self.record(method: method, route: context.endpointPath ?? "unmatched", status: status, since: started)
            inFlight.decrement()
            throw error
        }
    }

    static func record(method: String, route: String, status: Int, since started: ContinuousClock.Instant) {
        Counter(label: MetricsExporter.httpRequests, dimensions: [("method", method), ("route", route), ("status", "\(status)")])
            .increment()
        MetricsExporter.recordElapsed(MetricsExporter.httpRequestDuration, dimensions: [("method", method), ("route", route)],
                                      since: started)
    }
}
