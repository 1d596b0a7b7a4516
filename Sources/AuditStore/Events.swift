import Foundation
import SamtalerumCore

/// Turns call-side events into chain records plus the meeting/session tables auditors query.
extension AuditDatabase {
    func apply(_ event: AuditEvent, _ db: any SQLSession) throws {
        switch event {
        case .meetingCreated(let m):
            let worker = try store(m.workerRef)
            let citizen = try store(m.citizenRef)
            try MeetingRow(id: m.id.rawValue, workerPseudonym: worker.pseudonym, workerSealed: worker.sealed,
                           citizenPseudonym: citizen.pseudonym, citizenSealed: citizen.sealed,
                           createdAt: m.createdAt.auditMilliseconds, inviteExpiresAt: m.inviteExpiresAt.auditMilliseconds,
                           startsAt: m.startsAt?.auditMilliseconds, cancelledAt: nil, citizenInviteId: m.citizenInviteId)
                .insert(db)
            var detail: [String: any Sendable] = ["inviteExpiresAt": m.inviteExpiresAt.auditMilliseconds]
            if let startsAt = m.startsAt { detail["startsAt"] = startsAt.auditMilliseconds }
            try appendEvent(db, kind: "meeting_created", at: m.createdAt.auditMilliseconds, meeting: m.id.rawValue,
                            session: nil, actor: worker, subject: citizen, detail: detail)

        case .meetingCancelled(let meeting, let by, let at):
            try db.execute("UPDATE meeting SET cancelledAt = COALESCE(cancelledAt, ?) WHERE id = ?",
                           [at.auditMilliseconds, meeting.rawValue])
            try appendEvent(db, kind: "meeting_cancelled", at: at.auditMilliseconds, meeting: meeting.rawValue,
                            session: nil, actor: try store(by), subject: try citizen(of: meeting.rawValue, db), detail: [:])

        case .inviteRevoked(let meeting, let replacement, let by, let at):
            try db.execute("UPDATE meeting SET citizenInviteId = ? WHERE id = ?", [replacement, meeting.rawValue])
            try appendEvent(db, kind: "invite_revoked", at: at.auditMilliseconds, meeting: meeting.rawValue,
                            session: nil, actor: try store(by), subject: try citizen(of: meeting.rawValue, db), detail: [:])

        case .inviteShown(let meeting, let by, let at):
            try appendEvent(db, kind: "invite_shown", at: at.auditMilliseconds, meeting: meeting.rawValue,
                            session: nil, actor: try store(by), subject: try citizen(of: meeting.rawValue, db), detail: [:])

        case .inviteIssued(let meeting, let by, let expiresAt, let at):
            // A re-issued invite moves the expiry the directory reports.
            try db.execute("UPDATE meeting SET inviteExpiresAt = ? WHERE id = ?", [expiresAt.auditMilliseconds, meeting.rawValue])
            try appendEvent(db, kind: "invite_issued", at: at.auditMilliseconds, meeting: meeting.rawValue,
                            session: nil, actor: try store(by), subject: try citizen(of: meeting.rawValue, db),
                            detail: ["expiresAt": expiresAt.auditMilliseconds])

        case .guestInvited(let meeting, let peer, let guest, let by, let expiresAt, let at):
            try Self.touchOpenSessions(db, meeting: meeting.rawValue, at: at.auditMilliseconds)
            try appendEvent(db, kind: "guest_invited", at: at.auditMilliseconds, meeting: meeting.rawValue,
                            session: nil, actor: try store(by), subject: try store(guest),
                            detail: ["peer": peer.rawValue, "expiresAt": expiresAt.auditMilliseconds])

        case .participantJoined(let meeting, let participant, let at):
            try participantEvent(db, kind: "participant_joined", meeting: meeting, participant: participant, at: at,
                                 detail: [:])

        case .participantLeft(let meeting, let participant, let reason, let at):
            try participantEvent(db, kind: "participant_left", meeting: meeting, participant: participant, at: at,
                                 detail: ["reason": reason.rawValue])

        case .participantReconnected(let meeting, let participant, let at):
            try participantEvent(db, kind: "participant_reconnected", meeting: meeting, participant: participant,
                                 at: at, detail: [:])

        case .participantAdmitted(let meeting, let participant, let by, let at):
            try Self.touchOpenSessions(db, meeting: meeting.rawValue, at: at.auditMilliseconds)
            try appendEvent(db, kind: "participant_admitted", at: at.auditMilliseconds, meeting: meeting.rawValue,
                            session: nil, actor: try store(by), subject: try store(participant.ref),
                            detail: ["role": participant.role.rawValue])

        case .sessionStarted(let session, let meeting, let participants, let at):
            try startSession(db, session: session, meeting: meeting, participants: participants, at: at)

        case .sessionJoined(let session, let meeting, let participant, let at):
            try Self.touchOpenSessions(db, meeting: meeting.rawValue, at: at.auditMilliseconds)
            let ref = try store(participant.ref)
            try addParticipant(db, session: session, role: participant.role, ref: ref)
            try appendEvent(db, kind: "session_joined", at: at.auditMilliseconds, meeting: meeting.rawValue,
                            session: session.rawValue, actor: ref, subject: try citizen(of: meeting.rawValue, db),
                            detail: ["role": participant.role.rawValue])

        case .sessionEnded(let session, let meeting, let reason, let at):
            try endSession(db, id: session.rawValue, meeting: meeting.rawValue, reason: reason,
                           at: at.auditMilliseconds, extra: [:])

        case .sessionMoved(let session, let meeting, let from, let to, let at):
            try applySessionMoved(db, session: session, meeting: meeting, from: from, to: to, at: at)

        case .qualitySummary(let session, let meeting, let summary, let at):
            try db.execute("UPDATE session SET lastEventAt = ? WHERE id = ? AND endedAt IS NULL AND lastEventAt < ?",
                           [at.auditMilliseconds, session.rawValue, at.auditMilliseconds])
            var detail: [String: any Sendable] = ["reconnects": summary.reconnects]
            if let rtt = summary.medianRoundTripMilliseconds { detail["medianRoundTripMilliseconds"] = rtt }
            if let loss = summary.packetLossPermille { detail["packetLossPermille"] = loss }
            if let relayed = summary.relayed { detail["relayed"] = relayed }
            // The chain's canonical form holds integers only: MOS in hundredths, time in permille.
            if let mos = summary.minMOS { detail["minMOSHundredths"] = Int((mos * 100).rounded()) }
            if let mos = summary.averageMOS { detail["averageMOSHundredths"] = Int((mos * 100).rounded()) }
            if let poor = summary.percentTimePoor { detail["poorTimePermille"] = Int((poor * 10).rounded()) }
            try appendEvent(db, kind: "quality_summary", at: at.auditMilliseconds, meeting: meeting.rawValue,
                            session: session.rawValue, actor: nil, subject: try citizen(of: meeting.rawValue, db),
                            detail: detail)
        }
    }

    private func participantEvent(_ db: any SQLSession, kind: String, meeting: MeetingID, participant: Participant,
                                  at: Date, detail: [String: any Sendable]) throws {
        try Self.touchOpenSessions(db, meeting: meeting.rawValue, at: at.auditMilliseconds)
        var detail = detail
        detail["role"] = participant.role.rawValue
        try appendEvent(db, kind: kind, at: at.auditMilliseconds, meeting: meeting.rawValue, session: nil,
                        actor: try store(participant.ref), subject: try citizen(of: meeting.rawValue, db),
                        detail: detail)
    }

    /// Keeps "last known time" current so a crash closes the session near when it really ended.
    /// Only moves it forward.
    static func touchOpenSessions(_ db: any SQLSession, meeting: String, at: Int64) throws {
        try db.execute("UPDATE session SET lastEventAt = ? WHERE meetingId = ? AND endedAt IS NULL AND lastEventAt < ?",
                       [at, meeting, at])
    }

    private func startSession(_ db: any SQLSession, session: SessionID, meeting: MeetingID,
                              participants: [Participant], at: Date) throws {
        let meetingRow = try self.meetingRow(meeting.rawValue, db)
        let stored = try participants.map { ($0.role, try store($0.ref)) }
        let worker = meetingRow.map { StoredRef(pseudonym: $0.workerPseudonym, sealed: $0.workerSealed) }
            ?? stored.first { $0.0 == .worker }?.1
        let citizen = meetingRow.map { StoredRef(pseudonym: $0.citizenPseudonym, sealed: $0.citizenSealed) }
            ?? stored.first { $0.0 == .citizen }?.1
        let ms = at.auditMilliseconds
        try db.execute("""
            INSERT INTO session (id, meetingId, workerPseudonym, citizenPseudonym, startedAt, lastEventAt)
            VALUES (?, ?, ?, ?, ?, ?)
            """, [session.rawValue, meeting.rawValue, worker?.pseudonym, citizen?.pseudonym, ms, ms])
        for (role, ref) in stored {
            try addParticipant(db, session: session, role: role, ref: ref)
        }
        let listed: [[String: String]] = stored.map { ["role": $0.0.rawValue, "ref": $0.1.pseudonym.hex] }
        try appendEvent(db, kind: "session_started", at: ms, meeting: meeting.rawValue, session: session.rawValue,
                        actor: worker, subject: citizen, detail: ["participants": listed])
    }

    private func addParticipant(_ db: any SQLSession, session: SessionID, role: Role, ref: StoredRef) throws {
        try db.execute("""
            INSERT INTO participant (sessionId, role, refPseudonym, refSealed) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING
            """, [session.rawValue, role.rawValue, ref.pseudonym, ref.sealed])
    }

    /// Ends a session once; a second end for the same session is still chained but changes nothing.
    func endSession(_ db: any SQLSession, id: String, meeting: String, reason: EndReason, at: Int64,
                    extra: [String: any Sendable]) throws {
        var detail = extra
        detail["reason"] = reason.rawValue
        let open = try db.fetchOne(SessionRow.self, SessionRow.selectAll + " WHERE id = ? AND endedAt IS NULL", [id])
        if let open {
            try db.execute("UPDATE session SET endedAt = ?, endReason = ?, lastEventAt = \(db.dialect.greatest("lastEventAt", "?")) WHERE id = ?",
                           [at, reason.rawValue, at, id])
            detail["durationSeconds"] = Self.durationSeconds(start: open.startedAt, end: at)
            let moves = try moves(of: id, db)
            if moves > 0 { detail["moves"] = moves }
        }
        let meetingRow = try self.meetingRow(meeting, db)
        try appendEvent(db, kind: "session_ended", at: at, meeting: meeting, session: id,
                        actor: meetingRow.map { StoredRef(pseudonym: $0.workerPseudonym, sealed: $0.workerSealed) },
                        subject: meetingRow.map { StoredRef(pseudonym: $0.citizenPseudonym, sealed: $0.citizenSealed) },
                        detail: detail)
    }

    func meetingRow(_ id: String, _ db: any SQLSession) throws -> MeetingRow? {
        try db.fetchOne(MeetingRow.self, MeetingRow.selectAll + " WHERE id = ?", [id])
    }

    func citizen(of meeting: String, _ db: any SQLSession) throws -> StoredRef? {
        try meetingRow(meeting, db).map { StoredRef(pseudonym: $0.citizenPseudonym, sealed: $0.citizenSealed) }
    }

    static func durationSeconds(start: Int64, end: Int64) -> Int {
        Int(max(0, end - start) / 1000)
    }
}
