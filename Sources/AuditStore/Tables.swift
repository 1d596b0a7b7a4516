import Foundation

/// The `meeting`, `session` and `participant` tables are what auditors and Art. 15 exports read,
/// but they are a cache: every fact in them follows from the chained records. `DerivedTables`
/// replays the records into the rows they imply; `verify` compares that with the tables and names
/// the first row that disagrees. Not compared: `session.lastEventAt` of open sessions (a heartbeat,
/// chained only when a restart closes the session with it).
struct DerivedTables {
    struct MeetingFacts: Equatable {
        var worker: Data
        var citizen: Data
        var createdAt: Int64
        var inviteExpiresAt: Int64
        var startsAt: Int64?
        var cancelledAt: Int64?
        /// The record that defines the row (its creation, or the purge that carried it forward).
        var seq: Int64

        func sameFacts(as other: MeetingFacts) -> Bool {
            var a = self, b = other
            a.seq = 0
            b.seq = 0
            return a == b
        }
    }

    struct ParticipantKey: Hashable, Comparable {
        var role: String
        var ref: Data
        static func < (a: Self, b: Self) -> Bool {
            a.role != b.role ? a.role < b.role : Data.memcmpPrecedes(a.ref, b.ref)
        }
    }

    struct SessionFacts: Equatable {
        var meetingId: String
        var worker: Data?
        var citizen: Data?
        var startedAt: Int64
        var endedAt: Int64?
        var endReason: String?
        var participants: Set<ParticipantKey>
        var seq: Int64

        /// Everything but `seq`: what a carried record must agree on.
        func sameFacts(as other: SessionFacts) -> Bool {
            var a = self, b = other
            a.seq = 0
            b.seq = 0
            return a == b
        }
    }

    static let meetingCarriedKind = "meeting_carried"
    static let sessionCarriedKind = "session_carried"

    var meetings: [String: MeetingFacts] = [:]
    var sessions: [String: SessionFacts] = [:]

    /// Applies one record. Records about rows defined before the first kept record (purged) are
    /// skipped: the purge that removed their definition carried the rows forward as records.
    /// Returns a problem when a carried record contradicts what earlier records say.
    mutating func apply(_ row: EventRow) -> String? {
        switch row.kind {
        case "meeting_created":
            guard let id = row.meetingId, let worker = row.actorPseudonym, let citizen = row.subjectPseudonym else { return nil }
            let expires = Self.int(row.detail, "inviteExpiresAt") ?? row.at
            meetings[id] = MeetingFacts(worker: worker, citizen: citizen, createdAt: row.at, inviteExpiresAt: expires,
                                        startsAt: Self.int(row.detail, "startsAt"), seq: row.seq)
        case "meeting_cancelled":
            if let id = row.meetingId, meetings[id] != nil, meetings[id]?.cancelledAt == nil { meetings[id]?.cancelledAt = row.at }
        case "invite_issued":
            if let id = row.meetingId, let expires = Self.int(row.detail, "expiresAt") { meetings[id]?.inviteExpiresAt = expires }
        case "session_started":
            guard let id = row.sessionId, let meeting = row.meetingId else { return nil }
            let listed = Self.object(row.detail)?["participants"] as? [[String: String]] ?? []
            sessions[id] = SessionFacts(meetingId: meeting, worker: row.actorPseudonym, citizen: row.subjectPseudonym,
                                        startedAt: row.at, participants: Self.participants(listed), seq: row.seq)
        case "session_joined":
            if let id = row.sessionId, let ref = row.actorPseudonym, let role = AuditDatabase.detailString(row.detail, "role") {
                sessions[id]?.participants.insert(ParticipantKey(role: role, ref: ref))
            }
        case "session_ended":
            if let id = row.sessionId, sessions[id] != nil, sessions[id]?.endedAt == nil {
                sessions[id]?.endedAt = row.at
                sessions[id]?.endReason = AuditDatabase.detailString(row.detail, "reason")
            }
        case "retention_purge":
            if let cutoff = Self.int(row.detail, "cutoff") { purge(cutoff: cutoff) }
        case Self.meetingCarriedKind:
            guard let id = row.meetingId, let carried = Self.carriedMeeting(row) else { return "carried meeting is malformed" }
            if let known = meetings[id], !known.sameFacts(as: carried) {
                return "carries meeting \(id) forward differently from record \(known.seq) (the meeting row was edited before the purge)"
            }
            meetings[id] = carried
        case Self.sessionCarriedKind:
            guard let id = row.sessionId, let carried = Self.carriedSession(row) else { return "carried session is malformed" }
            if let known = sessions[id], !known.sameFacts(as: carried) {
                return "carries session \(id) forward differently from record \(known.seq) (the session row was edited before the purge)"
            }
            sessions[id] = carried
        default:
            break
        }
        return nil
    }

    /// The purge's row rule, replayed: ended sessions before the cutoff, then meetings created and
    /// expired before it that have no session left.
    private mutating func purge(cutoff: Int64) {
        sessions = sessions.filter { _, s in !(s.endedAt.map { $0 < cutoff } ?? false) }
        let withSessions = Set(sessions.values.map(\.meetingId))
        meetings = meetings.filter { id, m in
            !(m.createdAt < cutoff && m.inviteExpiresAt < cutoff && !withSessions.contains(id))
        }
    }

    // MARK: Carried records

    static func meetingCarriedDetail(_ m: MeetingRow) -> [String: any Sendable] {
        var detail: [String: any Sendable] = ["worker": m.workerPseudonym.hex, "citizen": m.citizenPseudonym.hex,
                                              "createdAt": m.createdAt, "inviteExpiresAt": m.inviteExpiresAt]
        if let startsAt = m.startsAt { detail["startsAt"] = startsAt }
        if let cancelledAt = m.cancelledAt { detail["cancelledAt"] = cancelledAt }
        return detail
    }

    static func sessionCarriedDetail(_ s: SessionRow, participants: [ParticipantKey]) -> [String: any Sendable] {
        var detail: [String: any Sendable] = [
            "startedAt": s.startedAt,
            "participants": participants.sorted().map { ["role": $0.role, "ref": $0.ref.hex] },
        ]
        if let worker = s.workerPseudonym { detail["worker"] = worker.hex }
        if let citizen = s.citizenPseudonym { detail["citizen"] = citizen.hex }
        if let ended = s.endedAt { detail["endedAt"] = ended }
        if let reason = s.endReason { detail["endReason"] = reason }
        return detail
    }

    private static func carriedMeeting(_ row: EventRow) -> MeetingFacts? {
        guard let o = object(row.detail), let worker = (o["worker"] as? String).flatMap(Data.init(hex:)),
              let citizen = (o["citizen"] as? String).flatMap(Data.init(hex:)),
              let created = (o["createdAt"] as? NSNumber)?.int64Value,
              let expires = (o["inviteExpiresAt"] as? NSNumber)?.int64Value else { return nil }
        return MeetingFacts(worker: worker, citizen: citizen, createdAt: created, inviteExpiresAt: expires,
                            startsAt: (o["startsAt"] as? NSNumber)?.int64Value,
                            cancelledAt: (o["cancelledAt"] as? NSNumber)?.int64Value, seq: row.seq)
    }

    private static func carriedSession(_ row: EventRow) -> SessionFacts? {
        guard let meeting = row.meetingId, let o = object(row.detail),
              let started = (o["startedAt"] as? NSNumber)?.int64Value,
              let listed = o["participants"] as? [[String: String]] else { return nil }
        return SessionFacts(meetingId: meeting, worker: (o["worker"] as? String).flatMap(Data.init(hex:)),
                            citizen: (o["citizen"] as? String).flatMap(Data.init(hex:)), startedAt: started,
                            endedAt: (o["endedAt"] as? NSNumber)?.int64Value, endReason: o["endReason"] as? String,
                            participants: participants(listed), seq: row.seq)
    }

    private static func participants(_ listed: [[String: String]]) -> Set<ParticipantKey> {
        Set(listed.compactMap { item in
            guard let role = item["role"], let ref = item["ref"].flatMap(Data.init(hex:)) else { return nil }
            return ParticipantKey(role: role, ref: ref)
        })
    }

    static func object(_ detail: String) -> [String: Any]? {
        try? JSONSerialization.jsonObject(with: Data(detail.utf8)) as? [String: Any]
    }

    static func int(_ detail: String, _ key: String) -> Int64? {
        (object(detail)?[key] as? NSNumber)?.int64Value
    }
}

extension DerivedTables {
    /// Compares the tables with what the records imply. Of all disagreements, the one whose
    /// defining record comes first is reported; rows no record defines come last.
    func firstDisagreement(_ db: any SQLSession, keys: AuditKeys, erased: Set<Data>) throws -> ChainProblem? {
        var best: ChainProblem?
        func note(_ seq: Int64?, _ row: String, _ reason: String) {
            let candidate = ChainProblem(record: seq ?? 0, reason: reason, row: row)
            let order = { (p: ChainProblem) in p.record == 0 ? Int64.max : p.record }
            if best.map({ order(candidate) < order($0) }) ?? true { best = candidate }
        }
        func sealedProblem(_ pseudonym: Data, _ sealed: Data) -> String? {
            if sealed == AuditKeys.erased {
                return erased.contains(pseudonym) ? nil : "blanked without an erasure record"
            }
            guard let opened = try? keys.open(sealed, pseudonym: pseudonym),
                  keys.pseudonym(SubjectRefBytes(opened)) == pseudonym else { return "does not open to its pseudonym" }
            return nil
        }
        func ms(_ value: Int64?) -> String { value.map { "\(Date(auditMilliseconds: $0))" } ?? "none" }

        var meetings = self.meetings
        try db.forEachInKeyOrder(MeetingRow.self, key: ["id"]) { m in
            let name = "meeting \(m.id)"
            guard let facts = meetings.removeValue(forKey: m.id) else {
                note(nil, name, "no record creates this meeting (inserted)")
                return
            }
            let at = "record \(facts.seq)"
            if m.workerPseudonym != facts.worker { note(facts.seq, name, "worker differs from \(at) (reassigned)") }
            else if m.citizenPseudonym != facts.citizen { note(facts.seq, name, "citizen differs from \(at)") }
            else if m.createdAt != facts.createdAt { note(facts.seq, name, "creation time \(ms(m.createdAt)) differs from \(at) (\(ms(facts.createdAt)))") }
            else if m.inviteExpiresAt != facts.inviteExpiresAt { note(facts.seq, name, "invite expiry differs from the records") }
            else if m.startsAt != facts.startsAt { note(facts.seq, name, "planned start differs from \(at)") }
            else if m.cancelledAt != facts.cancelledAt { note(facts.seq, name, "cancellation differs from the records") }
            else if let problem = sealedProblem(m.workerPseudonym, m.workerSealed) { note(facts.seq, name, "sealed worker reference \(problem)") }
            else if let problem = sealedProblem(m.citizenPseudonym, m.citizenSealed) { note(facts.seq, name, "sealed citizen reference \(problem)") }
        }
        for (id, facts) in meetings { note(facts.seq, "meeting \(id)", "created by record \(facts.seq) but missing from the table (deleted)") }

        var participants: [String: Set<ParticipantKey>] = [:]
        try db.forEachInKeyOrder(ParticipantRow.self, key: ["sessionId", "role", "refPseudonym"]) { p in
            participants[p.sessionId, default: []].insert(ParticipantKey(role: p.role, ref: p.refPseudonym))
            if let problem = sealedProblem(p.refPseudonym, p.refSealed) {
                note(self.sessions[p.sessionId]?.seq, "participant \(p.role) of session \(p.sessionId)", "sealed reference \(problem)")
            }
        }

        var sessions = self.sessions
        try db.forEachInKeyOrder(SessionRow.self, key: ["id"]) { s in
            let name = "session \(s.id)"
            let stored = participants.removeValue(forKey: s.id) ?? []
            guard let facts = sessions.removeValue(forKey: s.id) else {
                note(nil, name, "no record starts this session (inserted)")
                return
            }
            let at = "record \(facts.seq)"
            if s.meetingId != facts.meetingId { note(facts.seq, name, "meeting differs from \(at)") }
            else if s.workerPseudonym != facts.worker || s.citizenPseudonym != facts.citizen {
                note(facts.seq, name, "worker or citizen differs from \(at) (pseudonyms swapped or replaced)")
            }
            else if s.startedAt != facts.startedAt { note(facts.seq, name, "start \(ms(s.startedAt)) differs from \(at) (\(ms(facts.startedAt)))") }
            else if s.endedAt != facts.endedAt { note(facts.seq, name, "end \(ms(s.endedAt)) differs from the records (\(ms(facts.endedAt)))") }
            else if s.endReason != facts.endReason {
                note(facts.seq, name, "end reason \(s.endReason ?? "none") differs from the records (\(facts.endReason ?? "none"))")
            }
            else if stored != facts.participants {
                let missing = facts.participants.subtracting(stored).map(\.role).sorted()
                note(facts.seq, name, missing.isEmpty ? "has a participant no record names (inserted)"
                                                      : "participant \(missing.joined(separator: ", ")) named by the records is missing (deleted)")
            }
        }
        for (id, facts) in sessions { note(facts.seq, "session \(id)", "started by record \(facts.seq) but missing from the table (deleted)") }
        for id in participants.keys.sorted() { note(nil, "participants of session \(id)", "no such session (inserted)") }
        return best
    }
}

extension Data {
    init?(hex: String) {
        guard hex.utf8.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(hex.utf8.count / 2)
        var high: UInt8?
        for c in hex.utf8 {
            let v: UInt8
            switch c {
            case 48...57: v = c - 48
            case 97...102: v = c - 87
            case 65...70: v = c - 55
            default: return nil
            }
            if let h = high { bytes.append(h << 4 | v); high = nil } else { high = v }
        }
        self.init(bytes)
    }
}
