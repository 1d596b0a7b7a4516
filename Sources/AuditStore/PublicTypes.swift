import Foundation
import SamtalerumCore

public enum AuditStoreError: Error, Equatable, CustomStringConvertible {
    /// Another process (normally the running server) holds the single writer.
    case databaseInUse(String)
    case insecureKeyFile(String)
    case corruptKeyFile(String)
    case unreadableReference
    case io(String, Int32)
    case purposeRequired
    case invalidQuery(String)
    case backupFailed(String)
    case readOnly
    /// A key file is gone. New keys would silently orphan every existing record, so none are made.
    case missingKeys(String)
    /// `rotate-keys` committed but did not install the new keys: the old ones no longer open the data.
    case unfinishedKeyRotation(String)
    /// A meeting or session row no longer matches the chained records that define it.
    case tablesDisagree(String)

    public var description: String {
        switch self {
        case .databaseInUse(let path):
            "the audit database \(path) is held by another process (the server?); stop it or use the HTTP API"
        case .insecureKeyFile(let path): "key file \(path) is readable by group or others; chmod 600 it"
        case .corruptKeyFile(let path): "key file \(path) has the wrong size"
        case .unreadableReference: "a sealed reference does not open with this data directory's key"
        case .io(let what, let code): "\(what): \(String(cString: strerror(code)))"
        case .purposeRequired: "a purpose is required for every auditor look-up"
        case .invalidQuery(let why): "invalid query: \(why)"
        case .backupFailed(let why): "backup failed: \(why)"
        case .readOnly: "the audit database was opened read-only"
        case .missingKeys(let path): "\(path) is missing; restore it from the key backup (see Docs/GDPR.md)"
        case .tablesDisagree(let what): "the audit tables disagree with the chained records: \(what)"
        case .unfinishedKeyRotation(let path):
            "\(path) exists: a key rotation was interrupted; run `samtalerum audit rotate-keys` again to finish it"
        }
    }
}

/// How a process opens the store. Only one read-write opener per data directory may exist.
public enum AuditAccessMode: Sendable {
    /// The server (or an offline CLI): takes the process lock, closes sessions left open by a crash.
    case readWrite
    /// Inspection next to a running server (verify, backup): never writes.
    case readOnly
}

/// Criteria of an auditor look-up. `from`/`to` bound the session start (from inclusive, to exclusive).
public struct SessionQuery: Sendable, Equatable {
    public var subject: SubjectRef?
    public var worker: SubjectRef?
    public var from: Date?
    public var to: Date?
    /// Page size. Large answers are read page by page with `after`.
    public var limit: Int
    /// Continue after this cursor (`SessionPage.next` of the previous page).
    public var after: String?

    public static let maxLimit = 10_000
    /// A page a person reads; at 1 M sessions a 200-row page answers within the 20 ms p99 target
    /// including its chained look-up record (Docs/PERFORMANCE.md), a 1000-row page does not always.
    public static let defaultLimit = 200

    public init(subject: SubjectRef? = nil, worker: SubjectRef? = nil, from: Date? = nil, to: Date? = nil,
                limit: Int = SessionQuery.defaultLimit, after: String? = nil) {
        self.subject = subject
        self.worker = worker
        self.from = from
        self.to = to
        self.limit = limit
        self.after = after
    }
}

/// Who looks and why. Every look-up is itself written to the chain before results are returned.
public struct AuditorAccess: Sendable, Equatable {
    public var auditor: SubjectRef
    public var purpose: String
    public var at: Date

    public static let maxPurposeLength = 200

    public init(auditor: SubjectRef, purpose: String, at: Date) {
        self.auditor = auditor
        self.purpose = purpose
        self.at = at
    }
}

/// One session as an auditor sees it, with the real references opened.
public struct SessionSummary: Sendable, Equatable, Codable {
    public var meeting: MeetingID
    public var session: SessionID
    public var startedAt: Date
    public var endedAt: Date?
    public var durationSeconds: Int?
    public var endReason: EndReason?
    public var workerRef: SubjectRef?
    public var citizenRef: SubjectRef?
    /// Further participants the worker brought in (e.g. a job-centre caseworker); absent when none.
    public var guestRefs: [SubjectRef]?
}

/// One page of sessions. `next` is nil on the last page; otherwise pass it as `SessionQuery.after`.
public struct SessionPage: Sendable, Equatable {
    public var sessions: [SessionSummary]
    public var next: String?
}

/// What a key rotation did. `retiredPublicKeyFile` keeps the old checkpoints verifiable.
public struct KeyRotationReport: Sendable, Equatable {
    public var rotationRecord: Int64
    public var referencesResealed: Int
    public var retiredPublicKeyFile: String
}

/// Art. 15 answer for one reference: their meetings and when/why their data was looked at.
public struct SubjectExport: Sendable, Equatable, Codable {
    public struct ExportedMeeting: Sendable, Equatable, Codable {
        public var meeting: MeetingID
        public var createdAt: Date
        public var inviteExpiresAt: Date
        /// What the person was in this meeting: citizen, worker or guest.
        public var role: Role
        public var sessions: [ExportedSession]
    }
    public struct ExportedSession: Sendable, Equatable, Codable {
        public var session: SessionID
        public var startedAt: Date
        public var endedAt: Date?
        public var durationSeconds: Int?
        public var endReason: EndReason?
    }
    /// A look-up of this person's data. Deliberately without the auditor's identity. The purpose
    /// only when the look-up was about this person (not a look-up by worker or period that
    /// happened to include them), and not once erased.
    public struct Lookup: Sendable, Equatable, Codable {
        public var at: Date
        public var kind: String
        public var purpose: String?
    }
    public var subject: SubjectRef
    public var generatedAt: Date
    public var meetings: [ExportedMeeting]
    public var lookups: [Lookup]
}

public struct ChainProblem: Sendable, Equatable, CustomStringConvertible {
    /// Sequence number of the first record that cannot be trusted; for a table row that disagrees
    /// with the records, the record that defines that row (0: no record does, the row was inserted).
    public var record: Int64
    public var reason: String
    /// The meeting, session or participant row that disagrees with the records, if that is the problem.
    public var row: String?
    public var description: String {
        guard let row else { return "record \(record): \(reason)" }
        return record == 0 ? "\(row): \(reason)" : "\(row) (record \(record)): \(reason)"
    }
}

public struct VerificationReport: Sendable, Equatable {
    public var recordsChecked: Int
    public var checkpointsChecked: Int
    public var firstRecord: Int64?
    public var lastRecord: Int64?
    public var problem: ChainProblem?
    public var isIntact: Bool { problem == nil }
}

/// What a retention purge removed. Counts and ranges only: this is also what the chain records.
public struct PurgeReport: Sendable, Equatable, Codable {
    public var cutoff: Date
    public var recordsDeleted: Int
    public var firstRecordDeleted: Int64?
    public var lastRecordDeleted: Int64?
    public var sessionsDeleted: Int
    public var meetingsDeleted: Int
}

public struct BackupReport: Sendable, Equatable {
    public var path: String
    public var bytes: Int64
    public var verification: VerificationReport
}

/// What an Art. 17 erasure blanked. The pseudonyms stay (the chain hashes them); only the sealed
/// copies that let anyone see the real reference are gone.
public struct ErasureReport: Sendable, Equatable, Codable {
    public var recordsBlanked: Int
    public var meetingsBlanked: Int
    public var participantsBlanked: Int
    /// Purposes of look-ups of this reference, or that name it.
    public var purposesBlanked: Int = 0
}
