import Foundation
import Testing
@testable import AuditStore
import SamtalerumCore

@Suite struct ChainTests {
    /// Ten sessions' worth of records (70), closed so tampering happens with no writer open.
    private func populatedStore(_ backend: StoreBackend) async throws -> TempDataDir {
        let dir = try TempDataDir(backend)
        let store = try dir.open(checkpointInterval: 16)
        for i in 0..<10 {
            try await store.record(contentsOf: meetingEvents(start: t0.addingTimeInterval(Double(i) * 3600)))
        }
        #expect(try await store.verify().isIntact)
        return dir
    }

    @Test(arguments: StoreBackend.all) func intactChainVerifies(_ backend: StoreBackend) async throws {
        let dir = try await populatedStore(backend)
        let report = try await dir.open(mode: .readOnly).verify()
        #expect(report.isIntact)
        #expect(report.recordsChecked == 70)
        #expect(report.checkpointsChecked == 4)
        #expect(report.firstRecord == 1 && report.lastRecord == 70)
    }

    struct Tampering: Sendable, CustomTestStringConvertible {
        var name: String
        var sql: String
        var firstBad: Int64
        var testDescription: String { name }
    }

    static let tamperings: [Tampering] = [
        Tampering(name: "edit detail", sql: "UPDATE audit_event SET detail = '{\"reason\":\"protocol_error\"}' WHERE seq = 23", firstBad: 23),
        Tampering(name: "edit time", sql: "UPDATE audit_event SET at = at + 1000 WHERE seq = 5", firstBad: 5),
        Tampering(name: "swap sealed subject", sql: """
            UPDATE audit_event SET subjectSealed = (SELECT actorSealed FROM audit_event WHERE seq = 38) WHERE seq = 41
            """, firstBad: 41),
        Tampering(name: "delete one", sql: "DELETE FROM audit_event WHERE seq = 37", firstBad: 37),
        Tampering(name: "delete the newest", sql: "DELETE FROM audit_event WHERE seq >= 69", firstBad: 69),
        Tampering(name: "delete the oldest", sql: "DELETE FROM audit_event WHERE seq <= 3", firstBad: 1),
        Tampering(name: "reorder two", sql: """
            UPDATE audit_event SET seq = -1 WHERE seq = 11;
            UPDATE audit_event SET seq = 11 WHERE seq = 12;
            UPDATE audit_event SET seq = 12 WHERE seq = -1;
            """, firstBad: 11),
        Tampering(name: "forge a checkpoint", sql: "UPDATE checkpoint SET hash = zeroblob(32) WHERE seq = 32", firstBad: 32),
        Tampering(name: "delete a middle checkpoint", sql: "DELETE FROM checkpoint WHERE seq = 32", firstBad: 32),
    ]

    @Test(arguments: StoreBackend.all, tamperings)
    func tamperingIsFoundAtTheFirstBadRecord(_ backend: StoreBackend, _ tampering: Tampering) async throws {
        let dir = try await populatedStore(backend)
        try dir.rawSQL(tampering.sql)
        let report = try await dir.open(mode: .readOnly, checkpointInterval: 16).verify()
        let problem = try #require(report.problem)
        #expect(problem.record == tampering.firstBad, "\(problem)")
    }

    @Test(arguments: StoreBackend.all) func aRewrittenTailIsCaughtByTheSignedHeadEvenAfterRestart(_ backend: StoreBackend) async throws {
        let dir = try await populatedStore(backend)
        try dir.rawSQL("DELETE FROM audit_event WHERE seq >= 65; DELETE FROM checkpoint WHERE seq >= 64")
        // The server restarts and goes on recording; the evidence must survive that.
        let store = try dir.open()
        try await store.record(contentsOf: meetingEvents())
        let problem = try #require(try await store.verify().problem)
        #expect(problem.reason.contains("head file"))
    }

    @Test(arguments: StoreBackend.all) func purgeKeepsTheChainVerifiableAndIsItselfRecorded(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        let store = try dir.open(checkpointInterval: 5)
        let old = t0, recent = t0.addingTimeInterval(200 * 86_400)
        for i in 0..<3 { try await store.record(contentsOf: meetingEvents(start: old.addingTimeInterval(Double(i) * 60))) }
        try await store.record(contentsOf: meetingEvents(start: recent))
        let now = recent.addingTimeInterval(3600)
        let report = try await store.purge(olderThan: now.addingTimeInterval(-180 * 86_400), now: now)
        #expect(report.recordsDeleted == 21)
        #expect(report.firstRecordDeleted == 1 && report.lastRecordDeleted == 21)
        #expect(report.sessionsDeleted == 3 && report.meetingsDeleted == 3)
        let after = try await store.verify()
        #expect(after.isIntact, "\(String(describing: after.problem))")
        #expect(after.firstRecord == 22 && after.lastRecord == 29)
        #expect(try await store.sessions(matching: SessionQuery(), access: auditor).count == 1)
        #expect(try dir.rawInt("SELECT COUNT(*) FROM audit_event WHERE kind = 'retention_purge'") == 1)

        // A second purge with nothing to delete still verifies; so does deleting the anchor's successor.
        _ = try await store.purge(olderThan: now.addingTimeInterval(-180 * 86_400), now: now)
        #expect(try await store.verify().isIntact)
    }

    @Test(arguments: StoreBackend.all) func deletingThePurgeAnchorIsDetected(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        do {
            let store = try dir.open()
            try await store.record(contentsOf: meetingEvents(start: t0))
            try await store.record(contentsOf: meetingEvents(start: t0.addingTimeInterval(200 * 86_400)))
            _ = try await store.purge(olderThan: t0.addingTimeInterval(100 * 86_400), now: t0.addingTimeInterval(201 * 86_400))
        }
        try dir.rawSQL("DELETE FROM checkpoint")
        let problem = try #require(try await dir.open(mode: .readOnly).verify().problem)
        #expect(problem.record == 1)
    }

    @Test(arguments: StoreBackend.all) func auditorLookupsAreChainedAndShownInTheSubjectsExport(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        let store = try dir.open()
        try await store.record(contentsOf: meetingEvents())
        let first = AuditorAccess(auditor: auditor.auditor, purpose: "complaint 2026/17", at: t0.addingTimeInterval(86_400))
        _ = try await store.sessions(matching: SessionQuery(subject: citizen), access: first)
        await #expect(throws: AuditStoreError.purposeRequired) {
            _ = try await store.sessions(matching: SessionQuery(subject: citizen), access: AuditorAccess(auditor: worker, purpose: " ", at: t0))
        }
        let export = try await store.export(subject: citizen, access: AuditorAccess(auditor: auditor.auditor, purpose: "Art. 15 request", at: t0.addingTimeInterval(2 * 86_400)))
        #expect(export.meetings.count == 1)
        #expect(export.meetings.first?.sessions.first?.durationSeconds == 125)
        #expect(export.lookups.map(\.purpose) == ["complaint 2026/17"])
        #expect(try dir.rawInt("SELECT COUNT(*) FROM audit_event WHERE kind IN ('auditor_query', 'subject_export')") == 2)
        let again = try await store.export(subject: citizen, access: first)
        #expect(again.lookups.map(\.kind) == ["auditor_query", "subject_export"])
        #expect(try await store.verify().isIntact)
    }

    @Test(arguments: StoreBackend.all) func aLookUpByWorkerOrTimeAppearsInTheExportOfEachCitizenItReturned(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        let store = try dir.open()
        let other = SubjectRef(rawValue: "CASE-UNRELATED")
        try await store.record(contentsOf: meetingEvents(start: t0))
        try await store.record(contentsOf: meetingEvents(citizenRef: other, start: t0.addingTimeInterval(86_400 * 3)))
        let byWorker = AuditorAccess(auditor: auditor.auditor, purpose: "worker review", at: t0.addingTimeInterval(86_400 * 4))
        _ = try await store.sessions(matching: SessionQuery(worker: worker, to: t0.addingTimeInterval(86_400)), access: byWorker)
        let mine = try await store.export(subject: citizen, access: auditor)
        // Listed, but without the purpose: it was about the worker, not this citizen.
        #expect(mine.lookups.map(\.kind) == ["auditor_query"])
        #expect(mine.lookups.map(\.purpose) == [nil])
        let theirs = try await store.export(subject: other, access: auditor)
        #expect(theirs.lookups.isEmpty)
    }

    /// Verify walks tables a batch at a time (PostgreSQL's driver collects each result): every row
    /// once, in key order, across batch boundaries, also on the composite participant key.
    @Test(arguments: StoreBackend.all) func tablesAreWalkedInKeyOrderAcrossBatches(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        let store = try dir.open()
        for i in 0..<3 { try await store.record(contentsOf: meetingEvents(start: t0.addingTimeInterval(Double(i) * 3600))) }
        let (records, participants) = try await store.engine.read { db in
            var records: [Int64] = [], participants: [String] = []
            try db.forEachInKeyOrder(EventRow.self, key: ["seq"], batch: 4) { records.append($0.seq) }
            try db.forEachInKeyOrder(ParticipantRow.self, key: ["sessionId", "role", "refPseudonym"], batch: 1) {
                participants.append($0.sessionId + "/" + $0.role)
            }
            return (records, participants)
        }
        #expect(records == Array(1...21))
        #expect(participants.count == 6 && participants == participants.sorted())
        #expect(Set(participants).count == 6)
    }

    @Test(arguments: StoreBackend.all) func backupIsAVerifiedSingleFileCopy(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        let store = try dir.open()
        try await store.record(contentsOf: meetingEvents())
        let target = dir.url.appendingPathComponent("copy.sqlite")
        let report = try await store.backup(to: target)
        #expect(report.verification.recordsChecked == 7)
        #expect(report.bytes > 0)
        #expect(!FileManager.default.fileExists(atPath: target.path + "-wal"))
        await #expect(throws: AuditStoreError.self) { _ = try await store.backup(to: target) }
    }
}

@Suite struct DetailEncodingTests {
    @Test(arguments: StoreBackend.all, ["plain", "quote \" and backslash \\ and slash /", "æøå – ünïcode ✓", "tab\tinside"])
    func purposesSurviveTheRecordAndComeBackInTheExport(_ backend: StoreBackend, _ purpose: String) async throws {
        let dir = try TempDataDir(backend)
        let store = try dir.open()
        try await store.record(contentsOf: meetingEvents())
        let access = AuditorAccess(auditor: auditor.auditor, purpose: purpose, at: t0)
        if purpose.contains("\t") {
            await #expect(throws: AuditStoreError.self) { _ = try await store.sessions(matching: SessionQuery(subject: citizen), access: access) }
            return
        }
        _ = try await store.sessions(matching: SessionQuery(subject: citizen), access: access)
        #expect(try await store.export(subject: citizen, access: auditor).lookups.map(\.purpose) == [purpose])
        #expect(try await store.verify().isIntact)
    }
}

@Suite struct ErasureTests {
    @Test(arguments: StoreBackend.all) func erasureBlanksTheReferenceAndKeepsTheChainVerifiable(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        let store = try dir.open()
        let meeting = MeetingID.random()
        try await store.record(contentsOf: meetingEvents(meeting: meeting))
        try await store.record(contentsOf: meetingEvents(citizenRef: SubjectRef(rawValue: "CASE-KEPT")))
        let report = try await store.erase(subject: citizen, access: AuditorAccess(auditor: auditor.auditor, purpose: "DPO decision 2026/3", at: t0))
        #expect(report.meetingsBlanked == 1 && report.participantsBlanked == 1 && report.recordsBlanked > 0)
        let rows = try await store.sessions(matching: SessionQuery(), access: auditor)
        #expect(Set(rows.map(\.citizenRef)) == [nil, SubjectRef(rawValue: "CASE-KEPT")])
        #expect(try await store.meeting(id: meeting) == nil)
        #expect(try await store.verify().isIntact)
        // The erased reference no longer finds anything, neither by look-up nor by export.
        #expect(try await store.export(subject: citizen, access: auditor).meetings.isEmpty)
        #expect(try await store.sessions(matching: SessionQuery(subject: citizen), access: auditor).isEmpty)
    }

    @Test(arguments: StoreBackend.all) func aBlankedReferenceWithoutAnErasureRecordIsTampering(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        do {
            let store = try dir.open()
            try await store.record(contentsOf: meetingEvents())
        }
        try dir.rawSQL("UPDATE audit_event SET subjectSealed = X'00' WHERE seq = 4")
        let problem = try #require(try await dir.open(mode: .readOnly).verify().problem)
        #expect(problem.record == 4)
    }
}
