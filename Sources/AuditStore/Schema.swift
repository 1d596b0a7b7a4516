import Foundation
import GRDB

/// Migrations are frozen SQL strings: once shipped, never edited, only appended to, so every
/// database ever created reaches the same schema.
enum Schema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-audit") { db in
            try db.execute(sql: """
                CREATE TABLE meeting (
                    id TEXT PRIMARY KEY NOT NULL,
                    workerPseudonym BLOB NOT NULL,
                    workerSealed BLOB NOT NULL,
                    citizenPseudonym BLOB NOT NULL,
                    citizenSealed BLOB NOT NULL,
                    createdAt INTEGER NOT NULL,
                    inviteExpiresAt INTEGER NOT NULL
                );
                CREATE INDEX meeting_by_citizen ON meeting(citizenPseudonym, createdAt);
                CREATE INDEX meeting_by_created ON meeting(createdAt);

                CREATE TABLE session (
                    id TEXT PRIMARY KEY NOT NULL,
                    meetingId TEXT NOT NULL,
                    workerPseudonym BLOB,
                    citizenPseudonym BLOB,
                    startedAt INTEGER NOT NULL,
                    endedAt INTEGER,
                    endReason TEXT,
                    lastEventAt INTEGER NOT NULL
                );
                CREATE INDEX session_by_citizen ON session(citizenPseudonym, startedAt);
                CREATE INDEX session_by_worker ON session(workerPseudonym, startedAt);
                CREATE INDEX session_by_start ON session(startedAt);
                CREATE INDEX session_by_meeting ON session(meetingId);
                CREATE INDEX session_open ON session(meetingId) WHERE endedAt IS NULL;
                CREATE INDEX session_by_end ON session(endedAt);

                CREATE TABLE participant (
                    sessionId TEXT NOT NULL,
                    role TEXT NOT NULL,
                    refPseudonym BLOB NOT NULL,
                    refSealed BLOB NOT NULL,
                    PRIMARY KEY (sessionId, role, refPseudonym)
                ) WITHOUT ROWID;

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
                );
                CREATE INDEX audit_event_by_subject ON audit_event(subjectPseudonym, kind);
                CREATE INDEX audit_event_by_at ON audit_event(at);

                CREATE TABLE checkpoint (
                    seq INTEGER PRIMARY KEY NOT NULL,
                    hash BLOB NOT NULL,
                    signedAt INTEGER NOT NULL,
                    signature BLOB NOT NULL
                );
                """)
        }
        migrator.registerMigration("v2-lookup-subjects") { db in
            // Which citizens' data each auditor look-up returned, so an Art. 15 export also lists
            // look-ups by worker or by time that happened to include this citizen. Keyed by the
            // look-up's record so a 1000-row answer appends to one place instead of touching
            // 1000 index pages; exports (rare) scan it.
            try db.execute(sql: """
                CREATE TABLE lookup_subject (
                    seq INTEGER NOT NULL,
                    subjectPseudonym BLOB NOT NULL,
                    PRIMARY KEY (seq, subjectPseudonym)
                ) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("v3-guests") { db in
            // A guest's reference lives in its `guest_invited` record (sealed like every other), so
            // erasure, key rotation and retention already cover it; this finds a meeting's guests.
            try db.execute(sql: """
                CREATE INDEX audit_event_guest_invites ON audit_event(meetingId) WHERE kind = 'guest_invited';
                """)
        }
        migrator.registerMigration("v4-meeting-schedule") { db in
            // Times and a random invite id: nothing personal, so nothing to seal.
            try db.execute(sql: """
                ALTER TABLE meeting ADD COLUMN startsAt INTEGER;
                ALTER TABLE meeting ADD COLUMN cancelledAt INTEGER;
                ALTER TABLE meeting ADD COLUMN citizenInviteId TEXT;
                CREATE INDEX meeting_by_worker ON meeting(workerPseudonym, createdAt);
                """)
        }
        migrator.registerMigration("v5-sealed-purpose") { db in
            // A look-up's purpose is free text and may name someone: it is sealed like a
            // reference, the chained record keeps only its keyed MAC (`purposeMac` in detail).
            try db.execute(sql: "ALTER TABLE audit_event ADD COLUMN purposeSealed BLOB")
        }
        migrator.registerMigration("v6-nodes") { db in
            // Several signalling nodes share one store: each session names the node hosting it
            // (NULL: recorded before nodes were named), how often it moved to another node, and
            // each node its last sign of life, so a node closes only its own sessions at start and
            // the others close those of a node that never came back. Host names, nothing personal.
            try db.execute(sql: """
                ALTER TABLE session ADD COLUMN hostNode TEXT;
                ALTER TABLE session ADD COLUMN moves INTEGER NOT NULL DEFAULT 0;
                CREATE TABLE node (
                    name TEXT PRIMARY KEY NOT NULL,
                    lastSeenAt INTEGER NOT NULL
                );
                """)
        }
        return migrator
    }
}

struct MeetingRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "meeting"
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
}

struct SessionRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "session"
    var id: String
    var meetingId: String
    var workerPseudonym: Data?
    var citizenPseudonym: Data?
    var startedAt: Int64
    var endedAt: Int64?
    var endReason: String?
    /// The last moment the store heard of this session: its end time if the server crashes.
    var lastEventAt: Int64
}

struct ParticipantRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "participant"
    var sessionId: String
    var role: String
    var refPseudonym: Data
    var refSealed: Data
}

struct EventRow: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "audit_event"
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
}

struct CheckpointRow: Codable, Equatable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "checkpoint"
    var seq: Int64
    var hash: Data
    var signedAt: Int64
    var signature: Data
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
