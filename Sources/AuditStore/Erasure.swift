import Foundation
import SamtalerumCore

extension AuditDatabase {
    /// Art. 17: blanks every sealed copy of one reference, so the trail can no longer show it,
    /// while the chain (which hashes pseudonyms, not sealed copies) still verifies. The erasure is
    /// chained too, with its purpose and counts; `verify` accepts a blanked reference only for a
    /// pseudonym such a record names. What remains is the keyed pseudonym: whoever holds the key
    /// and the reference can still recognise it, so this is erasure of the readable reference.
    public func erase(subject: SubjectRef, access: AuditorAccess) async throws -> ErasureReport {
        guard mode == .readWrite else { throw AuditStoreError.readOnly }
        let purpose = try Self.validPurpose(access.purpose)
        let target = pseudonym(subject)
        let actor = try store(access.auditor)
        // The decision's own text is kept only if it does not name the reference it erases.
        let sealedPurpose = Self.mentions(purpose, subject.rawValue)
            ? StoredRef(pseudonym: keys.purposeMac(purpose), sealed: AuditKeys.erased) : try storePurpose(purpose)
        let report = try await appendCommitted { db in
            let blank = AuditKeys.erased
            var report = ErasureReport(recordsBlanked: 0, meetingsBlanked: 0, participantsBlanked: 0)
            for column in ["actor", "subject"] {
                report.recordsBlanked += try db.execute(
                    "UPDATE audit_event SET \(column)Sealed = ? WHERE \(column)Pseudonym = ? AND \(column)Sealed != ?",
                    [blank, target, blank])
            }
            for column in ["worker", "citizen"] {
                report.meetingsBlanked += try db.execute(
                    "UPDATE meeting SET \(column)Sealed = ? WHERE \(column)Pseudonym = ?", [blank, target])
            }
            report.participantsBlanked = try db.execute("UPDATE participant SET refSealed = ? WHERE refPseudonym = ?",
                                                        [blank, target])
            report.purposesBlanked = try self.blankPurposes(db, target: target, text: subject.rawValue)
            try self.appendEvent(db, kind: "subject_erased", at: access.at.auditMilliseconds, meeting: nil, session: nil,
                                 actor: actor, subject: StoredRef(pseudonym: target, sealed: blank),
                                 detail: ["recordsBlanked": report.recordsBlanked,
                                          "meetingsBlanked": report.meetingsBlanked,
                                          "participantsBlanked": report.participantsBlanked,
                                          "purposesBlanked": report.purposesBlanked],
                                 purpose: sealedPurpose)
            return report
        }
        // Old versions of the blanked rows may still sit in the storage (SQLite's WAL, PostgreSQL's
        // dead tuples): best effort to remove them now.
        await engine.scrubOverwritten(tables: ["audit_event", "meeting", "participant"])
        return report
    }
}
