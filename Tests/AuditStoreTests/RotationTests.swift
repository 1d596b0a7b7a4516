import Foundation
import Testing
@testable import AuditStore
import SamtalerumCore

@Suite struct KeyRotationTests {
    private func keyFile(_ dir: TempDataDir, _ name: String) throws -> Data {
        try Data(contentsOf: dir.url.appendingPathComponent("keys").appendingPathComponent(name))
    }

    @Test(arguments: StoreBackend.all) func rotationResealsKeepsOldCheckpointsVerifiableAndSignsNewOnesWithTheNewKey(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        let meeting = MeetingID.random()
        do {
            let store = try dir.open(checkpointInterval: 8)
            try await store.record(contentsOf: meetingEvents(meeting: meeting))
            try await store.record(contentsOf: meetingEvents(citizenRef: SubjectRef(rawValue: "CASE-OTHER"),
                                                             start: t0.addingTimeInterval(3600)))
            _ = try await store.sessions(matching: SessionQuery(), access: auditor)
            try store.shutDown()
        }
        let oldAuditKey = try keyFile(dir, "audit.key")
        let oldPublic = try keyFile(dir, "checkpoint.pub")
        let sealedBefore = try dir.rawText("SELECT hex(citizenSealed) FROM meeting WHERE id = '\(meeting.rawValue)'")

        let report = try dir.rotateKeys(actor: SubjectRef(rawValue: "cli:root"), at: t0,
                                                  checkpointInterval: 8)
        #expect(report.rotationRecord == 16)
        #expect(report.referencesResealed > 0)

        // The HMAC half stays (pseudonyms are hashed into the chain); the sealing half is new.
        let newAuditKey = try keyFile(dir, "audit.key")
        #expect(newAuditKey.prefix(32) == oldAuditKey.prefix(32))
        #expect(newAuditKey.suffix(32) != oldAuditKey.suffix(32))
        #expect(try keyFile(dir, "checkpoint.pub") != oldPublic)
        #expect(try keyFile(dir, report.retiredPublicKeyFile) == oldPublic)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.url.appendingPathComponent("keys").path)
        #expect(!names.contains { $0.hasSuffix(".new") })
        #expect(try dir.rawText("SELECT hex(citizenSealed) FROM meeting WHERE id = '\(meeting.rawValue)'") != sealedBefore)

        let store = try dir.open(checkpointInterval: 8)
        #expect(try await store.meeting(id: meeting)?.citizenRef == citizen)
        #expect(try await store.verify().isIntact)
        // New checkpoints (and the head) are signed with the new key and verify too.
        try await store.record(contentsOf: meetingEvents(start: t0.addingTimeInterval(7200)))
        let rows = try await store.sessions(matching: SessionQuery(), access: auditor)
        #expect(Set(rows.compactMap(\.citizenRef)) == [citizen, SubjectRef(rawValue: "CASE-OTHER")])
        #expect(rows.allSatisfy { $0.workerRef == worker })
        try store.shutDown()
        let report2 = try await dir.open(mode: .readOnly).verify()
        #expect(report2.isIntact, "\(String(describing: report2.problem))")
        #expect(report2.checkpointsChecked == 3)  // records 8 and 16 under the retired key, 24 under the new one
    }

    @Test(arguments: StoreBackend.all) func aRetiredKeyCannotVouchForLaterRecordsNorAStrayKeyFile(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        do {
            let store = try dir.open(checkpointInterval: 4)
            try await store.record(contentsOf: meetingEvents())
            try store.shutDown()
        }
        let report = try dir.rotateKeys(actor: SubjectRef(rawValue: "cli:root"), at: t0)
        // A file claiming the retired key was in force up to a later record, with no rotation there.
        let keys = dir.url.appendingPathComponent("keys")
        try FileManager.default.copyItem(at: keys.appendingPathComponent(report.retiredPublicKeyFile),
                                         to: keys.appendingPathComponent("checkpoint-6.pub"))
        let problem = try #require(try await dir.open(mode: .readOnly).verify().problem)
        #expect(problem.record == 6, "\(problem)")
    }

    @Test(arguments: StoreBackend.all) func anUnfinishedRotationStopsTheServerAndARerunDiscardsUncommittedKeys(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        do {
            let store = try dir.open()
            try await store.record(contentsOf: meetingEvents())
            try store.shutDown()
        }
        // Pending keys that never committed are discarded, not installed.
        let keys = dir.url.appendingPathComponent("keys")
        try Data(repeating: 7, count: 32).write(to: keys.appendingPathComponent("checkpoint.ed25519.new"))
        chmod(keys.appendingPathComponent("checkpoint.ed25519.new").path, 0o600)
        // The server does not start over an unfinished rotation; rotate-keys sorts it out.
        #expect(throws: AuditStoreError.self) { _ = try dir.open() }
        _ = try dir.rotateKeys(actor: SubjectRef(rawValue: "cli:root"), at: t0)
        #expect(try await dir.open(mode: .readOnly).verify().isIntact)
        #expect(try await dir.open().meeting(id: MeetingID(rawValue: "x")) == nil)
    }
}

@Suite struct LookupEvidenceTests {
    private func storeWithOneLookUp(_ backend: StoreBackend) async throws -> (TempDataDir, Int64) {
        let dir = try TempDataDir(backend)
        let store = try dir.open()
        try await store.record(contentsOf: meetingEvents(start: t0))
        try await store.record(contentsOf: meetingEvents(citizenRef: SubjectRef(rawValue: "CASE-B"), start: t0.addingTimeInterval(60)))
        _ = try await store.sessions(matching: SessionQuery(worker: worker), access: auditor)
        try store.shutDown()
        #expect(try dir.rawInt("SELECT COUNT(*) FROM lookup_subject") == 2)
        return (dir, Int64(try dir.rawInt("SELECT MAX(seq) FROM audit_event")))
    }

    @Test(arguments: StoreBackend.all) func deletingALookupSubjectRowIsDetected(_ backend: StoreBackend) async throws {
        let (dir, lookup) = try await storeWithOneLookUp(backend)
        try dir.rawSQL("DELETE FROM lookup_subject WHERE subjectPseudonym = (SELECT subjectPseudonym FROM lookup_subject LIMIT 1)")
        let problem = try #require(try await dir.open(mode: .readOnly).verify().problem)
        #expect(problem.record == lookup, "\(problem)")
    }

    @Test(arguments: StoreBackend.all) func attributingALookUpToAnotherRecordIsDetected(_ backend: StoreBackend) async throws {
        let (dir, _) = try await storeWithOneLookUp(backend)
        try dir.rawSQL("INSERT INTO lookup_subject (seq, subjectPseudonym) SELECT 3, subjectPseudonym FROM lookup_subject LIMIT 1")
        let problem = try #require(try await dir.open(mode: .readOnly).verify().problem)
        #expect(problem.record == 3, "\(problem)")
    }
}

@Suite struct PaginationTests {
    @Test(arguments: StoreBackend.all) func pagesFollowEachOtherWithoutGapsOrRepeats(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        let store = try dir.open()
        // Two sessions share a start time, so the cursor must break ties.
        for i in 0..<5 {
            try await store.record(contentsOf: meetingEvents(start: t0.addingTimeInterval(Double(i / 2) * 60)))
        }
        var seen: [SessionID] = []
        var after: String?
        var pages = 0
        repeat {
            let page = try await store.sessionPage(matching: SessionQuery(worker: worker, limit: 2, after: after), access: auditor)
            seen += page.sessions.map(\.session)
            after = page.next
            pages += 1
        } while after != nil
        #expect(pages == 3)
        #expect(seen.count == 5 && Set(seen).count == 5)
        await #expect(throws: AuditStoreError.self) {
            _ = try await store.sessionPage(matching: SessionQuery(after: "nonsense"), access: auditor)
        }
        #expect(try await store.verify().isIntact)
    }
}
