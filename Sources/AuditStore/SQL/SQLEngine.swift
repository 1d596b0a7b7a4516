import Foundation

// The audit store's engine-neutral SQL layer. Store code (chain, tables, verify, retention,
// erasure, export, queries, crash recovery) is written once against these types; an engine
// (SQLite over GRDB, PostgreSQL over postgres-nio) is the only code that knows its driver.
//
// SQL is written once with `?` placeholders; an engine whose driver wants `$1…` rewrites them.
// The few places where the two dialects must differ ask `SQLSession.dialect`.

/// A value as it crosses the engine boundary. Booleans travel as `.integer(0/1)` (PostgreSQL's
/// `boolean`, e.g. from `EXISTS`, is converted by its engine), so store code never sees a fifth kind.
public enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob(Data)
}

/// Which SQL the session speaks, for the few statements that cannot be written the same way.
public enum SQLDialect: Sendable, Equatable {
    case sqlite
    case postgres
}

/// A value that can be bound as an argument and read back from a column.
public protocol SQLValueConvertible: Sendable {
    var sqlValue: SQLValue { get }
    /// nil when `value` is not of this type (a NULL for a non-optional, text for an integer…).
    static func fromSQL(_ value: SQLValue) -> Self?
}

extension Int64: SQLValueConvertible {
    public var sqlValue: SQLValue { .integer(self) }
    public static func fromSQL(_ value: SQLValue) -> Int64? {
        if case .integer(let v) = value { return v }
        return nil
    }
}

extension Int: SQLValueConvertible {
    public var sqlValue: SQLValue { .integer(Int64(self)) }
    public static func fromSQL(_ value: SQLValue) -> Int? {
        if case .integer(let v) = value { return Int(exactly: v) }
        return nil
    }
}

extension Bool: SQLValueConvertible {
    public var sqlValue: SQLValue { .integer(self ? 1 : 0) }
    public static func fromSQL(_ value: SQLValue) -> Bool? {
        if case .integer(let v) = value { return v != 0 }
        return nil
    }
}

extension Double: SQLValueConvertible {
    public var sqlValue: SQLValue { .real(self) }
    public static func fromSQL(_ value: SQLValue) -> Double? {
        switch value {
        case .real(let v): v
        case .integer(let v): Double(v)
        default: nil
        }
    }
}

extension String: SQLValueConvertible {
    public var sqlValue: SQLValue { .text(self) }
    public static func fromSQL(_ value: SQLValue) -> String? {
        if case .text(let v) = value { return v }
        return nil
    }
}

extension Data: SQLValueConvertible {
    public var sqlValue: SQLValue { .blob(self) }
    public static func fromSQL(_ value: SQLValue) -> Data? {
        if case .blob(let v) = value { return v }
        return nil
    }
}

extension Optional: SQLValueConvertible where Wrapped: SQLValueConvertible {
    public var sqlValue: SQLValue { self?.sqlValue ?? .null }
    /// `.some(nil)` for NULL; nil (a type error) for a non-NULL value of another type.
    public static func fromSQL(_ value: SQLValue) -> Wrapped?? {
        if case .null = value { return .some(nil) }
        return Wrapped.fromSQL(value).map { .some($0) }
    }
}

/// What went wrong reading a row. Thrown, never trapped on: a tampered or foreign database
/// must give an error, not crash the server.
public enum SQLError: Error, Equatable, CustomStringConvertible {
    case missingColumn(String)
    case wrongType(column: String, expected: String, found: SQLValue)
    /// The engine (driver) failed; the message is the driver's.
    case engine(String)

    public var description: String {
        switch self {
        case .missingColumn(let name): "no column \(name) in the result"
        case .wrongType(let column, let expected, let found): "column \(column) is not \(expected): \(found)"
        case .engine(let message): message
        }
    }
}

/// The column names of one result, shared by its rows. Lookup is exact first, then
/// case-insensitive: PostgreSQL folds unquoted identifiers (`meetingId` comes back `meetingid`).
public final class SQLColumns: Sendable {
    public let names: [String]
    private let exact: [String: Int]
    private let folded: [String: Int]

    public init(_ names: [String]) {
        self.names = names
        var exact: [String: Int] = [:]
        var folded: [String: Int] = [:]
        // The first of two equal names wins, as in SQLite's `SELECT a.x, b.x`.
        for (i, name) in names.enumerated().reversed() {
            exact[name] = i
            folded[name.lowercased()] = i
        }
        self.exact = exact
        self.folded = folded
    }

    public func index(of name: String) -> Int? {
        exact[name] ?? folded[name.lowercased()]
    }
}

/// One result row. Read with `try row["name"]` or `try row[0]`, typed by the receiving variable.
public struct SQLRow: Sendable {
    public let columns: SQLColumns
    public let values: [SQLValue]

    public init(columns: SQLColumns, values: [SQLValue]) {
        self.columns = columns
        self.values = values
    }

    public func value(named name: String) throws -> SQLValue {
        guard let i = columns.index(of: name), i < values.count else { throw SQLError.missingColumn(name) }
        return values[i]
    }

    public subscript<T: SQLValueConvertible>(_ name: String) -> T {
        get throws {
            let value = try value(named: name)
            guard let typed = T.fromSQL(value) else {
                throw SQLError.wrongType(column: name, expected: "\(T.self)", found: value)
            }
            return typed
        }
    }

    public subscript<T: SQLValueConvertible>(_ position: Int) -> T {
        get throws {
            guard values.indices.contains(position) else { throw SQLError.missingColumn("#\(position)") }
            guard let typed = T.fromSQL(values[position]) else {
                let name = position < columns.names.count ? columns.names[position] : "#\(position)"
                throw SQLError.wrongType(column: name, expected: "\(T.self)", found: values[position])
            }
            return typed
        }
    }
}

/// One connection inside a transaction (a write) or a consistent snapshot (a read). Not Sendable:
/// it lives only for the closure it is handed to.
public protocol SQLSession {
    var dialect: SQLDialect { get }
    /// Runs one statement; returns the number of rows it inserted, updated or deleted.
    @discardableResult
    func execute(_ sql: String, values: [SQLValue]) throws -> Int
    func fetchAll(_ sql: String, values: [SQLValue]) throws -> [SQLRow]
    /// Streams the rows (a chain walk over millions of records need not hold them all).
    func forEachRow(_ sql: String, values: [SQLValue], _ body: (SQLRow) throws -> Void) throws
}

extension SQLSession {
    @discardableResult
    public func execute(_ sql: String, _ arguments: [any SQLValueConvertible] = []) throws -> Int {
        try execute(sql, values: arguments.map(\.sqlValue))
    }

    public func fetchAll(_ sql: String, _ arguments: [any SQLValueConvertible] = []) throws -> [SQLRow] {
        try fetchAll(sql, values: arguments.map(\.sqlValue))
    }

    public func forEachRow(_ sql: String, _ arguments: [any SQLValueConvertible] = [],
                           _ body: (SQLRow) throws -> Void) throws {
        try forEachRow(sql, values: arguments.map(\.sqlValue), body)
    }

    public func fetchOne(_ sql: String, _ arguments: [any SQLValueConvertible] = []) throws -> SQLRow? {
        try fetchAll(sql, values: arguments.map(\.sqlValue)).first
    }

    /// The first column of the first row; nil when there is no row or it is NULL.
    public func scalar<T: SQLValueConvertible>(_ sql: String, _ arguments: [any SQLValueConvertible] = [],
                                               as type: T.Type = T.self) throws -> T? {
        guard let row = try fetchOne(sql, arguments) else { return nil }
        let value: T? = try row[0]
        return value
    }

    /// The first column of every row (NULLs skipped).
    public func column<T: SQLValueConvertible>(_ sql: String, _ arguments: [any SQLValueConvertible] = [],
                                               as type: T.Type = T.self) throws -> [T] {
        try fetchAll(sql, values: arguments.map(\.sqlValue)).compactMap { row -> T? in try row[0] }
    }
}

/// One schema step, frozen once shipped: never edited, only appended to. Single statements, so
/// an engine can run them with its driver's one-statement call.
public struct SQLMigration: Sendable {
    public let identifier: String
    public let statements: [String]

    public init(_ identifier: String, _ statements: [String]) {
        self.identifier = identifier
        self.statements = statements
    }
}

/// Where the store's tables live. The data directory holds keys/ and the signed head file on both.
public enum AuditBackend: Sendable, Equatable {
    /// `DATA/audit.sqlite`, embedded (the default).
    case sqlite
    /// A PostgreSQL database shared by the nodes (`audit.postgresURL`).
    case postgres(PostgresLocation)
}

/// `postgres://USER[:PASSWORD]@HOST:PORT/DATABASE[?sslmode=disable|require|verify-full]`, and
/// optionally a file holding the password (production; the URL password is for development).
public struct PostgresLocation: Sendable, Equatable {
    public var url: String
    public var passwordFile: URL?

    public init(url: String, passwordFile: URL? = nil) {
        self.url = url
        self.passwordFile = passwordFile
    }
}

/// A database the store runs on. One instance per opened store.
///
/// Writes are serialised: within the process one at a time, and across processes by the engine
/// (SQLite: one writer connection, `BEGIN IMMEDIATE`; PostgreSQL: `pg_advisory_xact_lock` taken as
/// the transaction's first statement, at READ COMMITTED, so every statement after it sees the chain
/// tip other nodes committed). Reads see one consistent snapshot for the whole closure.
public protocol SQLEngine: Sendable {
    var dialect: SQLDialect { get }

    /// Brings the schema up to date: applies, in order and each in its own transaction, the
    /// migrations not yet recorded as applied. Safe when several nodes start at once.
    func migrate(_ migrations: [SQLMigration]) throws

    /// One write transaction. `afterCommit` runs with the body's result once it is durable, before
    /// any other write of this engine starts (the store publishes its signed head file there).
    func write<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T,
                            afterCommit: @escaping @Sendable (T) -> Void) async throws -> T
    /// The same, for the synchronous callers (open, crash recovery, key rotation, shutdown).
    func writeSync<T>(_ body: (any SQLSession) throws -> T, afterCommit: (T) -> Void) throws -> T

    func read<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T
    func readSync<T>(_ body: (any SQLSession) throws -> T) throws -> T

    /// Commits a transaction that changes nothing a reader sees, with a record's durability: it
    /// fails exactly when a record would (disk full, read-only storage, lost connection).
    func probeWrite() async throws

    /// After an erasure: best effort to remove old versions of overwritten rows from the storage
    /// (SQLite: checkpoint and truncate the WAL; PostgreSQL: VACUUM the touched tables).
    func scrubOverwritten(tables: [String]) async

    /// A consistent copy of the whole database into `file` (exists, empty, mode 0600). Returns an
    /// engine reading the copy, so the store can verify it before renaming it into place, or nil
    /// when the copy is not a database that can be opened (a dump); the caller closes it.
    func backup(into file: URL) async throws -> (any SQLEngine)?

    /// Closes the connections. Further use throws.
    func close() throws
}

extension SQLEngine {
    public func write<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        try await write(body, afterCommit: { _ in })
    }

    public func writeSync<T>(_ body: (any SQLSession) throws -> T) throws -> T {
        try writeSync(body, afterCommit: { _ in })
    }
}

extension SQLDialect {
    /// The larger of two expressions: SQLite's two-argument `MAX`, PostgreSQL's `GREATEST`.
    public func greatest(_ a: String, _ b: String) -> String {
        switch self {
        case .sqlite: "MAX(\(a), \(b))"
        case .postgres: "GREATEST(\(a), \(b))"
        }
    }
}
