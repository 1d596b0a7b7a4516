import Foundation
import Logging
import SamtalerumCore
import ServiceLifecycle

extension AuditDatabase {
    public static let defaultRetention: Duration = .seconds(180 * 86_400)

    /// Deletes records, ended sessions and finished meetings older than `cutoff`. Records go
    /// as a prefix of the chain whose last hash stays as a signed anchor checkpoint, so verify
    /// still links the first kept record. The purge itself is chained with counts and ranges.
    public func purge(olderThan cutoff: Date, now: Date) async throws -> PurgeReport {
        guard mode == .readWrite else { throw AuditStoreError.readOnly }
        return try await appendCommitted { db in try self.purge(db, cutoff: cutoff.auditMilliseconds, now: now) }
    }

    private func purge(_ db: any SQLSession, cutoff: Int64, now: Date) throws -> PurgeReport {
        var report = PurgeReport(cutoff: Date(auditMilliseconds: cutoff), recordsDeleted: 0, sessionsDeleted: 0, meetingsDeleted: 0)
        // Rows first, so what is carried forward below is exactly what stays.
        try db.execute("DELETE FROM participant WHERE sessionId IN (SELECT id FROM session WHERE endedAt < ?)", [cutoff])
        report.sessionsDeleted = try db.execute("DELETE FROM session WHERE endedAt < ?", [cutoff])
        report.meetingsDeleted = try db.execute("""
            DELETE FROM meeting WHERE createdAt < ? AND inviteExpiresAt < ?
              AND NOT EXISTS (SELECT 1 FROM session WHERE session.meetingId = meeting.id)
            """, [cutoff, cutoff])

        var carried: [(kind: String, meeting: String, session: String?, detail: [String: any Sendable])] = []
        if let first = try db.scalar("SELECT MIN(seq) FROM audit_event", as: Int64.self),
           let last = try lastRecord(db) {
            // Stop at the first record still inside the retention window, even if a later one is
            // older (recovery records carry the crashed session's time): the chain stays a suffix.
            let keptFrom = try db.scalar("SELECT MIN(seq) FROM audit_event WHERE at >= ?", [cutoff], as: Int64.self)
            let lastPurged = keptFrom.map { $0 - 1 } ?? last.seq
            if lastPurged >= first,
               let anchorHash = try db.scalar("SELECT hash FROM audit_event WHERE seq = ?", [lastPurged], as: Data.self) {
                carried = try carryForward(db, throughRecord: lastPurged)
                try insertCheckpoint(db, seq: lastPurged, hash: anchorHash, at: now.auditMilliseconds)
                report.recordsDeleted = try db.execute("DELETE FROM audit_event WHERE seq <= ?", [lastPurged])
                try db.execute("DELETE FROM checkpoint WHERE seq < ?", [lastPurged])
                try db.execute("DELETE FROM lookup_subject WHERE seq <= ?", [lastPurged])
                report.firstRecordDeleted = first
                report.lastRecordDeleted = lastPurged
            }
        }

        var detail: [String: any Sendable] = [
            "cutoff": cutoff, "recordsDeleted": report.recordsDeleted,
            "sessionsDeleted": report.sessionsDeleted, "meetingsDeleted": report.meetingsDeleted,
        ]
        if let first = report.firstRecordDeleted, let last = report.lastRecordDeleted {
            detail["firstRecordDeleted"] = first
            detail["lastRecordDeleted"] = last
        }
        detail["rowsCarried"] = carried.count
        try appendEvent(db, kind: "retention_purge", at: now.auditMilliseconds, meeting: nil, session: nil,
                        actor: nil, subject: nil, detail: detail)
        for row in carried {
            try appendEvent(db, kind: row.kind, at: now.auditMilliseconds, meeting: row.meeting, session: row.session,
                            actor: nil, subject: nil, detail: row.detail)
        }
        return report
    }

    /// Rows that stay while the records defining them go (a meeting older than the window with a
    /// recent session; a session that started before the cutoff and ended after it) are restated
    /// as chained records, so `verify` can still check every row. Each is first checked against
    /// the record it replaces: a row edited since it was recorded is refused, not carried.
    private func carryForward(_ db: any SQLSession, throughRecord lastPurged: Int64)
        throws -> [(kind: String, meeting: String, session: String?, detail: [String: any Sendable])] {
        var out: [(kind: String, meeting: String, session: String?, detail: [String: any Sendable])] = []
        let meetings = try db.fetchAll("""
            SELECT \(MeetingRow.selection("m")), e.seq AS definedBy, e.kind AS definedKind, e.actorPseudonym AS recWorker,
                   e.subjectPseudonym AS recCitizen, e.at AS recAt, e.detail AS recDetail
            FROM audit_event e JOIN meeting m ON m.id = e.meetingId
            WHERE e.seq <= ? AND e.kind IN ('meeting_created', ?) ORDER BY e.seq
            """, [lastPurged, DerivedTables.meetingCarriedKind])
        for row in meetings {
            let m = try MeetingRow(row: row)
            let definedBy: Int64 = try row["definedBy"]
            let facts = try Self.factsOfDefiningRecord(row, meetingId: m.id, sessionId: nil)
            guard let known = facts.meetings[m.id], known.worker == m.workerPseudonym, known.citizen == m.citizenPseudonym,
                  known.createdAt == m.createdAt else {
                throw AuditStoreError.tablesDisagree("meeting \(m.id) differs from record \(definedBy); run verify")
            }
            out.append((DerivedTables.meetingCarriedKind, m.id, nil, DerivedTables.meetingCarriedDetail(m)))
        }
        let sessions = try db.fetchAll("""
            SELECT \(SessionRow.selection("s")), e.seq AS definedBy, e.kind AS definedKind, e.actorPseudonym AS recWorker,
                   e.subjectPseudonym AS recCitizen, e.at AS recAt, e.detail AS recDetail
            FROM audit_event e JOIN session s ON s.id = e.sessionId
            WHERE e.seq <= ? AND e.kind IN ('session_started', ?) ORDER BY e.seq
            """, [lastPurged, DerivedTables.sessionCarriedKind])
        for row in sessions {
            let s = try SessionRow(row: row)
            let definedBy: Int64 = try row["definedBy"]
            let facts = try Self.factsOfDefiningRecord(row, meetingId: s.meetingId, sessionId: s.id)
            let participants = try db.fetchAll(ParticipantRow.self, ParticipantRow.selectAll + " WHERE sessionId = ?", [s.id])
                .map { DerivedTables.ParticipantKey(role: $0.role, ref: $0.refPseudonym) }
            guard let known = facts.sessions[s.id], known.meetingId == s.meetingId, known.worker == s.workerPseudonym,
                  known.citizen == s.citizenPseudonym, known.startedAt == s.startedAt,
                  known.participants.isSubset(of: Set(participants)) else {
                throw AuditStoreError.tablesDisagree("session \(s.id) differs from record \(definedBy); run verify")
            }
            out.append((DerivedTables.sessionCarriedKind, s.meetingId, s.id,
                        DerivedTables.sessionCarriedDetail(s, participants: participants)))
        }
        return out
    }

    /// What the record that defined a carried row implies, replayed from the columns both of
    /// `carryForward`'s queries join in (`definedBy`, `definedKind`, `rec*`).
    private static func factsOfDefiningRecord(_ row: SQLRow, meetingId: String, sessionId: String?) throws -> DerivedTables {
        var facts = DerivedTables()
        _ = facts.apply(EventRow(seq: try row["definedBy"], at: try row["recAt"], kind: try row["definedKind"],
                                 meetingId: meetingId, sessionId: sessionId, actorPseudonym: try row["recWorker"],
                                 actorSealed: nil, subjectPseudonym: try row["recCitizen"], subjectSealed: nil,
                                 detail: try row["recDetail"], prevHash: Data(), hash: Data()))
        return facts
    }
}

/// Purges on a timer: once at start, then every `interval`. Time comes from injected clocks so
/// tests can drive it; a failed purge is logged and retried at the next tick.
public struct AuditRetentionService<C: Clock>: Service where C.Duration == Duration {
    let database: AuditDatabase
    let retention: Duration
    let interval: Duration
    let clock: C
    let wallClock: WallClock
    let logger: Logger

    public init(database: AuditDatabase, retention: Duration = AuditDatabase.defaultRetention,
                interval: Duration = .seconds(3600), clock: C, wallClock: WallClock = .system,
                logger: Logger = Logger(label: "samtalerum.audit.retention")) {
        self.database = database
        self.retention = retention
        self.interval = interval
        self.clock = clock
        self.wallClock = wallClock
        self.logger = logger
    }

    public func run() async throws {
        await verifyAtStart()
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let now = wallClock.now()
            let seconds = Double(retention.components.seconds) + Double(retention.components.attoseconds) / 1e18
            do {
                let report = try await database.purge(olderThan: now.addingTimeInterval(-seconds), now: now)
                logger.info("retention purge", metadata: [
                    "records": "\(report.recordsDeleted)", "sessions": "\(report.sessionsDeleted)",
                    "meetings": "\(report.meetingsDeleted)",
                ])
            } catch {
                logger.error("retention purge failed", metadata: ["error": "\(error)"])
            }
            // Throws only when cancelled or shutting down; the loop condition then ends the service.
            try? await cancelWhenGracefulShutdown { try await clock.sleep(for: interval) }
        }
    }

    /// The server checks the whole trail once at start, tables against records included, before
    /// the first purge: an edit made while it was down is reported as critical (with the first
    /// row or record that disagrees) instead of being noticed only when someone runs verify. It
    /// runs on a reader, beside the calls; at a million sessions it takes minutes.
    func verifyAtStart() async {
        do {
            let report = try await database.verify()
            if let problem = report.problem {
                logger.critical("the audit trail does not verify; handle it as an incident (samtalerum audit verify)",
                                metadata: ["problem": "\(problem)"])
            } else {
                logger.info("audit trail verified at start", metadata: ["records": "\(report.recordsChecked)"])
            }
        } catch {
            logger.error("could not verify the audit trail at start", metadata: ["error": "\(error)"])
        }
    }
}
