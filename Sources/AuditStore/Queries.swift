import Foundation
import SamtalerumCore

/// Auditor look-ups. Each one is chained (who, when, pseudonymised criteria, purpose, count)
/// before its results are handed back, so no one reads the trail without leaving a trace in it.
extension AuditDatabase {
    public func sessions(matching query: SessionQuery, access: AuditorAccess) async throws -> [SessionSummary] {
        try await sessionPage(matching: query, access: access).sessions
    }

    /// One page of a look-up, oldest first; `next` continues after its last session.
    ///
    /// The rows are read on the writer, inside the transaction that chains the look-up: what is
    /// recorded (count, which citizens) is exactly what is returned, and the writer's page cache
    /// stays warm because no other connection invalidates it. References are opened after the
    /// commit, outside the write lock.
    public func sessionPage(matching query: SessionQuery, access: AuditorAccess) async throws -> SessionPage {
        guard mode == .readWrite else { throw AuditStoreError.readOnly }
        let purpose = try Self.validPurpose(access.purpose)
        guard (1...SessionQuery.maxLimit).contains(query.limit) else {
            throw AuditStoreError.invalidQuery("limit must be 1…\(SessionQuery.maxLimit)")
        }
        if let from = query.from, let to = query.to, from >= to {
            throw AuditStoreError.invalidQuery("from must be before to")
        }
        let after = try query.after.map(SessionCursor.init(parsing:))
        let subject = query.subject.map(pseudonym)
        let worker = query.worker.map(pseudonym)
        var criteria: [String: any Sendable] = ["limit": query.limit]
        if let subject { criteria["subject"] = subject.hex }
        if let worker { criteria["worker"] = worker.hex }
        if let from = query.from { criteria["from"] = from.auditMilliseconds }
        if let to = query.to { criteria["to"] = to.auditMilliseconds }
        if let after = query.after { criteria["after"] = after }
        let fixedCriteria = criteria
        let actor = try store(access.auditor)
        let subjectRef = try query.subject.map(store)
        let sealedPurpose = try storePurpose(purpose)
        let at = access.at.auditMilliseconds

        let (rows, guests, more) = try await appendCommitted { db in
            // An erased reference finds nothing, and is not written back in readable form.
            let erasedSubject = try subject.map { try Self.isErased($0, db) } ?? false
            let erasedWorker = try worker.map { try Self.isErased($0, db) } ?? false
            var rows = erasedSubject || erasedWorker
                ? [] : try Self.fetchSessions(db, subject: subject, worker: worker, query: query, after: after)
            let more = rows.count > query.limit
            if more { rows.removeLast() }
            let guests = try Self.fetchGuests(db, sessions: rows.map(\.id))
            // Citizens and guests the answer shows, for their Art. 15 exports. Sorted as the
            // lookup_subject primary key orders them, so verify can recompute the digest.
            let shown = rows.compactMap(\.citizenPseudonym) + guests.values.flatMap { $0.map(\.pseudonym) }
            let citizens = Set(shown).sorted(by: Data.memcmpPrecedes)
            let detail: [String: any Sendable] = [
                "criteria": fixedCriteria, "resultCount": rows.count,
                "citizensInResult": citizens.count, "citizensDigest": Chain.lookupSubjectsDigest(citizens),
            ]
            let storedSubject = erasedSubject ? subject.map { StoredRef(pseudonym: $0, sealed: AuditKeys.erased) } : subjectRef
            let event = try self.appendEvent(db, kind: "auditor_query", at: at, meeting: nil, session: nil,
                                             actor: actor, subject: storedSubject, detail: detail, purpose: sealedPurpose)
            for citizen in citizens {
                try db.execute("INSERT INTO lookup_subject (seq, subjectPseudonym) VALUES (?, ?)", [event.seq, citizen])
            }
            return (rows, guests, more)
        }
        // A worker's or a citizen's sessions repeat the same few references: open each once.
        var opened: [Data: SubjectRef] = [:]
        let summaries = try rows.map { try summary($0, guests: guests[$0.id] ?? [], opened: &opened) }
        let next = more ? rows.last.map { SessionCursor(startedAt: $0.startedAt, rowid: $0.rowid).text } : nil
        return SessionPage(sessions: summaries, next: next)
    }

    /// Art. 15: everything the store holds about one reference (a citizen, a guest, or a worker),
    /// plus when and why it was looked at. The export itself is chained as a look-up, after
    /// collecting earlier ones. An erased reference has nothing left to export.
    public func export(subject: SubjectRef, access: AuditorAccess) async throws -> SubjectExport {
        let purpose = try Self.validPurpose(access.purpose)
        let p = pseudonym(subject)
        let (erased, meetings, sessions, lookups) = try await engine.read { db in
            guard try !Self.isErased(p, db) else { return (true, [MeetingRow](), [SessionRow](), [EventRow]()) }
            return (false,
             try db.fetchAll(MeetingRow.self, MeetingRow.selectAll + """
                 WHERE citizenPseudonym = ? OR workerPseudonym = ?
                   OR id IN (SELECT meetingId FROM audit_event WHERE subjectPseudonym = ? AND kind = 'guest_invited')
                ORDER BY createdAt, id
                """, [p, p, p]),
             try db.fetchAll(SessionRow.self, SessionRow.selectAll + """
                 WHERE citizenPseudonym = ? OR workerPseudonym = ?
                   OR id IN (SELECT sessionId FROM participant WHERE refPseudonym = ?)
                ORDER BY startedAt, id
                """, [p, p, p]),
             try db.fetchAll(EventRow.self, EventRow.selectAll + """
                 WHERE (subjectPseudonym = ? AND kind IN ('auditor_query', 'subject_export'))
                   OR seq IN (SELECT seq FROM lookup_subject WHERE subjectPseudonym = ?)
                ORDER BY seq
                """, [p, p]))
        }
        var byMeeting: [String: [SubjectExport.ExportedSession]] = [:]
        for s in sessions {
            byMeeting[s.meetingId, default: []].append(SubjectExport.ExportedSession(
                session: SessionID(rawValue: s.id), startedAt: Date(auditMilliseconds: s.startedAt),
                endedAt: s.endedAt.map(Date.init(auditMilliseconds:)),
                durationSeconds: s.endedAt.map { Self.durationSeconds(start: s.startedAt, end: $0) },
                endReason: s.endReason.map(EndReason.init(rawValue:))))
        }
        let result = SubjectExport(
            subject: subject, generatedAt: access.at,
            meetings: meetings.map { m in
                SubjectExport.ExportedMeeting(meeting: MeetingID(rawValue: m.id), createdAt: Date(auditMilliseconds: m.createdAt),
                                              inviteExpiresAt: Date(auditMilliseconds: m.inviteExpiresAt),
                                              role: m.citizenPseudonym == p ? .citizen : m.workerPseudonym == p ? .worker : .guest,
                                              sessions: byMeeting[m.id] ?? [])
            },
            // Why someone else was looked up is theirs: a look-up that only happened to include
            // this person shows when and what kind, not its purpose.
            lookups: lookups.map { e in
                SubjectExport.Lookup(at: Date(auditMilliseconds: e.at), kind: e.kind,
                                     purpose: e.subjectPseudonym == p ? openPurpose(e) : nil)
            })
        let actor = try store(access.auditor)
        let subjectRef = erased ? StoredRef(pseudonym: p, sealed: AuditKeys.erased) : try store(subject)
        let sealedPurpose = try storePurpose(purpose)
        let count = result.meetings.count
        try await appendCommitted { db in
            try self.appendEvent(db, kind: "subject_export", at: access.at.auditMilliseconds, meeting: nil, session: nil,
                                 actor: actor, subject: subjectRef, detail: ["resultCount": count], purpose: sealedPurpose)
        }
        return result
    }

    /// Read by column position, in the order of the SELECT below: by-name lookups were the
    /// largest cost of a 1000-row answer.
    private struct SessionJoinRow: Sendable {
        var id: String
        var meetingId: String
        var startedAt: Int64
        var endedAt: Int64?
        var endReason: String?
        var workerPseudonym: Data?
        var workerSealed: Data?
        var citizenPseudonym: Data?
        var citizenSealed: Data?
        var rowid: Int64

        init(row: SQLRow) throws {
            id = try row[0]
            meetingId = try row[1]
            startedAt = try row[2]
            endedAt = try row[3]
            endReason = try row[4]
            workerPseudonym = try row[5]
            workerSealed = try row[6]
            citizenPseudonym = try row[7]
            citizenSealed = try row[8]
            rowid = try row[9]
        }
    }

    /// Keyset pagination on the index order (start time, then rowid; PostgreSQL's session table has
    /// a `rowid` column for this): each page is one index range scan however deep the auditor
    /// pages, unlike OFFSET.
    private static func fetchSessions(_ db: any SQLSession, subject: Data?, worker: Data?, query: SessionQuery,
                                      after: SessionCursor?) throws -> [SessionJoinRow] {
        var clauses: [String] = []
        var arguments: [any SQLValueConvertible] = []
        if let subject { clauses.append("s.citizenPseudonym = ?"); arguments += [subject] }
        if let worker { clauses.append("s.workerPseudonym = ?"); arguments += [worker] }
        if let from = query.from { clauses.append("s.startedAt >= ?"); arguments += [from.auditMilliseconds] }
        if let to = query.to { clauses.append("s.startedAt < ?"); arguments += [to.auditMilliseconds] }
        if let after { clauses.append("(s.startedAt, s.rowid) > (?, ?)"); arguments += [after.startedAt, after.rowid] }
        arguments += [query.limit + 1]
        let filter = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        return try db.fetchAll("""
            SELECT s.id, s.meetingId, s.startedAt, s.endedAt, s.endReason,
                   m.workerPseudonym, m.workerSealed, m.citizenPseudonym, m.citizenSealed, s.rowid
            FROM session s LEFT JOIN meeting m ON m.id = s.meetingId
            \(filter)
            ORDER BY s.startedAt, s.rowid
            LIMIT ?
            """, arguments).map(SessionJoinRow.init(row:))
    }

    /// Guests by session, for one page: probes of the participant key, no scan. Asked in batches of
    /// a fixed size (padded with NULL, which matches nothing), so the statement text is always the
    /// same one, prepared once per connection.
    private static func fetchGuests(_ db: any SQLSession, sessions: [String]) throws -> [String: [StoredRef]] {
        let batch = 64
        let placeholders = Array(repeating: "?", count: batch).joined(separator: ",")
        var guests: [String: [StoredRef]] = [:]
        for start in stride(from: 0, to: sessions.count, by: batch) {
            let ids = sessions[start..<min(start + batch, sessions.count)].map(SQLValue.text)
            let rows = try db.fetchAll("""
                SELECT sessionId, refPseudonym, refSealed FROM participant
                WHERE sessionId IN (\(placeholders)) AND role = 'guest' ORDER BY sessionId, refPseudonym
                """, values: ids + Array(repeating: .null, count: batch - ids.count))
            for row in rows {
                guests[try row[0], default: []].append(StoredRef(pseudonym: try row[1], sealed: try row[2]))
            }
        }
        return guests
    }

    private func summary(_ row: SessionJoinRow, guests: [StoredRef], opened: inout [Data: SubjectRef]) throws -> SessionSummary {
        func reveal(pseudonym: Data?, sealed: Data?) throws -> SubjectRef? {
            guard let pseudonym else { return nil }
            if let known = opened[pseudonym] { return known }
            let ref = try self.reveal(pseudonym: pseudonym, sealed: sealed)
            opened[pseudonym] = ref
            return ref
        }
        return SessionSummary(meeting: MeetingID(rawValue: row.meetingId), session: SessionID(rawValue: row.id),
                       startedAt: Date(auditMilliseconds: row.startedAt),
                       endedAt: row.endedAt.map(Date.init(auditMilliseconds:)),
                       durationSeconds: row.endedAt.map { Self.durationSeconds(start: row.startedAt, end: $0) },
                       endReason: row.endReason.map(EndReason.init(rawValue:)),
                       workerRef: try reveal(pseudonym: row.workerPseudonym, sealed: row.workerSealed),
                       citizenRef: try reveal(pseudonym: row.citizenPseudonym, sealed: row.citizenSealed),
                       guestRefs: guests.isEmpty ? nil : try guests.compactMap { try reveal(pseudonym: $0.pseudonym, sealed: $0.sealed) })
    }

    static func validPurpose(_ raw: String) throws -> String {
        let purpose = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !purpose.isEmpty else { throw AuditStoreError.purposeRequired }
        guard purpose.count <= AuditorAccess.maxPurposeLength,
              purpose.unicodeScalars.allSatisfy({ !CharacterSet.controlCharacters.contains($0) })
        else { throw AuditStoreError.invalidQuery("purpose must be one line of at most \(AuditorAccess.maxPurposeLength) characters") }
        return purpose
    }
}

/// Where a page ended. Opaque to callers; it stays valid as long as the sessions exist.
struct SessionCursor: Sendable {
    var startedAt: Int64
    var rowid: Int64

    init(startedAt: Int64, rowid: Int64) {
        self.startedAt = startedAt
        self.rowid = rowid
    }

    init(parsing text: String) throws {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let startedAt = Int64(parts[0]), let rowid = Int64(parts[1]) else {
            throw AuditStoreError.invalidQuery("after must be a cursor returned as next by an earlier page")
        }
        self.init(startedAt: startedAt, rowid: rowid)
    }

    var text: String { "\(startedAt).\(rowid)" }
}
