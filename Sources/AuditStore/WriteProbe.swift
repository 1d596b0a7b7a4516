import GRDB

extension AuditDatabase {
    /// Commits a transaction that changes nothing a reader sees, through the one writer, with the
    /// same durability as a record: it fails exactly when a record would (disk full, read-only
    /// file system, I/O error), so readiness can say whether the store can take records now.
    /// Rewriting the header's user_version dirties one page; the chain and its head are untouched.
    public func probeWrite() async throws {
        guard mode == .readWrite else { throw AuditStoreError.readOnly }
        try await pool.writeWithoutTransaction { db in
            try db.beginTransaction(.immediate)
            do {
                let version = try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0
                try db.execute(sql: "PRAGMA user_version = \(version)")
                try db.commit()
            } catch {
                try? db.rollback()
                throw error
            }
        }
    }
}
