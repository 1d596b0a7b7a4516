import Foundation
import Logging
import NIOCore
import PostgresNIO
@testable import AuditStore

/// Throwaway databases on the test cluster (`SAMTALERUM_TEST_POSTGRES_URL`, started by
/// Scripts/postgres-scratch): one per test, so tests run in parallel without seeing each other.
enum PostgresTestCluster {
    /// A new, empty database `t_<random>` on the cluster, as the store's location.
    static func freshDatabase(cluster: String) throws -> PostgresLocation {
        let name = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try run("CREATE DATABASE \(name)", on: cluster)
        return PostgresLocation(url: try url(cluster, database: name))
    }

    /// Drops the database, closing whatever connections a test left open on it.
    static func drop(_ location: PostgresLocation) throws {
        let database = try PostgresSettings(url: location.url).database
        try run("DROP DATABASE IF EXISTS \(database) WITH (FORCE)", on: try url(location.url, database: "postgres"))
    }

    /// `url` naming another database on the same cluster.
    static func url(_ url: String, database: String) throws -> String {
        guard var components = URLComponents(string: url) else { throw PostgresSettingsError.invalidURL(url) }
        components.path = "/" + database
        guard let result = components.string else { throw PostgresSettingsError.invalidURL(url) }
        return result
    }

    /// One statement outside a transaction (CREATE/DROP DATABASE cannot run inside one).
    static func run(_ sql: String, on url: String) throws {
        let logger = Logger(label: "test-cluster")
        let connection = try PostgresConnection.connect(
            on: PostgresConnection.defaultEventLoopGroup.any(),
            configuration: try PostgresSettings(url: url).connectionConfiguration(), id: 0, logger: logger).wait()
        defer { try? connection.close().wait() }
        let done: EventLoopFuture<PostgresQueryResult> = connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
        _ = try done.wait()
    }
}
