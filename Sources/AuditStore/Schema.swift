import Foundation

/// Migrations are frozen SQL: once shipped, never edited, only appended to, so every database
/// ever created reaches the same schema. Each engine has its own list (same tables, same column
/// names); a step added to one gets its twin in the other.
enum Schema {
    static func migrations(for dialect: SQLDialect) -> [SQLMigration] {
        switch dialect {
        case .sqlite: sqlite
        case .postgres: postgres
        }
    }

    /// The identifiers are GRDB migrator names recorded in existing `audit.sqlite` files.
    static let sqlite: [SQLMigration] = [
        SQLMigration("v1-audit", [
            """
            CREATE TABLE meeting (
                id TEXT PRIMARY KEY NOT NULL,
                workerPseudonym BLOB NOT NULL,
                workerSealed BLOB NOT NULL,
                citizenPseudonym BLOB NOT NULL,
                citizenSealed BLOB NOT NULL,
                createdAt INTEGER NOT NULL,
                inviteExpiresAt INTEGER NOT NULL
            )
            """,
            "CREATE INDEX meeting_by_citizen ON meeting(citizenPseudonym, createdAt)",
            "CREATE INDEX meeting_by_created ON meeting(createdAt)",
            """
            CREATE TABLE session (
                id TEXT PRIMARY KEY NOT NULL,
                meetingId TEXT NOT NULL,
                workerPseudonym BLOB,
                citizenPseudonym BLOB,
                startedAt INTEGER NOT NULL,
                endedAt INTEGER,
                endReason TEXT,
                lastEventAt INTEGER NOT NULL
            )
            """,
            "CREATE INDEX session_by_citizen ON session(citizenPseudonym, startedAt)",
            "CREATE INDEX session_by_worker ON session(workerPseudonym, startedAt)",
            "CREATE INDEX session_by_start ON session(startedAt)",
            "CREATE INDEX session_by_meeting ON session(meetingId)",
            "CREATE INDEX session_open ON session(meetingId) WHERE endedAt IS NULL",
            "CREATE INDEX session_by_end ON session(endedAt)",
            """
            CREATE TABLE participant (
                sessionId TEXT NOT NULL,
                role TEXT NOT NULL,
                refPseudonym BLOB NOT NULL,
                refSealed BLOB NOT NULL,
                PRIMARY KEY (sessionId, role, refPseudonym)
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE audit_event (
                seq INTEGER PRIMARY KEY NOT NULL,
                at INTEGER NOT NULL,
                kind TEXT NOT NULL,
                meetingId TEXT,
                sessionId TEXT,
                actorPseudonym BLOB,
                actorSealed BLOB,
                subjectPseudonym BLOB,
                subjectSealed BLOB,
                detail TEXT NOT NULL,
                prevHash BLOB NOT NULL,
                hash BLOB NOT NULL
            )
            """,
            "CREATE INDEX audit_event_by_subject ON audit_event(subjectPseudonym, kind)",
            "CREATE INDEX audit_event_by_at ON audit_event(at)",
            """
            CREATE TABLE checkpoint (
                seq INTEGER PRIMARY KEY NOT NULL,
                hash BLOB NOT NULL,
                signedAt INTEGER NOT NULL,
                signature BLOB NOT NULL
            )
            """,
        ]),
        // Which citizens' data each auditor look-up returned, so an Art. 15 export also lists
        // look-ups by worker or by time that happened to include this citizen. Keyed by the
        // look-up's record so a 1000-row answer appends to one place instead of touching
        // 1000 index pages; exports (rare) scan it.
        SQLMigration("v2-lookup-subjects", [
            """
            CREATE TABLE lookup_subject (
                seq INTEGER NOT NULL,
                subjectPseudonym BLOB NOT NULL,
                PRIMARY KEY (seq, subjectPseudonym)
            ) WITHOUT ROWID
            """,
        ]),
        // A guest's reference lives in its `guest_invited` record (sealed like every other), so
        // erasure, key rotation and retention already cover it; this finds a meeting's guests.
        SQLMigration("v3-guests", [
            "CREATE INDEX audit_event_guest_invites ON audit_event(meetingId) WHERE kind = 'guest_invited'",
        ]),
        // Times and a random invite id: nothing personal, so nothing to seal.
        SQLMigration("v4-meeting-schedule", [
            "ALTER TABLE meeting ADD COLUMN startsAt INTEGER",
            "ALTER TABLE meeting ADD COLUMN cancelledAt INTEGER",
            "ALTER TABLE meeting ADD COLUMN citizenInviteId TEXT",
            "CREATE INDEX meeting_by_worker ON meeting(workerPseudonym, createdAt)",
        ]),
        // A look-up's purpose is free text and may name someone: it is sealed like a
        // reference, the chained record keeps only its keyed MAC (`purposeMac` in detail).
        SQLMigration("v5-sealed-purpose", [
            "ALTER TABLE audit_event ADD COLUMN purposeSealed BLOB",
        ]),
        // Several signalling nodes share one store: each session names the node hosting it
        // (NULL: recorded before nodes were named), how often it moved to another node, and
        // each node its last sign of life, so a node closes only its own sessions at start and
        // the others close those of a node that never came back. Host names, nothing personal.
        SQLMigration("v6-nodes", [
            "ALTER TABLE session ADD COLUMN hostNode TEXT",
            "ALTER TABLE session ADD COLUMN moves INTEGER NOT NULL DEFAULT 0",
            """
            CREATE TABLE node (
                name TEXT PRIMARY KEY NOT NULL,
                lastSeenAt INTEGER NOT NULL
            )
            """,
        ]),
    ]

    /// The same tables for PostgreSQL, started at the SQLite list's v5 state. Differences: BIGINT
    /// and BYTEA; text keys in the "C" collation so they sort bytewise as SQLite's BINARY does
    /// (pages and exports come out in the same order on both); and `session.rowid`, which SQLite
    /// has implicitly and look-up pages use as their tie-break.
    static let postgres: [SQLMigration] = [
        SQLMigration("pg1-audit", [
            """
            CREATE TABLE meeting (
                id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
                workerPseudonym BYTEA NOT NULL,
                workerSealed BYTEA NOT NULL,
                citizenPseudonym BYTEA NOT NULL,
                citizenSealed BYTEA NOT NULL,
                createdAt BIGINT NOT NULL,
                inviteExpiresAt BIGINT NOT NULL,
                startsAt BIGINT,
                cancelledAt BIGINT,
                citizenInviteId TEXT COLLATE "C"
            )
            """,
            "CREATE INDEX meeting_by_citizen ON meeting(citizenPseudonym, createdAt)",
            "CREATE INDEX meeting_by_created ON meeting(createdAt)",
            "CREATE INDEX meeting_by_worker ON meeting(workerPseudonym, createdAt)",
            """
            CREATE TABLE session (
                id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
                meetingId TEXT COLLATE "C" NOT NULL,
                workerPseudonym BYTEA,
                citizenPseudonym BYTEA,
                startedAt BIGINT NOT NULL,
                endedAt BIGINT,
                endReason TEXT COLLATE "C",
                lastEventAt BIGINT NOT NULL,
                rowid BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE
            )
            """,
            "CREATE INDEX session_by_citizen ON session(citizenPseudonym, startedAt, rowid)",
            "CREATE INDEX session_by_worker ON session(workerPseudonym, startedAt, rowid)",
            "CREATE INDEX session_by_start ON session(startedAt, rowid)",
            "CREATE INDEX session_by_meeting ON session(meetingId)",
            "CREATE INDEX session_open ON session(meetingId) WHERE endedAt IS NULL",
            "CREATE INDEX session_by_end ON session(endedAt)",
            """
            CREATE TABLE participant (
                sessionId TEXT COLLATE "C" NOT NULL,
                role TEXT COLLATE "C" NOT NULL,
                refPseudonym BYTEA NOT NULL,
                refSealed BYTEA NOT NULL,
                PRIMARY KEY (sessionId, role, refPseudonym)
            )
            """,
            """
            CREATE TABLE audit_event (
                seq BIGINT PRIMARY KEY NOT NULL,
                at BIGINT NOT NULL,
                kind TEXT COLLATE "C" NOT NULL,
                meetingId TEXT COLLATE "C",
                sessionId TEXT COLLATE "C",
                actorPseudonym BYTEA,
                actorSealed BYTEA,
                subjectPseudonym BYTEA,
                subjectSealed BYTEA,
                detail TEXT NOT NULL,
                prevHash BYTEA NOT NULL,
                hash BYTEA NOT NULL,
                purposeSealed BYTEA
            )
            """,
            "CREATE INDEX audit_event_by_subject ON audit_event(subjectPseudonym, kind)",
            "CREATE INDEX audit_event_by_at ON audit_event(at)",
            "CREATE INDEX audit_event_guest_invites ON audit_event(meetingId) WHERE kind = 'guest_invited'",
            """
            CREATE TABLE checkpoint (
                seq BIGINT PRIMARY KEY NOT NULL,
                hash BYTEA NOT NULL,
                signedAt BIGINT NOT NULL,
                signature BYTEA NOT NULL
            )
            """,
            """
            CREATE TABLE lookup_subject (
                seq BIGINT NOT NULL,
                subjectPseudonym BYTEA NOT NULL,
                PRIMARY KEY (seq, subjectPseudonym)
            )
            """,
        ]),
        // The twin of v6-nodes.
        SQLMigration("pg2-nodes", [
            "ALTER TABLE session ADD COLUMN hostNode TEXT COLLATE \"C\"",
            "ALTER TABLE session ADD COLUMN moves BIGINT NOT NULL DEFAULT 0",
            """
            CREATE TABLE node (
                name TEXT COLLATE "C" PRIMARY KEY NOT NULL,
                lastSeenAt BIGINT NOT NULL
            )
            """,
        ]),
    ]
}

/// A table row the store reads and writes whole. `columns` is the order `init(row:)` reads by
/// position (fast on both engines, and immune to PostgreSQL's folding of names) and `values` binds.
protocol SQLRecord {
    static var table: String { get }
    static var columns: [String] { get }
    init(row: SQLRow) throws
    var values: [SQLValue] { get }
}

extension SQLRecord {
    /// The record's columns for a SELECT list, optionally qualified (`m.id, m.workerPseudonym, …`).
    static func selection(_ alias: String? = nil) -> String {
        columns.map { name in alias.map { "\($0).\(name)" } ?? name }.joined(separator: ", ")
    }

    /// `SELECT <columns> FROM <table>`, to which a caller appends its WHERE/ORDER BY.
    static var selectAll: String { "SELECT \(selection()) FROM \(table)" }

    /// `orIgnore`: a row with the same key is left as it is (`ON CONFLICT DO NOTHING`, both engines).
    func insert(_ db: any SQLSession, orIgnore: Bool = false) throws {
        let placeholders = Array(repeating: "?", count: Self.columns.count).joined(separator: ", ")
        try db.execute("INSERT INTO \(Self.table) (\(Self.selection())) VALUES (\(placeholders))"
                       + (orIgnore ? " ON CONFLICT DO NOTHING" : ""), values: values)
    }
}

extension SQLSession {
    func fetchAll<R: SQLRecord>(_ type: R.Type, _ sql: String, _ arguments: [any SQLValueConvertible] = []) throws -> [R] {
        try fetchAll(sql, arguments).map(R.init(row:))
    }

    func fetchOne<R: SQLRecord>(_ type: R.Type, _ sql: String, _ arguments: [any SQLValueConvertible] = []) throws -> R? {
        try fetchOne(sql, arguments).map(R.init(row:))
    }

    /// Every row of `R`'s table in the order of `key` (its primary key), `batch` rows per statement:
    /// an engine that collects a result before handing it over (PostgreSQL) never holds a whole
    /// table, so verify's walk over millions of records stays bounded in memory on both engines.
    func forEachInKeyOrder<R: SQLRecord>(_ type: R.Type, key: [String], batch: Int = 5_000,
                                         _ body: (R) throws -> Void) throws {
        let positions = key.compactMap { R.columns.firstIndex(of: $0) }
        guard positions.count == key.count, !key.isEmpty else {
            throw SQLError.missingColumn(key.joined(separator: ", "))
        }
        let keyList = key.joined(separator: ", ")
        let order = " ORDER BY \(keyList) LIMIT \(batch)"
        let after = R.selectAll + " WHERE (\(keyList)) > (\(Array(repeating: "?", count: key.count).joined(separator: ", ")))" + order
        var last: [SQLValue]?
        while true {
            let rows = try last.map { try fetchAll(after, values: $0) } ?? fetchAll(R.selectAll + order, values: [])
            for row in rows { try body(R(row: row)) }
            guard rows.count == batch, let final = rows.last else { return }
            last = positions.map { final.values[$0] }
        }
    }
}

struct MeetingRow: SQLRecord, Sendable {
    static let table = "meeting"
    static let columns = ["id", "workerPseudonym", "workerSealed", "citizenPseudonym", "citizenSealed", "createdAt",
                          "inviteExpiresAt", "startsAt", "cancelledAt", "citizenInviteId"]
    var id: String
    var workerPseudonym: Data
    var workerSealed: Data
    var citizenPseudonym: Data
    var citizenSealed: Data
    var createdAt: Int64
    var inviteExpiresAt: Int64
    var startsAt: Int64?
    var cancelledAt: Int64?
    var citizenInviteId: String?

    init(id: String, workerPseudonym: Data, workerSealed: Data, citizenPseudonym: Data, citizenSealed: Data,
         createdAt: Int64, inviteExpiresAt: Int64, startsAt: Int64?, cancelledAt: Int64?, citizenInviteId: String?) {
        self.id = id
        self.workerPseudonym = workerPseudonym
        self.workerSealed = workerSealed
        self.citizenPseudonym = citizenPseudonym
        self.citizenSealed = citizenSealed
        self.createdAt = createdAt
        self.inviteExpiresAt = inviteExpiresAt
        self.startsAt = startsAt
        self.cancelledAt = cancelledAt
        self.citizenInviteId = citizenInviteId
    }

    init(row: SQLRow) throws {
        id = try row[0]
        workerPseudonym = try row[1]
        workerSealed = try row[2]
        citizenPseudonym = try row[3]
        citizenSealed = try row[4]
        createdAt = try row[5]
        inviteExpiresAt = try row[6]
        startsAt = try row[7]
        cancelledAt = try row[8]
        citizenInviteId = try row[9]
    }

    var values: [SQLValue] {
        [id.sqlValue, workerPseudonym.sqlValue, workerSealed.sqlValue, citizenPseudonym.sqlValue, citizenSealed.sqlValue,
         createdAt.sqlValue, inviteExpiresAt.sqlValue, startsAt.sqlValue, cancelledAt.sqlValue, citizenInviteId.sqlValue]
    }
}

struct SessionRow: SQLRecord, Sendable {
    static let table = "session"
    static let columns = ["id", "meetingId", "workerPseudonym", "citizenPseudonym", "startedAt", "endedAt", "endReason",
                          "lastEventAt"]
    var id: String
    var meetingId: String
    var workerPseudonym: Data?
    var citizenPseudonym: Data?
    var startedAt: Int64
    var endedAt: Int64?
    var endReason: String?
    /// The last moment the store heard of this session: its end time if the server crashes.
    var lastEventAt: Int64

    init(row: SQLRow) throws {
        id = try row[0]
        meetingId = try row[1]
        workerPseudonym = try row[2]
        citizenPseudonym = try row[3]
        startedAt = try row[4]
        endedAt = try row[5]
        endReason = try row[6]
        lastEventAt = try row[7]
    }

    var values: [SQLValue] {
        [id.sqlValue, meetingId.sqlValue, workerPseudonym.sqlValue, citizenPseudonym.sqlValue, startedAt.sqlValue,
         endedAt.sqlValue, endReason.sqlValue, lastEventAt.sqlValue]
    }
}

struct ParticipantRow: SQLRecord, Sendable {
    static let table = "participant"
    static let columns = ["sessionId", "role", "refPseudonym", "refSealed"]
    var sessionId: String
    var role: String
    var refPseudonym: Data
    var refSealed: Data

    init(row: SQLRow) throws {
        sessionId = try row[0]
        role = try row[1]
        refPseudonym = try row[2]
        refSealed = try row[3]
    }

    var values: [SQLValue] { [sessionId.sqlValue, role.sqlValue, refPseudonym.sqlValue, refSealed.sqlValue] }
}

struct EventRow: SQLRecord, Sendable {
    static let table = "audit_event"
    static let columns = ["seq", "at", "kind", "meetingId", "sessionId", "actorPseudonym", "actorSealed",
                          "subjectPseudonym", "subjectSealed", "detail", "prevHash", "hash", "purposeSealed"]
    var seq: Int64
    var at: Int64
    var kind: String
    var meetingId: String?
    var sessionId: String?
    var actorPseudonym: Data?
    var actorSealed: Data?
    var subjectPseudonym: Data?
    var subjectSealed: Data?
    /// JSON with sorted keys; metadata only (roles, reasons, counts, pseudonyms in hex).
    var detail: String
    var prevHash: Data
    var hash: Data
    /// The sealed purpose of a look-up, export or erasure; outside the hash like sealed references.
    var purposeSealed: Data? = nil

    init(seq: Int64, at: Int64, kind: String, meetingId: String?, sessionId: String?, actorPseudonym: Data?,
         actorSealed: Data?, subjectPseudonym: Data?, subjectSealed: Data?, detail: String, prevHash: Data, hash: Data,
         purposeSealed: Data? = nil) {
        self.seq = seq
        self.at = at
        self.kind = kind
        self.meetingId = meetingId
        self.sessionId = sessionId
        self.actorPseudonym = actorPseudonym
        self.actorSealed = actorSealed
        self.subjectPseudonym = subjectPseudonym
        self.subjectSealed = subjectSealed
        self.detail = detail
        self.prevHash = prevHash
        self.hash = hash
        self.purposeSealed = purposeSealed
    }

    init(row: SQLRow) throws {
        seq = try row[0]
        at = try row[1]
        kind = try row[2]
        meetingId = try row[3]
        sessionId = try row[4]
        actorPseudonym = try row[5]
        actorSealed = try row[6]
        subjectPseudonym = try row[7]
        subjectSealed = try row[8]
        detail = try row[9]
        prevHash = try row[10]
        hash = try row[11]
        purposeSealed = try row[12]
    }

    var values: [SQLValue] {
        [seq.sqlValue, at.sqlValue, kind.sqlValue, meetingId.sqlValue, sessionId.sqlValue, actorPseudonym.sqlValue,
         actorSealed.sqlValue, subjectPseudonym.sqlValue, subjectSealed.sqlValue, detail.sqlValue, prevHash.sqlValue,
         hash.sqlValue, purposeSealed.sqlValue]
    }
}

struct CheckpointRow: SQLRecord, Equatable, Sendable {
    static let table = "checkpoint"
    static let columns = ["seq", "hash", "signedAt", "signature"]
    var seq: Int64
    var hash: Data
    var signedAt: Int64
    var signature: Data

    init(seq: Int64, hash: Data, signedAt: Int64, signature: Data) {
        self.seq = seq
        self.hash = hash
        self.signedAt = signedAt
        self.signature = signature
    }

    init(row: SQLRow) throws {
        seq = try row[0]
        hash = try row[1]
        signedAt = try row[2]
        signature = try row[3]
    }

    var values: [SQLValue] { [seq.sqlValue, hash.sqlValue, signedAt.sqlValue, signature.sqlValue] }
}

/// A reference as stored: the lookup pseudonym plus the sealed original.
struct StoredRef: Sendable {
    var pseudonym: Data
    var sealed: Data
}

extension Date {
    /// Times are whole milliseconds in the database so hashes are reproducible.
    var auditMilliseconds: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }
    init(auditMilliseconds ms: Int64) { self.init(timeIntervalSince1970: Double(ms) / 1000) }
}

extension Data {
    /// SQLite's BLOB order. The generic `lexicographicallyPrecedes` on Data was 8 % of a
    /// 1000-row look-up's CPU time.
    static func memcmpPrecedes(_ a: Data, _ b: Data) -> Bool {
        let common = Swift.min(a.count, b.count)
        let order = a.withUnsafeBytes { pa in
            b.withUnsafeBytes { pb -> Int32 in
                guard let x = pa.baseAddress, let y = pb.baseAddress else { return 0 }
                return memcmp(x, y, common)
            }
        }
        return order != 0 ? order < 0 : a.count < b.count
    }

    var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(count * 2)
        for byte in self {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
