import Foundation

/// Purposes of look-ups, exports and erasures are free text an auditor types, and may name a
/// person ("complaint from CASE-17"). They are kept like references: the chained record holds a
/// keyed MAC (`purposeMac`), the row a sealed copy (`purposeSealed`) that only the key opens and
/// that an erasure of a reference the purpose names blanks.
extension AuditDatabase {
    static let purposeMacKey = "purposeMac"

    func storePurpose(_ purpose: String) throws -> StoredRef {
        let mac = keys.purposeMac(purpose)
        return StoredRef(pseudonym: mac, sealed: try keys.seal(SubjectRefBytes(purpose), pseudonym: mac))
    }

    /// The purpose as recorded; nil once erased. Records from before sealing hold it in `detail`.
    func openPurpose(_ row: EventRow) -> String? {
        guard let mac = Self.detailString(row.detail, Self.purposeMacKey).flatMap(Data.init(hex:)) else {
            return Self.detailString(row.detail, "purpose")
        }
        guard let sealed = row.purposeSealed, sealed != AuditKeys.erased else { return nil }
        return try? keys.open(sealed, pseudonym: mac)
    }

    /// A reference some `subject_erased` record names: it must find nothing any more.
    static func isErased(_ pseudonym: Data, _ db: any SQLSession) throws -> Bool {
        try db.scalar("SELECT 1 FROM audit_event WHERE subjectPseudonym = ? AND kind = 'subject_erased' LIMIT 1",
                      [pseudonym], as: Int64.self) != nil
    }

    /// A sealed purpose that does not open to its chained MAC was edited; a blank one is an
    /// erasure's doing only if an erasure came after it (or is this record).
    static func purposeProblem(_ row: EventRow, keys: AuditKeys, lastErasure: Int64?) -> String? {
        guard let mac = detailString(row.detail, purposeMacKey).flatMap(Data.init(hex:)) else { return nil }
        guard let sealed = row.purposeSealed else { return "sealed purpose is missing (edited)" }
        if sealed == AuditKeys.erased {
            return (lastErasure ?? 0) >= row.seq ? nil : "purpose blanked without a later erasure record (edited)"
        }
        guard let opened = try? keys.open(sealed, pseudonym: mac), keys.purposeMac(opened) == mac else {
            return "sealed purpose does not match its chained MAC (edited)"
        }
        return nil
    }

    /// Erasure: blanks the purposes of look-ups of `target`, and every purpose that mentions `text`.
    func blankPurposes(_ db: any SQLSession, target: Data, text: String) throws -> Int {
        let rows = try db.fetchAll("""
            SELECT seq, subjectPseudonym, detail, purposeSealed FROM audit_event
            WHERE purposeSealed IS NOT NULL AND purposeSealed != ?
            """, [AuditKeys.erased])
        var blanked = 0
        for row in rows {
            let seq: Int64 = try row[0]
            let about: Data? = try row[1]
            let mac = Self.detailString(try row[2], Self.purposeMacKey).flatMap(Data.init(hex:)) ?? Data()
            let purpose = try? keys.open(try row[3], pseudonym: mac)
            guard about == target || purpose.map({ Self.mentions($0, text) }) ?? false else { continue }
            try db.execute("UPDATE audit_event SET purposeSealed = ? WHERE seq = ?", [AuditKeys.erased, seq])
            blanked += 1
        }
        return blanked
    }

    static func mentions(_ purpose: String, _ reference: String) -> Bool {
        purpose.range(of: reference, options: [.caseInsensitive, .diacriticInsensitive]) != nil
    }
}
