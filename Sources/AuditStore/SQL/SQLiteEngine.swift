import Foundation
import GRDB

/// The embedded engine: one SQLite file through GRDB, WAL, `synchronous=FULL`, `secure_delete`.
/// The only file in the store that knows GRDB. Migrations keep GRDB's own bookkeeping
/// (`grdb_migrations`), so every data directory made before the SQL layer opens unchanged.
final class SQLiteEngine: SQLEngine {
    let writer: any DatabaseWriter

    var dialect: SQLDialect { .sqlite }

    init(writer: any DatabaseWriter) {
        self.writer = writer
    }

    /// Opens (in read-write mode creating, owner-only) the database file at `path`.
    static func open(path: String, readOnly: Bool) throws -> SQLiteEngine {
        if !readOnly, !FileManager.default.fileExists(atPath: path) {
            // SQLite gives -wal and -shm the main file's mode, so 0600 here covers all three.
            try AuditKeys.writeNew(URL(fileURLWithPath: path), bytes: Data(), mode: 0o600)
        }
        var config = Configuration()
        config.label = "audit"
        config.readonly = readOnly
        config.prepareDatabase { db in
            // FULL: a commit survives power loss, not only a process crash. Only the writer
            // commits, but readers get the same setting so nothing depends on which connection runs.
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // Purged and erased content is overwritten with zeros, not left in free pages.
            try db.execute(sql: "PRAGMA secure_delete = ON")
        }
        return SQLiteEngine(writer: try DatabasePool(path: path, configuration: config))
    }

    func migrate(_ migrations: [SQLMigration]) throws {
        var migrator = DatabaseMigrator()
        for migration in migrations {
            migrator.registerMigration(migration.identifier) { db in
                for statement in migration.statements { try db.execute(sql: statement) }
            }
        }
        try migrator.migrate(writer)
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T,
                            afterCommit: @escaping @Sendable (T) -> Void) async throws -> T {
        try await writer.writeWithoutTransaction { db in try Self.immediate(db, body, afterCommit) }
    }

    func writeSync<T>(_ body: (any SQLSession) throws -> T, afterCommit: (T) -> Void) throws -> T {
        try writer.writeWithoutTransaction { db in try Self.immediate(db, body, afterCommit) }
    }

    /// `BEGIN IMMEDIATE`: the write lock is taken before the chain tip is read.
    private static func immediate<T>(_ db: Database, _ body: (any SQLSession) throws -> T,
                                     _ afterCommit: (T) -> Void) throws -> T {
        try db.beginTransaction(.immediate)
        let result: T
        do {
            result = try body(SQLiteSession(db: db))
            try db.commit()
        } catch {
            try? db.rollback()
            throw error
        }
        afterCommit(result)
        return result
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        try await writer.read { db in try body(SQLiteSession(db: db)) }
    }

    func readSync<T>(_ body: (any SQLSession) throws -> T) throws -> T {
        try writer.read { db in try body(SQLiteSession(db: db)) }
    }

    /// Rewriting the header's user_version dirties one page through the writer and fsyncs like a
    /// record; the chain and its head are untouched.
    func probeWrite() async throws {
        try await writer.writeWithoutTransaction { db in
            try Self.immediate(db, { session in
                let version = try session.scalar("PRAGMA user_version", as: Int64.self) ?? 0
                try session.execute("PRAGMA user_version = \(version)")
            }, { _ in })
        }
    }

    /// Old page images of overwritten rows may still sit in the WAL; fold it back and truncate
    /// it. A reader in progress can keep some frames until the next checkpoint.
    func scrubOverwritten(tables: [String]) async {
        _ = try? await writer.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
    }

    /// SQLite's online backup from one snapshot, switched to a single file (rollback journal) and
    /// integrity-checked; the caller verifies the chain in it.
    func backup(into file: URL) async throws -> (any SQLEngine)? {
        let copy = try DatabaseQueue(path: file.path)
        do {
            try writer.backup(to: copy)
            try await copy.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = DELETE") }
            let integrity = try await copy.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
            guard integrity == ["ok"] else {
                throw AuditStoreError.backupFailed("integrity_check: \(integrity.prefix(3).joined(separator: "; "))")
            }
        } catch {
            try? copy.close()
            throw error
        }
        return SQLiteEngine(writer: copy)
    }

    func close() throws {
        if let pool = writer as? DatabasePool { try pool.close() }
        if let queue = writer as? DatabaseQueue { try queue.close() }
    }
}

/// A GRDB connection seen through `SQLSession`. Statements are cached per connection: store SQL
/// is a bounded set of strings (no values are ever spliced into it).
struct SQLiteSession: SQLSession {
    let db: Database

    var dialect: SQLDialect { .sqlite }

    func execute(_ sql: String, values: [SQLValue]) throws -> Int {
        let statement = try db.cachedStatement(sql: sql)
        try statement.execute(arguments: Self.arguments(values))
        return db.changesCount
    }

    func fetchAll(_ sql: String, values: [SQLValue]) throws -> [SQLRow] {
        var rows: [SQLRow] = []
        try forEachRow(sql, values: values) { rows.append($0) }
        return rows
    }

    func forEachRow(_ sql: String, values: [SQLValue], _ body: (SQLRow) throws -> Void) throws {
        let statement = try db.cachedStatement(sql: sql)
        let columns = SQLColumns(statement.columnNames)
        let width = columns.names.count
        let cursor = try Row.fetchCursor(statement, arguments: Self.arguments(values))
        while let row = try cursor.next() {
            var values: [SQLValue] = []
            values.reserveCapacity(width)
            for i in 0..<width { values.append(Self.value((row[i] as DatabaseValue).storage)) }
            try body(SQLRow(columns: columns, values: values))
        }
    }

    private static func arguments(_ values: [SQLValue]) -> StatementArguments {
        StatementArguments(values.map { value -> DatabaseValue in
            switch value {
            case .null: .null
            case .integer(let v): v.databaseValue
            case .real(let v): v.databaseValue
            case .text(let v): v.databaseValue
            case .blob(let v): v.databaseValue
            }
        })
    }

    private static func value(_ storage: DatabaseValue.Storage) -> SQLValue {
        switch storage {
        case .null: .null
        case .int64(let v): .integer(v)
        case .double(let v): .real(v)
        case .string(let v): .text(v)
        case .blob(let v): .blob(v)
        }
    }
}
