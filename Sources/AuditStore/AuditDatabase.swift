import Foundation
import Logging
import SamtalerumCore
import Synchronization

/// The audit store: the only owner of its tables (`DATA/audit.sqlite`, or a PostgreSQL database
/// shared by several nodes). One instance per data directory and process; the read-write instance
/// holds a process lock on the data directory, which keeps the keys and the signed head file.
public final class AuditDatabase: AuditRecorder, MeetingDirectory, Sendable {
    public static let databaseFileName = "audit.sqlite"
    public static let headFileName = "audit.head"
    public static let lockFileName = "audit.lock"
    public static let keysDirectoryName = "keys"

    let engine: any SQLEngine
    let backend: AuditBackend
    let keys: AuditKeys
    let mode: AuditAccessMode
    let dataDirectory: URL
    let checkpointInterval: Int64
    let logger: Logger
    /// A store was opened for writing in this data directory before (its lock file existed).
    let dataDirectoryUsedBefore: Bool
    private let lock: ProcessLock?
    /// Calls' signs of life, written as the open sessions' last known time at a bounded rate.
    let activity = Mutex(ActivityBatch(intervalMilliseconds: AuditDatabase.activityWriteInterval))
    /// Ends that happened but could not be recorded (disk full): retried before the next record.
    let unrecordedEnds = Mutex<[AuditEvent]>([])

    var headURL: URL { dataDirectory.appendingPathComponent(Self.headFileName) }

    /// Opens (creating on first start) the store, its keys and schema. In `.readWrite` mode it
    /// also closes sessions a crash left open, at their last known time: with `node`, only the
    /// sessions that node hosted (another node sharing the store may hold the rest).
    public static func open(
        dataDirectory: URL,
        backend: AuditBackend = .sqlite,
        mode: AuditAccessMode = .readWrite,
        clock: WallClock = .system,
        checkpointInterval: Int = 64,
        node: String? = nil,
        logger: Logger = Logger(label: "samtalerum.audit")
    ) throws -> AuditDatabase {
        // Pending keys may already be the ones the sealed copies need: only rotate-keys may go on.
        let pending = dataDirectory.appendingPathComponent(keysDirectoryName)
            .appendingPathComponent(AuditKeys.signingKeyFile + AuditKeys.pendingSuffix)
        if mode == .readWrite, FileManager.default.fileExists(atPath: pending.path) {
            throw AuditStoreError.unfinishedKeyRotation(pending.path)
        }
        return try open(dataDirectory: dataDirectory, backend: backend, mode: mode, clock: clock,
                        checkpointInterval: checkpointInterval, node: node, logger: logger, duringRotation: ())
    }

    /// `open` for rotate-keys itself, which finishes or discards a pending rotation.
    static func open(dataDirectory: URL, backend: AuditBackend, mode: AuditAccessMode = .readWrite,
                     clock: WallClock = .system, checkpointInterval: Int = 64, node: String? = nil, logger: Logger,
                     duringRotation: Void) throws -> AuditDatabase {
        let db = try AuditDatabase(dataDirectory: dataDirectory, backend: backend, mode: mode,
                                   checkpointInterval: checkpointInterval, logger: logger)
        if mode == .readWrite {
            try db.reconcileHead()
            let closed = try db.recoverSync(now: clock.now(), node: node)
            if closed > 0 { logger.notice("closed sessions left open by a crash", metadata: ["count": "\(closed)"]) }
        }
        return db
    }

    private init(dataDirectory: URL, backend: AuditBackend, mode: AuditAccessMode, checkpointInterval: Int,
                 logger: Logger) throws {
        self.dataDirectory = dataDirectory
        self.backend = backend
        self.mode = mode
        self.checkpointInterval = Int64(max(1, checkpointInterval))
        self.logger = logger
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        let lockPath = dataDirectory.appendingPathComponent(Self.lockFileName).path
        dataDirectoryUsedBefore = FileManager.default.fileExists(atPath: lockPath)
        lock = mode == .readWrite ? try ProcessLock(path: lockPath, describing: Self.describe(backend, in: dataDirectory)) : nil
        let engine = try Self.openEngine(backend, in: dataDirectory, readOnly: mode == .readOnly, logger: logger)
        do {
            var hasHistory = false
            if mode == .readWrite {
                try engine.migrate(Schema.migrations(for: engine.dialect))
                // Fresh keys for a trail with history would orphan every record: only a new trail gets them.
                hasHistory = try engine.readSync { db in
                    try db.scalar("SELECT 1 FROM audit_event UNION ALL SELECT 1 FROM checkpoint LIMIT 1", as: Int64.self) != nil
                }
            }
            keys = try AuditKeys.loadOrCreate(in: dataDirectory.appendingPathComponent(Self.keysDirectoryName),
                                              create: mode == .readWrite && !hasHistory)
        } catch {
            try? engine.close()
            throw error
        }
        self.engine = engine
    }

    static func openEngine(_ backend: AuditBackend, in dataDirectory: URL, readOnly: Bool,
                           logger: Logger) throws -> any SQLEngine {
        switch backend {
        case .sqlite:
            return try SQLiteEngine.open(path: dataDirectory.appendingPathComponent(databaseFileName).path, readOnly: readOnly)
        case .postgres(let location):
            return try PostgresEngine.open(location, readOnly: readOnly, logger: logger)
        }
    }

    /// Names the store in errors (never with a password).
    static func describe(_ backend: AuditBackend, in dataDirectory: URL) -> String {
        switch backend {
        case .sqlite: dataDirectory.appendingPathComponent(databaseFileName).path
        case .postgres: "\(dataDirectory.path) (with its PostgreSQL store)"
        }
    }

    // MARK: AuditRecorder

    /// Returns only after the transaction holding `event` has committed (WAL + fsync).
    public func record(_ event: AuditEvent) async throws {
        try await record(contentsOf: [event])
    }

    /// Several events in one transaction: all are durable or none is. Sessions started here are
    /// `node`'s (`NodeRecorder`).
    public func record(contentsOf events: [AuditEvent], hostedBy node: String? = nil) async throws {
        guard mode == .readWrite else { throw AuditStoreError.readOnly }
        await recordUnrecordedEnds()
        do {
            try await appendCommitted { db in
                for event in events {
                    try self.apply(event, db)
                    if let node { try self.claim(event, for: node, db) }
                }
            }
        } catch {
            keepUnrecordedEnds(of: events)
            throw error
        }
    }

    // MARK: MeetingDirectory

    public func meeting(id: MeetingID) async throws -> Meeting? {
        let (row, invitations) = try await engine.read { db in
            (try self.meetingRow(id.rawValue, db),
             try db.fetchAll("""
                SELECT subjectPseudonym, subjectSealed, detail FROM audit_event
                WHERE meetingId = ? AND kind = 'guest_invited' ORDER BY seq
                """, [id.rawValue]))
        }
        guard let row, row.workerSealed != AuditKeys.erased, row.citizenSealed != AuditKeys.erased else { return nil }
        var meeting = try meeting(from: row)
        for invitation in invitations {
            // An erased guest can no longer be let in; the other places stay usable.
            guard let guest = try reveal(pseudonym: invitation[0], sealed: invitation[1]),
                  let peer = Self.detailString(try invitation[2], "peer").flatMap(PeerID.init(validating:)) else { continue }
            meeting.guests[peer] = guest
        }
        return meeting
    }

    func meeting(from row: MeetingRow) throws -> Meeting {
        Meeting(id: MeetingID(rawValue: row.id),
                workerRef: SubjectRef(rawValue: try keys.open(row.workerSealed, pseudonym: row.workerPseudonym)),
                citizenRef: SubjectRef(rawValue: try keys.open(row.citizenSealed, pseudonym: row.citizenPseudonym)),
                createdAt: Date(auditMilliseconds: row.createdAt),
                inviteExpiresAt: Date(auditMilliseconds: row.inviteExpiresAt),
                startsAt: row.startsAt.map(Date.init(auditMilliseconds:)),
                cancelledAt: row.cancelledAt.map(Date.init(auditMilliseconds:)),
                citizenInviteId: row.citizenInviteId)
    }

    func store(_ ref: SubjectRef) throws -> StoredRef {
        let bytes = SubjectRefBytes(ref.rawValue)
        let pseudonym = keys.pseudonym(bytes)
        return StoredRef(pseudonym: pseudonym, sealed: try keys.seal(bytes, pseudonym: pseudonym))
    }

    func pseudonym(_ ref: SubjectRef) -> Data { keys.pseudonym(SubjectRefBytes(ref.rawValue)) }

    func reveal(pseudonym: Data?, sealed: Data?) throws -> SubjectRef? {
        guard let pseudonym, let sealed, sealed != AuditKeys.erased else { return nil }
        return SubjectRef(rawValue: try keys.open(sealed, pseudonym: pseudonym))
    }

    // MARK: Crash recovery

    /// Orderly shutdown: closes the connections (checkpointing the WAL) and releases the writer
    /// lock now, rather than whenever the last reference goes away.
    public func shutDown() throws {
        flushActivityAndEndsSync()
        try engine.close()
        lock?.release()
    }

    /// Closes every session still open, at its last known time, with `server_restart`.
    /// Idempotent; `open` runs it in `.readWrite` mode. Returns the number of sessions closed.
    @discardableResult
    public func recoverAfterCrash(now: Date, node: String? = nil) async throws -> Int {
        guard mode == .readWrite else { throw AuditStoreError.readOnly }
        return try await appendCommitted { db in try self.closeOpenSessions(db, now: now, node: node) }
    }

    func recoverSync(now: Date, node: String?) throws -> Int {
        try appendCommittedSync { db in try self.closeOpenSessions(db, now: now, node: node) }
    }

    private func closeOpenSessions(_ db: any SQLSession, now: Date, node: String?) throws -> Int {
        let open = try sessionsLeftOpen(by: node, db)
        for row in open {
            try endSession(db, id: row.id, meeting: row.meetingId, reason: .serverRestart,
                           at: row.lastEventAt, extra: ["recoveredAt": now.auditMilliseconds])
        }
        return open.count
    }
}

/// An exclusive `flock` on `DATA/audit.lock`, released by the kernel when the process dies,
/// so a SIGKILLed server never leaves a stale lock behind.
final class ProcessLock: Sendable {
    private let fd: Int32

    init(path: String, describing database: String) throws {
        let fd = Foundation.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AuditStoreError.io("open \(path)", errno) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            close(fd)
            if code == EWOULDBLOCK { throw AuditStoreError.databaseInUse(database) }
            throw AuditStoreError.io("lock \(path)", code)
        }
        self.fd = fd
    }

    /// Lets another opener in before this object goes away (orderly shutdown).
    func release() { flock(fd, LOCK_UN) }

    deinit { close(fd) }
}
