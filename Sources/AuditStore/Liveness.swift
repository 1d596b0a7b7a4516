import Foundation
import SamtalerumCore
import Synchronization

/// Which meetings showed signs of life since the last write, and when a write is due. A plain
/// state machine: `note` returns the batch to write when the interval has passed, nil otherwise.
struct ActivityBatch: Sendable {
    let intervalMilliseconds: Int64
    private var pending: [String: Int64] = [:]
    private var lastWrite: Int64?
    private var writing = false

    init(intervalMilliseconds: Int64) { self.intervalMilliseconds = intervalMilliseconds }

    mutating func note(meeting: String, at: Int64) -> [String: Int64]? {
        pending[meeting] = max(pending[meeting] ?? at, at)
        guard !writing, lastWrite.map({ at - $0 >= intervalMilliseconds }) ?? true else { return nil }
        writing = true
        lastWrite = at
        defer { pending = [:] }
        return pending
    }

    /// Everything noted and not yet written (at shutdown).
    mutating func drain() -> [String: Int64] {
        defer { pending = [:] }
        return pending
    }

    mutating func written() { writing = false }
}

extension AuditDatabase {
    /// At most one "last seen" write per this many milliseconds, for all calls together: a
    /// crash then loses at most this plus one stats period (2 s) of each open session's duration.
    static let activityWriteInterval: Int64 = 5_000

    /// The call side's traffic (statistics every 2 s, ...) for `meeting`. Never waits for the
    /// disk: a due write runs in the background. Not chained: the time only becomes a record
    /// if a restart has to close the session with it (`server_restart`).
    public func noteActivity(meeting: MeetingID, at: Date) {
        guard mode == .readWrite else { return }
        guard let due = activity.withLock({ $0.note(meeting: meeting.rawValue, at: at.auditMilliseconds) }) else { return }
        Task {
            await recordUnrecordedEnds()
            do {
                try await engine.write { db in try Self.writeLastSeen(due, db) }
            } catch {
                logger.warning("could not write the calls' last known time", metadata: ["error": "\(error)"])
            }
            activity.withLock { $0.written() }
        }
    }

    private static func writeLastSeen(_ due: [String: Int64], _ db: any SQLSession) throws {
        for (meeting, at) in due { try touchOpenSessions(db, meeting: meeting, at: at) }
    }

    /// A hang-up, a departure or a quality summary is true whether or not the disk took it: when
    /// its record fails it is kept and recorded, with its own time and reason, once a write works
    /// again, instead of the session being closed as `server_restart` later.
    func keepUnrecordedEnds(of events: [AuditEvent]) {
        let ends = events.filter {
            switch $0 {
            case .sessionEnded, .participantLeft, .qualitySummary: true
            default: false
            }
        }
        guard !ends.isEmpty else { return }
        unrecordedEnds.withLock { $0.append(contentsOf: ends) }
        logger.error("session ends kept in memory until the audit store can write again", metadata: ["count": "\(ends.count)"])
    }

    /// Retries the kept ends in their order, in one transaction of their own, so a batch that
    /// still fails never blocks new records.
    func recordUnrecordedEnds() async {
        let ends = unrecordedEnds.withLock { queue in
            defer { queue = [] }
            return queue
        }
        guard !ends.isEmpty else { return }
        do {
            try await appendCommitted { db in
                for event in ends { try self.apply(event, db) }
            }
            logger.notice("recorded session ends kept while the audit store could not write", metadata: ["count": "\(ends.count)"])
        } catch {
            unrecordedEnds.withLock { $0.insert(contentsOf: ends, at: 0) }
        }
    }

    /// At orderly shutdown: the last signs of life and any kept ends, best effort.
    func flushActivityAndEndsSync() {
        guard mode == .readWrite else { return }
        let due = activity.withLock { $0.drain() }
        let ends = unrecordedEnds.withLock { queue in
            defer { queue = [] }
            return queue
        }
        do {
            if !due.isEmpty { try engine.writeSync { db in try Self.writeLastSeen(due, db) } }
            if !ends.isEmpty { try appendCommittedSync { db in for event in ends { try self.apply(event, db) } } }
        } catch {
            logger.error("could not record at shutdown; open sessions will be closed at the next start",
                         metadata: ["error": "\(error)", "ends": "\(ends.count)"])
        }
    }
}
