import Foundation
import Logging
import SamtalerumCore
import ServiceLifecycle

/// A session move was asked for a session the record no longer holds open (its grace ran out
/// and it was closed meanwhile): the call cannot be taken over.
public struct SessionNoLongerOpen: Error, Equatable {
    public var session: SessionID
}

/// Several signalling nodes share one store. Each session names the node hosting it; each node
/// writes a sign of life. A node closes at start only what it hosted itself; the sessions of a
/// node that never came back are closed by the others (`NodeLivenessService`).
extension AuditDatabase {
    /// The meeting's open session: id, start, host, last known time, and who is in it (guests who
    /// left it or only wait in the room are not).
    public func openSession(of meeting: MeetingID) async throws -> OpenSession? {
        let found = try await engine.read { db -> (SessionRow, String?, [(role: String, pseudonym: Data, sealed: Data)], Set<Data>)? in
            // hostNode follows the record's own columns.
            guard let row = try db.fetchOne("""
                SELECT \(SessionRow.selection()), hostNode FROM session
                WHERE meetingId = ? AND endedAt IS NULL ORDER BY startedAt DESC, id LIMIT 1
                """, [meeting.rawValue]) else { return nil }
            let session = try SessionRow(row: row)
            let host: String? = try row[SessionRow.columns.count]
            let participants = try db.fetchAll("""
                SELECT role, refPseudonym, refSealed FROM participant WHERE sessionId = ? ORDER BY role, refPseudonym
                """, [session.id])
            let listed = try participants.map { (role: try $0[0] as String, pseudonym: try $0[1] as Data, sealed: try $0[2] as Data) }
            let guests = listed.filter { $0.role == Role.guest.rawValue }.map(\.pseudonym)
            return (session, host, listed, try Self.guestsOutOfSession(db, session: session, guests: guests))
        }
        guard let (session, host, listed, gone) = found else { return nil }
        let participants: [Participant] = try listed.compactMap { entry in
            guard !gone.contains(entry.pseudonym), let ref = try reveal(pseudonym: entry.pseudonym, sealed: entry.sealed) else { return nil }
            return Participant(role: Role(rawValue: entry.role), ref: ref)
        }
        return OpenSession(id: SessionID(rawValue: session.id), meeting: meeting, startedAt: Date(auditMilliseconds: session.startedAt),
                           hostNode: host, lastKnownAt: Date(auditMilliseconds: session.lastEventAt), participants: participants)
    }

    /// The `participant` table keeps everyone who was ever in the session; a guest whose last
    /// step since the start was leaving (or entering the room anew, to wait) is not in it now.
    private static func guestsOutOfSession(_ db: any SQLSession, session: SessionRow, guests: [Data]) throws -> Set<Data> {
        guard !guests.isEmpty else { return [] }
        let start = try db.scalar("""
            SELECT seq FROM audit_event WHERE at = ? AND kind = 'session_started' AND sessionId = ?
            """, [session.startedAt, session.id], as: Int64.self) ?? 0
        var gone: Set<Data> = []
        for guest in guests {
            let last = try db.scalar("""
                SELECT kind FROM audit_event
                WHERE seq > ? AND meetingId = ? AND actorPseudonym = ?
                  AND kind IN ('participant_left', 'participant_joined', 'session_joined')
                ORDER BY seq DESC LIMIT 1
                """, [start, session.meetingId, guest], as: String.self)
            if let last, last != "session_joined" { gone.insert(guest) }
        }
        return gone
    }

    /// After a `sessionStarted` recorded by `node`: the session is that node's.
    func claim(_ event: AuditEvent, for node: String, _ db: any SQLSession) throws {
        guard case .sessionStarted(let session, _, _, _) = event else { return }
        try db.execute("UPDATE session SET hostNode = ? WHERE id = ?", [node, session.rawValue])
    }

    /// The chained record of a takeover; the session's host becomes `to`.
    func applySessionMoved(_ db: any SQLSession, session: SessionID, meeting: MeetingID, from: String?, to: String,
                           at: Date) throws {
        let ms = at.auditMilliseconds
        let moved = try db.execute("""
            UPDATE session SET hostNode = ?, moves = moves + 1, lastEventAt = \(db.dialect.greatest("lastEventAt", "?"))
            WHERE id = ? AND endedAt IS NULL
            """, [to, ms, session.rawValue])
        guard moved == 1 else { throw SessionNoLongerOpen(session: session) }
        var detail: [String: any Sendable] = ["toNode": to]
        if let from { detail["fromNode"] = from }
        try appendEvent(db, kind: "session_moved", at: ms, meeting: meeting.rawValue, session: session.rawValue,
                        actor: nil, subject: try citizen(of: meeting.rawValue, db), detail: detail)
    }

    /// How often the session moved to another node, for its end record.
    func moves(of session: String, _ db: any SQLSession) throws -> Int {
        try db.scalar("SELECT moves FROM session WHERE id = ?", [session], as: Int.self) ?? 0
    }

    /// The sessions a start must close: with `node`, only those this node hosted (or that no
    /// node was named for); without, every open one (the single-process default and the CLI).
    func sessionsLeftOpen(by node: String?, _ db: any SQLSession) throws -> [SessionRow] {
        guard let node else {
            return try db.fetchAll(SessionRow.self, SessionRow.selectAll + " WHERE endedAt IS NULL ORDER BY startedAt, id")
        }
        return try db.fetchAll(SessionRow.self, SessionRow.selectAll + """
             WHERE endedAt IS NULL AND (hostNode IS NULL OR hostNode = ?) ORDER BY startedAt, id
            """, [node])
    }

    /// `node` is alive at `at`. Not chained: only its absence matters, to `closeAbandonedSessions`.
    public func noteNodeAlive(_ node: String, at: Date) async throws {
        guard mode == .readWrite else { throw AuditStoreError.readOnly }
        _ = try await engine.write { db in
            try db.execute("""
                INSERT INTO node (name, lastSeenAt) VALUES (?, ?)
                ON CONFLICT (name) DO UPDATE SET lastSeenAt = \(db.dialect.greatest("node.lastSeenAt", "excluded.lastSeenAt"))
                """, [node, at.auditMilliseconds])
        }
    }

    /// Closes, as `connection_lost` at their last known time, the open sessions of other nodes
    /// that neither the session nor its node has shown life for `silence`: their node died and
    /// nobody resumed the call elsewhere within the grace period. Returns how many.
    @discardableResult
    public func closeAbandonedSessions(seenBy node: String, now: Date, silence: TimeInterval) async throws -> Int {
        guard mode == .readWrite else { throw AuditStoreError.readOnly }
        let cutoff = now.addingTimeInterval(-silence).auditMilliseconds
        @Sendable func abandoned(_ db: any SQLSession) throws -> [SessionRow] {
            try db.fetchAll(SessionRow.self, SessionRow.selectAll + """
                 WHERE endedAt IS NULL AND lastEventAt < ? AND (hostNode IS NULL OR hostNode != ?)
                  AND NOT EXISTS (SELECT 1 FROM node WHERE node.name = session.hostNode AND node.lastSeenAt >= ?)
                ORDER BY startedAt, id
                """, [cutoff, node, cutoff])
        }
        // Nearly always nothing: a read, so the chain's writer and head file are left alone.
        guard try await !engine.read({ db in try abandoned(db).isEmpty }) else { return 0 }
        return try await appendCommitted { db in
            let abandoned = try abandoned(db)
            for row in abandoned {
                try self.endSession(db, id: row.id, meeting: row.meetingId, reason: .connectionLost, at: row.lastEventAt,
                                    extra: ["closedBy": node, "closedAt": now.auditMilliseconds])
            }
            return abandoned.count
        }
    }
}

/// The store as one node records into it: sessions it starts are its own.
public struct NodeRecorder: AuditRecorder {
    public let store: AuditDatabase
    public let node: String

    public init(store: AuditDatabase, node: String) {
        self.store = store
        self.node = node
    }

    public func record(_ event: AuditEvent) async throws {
        try await store.record(contentsOf: [event], hostedBy: node)
    }

    public func noteActivity(meeting: MeetingID, at: Date) {
        store.noteActivity(meeting: meeting, at: at)
    }
}

/// This node's sign of life in the shared store, and the closing of sessions whose node went
/// away and which nobody resumed elsewhere (so a node that never returns leaves nothing open).
public struct NodeLivenessService<C: Clock>: Service where C.Duration == Duration {
    let database: AuditDatabase
    let node: String
    /// Resume grace plus a margin for the last-known-time write interval.
    let silence: TimeInterval
    let interval: Duration
    let clock: C
    let wallClock: WallClock
    let logger: Logger

    /// `silence`: how long a session and its node may show no life before the session is closed;
    /// the resume grace plus a margin (`RoomPolicy.handoverSilence`), well above `interval`.
    public init(database: AuditDatabase, node: String, silence: TimeInterval, interval: Duration = .seconds(5),
                clock: C, wallClock: WallClock = .system, logger: Logger) {
        self.database = database
        self.node = node
        self.silence = silence
        self.interval = interval
        self.clock = clock
        self.wallClock = wallClock
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let now = wallClock.now()
            do {
                try await database.noteNodeAlive(node, at: now)
                let closed = try await database.closeAbandonedSessions(seenBy: node, now: now, silence: silence)
                if closed > 0 {
                    logger.notice("closed sessions of a node that went away", metadata: ["count": "\(closed)"])
                }
            } catch {
                logger.warning("node liveness write failed", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await clock.sleep(for: interval) }
        }
    }
}
