import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

/// The audit store on a PostgreSQL database that several nodes share (`audit.postgresURL`).
///
/// The store's session API is synchronous (its transaction bodies are plain closures), and
/// postgres-nio is asynchronous: every statement is sent on an event loop and this engine blocks
/// on the answer, always on a lane's own dispatch thread, never on an event loop or on Swift's
/// cooperative pool (async callers hop onto a lane). A lane is a serial queue owning one
/// connection: one lane writes, `readerCount` lanes read and one probes, so a node holds at most
/// `2 + readerCount` connections and as many blocked threads.
///
/// Appends from all nodes form one chain: each write transaction first takes
/// `pg_advisory_xact_lock(appendLockKey)`, so only one transaction in the whole cluster is
/// between reading the chain tip and committing the record after it.
public final class PostgresEngine: SQLEngine {
    /// Fixed keys of the advisory locks (one 64-bit space per database, shared with any other
    /// application on it): "SAMTAPND" and "SAMTMIGR" as ASCII.
    static let appendLockKey: Int64 = 0x5341_4D54_4150_4E44
    static let migrationLockKey: Int64 = 0x5341_4D54_4D49_4752
    static let readerCount = 2

    public var dialect: SQLDialect { .postgres }
    let settings: PostgresSettings
    let readOnly: Bool
    let logger: Logger
    private let writer: Lane
    private let readers: [Lane]
    private let prober: Lane
    private let nextReader = Atomic<Int>(0)
    private let nextConnectionID = Atomic<Int>(0)
    private let closed = Atomic<Bool>(false)

    /// Connects right away, so a wrong URL, a refused connection, a failed login or a missing
    /// database stops the opener with an error naming `audit.postgresURL` (never the password).
    public static func open(_ location: PostgresLocation, readOnly: Bool, logger: Logger) throws -> PostgresEngine {
        let settings: PostgresSettings
        do { settings = try PostgresSettings.resolve(location) } catch { throw PostgresEngineError.settings(error) }
        let engine = PostgresEngine(settings: settings, readOnly: readOnly, logger: logger)
        let first = readOnly ? engine.readers[0] : engine.writer
        try first.queue.sync { try first.withConnection(engine.connect) { _ in } }
        return engine
    }

    private init(settings: PostgresSettings, readOnly: Bool, logger: Logger) {
        self.settings = settings
        self.readOnly = readOnly
        self.logger = logger
        writer = Lane(label: "samtalerum.audit.postgres.writer")
        readers = (0..<Self.readerCount).map { Lane(label: "samtalerum.audit.postgres.reader\($0)") }
        prober = Lane(label: "samtalerum.audit.postgres.prober")
    }

    deinit { closeConnections() }

    private func connect() throws -> PostgresConnection {
        guard !closed.load(ordering: .acquiring) else { throw SQLError.engine("the PostgreSQL audit store is closed") }
        let configuration: PostgresConnection.Configuration
        do { configuration = try settings.connectionConfiguration() } catch {
            throw PostgresEngineError.cannotConnect(settings.redacted, "TLS setup failed: \(error)")
        }
        let id = nextConnectionID.add(1, ordering: .relaxed).newValue
        do {
            return try PostgresConnection.connect(on: PostgresConnection.defaultEventLoopGroup.any(),
                                                  configuration: configuration, id: id, logger: logger).wait()
        } catch {
            throw PostgresEngineError.cannotConnect(settings.redacted, Self.reason(error))
        }
    }

    // MARK: SQLEngine

    public func migrate(_ migrations: [SQLMigration]) throws {
        guard !readOnly else { throw AuditStoreError.readOnly }
        try writer.queue.sync {
            try writer.withConnection(connect) { connection in
                let db = PostgresSession(connection: connection, logger: logger)
                // A session lock (not a transaction's): nodes starting together queue here, and the
                // later ones find the migrations recorded by the first.
                try db.execute("SELECT pg_advisory_lock(?)", values: [.integer(Self.migrationLockKey)])
                defer { _ = try? db.execute("SELECT pg_advisory_unlock(?)", values: [.integer(Self.migrationLockKey)]) }
                try db.execute("""
                    CREATE TABLE IF NOT EXISTS samtalerum_migration (
                        identifier TEXT PRIMARY KEY NOT NULL,
                        appliedAt BIGINT NOT NULL
                    )
                    """, values: [])
                let applied = Set(try db.fetchAll("SELECT identifier FROM samtalerum_migration", values: [])
                    .map { row -> String in try row[0] })
                for migration in migrations where !applied.contains(migration.identifier) {
                    try db.transaction("BEGIN") {
                        for statement in migration.statements { try db.execute(statement, values: []) }
                        try db.execute("INSERT INTO samtalerum_migration (identifier, appliedAt) VALUES (?, ?)",
                                       values: [.text(migration.identifier), .integer(Date().auditMilliseconds)])
                    }
                    logger.info("applied audit schema migration", metadata: ["migration": "\(migration.identifier)"])
                }
            }
        }
    }

    public func write<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T,
                                   afterCommit: @escaping @Sendable (T) -> Void) async throws -> T {
        try await writer.async { try self.writeOnLane(body, afterCommit: afterCommit) }
    }

    public func writeSync<T>(_ body: (any SQLSession) throws -> T, afterCommit: (T) -> Void) throws -> T {
        try writer.queue.sync { try writeOnLane(body, afterCommit: afterCommit) }
    }

    /// READ COMMITTED, deliberately: each statement sees what was committed before it started, so
    /// the statements after the lock see the chain tip the previous holder committed. At
    /// REPEATABLE READ or SERIALIZABLE the snapshot would be taken by the lock statement itself,
    /// before it waited, and the body would build on a stale tip (and collide on `seq`, the
    /// primary key that backs the lock up). Within the process the single writer lane already
    /// runs one write at a time, `afterCommit` included.
    private func writeOnLane<T>(_ body: (any SQLSession) throws -> T, afterCommit: (T) -> Void) throws -> T {
        guard !readOnly else { throw AuditStoreError.readOnly }
        let result = try writer.withConnection(connect) { connection in
            let db = PostgresSession(connection: connection, logger: logger, inTransaction: true)
            return try db.transaction("BEGIN ISOLATION LEVEL READ COMMITTED, READ WRITE") {
                try db.execute("SELECT pg_advisory_xact_lock(?)", values: [.integer(Self.appendLockKey)])
                return try body(db)
            }
        }
        afterCommit(result)
        return result
    }

    public func read<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        let lane = nextReaderLane()
        return try await lane.async { try self.readOnLane(lane, body) }
    }

    public func readSync<T>(_ body: (any SQLSession) throws -> T) throws -> T {
        let lane = nextReaderLane()
        return try lane.queue.sync { try readOnLane(lane, body) }
    }

    private func nextReaderLane() -> Lane {
        readers[nextReader.add(1, ordering: .relaxed).newValue % readers.count]
    }

    /// One snapshot for the whole closure, like a SQLite read transaction.
    private func readOnLane<T>(_ lane: Lane, _ body: (any SQLSession) throws -> T) throws -> T {
        try lane.withConnection(connect) { connection in
            let db = PostgresSession(connection: connection, logger: logger, inTransaction: true)
            return try db.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY") { try body(db) }
        }
    }

    /// `pg_current_xact_id()` gives the transaction an id, so its COMMIT writes and flushes WAL
    /// (and waits for a synchronous standby) exactly as a record's would, while changing no row.
    /// On a standby, a read-only server or a full disk it fails, as a record would. It runs on a
    /// connection of its own and takes no append lock: readiness answers whether the database
    /// takes commits now, not how long this node's queue of records is (under load, queued
    /// behind the records, the probe took over a second and a load balancer took busy nodes out).
    public func probeWrite() async throws {
        guard !readOnly else { throw AuditStoreError.readOnly }
        try await prober.async {
            try self.prober.withConnection(self.connect) { connection in
                let db = PostgresSession(connection: connection, logger: self.logger, inTransaction: true)
                try db.transaction("BEGIN ISOLATION LEVEL READ COMMITTED, READ WRITE") {
                    _ = try db.fetchAll("SELECT pg_current_xact_id()::text", values: [])
                }
            }
        }
    }

    /// Plain VACUUM: the dead versions of the blanked rows become free space, which PostgreSQL
    /// overwrites as it reuses it (it does not zero it; see Docs/POSTGRESQL.md for what an
    /// operator does for more). VACUUM FULL would rewrite the tables but lock every node's
    /// appends out meanwhile, so it is left to a maintenance window.
    public func scrubOverwritten(tables: [String]) async {
        guard !readOnly else { return }
        do {
            try await writer.async {
                try self.writer.withConnection(self.connect) { connection in
                    let db = PostgresSession(connection: connection, logger: self.logger)
                    for table in tables { try db.execute("VACUUM \(table)", values: []) }
                }
            }
        } catch {
            logger.warning("VACUUM after erasure failed", metadata: ["error": "\(error)"])
        }
    }

    public func backup(into file: URL) async throws -> (any SQLEngine)? {
        try await PostgresDump.run(settings: settings, into: file)
        return nil
    }

    public func close() throws {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        for lane in [writer, prober] + readers { lane.queue.sync { lane.discard(wait: true) } }
    }

    private func closeConnections() {
        for lane in [writer, prober] + readers { lane.discard() }
    }

    /// A driver error as one line: the server's own message (no password is ever in it), or
    /// what failed on the way there.
    static func reason(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        if let message = error.serverInfo?[.message] {
            return message + (error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? "")
        }
        switch error.code {
        case .connectionError: return error.underlying.map(connectionFailure) ?? "the connection failed"
        case .sslUnsupported: return "the server does not offer TLS (sslmode=disable to connect without it)"
        case .authMechanismRequiresPassword:
            return "the server asks for a password; give it in \(PostgresSettings.passwordFileKey) or the URL"
        case .serverClosedConnection, .clientClosedConnection, .uncleanShutdown:
            return "the connection was closed" + (error.underlying.map { ": \($0)" } ?? "")
        default:
            return "\(error.code)" + (error.underlying.map { ": \($0)" } ?? "")
        }
    }
}

extension PostgresEngine {
    /// "Connection refused" rather than NIO's nested description of every address it tried.
    static func connectionFailure(_ error: any Error) -> String {
        func plain(_ error: any Error) -> String {
            if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
            let text = "\(error)"
            if text.contains("CERTIFICATE_VERIFY_FAILED") {
                return "the server's TLS certificate is not signed by a trusted CA (give the CA as sslrootcert=FILE)"
            }
            if text.contains("failedToValidateHostname") { return "the server's TLS certificate does not name this host" }
            return text
        }
        guard let failure = error as? NIOConnectionError else { return plain(error) }
        var reasons: [String] = []
        for attempt in failure.connectionErrors where !reasons.contains(plain(attempt.error)) {
            reasons.append(plain(attempt.error))
        }
        if reasons.isEmpty, let lookup = failure.dnsAError ?? failure.dnsAAAAError {
            return "cannot resolve \(failure.host): \(lookup)"
        }
        return reasons.isEmpty ? "no address for \(failure.host)" : reasons.joined(separator: "; ")
    }
}

public enum PostgresEngineError: Error, CustomStringConvertible {
    case settings(PostgresSettingsError)
    case cannotConnect(String, String)

    public var description: String {
        switch self {
        case .settings(let error): error.description
        case .cannotConnect(let url, let reason):
            "cannot open the PostgreSQL audit database of \(PostgresSettings.urlKey) (\(url)): \(reason)"
        }
    }
}

/// A serial queue and the one connection only it uses. A connection that failed in a way that
/// leaves its state unknown is closed and replaced on the next use, so a restarted or promoted
/// server is reconnected to without restarting the node.
final class Lane: Sendable {
    let queue: DispatchQueue
    private let connection = Mutex<PostgresConnection?>(nil)

    init(label: String) { queue = DispatchQueue(label: label) }

    /// Runs on `queue`. A kept connection the server has dropped since (restart, failover,
    /// terminated backend) fails at BEGIN, before anything was done: the body then runs once more,
    /// on a new connection.
    func withConnection<T>(_ connect: () throws -> PostgresConnection, _ body: (PostgresConnection) throws -> T) throws -> T {
        var kept = connection.withLock { $0.take() }.flatMap { $0.isClosed ? nil : $0 }
        while true {
            let live = try kept ?? connect()
            do {
                let result = try body(live)
                connection.withLock { $0 = live }
                return result
            } catch let error as PostgresSession.Unusable {
                Self.closeInBackground(live)
                if error.beforeBegin, kept != nil {
                    kept = nil
                    continue
                }
                throw error.underlying
            } catch {
                if !live.isClosed { connection.withLock { $0 = live } }
                throw error
            }
        }
    }

    func async<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try work() }) }
        }
    }

    /// Closes the connection; with `wait`, returns once it is closed (runs on `queue`, never on
    /// an event loop).
    func discard(wait: Bool = false) {
        guard let live = connection.withLock({ $0.take() }) else { return }
        if wait { try? live.close().wait() } else { Self.closeInBackground(live) }
    }

    /// The connection must outlive its close (postgres-nio asserts otherwise): the completion
    /// handler keeps it.
    private static func closeInBackground(_ connection: PostgresConnection) {
        let closing: EventLoopFuture<Void> = connection.close()
        closing.whenComplete { _ in _ = connection }
    }
}

/// One connection inside `transaction` (or outside, for migrations and VACUUM). Blocks the lane's
/// thread on each statement.
struct PostgresSession: SQLSession {
    /// Thrown out of a lane when the connection may be inside a transaction it cannot end.
    struct Unusable: Error {
        var underlying: any Error
        /// BEGIN itself failed: nothing of the transaction reached the server.
        var beforeBegin = false
    }

    static let fetchSize = 1000
    private static let cursorNumbers = Atomic<Int>(0)

    let connection: PostgresConnection
    let logger: Logger
    var inTransaction = false
    var dialect: SQLDialect { .postgres }

    @discardableResult
    func execute(_ sql: String, values: [SQLValue]) throws -> Int {
        try run(sql, values).metadata.rows ?? 0
    }

    func fetchAll(_ sql: String, values: [SQLValue]) throws -> [SQLRow] {
        let result = try run(sql, values)
        guard let first = result.rows.first else { return [] }
        let columns = SQLColumns(first.map(\.columnName))
        return try result.rows.map { row in SQLRow(columns: columns, values: try row.map(Self.value)) }
    }

    /// Through a cursor, `fetchSize` rows at a time, so a walk over the whole chain (verify,
    /// rotation) holds one batch, not every record. Cursors need a transaction; the sessions
    /// outside one (migrations, VACUUM) read nothing large and collect instead.
    func forEachRow(_ sql: String, values: [SQLValue], _ body: (SQLRow) throws -> Void) throws {
        guard inTransaction else {
            for row in try fetchAll(sql, values: values) { try body(row) }
            return
        }
        // A name of its own per walk: a body may walk another result meanwhile.
        let cursor = "samtalerum_rows_\(Self.cursorNumbers.add(1, ordering: .relaxed).newValue)"
        try execute("DECLARE \(cursor) NO SCROLL CURSOR FOR \(sql)", values: values)
        var columns: SQLColumns?
        while true {
            let batch = try run("FETCH FORWARD \(Self.fetchSize) FROM \(cursor)", []).rows
            guard let first = batch.first else { break }
            let names = columns ?? SQLColumns(first.map(\.columnName))
            columns = names
            for row in batch { try body(SQLRow(columns: names, values: try row.map(Self.value))) }
            if batch.count < Self.fetchSize { break }
        }
        try execute("CLOSE \(cursor)", values: [])
    }

    /// BEGIN …, the body, COMMIT; ROLLBACK on a thrown error. When even ROLLBACK fails the
    /// connection is handed back as unusable.
    func transaction<T>(_ begin: String, _ body: () throws -> T) throws -> T {
        do { try execute(begin, values: []) } catch { throw Unusable(underlying: error, beforeBegin: true) }
        let result: T
        do {
            result = try body()
            try execute("COMMIT", values: [])
        } catch {
            do { try execute("ROLLBACK", values: []) } catch let lost { _ = lost; throw Unusable(underlying: error) }
            throw error
        }
        return result
    }

    private func run(_ sql: String, _ values: [SQLValue]) throws -> PostgresQueryResult {
        var binds = PostgresBindings(capacity: values.count)
        for value in values {
            switch value {
            case .null: binds.appendNull()
            case .integer(let v): binds.append(v)
            case .real(let v): binds.append(v)
            case .text(let v): binds.append(v)
            case .blob(let v): binds.append(ByteBuffer(bytes: v))
            }
        }
        let future: EventLoopFuture<PostgresQueryResult> = connection.query(
            PostgresQuery(unsafeSQL: Self.numberedPlaceholders(sql), binds: binds), logger: logger)
        do {
            return try future.wait()
        } catch {
            throw SQLError.engine(PostgresEngine.reason(error))
        }
    }

    /// `?` → `$1`, `$2`, … outside quoted literals and identifiers.
    static func numberedPlaceholders(_ sql: String) -> String {
        var out = ""
        out.reserveCapacity(sql.utf8.count + 16)
        var n = 0
        var quote: Character?
        for c in sql {
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "'" || c == "\"" {
                quote = c
            } else if c == "?" {
                n += 1
                out += "$\(n)"
                continue
            }
            out.append(c)
        }
        return out
    }

    static func value(_ cell: PostgresCell) throws -> SQLValue {
        guard var bytes = cell.bytes else { return .null }
        do {
            switch cell.dataType {
            case .int2, .int4, .int8: return .integer(try cell.decode(Int64.self))
            case .bool: return .integer(try cell.decode(Bool.self) ? 1 : 0)
            case .float4, .float8: return .real(try cell.decode(Double.self))
            case .numeric:
                // SUM over BIGINT is NUMERIC in PostgreSQL; whole numbers come back as integers.
                let decimal = try cell.decode(Decimal.self)
                let number = NSDecimalNumber(decimal: decimal)
                if Decimal(number.int64Value) == decimal { return .integer(number.int64Value) }
                return .real(number.doubleValue)
            case .text, .varchar, .bpchar, .name, .unknown:
                return .text(bytes.readString(length: bytes.readableBytes) ?? "")
            case .bytea: return .blob(try cell.decode(Data.self))
            default: break
            }
        } catch {
            throw SQLError.engine("column \(cell.columnName): \(error)")
        }
        throw SQLError.engine("column \(cell.columnName) has PostgreSQL type \(cell.dataType), which the audit store does not read")
    }
}
