import Foundation
import SamtalerumCore

extension AuditDatabase: MeetingCalendar {
    /// Reads the worker's meetings by their pseudonym; erased ones are left out. Unplanned
    /// meetings count from when they were made.
    public func meetings(of worker: SubjectRef, from: Date, limit: Int) async throws -> [Meeting] {
        let rows = try await engine.read { [pseudonym = pseudonym(worker)] db in
            try db.fetchAll(MeetingRow.self, MeetingRow.selectAll + """
                 WHERE workerPseudonym = ? AND COALESCE(startsAt, createdAt) >= ?
                ORDER BY COALESCE(startsAt, createdAt), id LIMIT ?
                """, [pseudonym, from.auditMilliseconds, limit])
        }
        return try rows.filter { $0.workerSealed != AuditKeys.erased && $0.citizenSealed != AuditKeys.erased }
            .map { try meeting(from: $0) }
    }
}
