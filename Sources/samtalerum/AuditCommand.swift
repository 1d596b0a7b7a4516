import ArgumentParser
import AuditStore
import Foundation
import SamtalerumApp
import SamtalerumCore

/// `samtalerum audit …`: the auditor's and operator's view of the audit store.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Inspect, verify, purge and back up the GDPR audit trail.",
        subcommands: [Sessions.self, Export.self, Verify.self, Anchor.self, Purge.self, Backup.self, Erase.self, RotateKeys.self,
                      Bench.self])
}

struct AuditDataOptions: ParsableArguments {
    @OptionGroup var settings: ConfigurationOptions

    /// The configuration `serve` would run with (so the same data directory and retention).
    var configuration: AppConfiguration { get throws { try settings.resolve() } }
    var url: URL { get throws { try configuration.dataDirectory } }

    /// CLI look-ups are auditor access by the local unix user; the name is pseudonymised at rest.
    var auditor: SubjectRef {
        let name = getpwuid(geteuid()).flatMap { $0.pointee.pw_name.map { String(cString: $0) } }
            ?? ProcessInfo.processInfo.environment["USER"] ?? "uid\(geteuid())"
        return SubjectRef(rawValue: "cli:\(name)")
    }

    /// Closes, like `serve` with this configuration would at its start, only the sessions its
    /// node left open (never another node's, in a store shared by several).
    func openForWriting() throws -> AuditDatabase {
        let configuration = try configuration
        return try AuditDatabase.open(dataDirectory: configuration.dataDirectory, backend: configuration.auditBackend,
                                      node: configuration.nodeName)
    }

    /// Verify and backup work next to a running server: they never take the writer.
    func openForReading() throws -> AuditDatabase {
        let configuration = try configuration
        let url = configuration.dataDirectory
        let backend = configuration.auditBackend
        guard backend != .sqlite
            || FileManager.default.fileExists(atPath: url.appendingPathComponent(AuditDatabase.databaseFileName).path) else {
            throw ValidationError("no audit database in \(url.path)")
        }
        return try AuditDatabase.open(dataDirectory: url, backend: backend, mode: .readOnly)
    }
}

extension AuditCommand {
    struct Sessions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List sessions (logged as an auditor look-up).")
        @OptionGroup var data: AuditDataOptions
        @Option(help: "Only sessions of this citizen reference.") var subject: String?
        @Option(help: "Only sessions of this worker reference.") var worker: String?
        @Option(help: "Sessions starting at or after this date/time (ISO 8601).") var from: String?
        @Option(help: "Sessions starting before this date/time (ISO 8601).") var to: String?
        // Whoever runs this holds the data directory and its keys; the listing is still recorded,
        // with this purpose unless a better one is given.
        @Option(help: "Why you look (recorded in the audit trail).") var purpose = "administration on the server (CLI)"
        @Option(help: "Page size (at most this many sessions).") var limit: Int = SessionQuery.defaultLimit
        @Option(help: "Continue after this cursor (printed as 'next' by the previous page).") var after: String?
        @Flag(help: "Print JSON instead of a table.") var json = false

        func run() async throws {
            let query = SessionQuery(subject: try subject.map(parseRef), worker: try worker.map(parseRef),
                                     from: try from.map(parseDate), to: try to.map(parseDate), limit: limit, after: after)
            let store = try data.openForWriting()
            let page = try await store.sessionPage(matching: query, access: AuditorAccess(auditor: data.auditor, purpose: purpose, at: Date()))
            let rows = page.sessions
            if json {
                print(try encodeJSON(rows))
                if let next = page.next { FileHandle.standardError.write(Data("next: \(next)\n".utf8)) }
                return
            }
            defer { if let next = page.next { print("more: continue with --after \(next)") } }
            let header = ["meeting", "session", "start", "end", "duration_s", "end_reason", "worker_ref", "citizen_ref", "guest_refs"]
            let table = rows.map { r in
                [r.meeting.rawValue, r.session.rawValue, isoString(r.startedAt), r.endedAt.map(isoString) ?? "-",
                 r.durationSeconds.map(String.init) ?? "-", r.endReason?.rawValue ?? "-",
                 r.workerRef?.rawValue ?? "-", r.citizenRef?.rawValue ?? "-",
                 r.guestRefs.map { $0.map(\.rawValue).joined(separator: "; ") } ?? "-"]
            }
            printTable(header: header, rows: table)
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Art. 15 export for one citizen reference, as JSON (logged as an auditor look-up).")
        @OptionGroup var data: AuditDataOptions
        @Option(help: "The citizen reference.") var subject: String
        @Option(help: "Why you look (required, recorded in the audit trail).") var purpose: String

        func run() async throws {
            let store = try data.openForWriting()
            let export = try await store.export(subject: try parseRef(subject),
                                                access: AuditorAccess(auditor: data.auditor, purpose: purpose, at: Date()))
            print(try encodeJSON(export))
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the hash chain, checkpoints and head; exit 1 naming the first bad record.")
        @OptionGroup var data: AuditDataOptions
        @Option(help: "A file of anchors printed earlier by `audit anchor` (e.g. from the log system); each must still be in the chain.")
        var anchor: [String] = []

        func run() async throws {
            let anchors = try anchor.flatMap { try HeadAnchor.parse(lines: String(contentsOfFile: $0, encoding: .utf8)) }
            let report = try await data.openForReading().verify(anchors: anchors)
            let range = report.firstRecord.map { "\($0)…\(report.lastRecord ?? $0)" } ?? "none"
            if let problem = report.problem {
                print("FAILED: \(problem)")
                print("checked \(report.recordsChecked) records before it (records \(range))")
                throw ExitCode(1)
            }
            print("OK: \(report.recordsChecked) records (\(range)), \(report.checkpointsChecked) signed checkpoints")
        }
    }

    struct Anchor: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the signed head as one JSON line, to keep outside the server (e.g. `| logger -t samtalerum-anchor` hourly).")
        @OptionGroup var data: AuditDataOptions

        func run() async throws {
            print(try data.openForReading().anchor().line)
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete what is older than the retention period now (the server also does this hourly).")
        @OptionGroup var data: AuditDataOptions
        @Option(help: "Retention in days (default: audit.retentionDays of the configuration).") var retentionDays: Int?

        func run() async throws {
            // The flag goes through the same bounds as the configured value.
            let configuration = try data.settings.resolve { if let retentionDays { $0.audit.retentionDays = retentionDays } }
            let retention = configuration.audit.retentionDays
            let now = Date()
            let store = try AuditDatabase.open(dataDirectory: configuration.dataDirectory, backend: configuration.auditBackend,
                                               node: configuration.nodeName)
            let report = try await store.purge(olderThan: now.addingTimeInterval(-Double(retention) * 86_400), now: now)
            let range = report.firstRecordDeleted.map { "\($0)…\(report.lastRecordDeleted ?? $0)" } ?? "none"
            print("purged before \(isoString(report.cutoff)) (retention \(retention) days): \(report.recordsDeleted) records (\(range)), "
                + "\(report.sessionsDeleted) sessions, \(report.meetingsDeleted) meetings")
        }
    }

    struct Erase: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Art. 17: blank every readable copy of one reference (the chain still verifies).")
        @OptionGroup var data: AuditDataOptions
        @Option(help: "The reference to erase.") var subject: String
        @Option(help: "The decision this carries out (required, recorded).") var purpose: String

        func run() async throws {
            let report = try await data.openForWriting().erase(
                subject: try parseRef(subject), access: AuditorAccess(auditor: data.auditor, purpose: purpose, at: Date()))
            print("erased: \(report.recordsBlanked) records, \(report.meetingsBlanked) meeting references, "
                + "\(report.participantsBlanked) participant references blanked")
            print("backups made before now still hold the sealed reference until they expire")
        }
    }

    struct RotateKeys: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-keys",
            abstract: "New sealing and signing keys (server stopped); old checkpoints stay verifiable.")
        @OptionGroup var data: AuditDataOptions

        func run() async throws {
            let configuration = try data.configuration
            let url = configuration.dataDirectory
            let report = try AuditDatabase.rotateKeys(dataDirectory: url, backend: configuration.auditBackend, actor: data.auditor)
            print("rotated: \(report.referencesResealed) sealed references re-sealed, recorded as record \(report.rotationRecord)")
            print("old public key kept as keys/\(report.retiredPublicKeyFile); old secret keys replaced")
            print("back up \(url.appendingPathComponent("keys").path) now: backups made before this need the old keys")
        }
    }

    struct Backup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a consistent, integrity-checked, verified, fsynced copy of the database to FILE.")
        @OptionGroup var data: AuditDataOptions
        @Argument(help: "Destination file (must not exist).") var file: String

        func run() async throws {
            let report = try await data.openForReading().backup(to: URL(fileURLWithPath: file))
            print("backup \(report.path): \(report.bytes) bytes, integrity ok, \(report.verification.recordsChecked) records verified")
            print("keys are not in the backup: copy \(try data.url.appendingPathComponent("keys").path) separately")
        }
    }
}

extension AuditCommand {
    /// Scripts/bench-audit drives this: synthetic sessions, then durable-insert and query timings.
    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Benchmark the audit store with synthetic data (use an empty --data-dir).",
            shouldDisplay: false)
        @OptionGroup var data: AuditDataOptions
        @Option(help: "Synthetic sessions to generate.") var sessions: Int = 1_000_000
        @Option(help: "Single-event durable inserts to time.") var inserts: Int = 1000
        @Option(help: "Queries of each kind to time.") var queries: Int = 300
        @Flag(help: "Only time queries, on a data dir an earlier run generated with the same --sessions.")
        var queriesOnly = false
        @Option(help: "Page sizes to time each query kind with, comma-separated.") var limits: String = "1000"

        func run() async throws {
            let store = try data.openForWriting()
            let workers = max(1, sessions / 500), citizens = max(1, sessions / 20)
            let start = Date(timeIntervalSince1970: 1_780_000_000)
            let span = 180.0 * 86_400
            func worker(_ i: Int) -> SubjectRef { SubjectRef(rawValue: "w-\(i % workers)") }
            func citizen(_ i: Int) -> SubjectRef { SubjectRef(rawValue: "CASE-\(i % citizens)") }

            let clock = ContinuousClock()
            if !queriesOnly { try await generate(store, workers: workers, citizens: citizens, start: start, span: span) }
            let access = AuditorAccess(auditor: SubjectRef(rawValue: "cli:bench"), purpose: "benchmark", at: Date())
            var rng = SystemRandomNumberGenerator()
            let kinds: [(String, () -> SessionQuery)] = [
                ("by subject", { SessionQuery(subject: citizen(Int(rng.next(upperBound: UInt32(citizens))))) }),
                ("by worker", { SessionQuery(worker: worker(Int(rng.next(upperBound: UInt32(workers))))) }),
                ("by 1-day range", {
                    let from = start.addingTimeInterval(Double(rng.next(upperBound: UInt32(span - 86_400))))
                    return SessionQuery(from: from, to: from.addingTimeInterval(86_400))
                }),
            ]
            let pageSizes = limits.split(separator: ",").compactMap { Int($0) }
            for limit in pageSizes {
                for (name, make) in kinds {
                    var times: [Duration] = []
                    var rows = 0
                    for _ in 0..<queries {
                        var query = make()
                        query.limit = limit
                        let t = clock.now
                        rows += try await store.sessions(matching: query, access: access).count
                        times.append(clock.now - t)
                    }
                    print("query \(name), limit \(limit): \(percentiles(times)), mean \(rows / max(1, queries)) rows "
                        + "(includes the chained look-up record)")
                }
            }
            if queriesOnly { return }
            let verifyStart = clock.now
            let report = try await store.verify()
            print("verify: \(report.recordsChecked) records in \(clock.now - verifyStart), intact: \(report.isIntact)")
        }

        private func generate(_ store: AuditDatabase, workers: Int, citizens: Int, start: Date, span: Double) async throws {
            func worker(_ i: Int) -> SubjectRef { SubjectRef(rawValue: "w-\(i % workers)") }
            func citizen(_ i: Int) -> SubjectRef { SubjectRef(rawValue: "CASE-\(i % citizens)") }
            let clock = ContinuousClock()
            let generation = clock.now
            var events: [AuditEvent] = []
            // Two sessions per meeting, spread evenly over six months.
            for pair in 0..<((sessions + 1) / 2) {
                let at = start.addingTimeInterval(span * Double(pair) / Double(max(1, sessions / 2)))
                let meeting = MeetingID.random()
                let w = worker(pair), c = citizen(pair)
                events.append(.meetingCreated(Meeting(id: meeting, workerRef: w, citizenRef: c, createdAt: at,
                                                      inviteExpiresAt: at.addingTimeInterval(86_400))))
                for k in 0..<min(2, sessions - pair * 2) {
                    let session = SessionID.random(), begin = at.addingTimeInterval(Double(k) * 3000)
                    events.append(.sessionStarted(session: session, meeting: meeting, participants: [
                        Participant(role: .worker, ref: w), Participant(role: .citizen, ref: c)], at: begin))
                    events.append(.sessionEnded(session: session, meeting: meeting, reason: .hangup,
                                                at: begin.addingTimeInterval(Double(600 + pair % 1800))))
                }
                if events.count >= 3000 {
                    try await store.record(contentsOf: events)
                    events.removeAll(keepingCapacity: true)
                }
            }
            try await store.record(contentsOf: events)
            let generated = clock.now - generation
            print("generated \(sessions) sessions (\(workers) workers, \(citizens) citizens) in \(generated)")

            var insertTimes: [Duration] = []
            let insertStart = clock.now
            for i in 0..<inserts {
                let at = start.addingTimeInterval(span + Double(i))
                let t = clock.now
                try await store.record(.meetingCreated(Meeting(id: .random(), workerRef: worker(i), citizenRef: citizen(i),
                                                               createdAt: at, inviteExpiresAt: at)))
                insertTimes.append(clock.now - t)
            }
            let rate = Double(inserts) / seconds(clock.now - insertStart)
            print(String(format: "durable single-event inserts: %.0f events/s", rate) + ", latency " + percentiles(insertTimes))
        }

        private func seconds(_ d: Duration) -> Double {
            Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        }

        private func percentiles(_ times: [Duration]) -> String {
            let sorted = times.sorted()
            guard !sorted.isEmpty else { return "no samples" }
            func ms(_ p: Double) -> String {
                String(format: "%.2f ms", seconds(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) * 1000)
            }
            return "p50 \(ms(0.50)), p99 \(ms(0.99))"
        }
    }
}

func parseRef(_ raw: String) throws -> SubjectRef {
    guard let ref = SubjectRef(validating: raw) else { throw ValidationError("not a valid reference: \(raw)") }
    return ref
}

func parseDate(_ raw: String) throws -> Date {
    let full = ISO8601DateFormatter()
    if let date = full.date(from: raw) { return date }
    let day = ISO8601DateFormatter()
    day.formatOptions = [.withFullDate]
    if let date = day.date(from: raw) { return date }
    throw ValidationError("not an ISO 8601 date: \(raw) (use 2026-11-26 or 2026-11-26T08:00:00Z)")
}

func isoString(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }

func encodeJSON(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

func printTable(header: [String], rows: [[String]]) {
    let widths = header.indices.map { i in ([header] + rows).map { $0[i].count }.max() ?? 0 }
    for row in [header] + rows {
        print(zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  "))
    }
}
