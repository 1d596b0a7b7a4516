extension AuditDatabase {
    /// Commits a transaction that changes nothing a reader sees, through the one writer, with the
    /// same durability as a record: it fails exactly when a record would (disk full, read-only
    /// file system, I/O error, lost database connection), so readiness can say whether the store
    /// can take records now. The chain and its head are untouched.
    public func probeWrite() async throws {
        guard mode == .readWrite else { throw AuditStoreError.readOnly }
        try await engine.probeWrite()
    }
}
