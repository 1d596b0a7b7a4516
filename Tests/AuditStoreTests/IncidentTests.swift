import Foundation
import Testing
@testable import AuditStore
import SamtalerumCore

/// A trail with 70 records (checkpoints every 16), closed.
private func populated(_ backend: StoreBackend) async throws -> TempDataDir {
    let dir = try TempDataDir(backend)
    let store = try dir.open(checkpointInterval: 16)
    for i in 0..<10 { try await store.record(contentsOf: meetingEvents(start: t0.addingTimeInterval(Double(i) * 3600))) }
    try store.shutDown()
    return dir
}

/// Cuts the trail back to record 63 (a checkpoint boundary) with the rows of the meetings cut
/// away, so the database alone is consistent: only the head file, or an anchor, can tell.
private func cutBackTo63(_ dir: TempDataDir) throws {
    try dir.rawSQL("""
        DELETE FROM participant WHERE sessionId IN (SELECT sessionId FROM audit_event WHERE seq >= 64 AND kind = 'session_started');
        DELETE FROM session WHERE id IN (SELECT sessionId FROM audit_event WHERE seq >= 64 AND kind = 'session_started');
        DELETE FROM meeting WHERE id IN (SELECT meetingId FROM audit_event WHERE seq >= 64 AND kind = 'meeting_created');
        DELETE FROM audit_event WHERE seq >= 64;
        DELETE FROM checkpoint WHERE seq >= 64;
        """)
}

private func removeHead(_ dir: TempDataDir) throws {
    try FileManager.default.removeItem(at: dir.url.appendingPathComponent(AuditDatabase.headFileName))
}

@Suite struct MissingHeadTests {
    @Test(arguments: StoreBackend.all) func aNewTrailHasAHeadBeforeItsFirstRecord(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        let store = try dir.open()
        #expect(FileManager.default.fileExists(atPath: dir.url.appendingPathComponent(AuditDatabase.headFileName).path))
        #expect(try await store.verify().isIntact)
    }

    @Test(arguments: StoreBackend.all) func deletingTheHeadWithTheNewestRecordsIsAnIncidentThatSurvivesARestart(_ backend: StoreBackend) async throws {
        let dir = try await populated(backend)
        try cutBackTo63(dir)
        try removeHead(dir)
        let offline = try #require(try await dir.open(mode: .readOnly, checkpointInterval: 16)
            .verify().problem)
        #expect(offline.reason.contains("head file"), "\(offline)")
        // The server starts (and writes a new head): the evidence stays.
        let store = try dir.open(checkpointInterval: 16)
        try await store.record(contentsOf: meetingEvents())
        let problem = try #require(try await store.verify().problem)
        #expect(problem.reason.contains("missing"), "\(problem)")
    }

    @Test(arguments: StoreBackend.all) func anExportedAnchorCatchesATruncationEvenWithTheHeadRewritten(_ backend: StoreBackend) async throws {
        let dir = try await populated(backend)
        let anchor: HeadAnchor
        do {
            let store = try dir.open(checkpointInterval: 16)
            anchor = try store.anchor()
            #expect(anchor.seq == 70)
            try await store.record(contentsOf: meetingEvents())
            #expect(try await store.verify(anchors: [anchor]).isIntact)
            try store.shutDown()
        }
        let parsed = try HeadAnchor.parse(lines: "Dec  1 03:00:00 host samtalerum-anchor: \(anchor.line)\n")
        #expect(parsed == [anchor])
        // Someone with the server (and its signing key) cuts the trail back and covers it up.
        try cutBackTo63(dir)
        try removeHead(dir)
        try dir.open(checkpointInterval: 16).shutDown()
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.url.path) where name.contains(".missing-") {
            try FileManager.default.removeItem(at: dir.url.appendingPathComponent(name))
        }
        let store = try dir.open(mode: .readOnly, checkpointInterval: 16)
        #expect(try await store.verify().isIntact, "without the anchor the cover-up holds")
        let problem = try #require(try await store.verify(anchors: parsed).problem)
        #expect(problem.reason.contains("anchor 70"), "\(problem)")
    }
}

@Suite struct PurposeAndErasureTests {
    @Test(arguments: StoreBackend.all) func purposesAreSealedErasedWithTheReferenceAndKeptFromOtherCitizensExports(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        let store = try dir.open()
        let other = SubjectRef(rawValue: "CASE-OTHER-77")
        try await store.record(contentsOf: meetingEvents(start: t0))
        try await store.record(contentsOf: meetingEvents(citizenRef: other, start: t0.addingTimeInterval(60)))
        let named = "complaint from \(citizen.rawValue) about Jensen"
        let access = AuditorAccess(auditor: auditor.auditor, purpose: named, at: t0.addingTimeInterval(86_400))
        _ = try await store.sessions(matching: SessionQuery(worker: worker), access: access)
        let raw = try dir.storedBytes()
        #expect(raw.range(of: Data("Jensen".utf8)) == nil, "the purpose is sealed at rest")

        // The other citizen sees that a look-up included them, not why someone else was looked up.
        let theirs = try await store.export(subject: other, access: auditor)
        #expect(theirs.lookups.map(\.kind) == ["auditor_query"])
        #expect(theirs.lookups.map(\.purpose) == [nil])
        let targeted = AuditorAccess(auditor: auditor.auditor, purpose: "Art. 15 request", at: t0.addingTimeInterval(90_000))
        _ = try await store.sessions(matching: SessionQuery(subject: other), access: targeted)
        // Its own look-ups (and exports) show their purposes.
        #expect(try await store.export(subject: other, access: auditor).lookups.compactMap(\.purpose).contains("Art. 15 request"))

        let report = try await store.erase(subject: citizen, access: AuditorAccess(auditor: auditor.auditor, purpose: "DPO decision 7",
                                                                                  at: t0.addingTimeInterval(100_000)))
        #expect(report.purposesBlanked == 1)
        #expect(try dir.rawInt("SELECT COUNT(*) FROM audit_event WHERE purposeSealed = X'00'") == 1)
        #expect(try await store.verify().isIntact)
    }

    @Test(arguments: StoreBackend.all) func anErasedReferenceFindsNothingAndIsNotWrittenBack(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        let store = try dir.open()
        try await store.record(contentsOf: meetingEvents())
        _ = try await store.erase(subject: citizen, access: AuditorAccess(auditor: auditor.auditor, purpose: "DPO decision", at: t0))
        #expect(try await store.sessions(matching: SessionQuery(subject: citizen), access: auditor).isEmpty)
        let export = try await store.export(subject: citizen, access: auditor)
        #expect(export.meetings.isEmpty && export.lookups.isEmpty)
        let p = store.pseudonym(citizen).hex
        #expect(try dir.rawInt("""
            SELECT COUNT(*) FROM audit_event WHERE (hex(subjectPseudonym) = upper('\(p)') AND subjectSealed != X'00')
               OR (hex(actorPseudonym) = upper('\(p)') AND actorSealed != X'00')
            """) == 0)
        #expect(try await store.verify().isIntact)
    }

    @Test(arguments: StoreBackend.all) func aGuestsExportListsTheMeetingsTheyWereIn(_ backend: StoreBackend) async throws {
        let dir = try await TableTests.populated(backend)
        let store = try dir.open()
        let export = try await store.export(subject: TableTests.guest, access: auditor)
        let meeting = try #require(export.meetings.first)
        #expect(export.meetings.count == 1)
        #expect(meeting.role == .guest)
        #expect(meeting.sessions.first?.durationSeconds == 600)
        // A look-up returning the guest's session shows in the guest's export too.
        _ = try await store.sessions(matching: SessionQuery(worker: TableTests.otherWorker), access: auditor)
        #expect(try await store.export(subject: TableTests.guest, access: auditor).lookups.map(\.kind)
            == ["subject_export", "auditor_query"])
        #expect(try await store.verify().isIntact)
    }
}

@Suite struct DurabilityTests {
    @Test(arguments: StoreBackend.all) func aCrashKeepsTheDurationUpToTheLastSignsOfLife(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        let session = SessionID.random()
        let events = meetingEvents(session: session).prefix(5)
        guard case .sessionStarted(_, let meeting, _, _) = events.last else { return }
        do {
            let store = try dir.open()
            try await store.record(contentsOf: Array(events))
            // Statistics every 2 s for 27 s, then kill -9 (no shutDown).
            for second in stride(from: 2, through: 26, by: 2) {
                store.noteActivity(meeting: meeting, at: t0.addingTimeInterval(Double(second)))
                try await Task.sleep(for: .milliseconds(20))
            }
            let deadline = ContinuousClock.now + .seconds(30)
            while try dir.rawInt("SELECT lastEventAt FROM session") < Int(t0.addingTimeInterval(20).auditMilliseconds),
                  ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        // The killed store's last background write may still hold its lock for a moment.
        var reopened: AuditDatabase?
        let unlocked = ContinuousClock.now + .seconds(30)
        while reopened == nil {
            do {
                reopened = try dir.open(clock: fixedClock(t0.addingTimeInterval(9999)))
            } catch AuditStoreError.databaseInUse where ContinuousClock.now < unlocked {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        let row = try #require(try await reopened?.sessions(matching: SessionQuery(), access: auditor).first)
        #expect(row.endReason == .serverRestart)
        // Writes at most every 5 s: of 26 s of signs of life at least 20 s are kept.
        #expect((row.durationSeconds ?? 0) >= 20, "\(String(describing: row.durationSeconds))")
        #expect(try await reopened?.verify().isIntact == true)
    }

    @Test(arguments: StoreBackend.all) func aHangUpTheStoreCouldNotWriteIsRecordedAsItWasOnceWritesWork(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        let events = meetingEvents()
        let store = try dir.open()
        try await store.record(contentsOf: Array(events.prefix(5)))
        // The writer can no longer commit records (as with a full disk).
        for statement in dir.dialect.failWrites(true) { try dir.rawStatement(statement) }
        await #expect(throws: (any Error).self) { try await store.record(events[5]) }
        await #expect(throws: (any Error).self) { try await store.record(events[6]) }
        for statement in dir.dialect.failWrites(false) { try dir.rawStatement(statement) }
        // The next record of anything carries the kept ends in first.
        try await store.record(contentsOf: meetingEvents(start: t0.addingTimeInterval(7200)))
        let rows = try await store.sessions(matching: SessionQuery(), access: auditor)
        #expect(rows.first?.endReason == .hangup)
        #expect(rows.first?.durationSeconds == 125)
        try store.shutDown()
        let reopened = try dir.open()
        #expect(try await reopened.sessions(matching: SessionQuery(), access: auditor).map(\.endReason) == [.hangup, .hangup])
        #expect(try await reopened.verify().isIntact)
    }

    @Test(arguments: StoreBackend.all) func backupsAreOwnerOnly(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        let store = try dir.open()
        try await store.record(contentsOf: meetingEvents())
        let target = dir.url.appendingPathComponent("copy.sqlite")
        _ = try await store.backup(to: target)
        let mode = try FileManager.default.attributesOfItem(atPath: target.path)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)
    }
}
