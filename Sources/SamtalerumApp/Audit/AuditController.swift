import AuditStore
import Foundation
import Hummingbird
import SamtalerumCore

/// Auditor look-ups over HTTP. Auditor role only; every call is chained in the audit trail by
/// the store (who, when, pseudonymised criteria, purpose, result count) before it answers.
struct AuditController<Context: RequestContext> {
    let authenticator: BearerAuthenticator
    let store: AuditDatabase
    let clock: WallClock

    var routes: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.get("sessions", use: sessions)
        routes.get("subjects/:ref/export", use: export)
        return routes
    }

    @Sendable func sessions(_ request: Request, context: Context) async throws -> Response {
        let auditor = try await authenticator.require([.auditor], in: request)
        let parameters = request.uri.queryParameters
        func text(_ name: String) -> String? {
            parameters.get(name).map { String($0) }.flatMap { $0.isEmpty ? nil : $0 }
        }
        var query = SessionQuery(subject: try text("subject").map { try Self.ref($0, name: "subject") },
                                 worker: try text("worker").map { try Self.ref($0, name: "worker") },
                                 from: try text("from").map { try Self.date($0, name: "from") },
                                 to: try text("to").map { try Self.date($0, name: "to") },
                                 after: text("after"))
        if let limit = text("limit") {
            guard let value = Int(limit) else { throw Problem(.invalidRequest, detail: "limit must be a number") }
            query.limit = value
        }
        let page = try await Self.mapped {
            try await store.sessionPage(matching: query, access: AuditorAccess(auditor: auditor.subject,
                                                                               purpose: text("purpose") ?? "", at: clock.now()))
        }
        let rows = page.sessions
        let wantsCSV = text("format") == "csv"
            || request.headers[.accept].map { $0.contains("text/csv") } == true
        if wantsCSV {
            return Self.response(Self.csv(rows), type: "text/csv; charset=utf-8",
                                 extra: [.contentDisposition: "attachment; filename=\"audit-sessions.csv\""])
        }
        return Self.response(try Self.json(SessionList(count: rows.count, sessions: rows, next: page.next)), type: "application/json")
    }

    @Sendable func export(_ request: Request, context: Context) async throws -> Response {
        let auditor = try await authenticator.require([.auditor], in: request)
        let raw = try context.parameters.require("ref")
        let subject = try Self.ref(raw.removingPercentEncoding ?? raw, name: "ref")
        let purpose = request.uri.queryParameters.get("purpose").map { String($0) } ?? ""
        let export = try await Self.mapped {
            try await store.export(subject: subject, access: AuditorAccess(auditor: auditor.subject, purpose: purpose, at: clock.now()))
        }
        return Self.response(try Self.json(export), type: "application/json")
    }

    struct SessionList: Encodable {
        var count: Int
        var sessions: [SessionSummary]
        /// Present when there are more sessions: pass it back as `after` for the next page.
        var next: String?
    }

    /// Store errors that are the caller's fault become 400 problems; the rest stay 500.
    private static func mapped<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch AuditStoreError.purposeRequired {
            throw Problem(.invalidRequest, detail: "purpose is required: say why you look (it is recorded)")
        } catch AuditStoreError.invalidQuery(let why) {
            throw Problem(.invalidRequest, detail: why)
        }
    }

    private static func ref(_ raw: String, name: String) throws -> SubjectRef {
        guard let ref = SubjectRef(validating: raw) else {
            throw Problem(.invalidRequest, detail: "\(name) must be 1–\(SubjectRef.maxLength) printable characters")
        }
        return ref
    }

    private static func date(_ raw: String, name: String) throws -> Date {
        if let date = ISO8601DateFormatter().date(from: raw) { return date }
        let day = ISO8601DateFormatter()
        day.formatOptions = [.withFullDate]
        guard let date = day.date(from: raw) else {
            throw Problem(.invalidRequest, detail: "\(name) must be an ISO 8601 date or date-time")
        }
        return date
    }

    private static func json(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return try encoder.encode(value)
    }

    private static func response(_ body: Data, type: String, extra: HTTPFields = [:]) -> Response {
        var headers: HTTPFields = [.contentType: type, .cacheControl: "no-store"]
        headers.append(contentsOf: extra)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    static func csv(_ rows: [SessionSummary]) -> Data {
        let iso = ISO8601DateFormatter()
        var lines = ["meeting,session,start,end,duration_seconds,end_reason,worker_ref,citizen_ref,guest_refs"]
        for r in rows {
            lines.append([r.meeting.rawValue, r.session.rawValue, iso.string(from: r.startedAt),
                          r.endedAt.map(iso.string(from:)) ?? "", r.durationSeconds.map(String.init) ?? "",
                          r.endReason?.rawValue ?? "", r.workerRef?.rawValue ?? "", r.citizenRef?.rawValue ?? "",
                          (r.guestRefs ?? []).map(\.rawValue).joined(separator: "; ")]
                .map(csvField).joined(separator: ","))
        }
        return Data((lines.joined(separator: "\r\n") + "\r\n").utf8)
    }

    /// Quotes when needed, and defuses spreadsheet formulas: references are free text typed by workers.
    static func csvField(_ value: String) -> String {
        var value = value
        if let first = value.first, "=+-@\t\r".contains(first) { value = "'" + value }
        guard value.contains(where: { ",\"\r\n".contains($0) }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
