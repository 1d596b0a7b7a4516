import Foundation
@testable import AuditStore
import SamtalerumCore
import Testing

/// Several signalling nodes sharing one store: whose sessions a start closes, what another node
/// reads to take a call over, the move record, and the closing of a vanished node's sessions.
@Suite struct NodeTests {
    /// A meeting with a running session (no end).
    func openCall(meeting: MeetingID = .random(), session: SessionID = .random(), start: Date = t0) -> [AuditEvent] {
        Array(meetingEvents(meeting: meeting, session: session, start: start).dropLast(2))
    }

    func endReasons(_ dir: TempDataDir) throws -> [String: String] {
        Dictionary(uniqueKeysWithValues: try dir.rawRows("SELECT id, endReason FROM session").map {
            (try $0[0] as String, (try $0[1] as String?) ?? "open")
        })
    }

    @Test(arguments: StoreBackend.all) func aStartClosesOnlyTheSessionsItsOwnNodeHosted(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        let mine = SessionID.random(), theirs = SessionID.random(), unnamed = SessionID.random()
        do {
            let store = try dir.open(clock: fixedClock(t0), node: "node-a")
            try await store.record(contentsOf: openCall(session: mine), hostedBy: "node-a")
            try await store.record(contentsOf: openCall(session: theirs), hostedBy: "node-b")
            try await store.record(contentsOf: openCall(session: unnamed))
            try store.shutDown()
        }
        // node-a crashed and starts again; node-b is still running its call.
        let restarted = try dir.open(clock: fixedClock(t0.addingTimeInterval(60)), node: "node-a")
        let reasons = try endReasons(dir)
        #expect(reasons[mine.rawValue] == "server_restart")
        #expect(reasons[unnamed.rawValue] == "server_restart")
        #expect(reasons[theirs.rawValue] == "open")
        try restarted.shutDown()
        // Opened without a node (one process, one store): whatever is open was left by a crash.
        let single = try dir.open(clock: fixedClock(t0.addingTimeInterval(120)))
        #expect(try endReasons(dir)[theirs.rawValue] == "server_restart")
        #expect(try await single.verify().isIntact)
    }

    @Test(arguments: StoreBackend.all) func theSessionsOfANodeThatWentAwayAreClosedAsLostAtTheirLastKnownTime(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        let store = try dir.open(clock: fixedClock(t0), node: "node-a")
        let gone = SessionID.random(), live = SessionID.random(), own = SessionID.random(), recent = SessionID.random()
        let now = t0.addingTimeInterval(3600)
        try await store.record(contentsOf: openCall(session: gone), hostedBy: "node-b")
        try await store.record(contentsOf: openCall(session: live), hostedBy: "node-c")
        try await store.record(contentsOf: openCall(session: own), hostedBy: "node-a")
        try await store.record(contentsOf: openCall(session: recent, start: now.addingTimeInterval(-10)), hostedBy: "node-b")
        try await store.noteNodeAlive("node-b", at: t0)
        try await store.noteNodeAlive("node-c", at: now.addingTimeInterval(-5))

        #expect(try await store.closeAbandonedSessions(seenBy: "node-a", now: now, silence: 75) == 1)
        let reasons = try endReasons(dir)
        #expect(reasons[gone.rawValue] == "connection_lost")
        // node-c is alive; node-a's own call is its own business; the recent call may still be resumed.
        #expect(reasons[live.rawValue] == "open" && reasons[own.rawValue] == "open" && reasons[recent.rawValue] == "open")
        #expect(try dir.rawInt("SELECT endedAt FROM session WHERE id = '\(gone.rawValue)'") == Int(t0.auditMilliseconds))
        #expect(try await store.closeAbandonedSessions(seenBy: "node-a", now: now, silence: 75) == 0)
        #expect(try await store.verify().isIntact)
    }

    @Test(arguments: StoreBackend.all) func theOpenSessionNamesWhoIsInItAndAMoveIsChainedAndCounted(_ backend: StoreBackend) async throws {
        let dir = try TempDataDir(backend)
        let store = try dir.open(clock: fixedClock(t0), node: "node-a")
        let meeting = MeetingID.random(), session = SessionID.random()
        let w = Participant(role: .worker, ref: worker), c = Participant(role: .citizen, ref: citizen)
        let early = Participant(role: .guest, ref: SubjectRef(rawValue: "jobcenter-1"))
        let late = Participant(role: .guest, ref: SubjectRef(rawValue: "jobcenter-2"))
        let events = Array(meetingEvents(meeting: meeting, session: session).dropLast(3)) + [
            .sessionStarted(session: session, meeting: meeting, participants: [w, c, early], at: t0),
            .participantLeft(meeting: meeting, participant: early, reason: .hangup, at: t0.addingTimeInterval(30)),
            .participantJoined(meeting: meeting, participant: late, at: t0.addingTimeInterval(40)),
            .sessionJoined(session: session, meeting: meeting, participant: late, at: t0.addingTimeInterval(50)),
        ]
        try await store.record(contentsOf: events, hostedBy: "node-a")

        let open = try #require(try await store.openSession(of: meeting))
        #expect(open.id == session && open.hostNode == "node-a" && open.startedAt == t0)
        #expect(open.lastKnownAt == t0.addingTimeInterval(50))
        #expect(Set(open.participants.map(\.ref)) == [worker, citizen, late.ref])

        try await store.record(.sessionMoved(session: session, meeting: meeting, from: "node-a", to: "node-b", at: t0.addingTimeInterval(70)))
        #expect(try await store.openSession(of: meeting)?.hostNode == "node-b")
        try await store.record(.sessionEnded(session: session, meeting: meeting, reason: .hangup, at: t0.addingTimeInterval(90)))
        #expect(try dir.rawText("SELECT detail FROM audit_event WHERE kind = 'session_ended'").contains(#""moves":1"#))
        #expect(try await store.openSession(of: meeting) == nil)
        // Too late: the session is closed, so it cannot move any more (and nothing is chained).
        await #expect(throws: SessionNoLongerOpen(session: session)) {
            try await store.record(.sessionMoved(session: session, meeting: meeting, from: "node-b", to: "node-c", at: t0.addingTimeInterval(95)))
        }
        #expect(try dir.rawInt("SELECT COUNT(*) FROM audit_event WHERE kind = 'session_moved'") == 1)
        #expect(try await store.verify().isIntact)
    }
}
