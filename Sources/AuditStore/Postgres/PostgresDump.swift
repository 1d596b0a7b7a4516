import Foundation

/// `samtalerum audit backup` on PostgreSQL: `pg_dump --format=custom` of the whole audit
/// database, one consistent snapshot (pg_dump reads in one REPEATABLE READ transaction), into a
/// file the store created owner-only. Restored with `pg_restore` (Docs/POSTGRESQL.md).
enum PostgresDump {
    static func run(settings: PostgresSettings, into file: URL) async throws {
        // pg_dump runs for as long as the database takes to read: wait for it off the cooperative pool.
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try runBlocking(settings: settings, into: file) })
            }
        }
    }

    private static func runBlocking(settings: PostgresSettings, into file: URL) throws {
        guard let output = FileHandle(forWritingAtPath: file.path) else {
            throw AuditStoreError.backupFailed("cannot write \(file.path)")
        }
        defer { try? output.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        // --no-password: fail instead of prompting on a terminal nobody watches.
        process.arguments = ["pg_dump", "--format=custom", "--no-password"]
        // The password goes through the environment of the child only, never its command line.
        process.environment = ProcessInfo.processInfo.environment.merging(settings.libpqEnvironment) { _, new in new }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        let errors = Pipe()
        process.standardError = errors
        do { try process.run() } catch {
            throw AuditStoreError.backupFailed("cannot run pg_dump (Debian package postgresql-client): \(error)")
        }
        // Read stderr to its end before waiting, so a chatty pg_dump never blocks on a full pipe.
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let status = process.terminationStatus
        guard status == 0 else {
            let detail = message.split(separator: "\n").prefix(3).joined(separator: "; ")
            throw AuditStoreError.backupFailed(status == 127 ? "pg_dump not found (Debian package postgresql-client)"
                                                             : "pg_dump exited with \(status): \(detail)")
        }
    }
}
