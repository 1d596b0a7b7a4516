import Foundation
import Testing
@testable import AuditStore
import SamtalerumCore

@Suite struct RecordingTests {
    @Test(arguments: StoreBackend.all) func meetingIsReadBackThroughTheDirectory(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        let store = try dir.open()
        let id = MeetingID.random()
        let meeting = Meeting(id: id, workerRef: worker, citizenRef: citizen, createdAt: t0, inviteExpiresAt: t0.addingTimeInterval(3600))
        try await store.record(.meetingCreated(meeting))
        #expect(try await store.meeting(id: id) == meeting)
        #expect(try await store.meeting(id: .random()) == nil)
    }

    @Test(arguments: StoreBackend.all) func sessionsCarryDurationReasonAndRealReferences(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        let store = try dir.open()
        let meeting = MeetingID.random(), session = SessionID.random()
        for event in meetingEvents(meeting: meeting, session: session, seconds: 125.4) { try await store.record(event) }
        let rows = try await store.sessions(matching: SessionQuery(), access: auditor)
        #expect(rows.count == 1)
        let row = try #require(rows.first)
        #expect(row.meeting == meeting && row.session == session)
        #expect(row.startedAt == t0)
        #expect(row.durationSeconds == 125)
        #expect(row.endReason == .hangup)
        #expect(row.workerRef == worker && row.citizenRef == citizen)
    }

    @Test(arguments: StoreBackend.all) func queriesFilterBySubjectWorkerAndTime(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        let store = try dir.open()
        let other = SubjectRef(rawValue: "CASE-OTHER")
        try await store.record(contentsOf: meetingEvents(start: t0))
        try await store.record(contentsOf: meetingEvents(citizenRef: other, start: t0.addingTimeInterval(7200)))
        #expect(try await store.sessions(matching: SessionQuery(subject: citizen), access: auditor).count == 1)
        #expect(try await store.sessions(matching: SessionQuery(subject: other), access: auditor).first?.citizenRef == other)
        #expect(try await store.sessions(matching: SessionQuery(worker: worker), access: auditor).count == 2)
        #expect(try await store.sessions(matching: SessionQuery(worker: other), access: auditor).isEmpty)
        let late = SessionQuery(from: t0.addingTimeInterval(3600), to: t0.addingTimeInterval(86_400))
        #expect(try await store.sessions(matching: late, access: auditor).map(\.citizenRef) == [other])
    }

    @Test(arguments: StoreBackend.all) func crashRecoveryClosesOpenSessionsAtTheirLastKnownTime(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        let session = SessionID.random()
        do {
            let store = try dir.open()
            // Everything up to the start, then one more sign of life 30 s later, then "crash".
            let events = meetingEvents(session: session).prefix(5)
            try await store.record(contentsOf: Array(events))
            guard case .sessionStarted(_, let meeting, let participants, _) = events.last else { return }
            try await store.record(.participantReconnected(meeting: meeting, participant: participants[1], at: t0.addingTimeInterval(30)))
        }
        let reopened = try dir.open(clock: fixedClock(t0.addingTimeInterval(9999)))
        let row = try #require(try await reopened.sessions(matching: SessionQuery(), access: auditor).first)
        #expect(row.session == session)
        #expect(row.endReason == .serverRestart)
        #expect(row.endedAt == t0.addingTimeInterval(30))
        #expect(row.durationSeconds == 30)
        #expect(try await reopened.recoverAfterCrash(now: t0) == 0)
        #expect(try await reopened.verify().isIntact)
    }

    @Test(arguments: StoreBackend.all) func aSecondWriterOnTheSameDirectoryIsRefused(_ backend: StoreBackend) throws {
        let dir = try TempDataDir(backend)
        let first = try dir.open()
        #expect(throws: AuditStoreError.self) { _ = try dir.open() }
        _ = try dir.open(mode: .readOnly)
        withExtendedLifetime(first) {}
    }

    @Test(arguments: StoreBackend.all) func keyFilesAreOwnerOnlyAndOutsideTheDatabase(_ backend: StoreBackend) throws {
        let dir = try TempDataDir(backend)
        _ = try dir.open()
        for name in ["audit.key", "checkpoint.ed25519"] {
            let path = dir.url.appendingPathComponent("keys/\(name)").path
            let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber
            #expect(mode?.intValue == 0o600)
        }
    }

    @Test(arguments: StoreBackend.all) func rawDatabaseBytesRevealNoReference(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        do {
            let store = try dir.open()
            try await store.record(contentsOf: meetingEvents())
            _ = try await store.sessions(matching: SessionQuery(subject: citizen), access: auditor)
            _ = try await store.export(subject: citizen, access: auditor)
        }
        let bytes = try dir.storedBytes()
        #expect(bytes.count > 0)
        for secret in [citizen.rawValue, worker.rawValue, auditor.auditor.rawValue] {
            #expect(bytes.range(of: Data(secret.utf8)) == nil, "\(secret) found in the database file")
        }
    }
}

@Suite struct RetentionServiceTests {
    /// A clock whose sleeps finish at once and count themselves, so the loop runs without waiting.
    final class CountingClock: Clock, @unchecked Sendable {
        typealias Duration = Swift.Duration
        struct Instant: InstantProtocol {
            var offset: Duration
            func advanced(by d: Duration) -> Instant { Instant(offset: offset + d) }
            func duration(to other: Instant) -> Duration { other.offset - offset }
            static func < (a: Instant, b: Instant) -> Bool { a.offset < b.offset }
        }
        private let lock = NSLock()
        private var slept = 0
        private let stopAfter: Int
        init(stopAfter: Int) { self.stopAfter = stopAfter }
        var now: Instant { Instant(offset: .zero) }
        var minimumResolution: Duration { .zero }
        var sleeps: Int { lock.withLock { slept } }
        func sleep(until deadline: Instant, tolerance: Duration?) async throws {
            let count = lock.withLock { slept += 1; return slept }
            if count >= stopAfter { throw CancellationError() }
            await Task.yield()
        }
    }

    @Test(arguments: StoreBackend.all) func purgesOnEveryTickAndRecordsEachPurge(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        let store = try dir.open()
        try await store.record(contentsOf: meetingEvents(start: t0))
        let now = t0.addingTimeInterval(400 * 86_400)
        let clock = CountingClock(stopAfter: 3)
        let service = AuditRetentionService(database: store, interval: .seconds(60), clock: clock, wallClock: fixedClock(now))
        let task = Task { try await service.run() }
        while clock.sleeps < 3 { try await Task.sleep(for: .milliseconds(5)) }
        task.cancel()
        try await task.value
        #expect(try dir.rawInt("SELECT COUNT(*) FROM session") == 0)
        #expect(try dir.rawInt("SELECT COUNT(*) FROM audit_event WHERE kind = 'retention_purge'") >= 3)
        #expect(try await store.verify().isIntact)
    }
}

@Suite struct KeyLossTests {
    @Test(arguments: StoreBackend.all) func aDatabaseWithHistoryRefusesToStartWithoutItsKeys(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        do {
            let store = try dir.open()
            try await store.record(contentsOf: meetingEvents())
        }
        try FileManager.default.removeItem(at: dir.url.appendingPathComponent("keys/audit.key"))
        #expect(throws: AuditStoreError.self) { _ = try dir.open() }
        #expect(!FileManager.default.fileExists(atPath: dir.url.appendingPathComponent("keys/audit.key").path))
    }
}
