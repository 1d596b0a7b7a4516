import Foundation
import GRDB
@testable import AuditStore
import SamtalerumCore

/// A fresh data directory per test; removed when the test's scope ends.
final class TempDataDir {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("audit-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }

    var databasePath: String { url.appendingPathComponent(AuditDatabase.databaseFileName).path }

    /// Tampering as an attacker would: a separate SQLite connection, no store code involved.
    func rawSQL(_ sql: String) throws {
        let queue = try DatabaseQueue(path: databasePath)
        try queue.writeWithoutTransaction { db in try db.execute(sql: sql) }
        try queue.close()
    }

    func rawInt(_ sql: String) throws -> Int {
        let queue = try DatabaseQueue(path: databasePath)
        defer { try? queue.close() }
        return try queue.read { db in try Int.fetchOne(db, sql: sql) ?? -1 }
    }

    func rawHex(_ sql: String) throws -> String {
        let queue = try DatabaseQueue(path: databasePath)
        defer { try? queue.close() }
        return try queue.read { db in try String.fetchOne(db, sql: sql) ?? "" }
    }
}

let t0 = Date(timeIntervalSince1970: 1_790_000_000)
let worker = SubjectRef(rawValue: "worker-4711")
let citizen = SubjectRef(rawValue: "CASE-2026-SECRET-0042")
let auditor = AuditorAccess(auditor: SubjectRef(rawValue: "auditor-7"), purpose: "complaint 2026/17", at: t0.addingTimeInterval(86_400))

func fixedClock(_ date: Date) -> WallClock { WallClock { date } }

/// One meeting with one finished session: meeting, invite, two joins, start, leave, end.
func meetingEvents(meeting: MeetingID = .random(), session: SessionID = .random(), citizenRef: SubjectRef = citizen,
                   start: Date = t0, seconds: TimeInterval = 125.4) -> [AuditEvent] {
    let w = Participant(role: .worker, ref: worker)
    let c = Participant(role: .citizen, ref: citizenRef)
    let end = start.addingTimeInterval(seconds)
    return [
        .meetingCreated(Meeting(id: meeting, workerRef: worker, citizenRef: citizenRef,
                                createdAt: start.addingTimeInterval(-600), inviteExpiresAt: start.addingTimeInterval(3600))),
        .inviteIssued(meeting: meeting, by: worker, expiresAt: start.addingTimeInterval(3600), at: start.addingTimeInterval(-590)),
        .participantJoined(meeting: meeting, participant: w, at: start.addingTimeInterval(-10)),
        .participantJoined(meeting: meeting, participant: c, at: start),
        .sessionStarted(session: session, meeting: meeting, participants: [w, c], at: start),
        .participantLeft(meeting: meeting, participant: c, reason: .hangup, at: end),
        .sessionEnded(session: session, meeting: meeting, reason: .hangup, at: end),
    ]
}
