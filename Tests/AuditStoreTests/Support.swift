import Foundation
import Logging
import Testing
@testable import AuditStore
import SamtalerumCore

/// Every store test runs on both engines. PostgreSQL cases get a fresh database per test on the
/// cluster named by `SAMTALERUM_TEST_POSTGRES_URL` (Scripts/test starts one). Without it they
/// are cancelled with a note locally, and fail under `CI=true`: CI must not pass them silently.
enum StoreBackend: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case sqlite
    case postgres

    static let all = allCases
    static let clusterVariable = "SAMTALERUM_TEST_POSTGRES_URL"

    var testDescription: String { rawValue }
}

struct MissingTestCluster: Error, CustomStringConvertible {
    var description: String {
        "\(StoreBackend.clusterVariable) is unset: CI must run the store tests on PostgreSQL too (Scripts/test starts a cluster)"
    }
}

/// A fresh data directory (and, on PostgreSQL, a fresh database) per test; removed when the
/// test's scope ends.
final class TempDataDir: Sendable {
    let url: URL
    let backend: StoreBackend
    let location: AuditBackend

    init(_ backend: StoreBackend) throws {
        self.backend = backend
        switch backend {
        case .sqlite:
            location = .sqlite
        case .postgres:
            location = .postgres(try Self.freshPostgresDatabase())
        }
        url = FileManager.default.temporaryDirectory.appendingPathComponent("audit-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    private static func freshPostgresDatabase() throws -> PostgresLocation {
        let environment = ProcessInfo.processInfo.environment
        if let cluster = environment[StoreBackend.clusterVariable], !cluster.isEmpty {
            return try PostgresTestCluster.freshDatabase(cluster: cluster)
        }
        if environment["CI"] == "true" { throw MissingTestCluster() }
        let note: Comment = "PostgreSQL case not run: \(StoreBackend.clusterVariable) is unset (Scripts/test sets it)"
        // A warning shows in the run's output; the cancellation keeps the case from counting as passed.
        Issue.record(note, severity: .warning)
        try Test.cancel(note)
    }

    deinit {
        try? FileManager.default.removeItem(at: url)
        if case .postgres(let database) = location { try? PostgresTestCluster.drop(database) }
    }

    var databasePath: String { url.appendingPathComponent(AuditDatabase.databaseFileName).path }

    func open(mode: AuditAccessMode = .readWrite, clock: WallClock = .system, checkpointInterval: Int = 64,
              node: String? = nil, logger: Logger = Logger(label: "samtalerum.audit")) throws -> AuditDatabase {
        try AuditDatabase.open(dataDirectory: url, backend: location, mode: mode, clock: clock,
                               checkpointInterval: checkpointInterval, node: node, logger: logger)
    }

    func rotateKeys(actor: SubjectRef, at: Date, checkpointInterval: Int = 64) throws -> KeyRotationReport {
        try AuditDatabase.rotateKeys(dataDirectory: url, backend: location, actor: actor, at: at,
                                     checkpointInterval: checkpointInterval)
    }

    var dialect: SQLDialect { backend == .sqlite ? .sqlite : .postgres }

    /// Tampering as an attacker would: a connection of its own, none of the store's code but the
    /// engine. `sql` may hold several statements separated by `;` (none inside a literal).
    func rawSQL(_ sql: String) throws {
        let statements = sql.split(separator: ";").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            .filter { !$0.isEmpty }
        try withRawEngine { engine in
            try engine.writeSync { db in for statement in statements { try db.execute(dialect.translate(statement)) } }
        }
    }

    /// One statement as it is (a trigger body holds semicolons).
    func rawStatement(_ sql: String) throws {
        try withRawEngine { engine in try engine.writeSync { db in _ = try db.execute(sql) } }
    }

    func rawInt(_ sql: String) throws -> Int {
        try withRawEngine { engine in try engine.readSync { db in try db.scalar(dialect.translate(sql), as: Int.self) } } ?? -1
    }

    func rawRows(_ sql: String) throws -> [SQLRow] {
        try withRawEngine { engine in try engine.readSync { db in try db.fetchAll(dialect.translate(sql)) } }
    }

    func rawText(_ sql: String) throws -> String {
        try withRawEngine { engine in try engine.readSync { db in try db.scalar(dialect.translate(sql), as: String.self) } } ?? ""
    }

    /// Every byte the store keeps in its tables. On SQLite the file itself (with its WAL), free
    /// pages included; on PostgreSQL each stored value, text as UTF-8 and blobs as they are.
    func storedBytes() throws -> Data {
        if backend == .sqlite {
            var bytes = Data()
            for suffix in ["", "-wal"] {
                if let data = FileManager.default.contents(atPath: databasePath + suffix) { bytes.append(data) }
            }
            return bytes
        }
        return try withRawEngine { engine in
            try engine.readSync { db in
                var bytes = Data()
                for table in ["meeting", "session", "participant", "audit_event", "checkpoint", "lookup_subject"] {
                    try db.forEachRow("SELECT * FROM \(table)") { row in
                        for value in row.values {
                            switch value {
                            case .text(let text): bytes.append(Data(text.utf8))
                            case .blob(let blob): bytes.append(blob)
                            case .null, .integer, .real: break
                            }
                        }
                    }
                }
                return bytes
            }
        }
    }

    private func withRawEngine<T>(_ body: (any SQLEngine) throws -> T) throws -> T {
        let engine = try AuditDatabase.openEngine(location, in: url, readOnly: false, logger: Logger(label: "tamper"))
        defer { try? engine.close() }
        return try body(engine)
    }
}

extension SQLDialect {
    /// Test SQL is written in SQLite's words for blobs (`X'00'`, `zeroblob(n)`, `randomblob(32)`,
    /// `hex(column)`); this says the same in PostgreSQL's.
    func translate(_ sql: String) -> String {
        guard self == .postgres else { return sql }
        let rules: [(String, String)] = [
            (#"X'([0-9A-Fa-f]*)'"#, #"'\\x$1'::bytea"#),
            (#"zeroblob\((\d+)\)"#, "decode(repeat('00', $1), 'hex')"),
            (#"randomblob\(32\)"#, "decode(md5(random()::text) || md5(random()::text), 'hex')"),
            (#"hex\((\w+)\)"#, "upper(encode($1, 'hex'))"),
        ]
        var out = sql
        for (pattern, template) in rules {
            guard let regex = try? NSRegularExpression(pattern: pattern) else { continue }
            out = regex.stringByReplacingMatches(in: out, range: NSRange(out.startIndex..., in: out), withTemplate: template)
        }
        return out
    }

    /// A statement that makes every insert into `audit_event` fail, as a full disk would
    /// (`failWrites` on), and one that removes it again.
    func failWrites(_ on: Bool) -> [String] {
        switch (self, on) {
        case (.sqlite, true):
            ["CREATE TRIGGER fail_writes BEFORE INSERT ON audit_event BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END"]
        case (.sqlite, false):
            ["DROP TRIGGER fail_writes"]
        case (.postgres, true):
            ["CREATE FUNCTION fail_writes() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full (test)'; END $$",
             "CREATE TRIGGER fail_writes BEFORE INSERT ON audit_event FOR EACH STATEMENT EXECUTE FUNCTION fail_writes()"]
        case (.postgres, false):
            ["DROP TRIGGER fail_writes ON audit_event", "DROP FUNCTION fail_writes()"]
        }
    }
}

/// The n-th row (1-based) of `table` in the order it was recorded (`meeting` by creation,
/// `session` by start), by id: the same SQL on both engines, unlike SQLite's rowid.
func nth(_ table: String, _ n: Int) -> String {
    let order = table == "meeting" ? "createdAt" : "startedAt"
    return "(SELECT id FROM \(table) ORDER BY \(order), id LIMIT 1 OFFSET \(n - 1))"
}

let t0 = Date(timeIntervalSince1970: 1_790_000_000)
let worker = SubjectRef(rawValue: "worker-4711")
let citizen = SubjectRef(rawValue: "CASE-2026-SECRET-0042")
let auditor = AuditorAccess(auditor: SubjectRef(rawValue: "auditor-7"), purpose: "complaint 2026/17", at: t0.addingTimeInterval(86_400))

func fixedClock(_ date: Date) -> WallClock { WallClock { date } }

/// One meeting with one finished session: meeting, invite, two joins, start, leave, end.
func meetingEvents(meeting: MeetingID = .random(), session: SessionID = .random(), citizenRef: SubjectRef = citizen,
                   start: Date = t0, seconds: TimeInterval = 125.4) -> [AuditEvent] {
    let w = Participant(role: .worker, ref: worker)
    let c = Participant(role: .citizen, ref: citizenRef)
    let end = start.addingTimeInterval(seconds)
    return [
        .meetingCreated(Meeting(id: meeting, workerRef: worker, citizenRef: citizenRef,
                                createdAt: start.addingTimeInterval(-600), inviteExpiresAt: start.addingTimeInterval(3600))),
        .inviteIssued(meeting: meeting, by: worker, expiresAt: start.addingTimeInterval(3600), at: start.addingTimeInterval(-590)),
        .participantJoined(meeting: meeting, participant: w, at: start.addingTimeInterval(-10)),
        .participantJoined(meeting: meeting, participant: c, at: start),
        .sessionStarted(session: session, meeting: meeting, participants: [w, c], at: start),
        .participantLeft(meeting: meeting, participant: c, reason: .hangup, at: end),
        .sessionEnded(session: session, meeting: meeting, reason: .hangup, at: end),
    ]
}
