import AuditStore
import Foundation

extension AppConfiguration {
    /// Where the audit store keeps its tables: the embedded SQLite file unless `audit.postgresURL`
    /// names a PostgreSQL database. `serve` and every `samtalerum audit` command open this one.
    public var auditBackend: AuditBackend {
        guard !audit.postgresURL.isEmpty else { return .sqlite }
        let passwordFile = audit.postgresPasswordFile.isEmpty ? nil : URL(fileURLWithPath: audit.postgresPasswordFile)
        return .postgres(PostgresLocation(url: audit.postgresURL, passwordFile: passwordFile))
    }

    /// What is wrong with `audit.postgresURL`, by the store's own parser (the one the engine
    /// connects with); nil when it is empty or fine.
    var postgresURLProblem: String? {
        guard !audit.postgresURL.isEmpty else { return nil }
        do {
            _ = try PostgresSettings(url: audit.postgresURL)
            return nil
        } catch {
            return error.reason
        }
    }

    /// For messages: the URL without its password.
    var redactedPostgresURL: String { PostgresSettings.redacting(audit.postgresURL) }
}
