import Foundation
import GRDB
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

    private func purge(_ db: Database, cutoff: Int64, now: Date) throws -> PurgeReport {
        var report = PurgeReport(cutoff: Date(auditMilliseconds: cutoff), recordsDeleted: 0, sessionsDeleted: 0, meetingsDeleted: 0)
        if let first = try Int64.fetchOne(db, sql: "SELECT MIN(seq) FROM audit_event"),
           let last = try lastRecord(db) {
            // Stop at the first record still inside the retention window, even if a later one is
            // older (recovery records carry the crashed session's time): the chain stays a suffix.
            let keptFrom = try Int64.fetchOne(db, sql: "SELECT MIN(seq) FROM audit_event WHERE at >= ?", arguments: [cutoff])
            let lastPurged = keptFrom.map { $0 - 1 } ?? last.seq
            if lastPurged >= first,
               let anchorHash = try Data.fetchOne(db, sql: "SELECT hash FROM audit_event WHERE seq = ?", arguments: [lastPurged]) {
                try insertCheckpoint(db, seq: lastPurged, hash: anchorHash, at: now.auditMilliseconds)
                try db.execute(sql: "DELETE FROM audit_event WHERE seq <= ?", arguments: [lastPurged])
                report.recordsDeleted = db.changesCount
                try db.execute(sql: "DELETE FROM checkpoint WHERE seq < ?", arguments: [lastPurged])
                try db.execute(sql: "DELETE FROM lookup_subject WHERE seq <= ?", arguments: [lastPurged])
                report.firstRecordDeleted = first
                report.lastRecordDeleted = lastPurged
            }
        }
        try db.execute(sql: "DELETE FROM participant WHERE sessionId IN (SELECT id FROM session WHERE endedAt < ?)",
                       arguments: [cutoff])
        try db.execute(sql: "DELETE FROM session WHERE endedAt < ?", arguments: [cutoff])
        report.sessionsDeleted = db.changesCount
        try db.execute(sql: """
            DELETE FROM meeting WHERE createdAt < ? AND inviteExpiresAt < ?
              AND NOT EXISTS (SELECT 1 FROM session WHERE session.meetingId = meeting.id)
            """, arguments: [cutoff, cutoff])
        report.meetingsDeleted = db.changesCount

        var detail: [String: any Sendable] = [
            "cutoff": cutoff, "recordsDeleted": report.recordsDeleted,
            "sessionsDeleted": report.sessionsDeleted, "meetingsDeleted": report.meetingsDeleted,
        ]
        if let first = report.firstRecordDeleted, let last = report.lastRecordDeleted {
            detail["firstRecordDeleted"] = first
            detail["lastRecordDeleted"] = last
        }
        try appendEvent(db, kind: "retention_purge", at: now.auditMilliseconds, meeting: nil, session: nil,
                        actor: nil, subject: nil, detail: detail)
        return report
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
}
