import Foundation

extension AuditDatabase {
    /// A consistent copy of the store in one file, owner-only, chain-verified, fsynced, then renamed
    /// into place. SQLite: online backup from one read snapshot, switched to rollback-journal mode
    /// and integrity-checked, and the copy itself is verified. PostgreSQL: the engine's dump
    /// (pg_dump, one snapshot), which cannot be opened as it is, so the live trail is verified.
    /// Keys are not copied: back `DATA/keys/` up separately and keep it apart from this file.
    public func backup(to destination: URL) async throws -> BackupReport {
        let fm = FileManager.default
        guard !fm.fileExists(atPath: destination.path) else {
            throw AuditStoreError.backupFailed("\(destination.path) already exists")
        }
        let partial = destination.appendingPathExtension("partial")
        try? fm.removeItem(at: partial)
        do {
            // Owner-only from the first byte, like the database: SQLite keeps an existing file's mode.
            try AuditKeys.writeNew(partial, bytes: Data(), mode: 0o600)
            let copy = try await engine.backup(into: partial)
            let verification: VerificationReport
            do {
                verification = try await Self.verify(reader: copy ?? engine, keys: keys, head: nil, headMissing: false,
                                                     conflicts: [], anchors: [], checkpointInterval: checkpointInterval)
                try copy?.close()
            } catch {
                try? copy?.close()
                throw error
            }
            if let problem = verification.problem {
                throw AuditStoreError.backupFailed("\(copy == nil ? "the" : "copied") chain does not verify: \(problem)")
            }
            try Self.fsyncFile(partial)
            guard rename(partial.path, destination.path) == 0 else {
                throw AuditStoreError.io("rename \(partial.path)", errno)
            }
            try AuditKeys.syncDirectory(destination.deletingLastPathComponent())
            let size = (try fm.attributesOfItem(atPath: destination.path)[.size] as? NSNumber)?.int64Value ?? 0
            return BackupReport(path: destination.path, bytes: size, verification: verification)
        } catch {
            try? fm.removeItem(at: partial)
            throw error
        }
    }

    static func fsyncFile(_ url: URL) throws {
        let fd = Foundation.open(url.path, O_RDONLY)
        guard fd >= 0 else { throw AuditStoreError.io("open \(url.path)", errno) }
        defer { Foundation.close(fd) }
        guard fsync(fd) == 0 else { throw AuditStoreError.io("fsync \(url.path)", errno) }
    }
}
