import Foundation
import Logging
import Testing
@testable import AuditStore
import SamtalerumCore
import Synchronization

/// What only the PostgreSQL engine does: its URL, its errors, several nodes on one database, and
/// its backup. The store's behaviour on PostgreSQL is covered by the suites that run on both engines.
@Suite struct PostgresTests {
    @Test func urlIsParsedWithLibpqDefaults() throws {
        let plain = try PostgresSettings(url: "postgres://audit@db.example:6543/samtalerum")
        #expect(plain.host == "db.example" && plain.port == 6543 && plain.user == "audit")
        #expect(plain.database == "samtalerum" && plain.sslMode == .prefer && plain.password == nil)

        let full = try PostgresSettings(
            url: "postgresql://audit:p%40ss@[::1]/audit_db?sslmode=verify-full&sslrootcert=/etc/ssl/ca.pem")
        #expect(full.host == "::1" && full.port == 5432 && full.password == "p@ss")
        #expect(full.sslMode == .verifyFull && full.rootCertificateFile == "/etc/ssl/ca.pem")
        #expect(!full.redacted.contains("p@ss") && full.redacted.contains("[::1]:5432"))
    }

    @Test(arguments: [
        "mysql://a@h/db", "postgres:///db", "postgres://h/db", "postgres://a@h", "postgres://a@h/",
        "postgres://a@h/db?sslmode=allow", "postgres://a@h/db?sslcert=x", "not a url",
    ])
    func badURLIsRefusedNamingTheKey(_ url: String) {
        #expect {
            try PostgresSettings(url: url)
        } throws: { error in
            "\(error)".hasPrefix("audit.postgresURL is invalid")
        }
    }

    @Test func passwordFileWinsOverTheURLAndMustNotBeEmpty() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pgpass-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("password")
        try Data("from-file\n".utf8).write(to: file)
        let url = "postgres://audit:from-url@h/db"
        #expect(try PostgresSettings.resolve(PostgresLocation(url: url, passwordFile: file)).password == "from-file")
        try Data("\n".utf8).write(to: file)
        #expect(throws: PostgresSettingsError.unreadablePasswordFile(file.path)) {
            try PostgresSettings.resolve(PostgresLocation(url: url, passwordFile: file))
        }
    }

    @Test func placeholdersAreNumberedOutsideQuotes() {
        #expect(PostgresSession.numberedPlaceholders("SELECT '?', \"a?\" FROM t WHERE a = ? AND b IN (?, ?)")
                == "SELECT '?', \"a?\" FROM t WHERE a = $1 AND b IN ($2, $3)")
    }

    /// Nothing listens on the port: the error names the key and the server, never the password.
    @Test func refusedConnectionNamesTheKeyButNotThePassword() throws {
        let port = try unusedPort()
        let url = "postgres://samtalerum:hunter2-secret@127.0.0.1:\(port)/audit?sslmode=disable"
        let error = try #require(throws: PostgresEngineError.self) {
            try PostgresEngine.open(PostgresLocation(url: url), readOnly: false, logger: Logger(label: "test"))
        }
        let text = "\(error)"
        #expect(text.contains("audit.postgresURL") && text.contains("127.0.0.1:\(port)/audit"), "\(text)")
        #expect(text.lowercased().contains("refused"), "\(text)")
        #expect(!text.contains("hunter2"), "\(text)")
    }

    @Test func missingDatabaseAndUnknownRoleNameTheKey() throws {
        let cluster = try Self.cluster()
        let missing = try PostgresTestCluster.url(cluster, database: "no_such_audit_db")
        let noDatabase = try #require(throws: PostgresEngineError.self) {
            try PostgresEngine.open(PostgresLocation(url: missing), readOnly: false, logger: Logger(label: "test"))
        }
        #expect("\(noDatabase)".contains("audit.postgresURL") && "\(noDatabase)".contains("does not exist"), "\(noDatabase)")

        guard var components = URLComponents(string: cluster) else { throw PostgresSettingsError.invalidURL(cluster) }
        components.user = "no_such_role"
        components.password = "hunter2-secret"
        let noRole = try #require(throws: PostgresEngineError.self) {
            try PostgresEngine.open(PostgresLocation(url: components.string ?? ""), readOnly: false, logger: Logger(label: "test"))
        }
        #expect("\(noRole)".contains("audit.postgresURL") && "\(noRole)".contains("no_such_role"), "\(noRole)")
        #expect(!"\(noRole)".contains("hunter2"), "\(noRole)")
    }

    /// TLS: require encrypts without checking; verify-full checks the certificate against the CA
    /// given as sslrootcert (the scratch cluster's, for 127.0.0.1) and refuses a server the trust
    /// roots do not vouch for, naming the key.
    @Test func tlsModesEncryptAndVerifyFullChecksTheCertificate() throws {
        let cluster = try Self.cluster()
        let environment = ProcessInfo.processInfo.environment
        let ca = try #require(environment["SAMTALERUM_TEST_POSTGRES_DIR"].map { "\($0)/ca.pem" },
                              "Scripts/postgres-scratch makes DIR/ca.pem")
        let base = try #require(cluster.split(separator: "?").first.map(String.init))
        func encrypted(_ query: String) throws -> Bool {
            let engine = try PostgresEngine.open(PostgresLocation(url: base + query), readOnly: true, logger: Logger(label: "test"))
            defer { try? engine.close() }
            return try engine.readSync { db in
                try db.scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", as: Bool.self)
            } ?? false
        }
        #expect(try !encrypted("?sslmode=disable"))
        #expect(try encrypted("?sslmode=require"))
        #expect(try encrypted("?sslmode=verify-full&sslrootcert=\(ca)"))
        let untrusted = try #require(throws: PostgresEngineError.self) { try encrypted("?sslmode=verify-full") }
        #expect("\(untrusted)".contains("audit.postgresURL") && "\(untrusted)".contains("trusted CA"), "\(untrusted)")
    }

    /// Two nodes (two stores, same database, same keys) appending at once make one unbroken
    /// chain: the advisory lock serialises their transactions on the chain tip. Without it both
    /// would read the same tip and the second commit would fail on `seq` or fork the chain.
    @Test func twoNodesAppendingAtOnceMakeOneChain() async throws {
        let node1Dir = try TempDataDir(.postgres)
        let node1 = try node1Dir.open()
        let node2Dir = FileManager.default.temporaryDirectory.appendingPathComponent("audit-node2-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: node2Dir) }
        try FileManager.default.createDirectory(at: node2Dir, withIntermediateDirectories: true)
        // Every node has the same keys/ (the topology copies node1's).
        try FileManager.default.copyItem(at: node1Dir.url.appendingPathComponent(AuditDatabase.keysDirectoryName),
                                         to: node2Dir.appendingPathComponent(AuditDatabase.keysDirectoryName))
        let node2 = try AuditDatabase.open(dataDirectory: node2Dir, backend: node1Dir.location)

        let meetingsPerTask = 7, tasksPerNode = 4   // 7 records a meeting: 196 records a node
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (n, node) in [node1, node2].enumerated() {
                for task in 0..<tasksPerNode {
                    group.addTask {
                        for i in 0..<meetingsPerTask {
                            let start = t0.addingTimeInterval(Double((n * 100 + task) * 100 + i) * 3600)
                            for event in meetingEvents(start: start) { try await node.record(event) }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = ContinuousClock.now - started
        let expected = 2 * tasksPerNode * meetingsPerTask * 7

        for node in [node1, node2] {
            let report = try await node.verify()
            #expect(report.isIntact, "\(String(describing: report.problem))")
            #expect(report.recordsChecked == expected && report.firstRecord == 1 && report.lastRecord == Int64(expected))
        }
        // Every session of both nodes made it into the shared tables.
        let sessions = try node1Dir.rawInt("SELECT COUNT(*) FROM session WHERE endedAt IS NOT NULL")
        #expect(sessions == 2 * tasksPerNode * meetingsPerTask)
        print("two nodes appended \(expected) records concurrently in \(elapsed)")
        try node1.shutDown()
        try node2.shutDown()
    }

    /// Readiness does not queue behind this node's records: the probe commits on its own
    /// connection while a long write holds the writer.
    @Test func theWriteProbeDoesNotWaitBehindRecords() async throws {
        let dir = try TempDataDir(.postgres)
        guard case .postgres(let location) = dir.location else { return }
        let engine = try PostgresEngine.open(location, readOnly: false, logger: Logger(label: "test"))
        defer { try? engine.close() }
        let writeDone = Flag()
        async let slowWrite: Void = engine.write { db in
            _ = try db.fetchAll("SELECT pg_sleep(5)::text", [])
            writeDone.set()
        }
        // The write is on its way (holding the writer lane) before the probe starts.
        try await Task.sleep(for: .milliseconds(300))
        try await engine.probeWrite()
        #expect(!writeDone.isSet)
        try await slowWrite
        #expect(writeDone.isSet)
    }

    /// A walk streams through a cursor in batches, with arguments, and nests; the rows come in order.
    @Test func rowsAreStreamedInBatchesThroughACursor() throws {
        let dir = try TempDataDir(.postgres)
        guard case .postgres(let location) = dir.location else { return }
        let engine = try PostgresEngine.open(location, readOnly: true, logger: Logger(label: "test"))
        defer { try? engine.close() }
        let total = 2 * PostgresSession.fetchSize + 500
        let (seen, inner) = try engine.readSync { db in
            var seen: [Int64] = [], inner = 0
            try db.forEachRow("SELECT g FROM generate_series(1, ?) AS g WHERE g % ? = 0 ORDER BY g", [total, 1]) { row in
                seen.append(try row["g"])
                if seen.count == 1 { try db.forEachRow("SELECT 1 AS one", []) { _ in inner += 1 } }
            }
            return (seen, inner)
        }
        #expect(seen == (1...Int64(total)).map { $0 } && inner == 1)
    }

    /// A password login (SCRAM) with the password from the file; a wrong or missing password
    /// stops the opener naming the key, never showing the password. The scratch cluster makes
    /// this one role log in with a password (Scripts/postgres-scratch).
    @Test func passwordFromTheFileLogsInAndAFailedLoginNamesTheKey() throws {
        let cluster = try Self.cluster()
        try PostgresTestCluster.run("""
            DO $$ BEGIN CREATE ROLE samtalerum_password_test LOGIN PASSWORD 'right-secret';
            EXCEPTION WHEN duplicate_object THEN NULL; END $$
            """, on: cluster)
        guard var components = URLComponents(string: cluster) else { throw PostgresSettingsError.invalidURL(cluster) }
        components.user = "samtalerum_password_test"
        let url = try #require(components.string)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pgpass-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("password")
        func open(password: String?) throws -> PostgresEngine {
            if let password { try Data("\(password)\n".utf8).write(to: file) }
            return try PostgresEngine.open(PostgresLocation(url: url, passwordFile: password == nil ? nil : file),
                                           readOnly: true, logger: Logger(label: "test"))
        }

        let engine = try open(password: "right-secret")
        defer { try? engine.close() }
        #expect(try engine.readSync { db in try db.scalar("SELECT current_user::text", as: String.self) }
                == "samtalerum_password_test")

        let wrong = try #require(throws: PostgresEngineError.self) { try open(password: "wrong-secret") }
        #expect("\(wrong)".contains("audit.postgresURL") && "\(wrong)".contains("password authentication failed"), "\(wrong)")
        #expect(!"\(wrong)".contains("wrong-secret"), "\(wrong)")
        let missing = try #require(throws: PostgresEngineError.self) { try open(password: nil) }
        #expect("\(missing)".contains("audit.postgresPasswordFile"), "\(missing)")
    }

    /// Nodes starting together: each migrates, under the migration lock, so the schema is made
    /// once and every node finds it complete (without the lock the second CREATE TABLE fails).
    @Test func nodesStartingTogetherMigrateOnce() throws {
        let dir = try TempDataDir(.postgres)
        guard case .postgres(let location) = dir.location else { return }
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            do {
                let engine = try PostgresEngine.open(location, readOnly: false, logger: Logger(label: "test"))
                defer { try? engine.close() }
                try engine.migrate(Schema.migrations(for: .postgres))
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 } == [])
        #expect(try dir.rawInt("SELECT COUNT(*) FROM samtalerum_migration") == Schema.migrations(for: .postgres).count)
    }

    /// A restart or failover of the server drops every connection; the node carries on without a
    /// restart: a kept connection that fails at BEGIN is replaced and the transaction run on the new one.
    @Test func aStoreCarriesOnAfterTheServerDropsItsConnections() async throws {
        let dir = try TempDataDir(.postgres)
        let store = try dir.open()
        try await store.record(contentsOf: meetingEvents(start: t0))
        #expect(try await store.verify().isIntact)
        let dropped = try dir.rawInt("""
            SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid()
            """)
        #expect(dropped >= 3)   // the store's writer and both readers (and this query's engine's writer)
        try await store.record(contentsOf: meetingEvents(start: t0.addingTimeInterval(3600)))
        let report = try await store.verify()
        #expect(report.isIntact && report.recordsChecked == 14, "\(String(describing: report.problem))")
        try store.shutDown()
    }

    /// `audit backup` on PostgreSQL is a pg_dump custom archive, owner-only, that pg_restore
    /// turns back into a database whose chain verifies.
    @Test func backupIsAnOwnerOnlyDumpThatRestoresToAVerifyingTrail() async throws {
        let dir = try TempDataDir(.postgres)
        let store = try dir.open(checkpointInterval: 16)
        for i in 0..<3 { try await store.record(contentsOf: meetingEvents(start: t0.addingTimeInterval(Double(i) * 3600))) }
        let file = dir.url.appendingPathComponent("audit.dump")
        let report = try await store.backup(to: file)
        #expect(report.verification.isIntact && report.verification.recordsChecked == 21)
        let attributes = try FileManager.default.attributesOfItem(atPath: file.path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        #expect(try Data(contentsOf: file).prefix(5) == Data("PGDMP".utf8))
        try store.shutDown()

        guard case .postgres = dir.location else { return }
        let restored = try PostgresTestCluster.freshDatabase(cluster: try Self.cluster())
        defer { try? PostgresTestCluster.drop(restored) }
        let settings = try PostgresSettings(url: restored.url)
        let restore = Process()
        restore.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        restore.arguments = ["pg_restore", "--no-owner", "--exit-on-error", "--dbname", settings.database, file.path]
        restore.environment = ProcessInfo.processInfo.environment.merging(settings.libpqEnvironment) { _, new in new }
        try restore.run()
        restore.waitUntilExit()
        #expect(restore.terminationStatus == 0)

        // The restored copy, read with the same keys (a backup has no head file).
        let copy = try PostgresEngine.open(restored, readOnly: true, logger: Logger(label: "test"))
        defer { try? copy.close() }
        let keys = try AuditKeys.loadOrCreate(in: dir.url.appendingPathComponent(AuditDatabase.keysDirectoryName), create: false)
        let verification = try await AuditDatabase.verify(reader: copy, keys: keys, head: nil, headMissing: false,
                                                          conflicts: [], anchors: [], checkpointInterval: 16)
        #expect(verification.isIntact && verification.recordsChecked == 21)
    }

    static func cluster() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        guard let cluster = environment[StoreBackend.clusterVariable], !cluster.isEmpty else {
            if environment["CI"] == "true" { throw MissingTestCluster() }
            try Test.cancel("not run: \(StoreBackend.clusterVariable) is unset (Scripts/test sets it)")
        }
        return cluster
    }

    private func unusedPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard bound == 0, named == 0 else { throw AuditStoreError.io("bind", errno) }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

private final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .sequentiallyConsistent) }
    var isSet: Bool { value.load(ordering: .sequentiallyConsistent) }
}
