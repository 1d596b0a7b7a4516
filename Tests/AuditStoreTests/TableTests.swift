import Foundation
import Logging
import Testing
@testable import AuditStore
import SamtalerumCore

/// The tables auditors read (`meeting`, `session`, `participant`) must agree with the chain:
/// every case below edits only a table, as someone with the file would, and verify said OK before.
@Suite struct TableTests {
    static let otherWorker = SubjectRef(rawValue: "worker-0009")
    static let guest = SubjectRef(rawValue: "jobcenter-77")

    /// Three meetings with one finished session each (`nth` 1, 2, 3 in every table); the second
    /// has another worker and a guest who joined the running session.
    static func populated(_ backend: StoreBackend) async throws -> TempDataDir {
        let dir = try TempDataDir(backend)
        let store = try dir.open()
        try await store.record(contentsOf: meetingEvents(citizenRef: SubjectRef(rawValue: "CASE-A"), start: t0, seconds: 3))
        let meeting = MeetingID.random(), session = SessionID.random()
        let w = Participant(role: .worker, ref: otherWorker), c = Participant(role: .citizen, ref: SubjectRef(rawValue: "CASE-B"))
        let g = Participant(role: .guest, ref: guest), start = t0.addingTimeInterval(3600)
        try await store.record(contentsOf: [
            .meetingCreated(Meeting(id: meeting, workerRef: otherWorker, citizenRef: c.ref, createdAt: start.addingTimeInterval(-60),
                                    inviteExpiresAt: start.addingTimeInterval(3600))),
            .guestInvited(meeting: meeting, peer: PeerID(rawValue: "guest-1"), guest: guest, by: otherWorker,
                          expiresAt: start.addingTimeInterval(3600), at: start.addingTimeInterval(-30)),
            .sessionStarted(session: session, meeting: meeting, participants: [w, c], at: start),
            .sessionJoined(session: session, meeting: meeting, participant: g, at: start.addingTimeInterval(20)),
            .sessionEnded(session: session, meeting: meeting, reason: .hangup, at: start.addingTimeInterval(600)),
        ])
        try await store.record(contentsOf: meetingEvents(citizenRef: SubjectRef(rawValue: "CASE-C"), start: t0.addingTimeInterval(7200)))
        #expect(try await store.verify().isIntact)
        try store.shutDown()
        return dir
    }

    struct Tampering: Sendable, CustomTestStringConvertible {
        var name: String
        var sql: String
        /// The row verify must name, and the record that defines it (nil: none, the row was inserted).
        var row: String
        var definedBy: String?
        var testDescription: String { name }
    }

    static func sessionStart(_ n: Int) -> String {
        "SELECT seq FROM audit_event WHERE kind = 'session_started' AND sessionId = \(nth("session", n))"
    }
    static func meetingCreation(_ n: Int) -> String {
        "SELECT seq FROM audit_event WHERE kind = 'meeting_created' AND meetingId = \(nth("meeting", n))"
    }
    static func session(_ n: Int) -> String { "SELECT 'session ' || id FROM session WHERE id = \(nth("session", n))" }
    static func meeting(_ n: Int) -> String { "SELECT 'meeting ' || id FROM meeting WHERE id = \(nth("meeting", n))" }

    static let tamperings: [Tampering] = [
        Tampering(name: "end time moved by an hour", sql: "UPDATE session SET endedAt = endedAt + 3600000 WHERE id = \(nth("session", 1))",
                  row: session(1), definedBy: sessionStart(1)),
        Tampering(name: "start time changed", sql: "UPDATE session SET startedAt = startedAt - 60000 WHERE id = \(nth("session", 2))",
                  row: session(2), definedBy: sessionStart(2)),
        Tampering(name: "end reason changed", sql: "UPDATE session SET endReason = 'connection_lost' WHERE id = \(nth("session", 3))",
                  row: session(3), definedBy: sessionStart(3)),
        Tampering(name: "meeting given to another worker", sql: """
            UPDATE meeting SET workerPseudonym = (SELECT workerPseudonym FROM meeting WHERE id = \(nth("meeting", 2))),
                               workerSealed = (SELECT workerSealed FROM meeting WHERE id = \(nth("meeting", 2))) WHERE id = \(nth("meeting", 1))
            """, row: meeting(1), definedBy: meetingCreation(1)),
        Tampering(name: "random worker pseudonym", sql: "UPDATE meeting SET workerPseudonym = randomblob(32) WHERE id = \(nth("meeting", 3))",
                  row: meeting(3), definedBy: meetingCreation(3)),
        Tampering(name: "session row deleted", sql: "DELETE FROM session WHERE id = \(nth("session", 2))",
                  row: "SELECT 'session ' || sessionId FROM audit_event WHERE kind = 'session_started' ORDER BY seq LIMIT 1 OFFSET 1",
                  definedBy: "SELECT seq FROM audit_event WHERE kind = 'session_started' ORDER BY seq LIMIT 1 OFFSET 1"),
        Tampering(name: "meeting row deleted", sql: "DELETE FROM meeting WHERE id = \(nth("meeting", 3))",
                  row: "SELECT 'meeting ' || meetingId FROM audit_event WHERE kind = 'meeting_created' ORDER BY seq DESC LIMIT 1",
                  definedBy: "SELECT seq FROM audit_event WHERE kind = 'meeting_created' ORDER BY seq DESC LIMIT 1"),
        Tampering(name: "guest row deleted", sql: "DELETE FROM participant WHERE role = 'guest'",
                  row: session(2), definedBy: sessionStart(2)),
        Tampering(name: "fake session inserted", sql: """
            INSERT INTO session (id, meetingId, workerPseudonym, citizenPseudonym, startedAt, endedAt, endReason, lastEventAt)
            SELECT 's-fake', meetingId, workerPseudonym, citizenPseudonym, startedAt + 86400000, endedAt + 86400000, endReason,
                   lastEventAt FROM session WHERE id = \(nth("session", 1))
            """, row: "SELECT 'session s-fake'", definedBy: nil),
        Tampering(name: "two sessions' citizens swapped", sql: """
            UPDATE session SET citizenPseudonym = (SELECT citizenPseudonym FROM meeting WHERE id = \(nth("meeting", 3)))
            WHERE id = \(nth("session", 1));
            UPDATE session SET citizenPseudonym = (SELECT citizenPseudonym FROM meeting WHERE id = \(nth("meeting", 1)))
            WHERE id = \(nth("session", 3))
            """, row: session(1), definedBy: sessionStart(1)),
        Tampering(name: "sealed citizen blanked in meeting", sql: "UPDATE meeting SET citizenSealed = X'00' WHERE id = \(nth("meeting", 1))",
                  row: meeting(1), definedBy: meetingCreation(1)),
        Tampering(name: "sealed reference blanked in participant", sql: """
            UPDATE participant SET refSealed = X'00' WHERE role = 'guest'
            """, row: "SELECT 'participant guest of session ' || id FROM session WHERE id = \(nth("session", 2))", definedBy: sessionStart(2)),
    ]

    @Test(arguments: StoreBackend.all, tamperings)
    func anEditedTableIsFoundAtTheFirstRowThatDisagrees(_ backend: StoreBackend, _ tampering: Tampering) async throws {
        let dir = try await Self.populated(backend)
        let row = try dir.rawText(tampering.row)
        let definedBy = try tampering.definedBy.map { try dir.rawInt($0) } ?? 0
        try dir.rawSQL(tampering.sql)
        let problem = try #require(try await dir.open(mode: .readOnly).verify().problem)
        #expect(problem.row == row, "\(problem)")
        #expect(problem.record == Int64(definedBy), "\(problem)")
    }

    @Test(arguments: StoreBackend.all) func aRowOlderThanTheRetentionWindowIsCarriedForwardAndStaysChecked(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        let store = try dir.open()
        let meeting = MeetingID.random()
        // A meeting made long ago whose newest session ended recently, and one that straddles the cutoff.
        try await store.record(contentsOf: meetingEvents(meeting: meeting, start: t0))
        let late = t0.addingTimeInterval(190 * 86_400)
        let straddling = SessionID.random()
        try await store.record(contentsOf: [
            .sessionStarted(session: straddling, meeting: meeting, participants: [
                Participant(role: .worker, ref: worker), Participant(role: .citizen, ref: citizen)], at: late),
        ])
        try await store.record(contentsOf: meetingEvents(start: late.addingTimeInterval(20 * 86_400)))
        try await store.record(.sessionEnded(session: straddling, meeting: meeting, reason: .hangup,
                                             at: late.addingTimeInterval(15 * 86_400)))
        let now = late.addingTimeInterval(25 * 86_400)
        // The cutoff lies after the straddling session's start and before its end.
        let report = try await store.purge(olderThan: late.addingTimeInterval(86_400), now: now)
        #expect(report.sessionsDeleted == 1)
        #expect(try dir.rawInt("SELECT COUNT(*) FROM audit_event WHERE kind IN ('meeting_carried', 'session_carried')") == 2)
        let verified = try await store.verify()
        #expect(verified.isIntact, "\(String(describing: verified.problem))")
        let sessions = try await store.sessions(matching: SessionQuery(subject: citizen), access: auditor)
        #expect(sessions.first { $0.session == straddling }?.durationSeconds == 15 * 86_400)
        try store.shutDown()

        try dir.rawSQL("UPDATE session SET startedAt = startedAt + 1000 WHERE id = '\(straddling.rawValue)'")
        let problem = try #require(try await dir.open(mode: .readOnly).verify().problem)
        #expect(problem.row == "session \(straddling.rawValue)", "\(problem)")
    }

    @Test(arguments: StoreBackend.all) func aPurgeRefusesToCarryAnEditedRowForward(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        do {
            let store = try dir.open()
            let meeting = MeetingID.random()
            try await store.record(contentsOf: meetingEvents(meeting: meeting, start: t0))
            try await store.record(.sessionStarted(session: .random(), meeting: meeting, participants: [
                Participant(role: .worker, ref: worker), Participant(role: .citizen, ref: citizen)], at: t0.addingTimeInterval(200 * 86_400)))
            try store.shutDown()
        }
        try dir.rawSQL("UPDATE meeting SET workerPseudonym = (SELECT citizenPseudonym FROM meeting)")
        let store = try dir.open()
        await #expect(throws: AuditStoreError.self) {
            _ = try await store.purge(olderThan: t0.addingTimeInterval(100 * 86_400), now: t0.addingTimeInterval(201 * 86_400))
        }
        #expect(try dir.rawInt("SELECT MIN(seq) FROM audit_event") == 1)
    }
}

/// Log lines kept in memory, to see what the server says at start.
final class CapturedLog: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [(Logger.Level, String)] = []
    func append(_ level: Logger.Level, _ text: String) { lock.withLock { lines.append((level, text)) } }
    var all: [(Logger.Level, String)] { lock.withLock { lines } }

    struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            log.append(event.level, "\(event.message) \(event.metadata ?? [:])")
        }
    }

    var logger: Logger { Logger(label: "test") { _ in Handler(log: self) } }
}

@Suite struct StartCheckTests {
    @Test(arguments: StoreBackend.all) func theServerReportsAnEditedTableAtStart(_ backend: StoreBackend) async throws {
        let dir = try await TableTests.populated(backend)
        try dir.rawSQL("UPDATE session SET endedAt = endedAt + 3600000 WHERE id = \(nth("session", 1))")
        let store = try dir.open()
        let captured = CapturedLog()
        let clock = RetentionServiceTests.CountingClock(stopAfter: 1)
        let service = AuditRetentionService(database: store, clock: clock,
                                            wallClock: fixedClock(t0.addingTimeInterval(86_400)), logger: captured.logger)
        let task = Task { try await service.run() }
        let deadline = ContinuousClock.now + .seconds(60)
        while clock.sleeps < 1, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        task.cancel()
        try await task.value
        let critical = captured.all.filter { $0.0 == .critical }.map(\.1)
        #expect(critical.count == 1 && critical.first?.contains("session s-") == true, "\(critical)")
    }
}
