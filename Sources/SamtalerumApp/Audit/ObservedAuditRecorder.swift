import AuditStore
import CoreMetrics
import Foundation
import Logging
import SamtalerumCore

/// The one way into the audit store for meetings and signalling, so every lifecycle event is
/// timed, counted when it fails, and logged once it is durable. Log lines carry the ids the ops
/// view shows (meeting, session, peer, role, reason), never a subject reference or an address.
struct ObservedAuditRecorder: AuditRecorder {
    let store: AuditDatabase
    let logger: Logger
    /// This node's name: the sessions it starts are its own in the shared store.
    var node: String? = nil

    func record(_ event: AuditEvent) async throws {
        let (message, metadata) = Self.describe(event)
        let started = ContinuousClock.now
        do {
            try await store.record(contentsOf: [event], hostedBy: node)
        } catch {
            Counter(label: MetricsExporter.auditWriteFailures).increment()
            logger.error("audit record failed", metadata: metadata.merging(["error": "\(error)"]) { $1 })
            throw StoreUnavailable(underlying: error)
        }
        MetricsExporter.recordElapsed(MetricsExporter.auditWriteDuration, since: started)
        logger.info(message, metadata: metadata)
    }

    func noteActivity(meeting: MeetingID, at: Date) {
        store.noteActivity(meeting: meeting, at: at)
    }

    /// A readiness check: can the store commit right now?
    func probe() async throws {
        let started = ContinuousClock.now
        do {
            try await store.probeWrite()
        } catch {
            Counter(label: MetricsExporter.auditWriteFailures).increment()
            throw StoreUnavailable(underlying: error)
        }
        MetricsExporter.recordElapsed(MetricsExporter.auditWriteDuration, since: started)
    }

    static func describe(_ event: AuditEvent) -> (Logger.Message, Logger.Metadata) {
        switch event {
        case .meetingCreated(let meeting):
            ("meeting created", ["event": "meeting_created", "meeting": "\(meeting.id)"])
        case .inviteIssued(let meeting, _, _, _):
            ("invite issued", ["event": "invite_issued", "meeting": "\(meeting)"])
        case .guestInvited(let meeting, let peer, _, _, _, _):
            ("guest invited", ["event": "guest_invited", "meeting": "\(meeting)", "peer": "\(peer)"])
        case .participantJoined(let meeting, let participant, _):
            ("participant joined", ["event": "participant_joined", "meeting": "\(meeting)", "role": "\(participant.role)"])
        case .participantLeft(let meeting, let participant, let reason, _):
            ("participant left", ["event": "participant_left", "meeting": "\(meeting)", "role": "\(participant.role)",
                                  "reason": "\(reason)"])
        case .sessionStarted(let session, let meeting, let participants, _):
            ("session started", ["event": "session_started", "session": "\(session)", "meeting": "\(meeting)",
                                 "roles": .array(participants.map { "\($0.role)" })])
        case .sessionEnded(let session, let meeting, let reason, _):
            ("session ended", ["event": "session_ended", "session": "\(session)", "meeting": "\(meeting)", "reason": "\(reason)"])
        case .sessionJoined(let session, let meeting, let participant, _):
            ("participant joined the session", ["event": "session_joined", "session": "\(session)", "meeting": "\(meeting)",
                                                "role": "\(participant.role)"])
        case .participantReconnected(let meeting, let participant, _):
            ("participant reconnected", ["event": "participant_reconnected", "meeting": "\(meeting)", "role": "\(participant.role)"])
        case .participantAdmitted(let meeting, let participant, _, _):
            ("participant admitted", ["event": "participant_admitted", "meeting": "\(meeting)", "role": "\(participant.role)"])
        case .meetingCancelled(let meeting, _, _):
            ("meeting cancelled", ["event": "meeting_cancelled", "meeting": "\(meeting)"])
        case .inviteRevoked(let meeting, _, _, _):
            ("invite revoked", ["event": "invite_revoked", "meeting": "\(meeting)"])
        case .inviteShown(let meeting, _, _):
            ("invite shown again", ["event": "invite_shown", "meeting": "\(meeting)"])
        case .sessionMoved(let session, let meeting, let from, let to, _):
            ("session moved to this node", ["event": "session_moved", "session": "\(session)", "meeting": "\(meeting)",
                                            "fromNode": "\(from ?? "-")", "toNode": "\(to)"])
        case .qualitySummary(let session, let meeting, let summary, _):
            ("session quality", ["event": "quality_summary", "session": "\(session)", "meeting": "\(meeting)",
                                 "reconnects": "\(summary.reconnects)",
                                 "averageMOS": "\(summary.averageMOS.map { "\($0)" } ?? "-")"])
        }
    }
}

/// The audit store could not commit. Nothing may be acknowledged that is not recorded, so the
/// request is answered `unavailable` (retry later, or another instance); the cause goes to the
/// log line, not to the client.
struct StoreUnavailable: Error, CustomStringConvertible {
    let underlying: any Error
    var description: String { "the audit store cannot commit: \(underlying)" }
}
