import Foundation

extension AuditDatabase {
    /// Walks the whole chain: contiguous sequence numbers, links, hashes, sealed references,
    /// signed checkpoints, the purge anchor and the signed head file. Stops at the first problem.
    ///
    /// `anchors` are signed heads exported earlier (`samtalerum audit anchor`) and kept outside the
    /// server: each must still be in the chain, so a trail cut back behind one is caught even when
    /// the head file and the checkpoints were rewritten together with the database.
    public func verify(anchors: [HeadAnchor] = []) async throws -> VerificationReport {
        let head = readHead()
        return try await Self.verify(reader: engine, keys: keys, head: head, headMissing: head == nil,
                                     conflicts: conflictHeadFiles(), anchors: anchors, checkpointInterval: checkpointInterval)
    }

    /// `headMissing`: this copy should have a head file (a live data directory) but has none, or
    /// an unreadable one. A backup has none by design.
    static func verify(reader: any SQLEngine, keys: AuditKeys, head: SignedHead?, headMissing: Bool,
                       conflicts: [String], anchors: [HeadAnchor], checkpointInterval: Int64) async throws -> VerificationReport {
        // The head is read before the snapshot: the writer publishes it after committing, so
        // anything it names is already inside the snapshot taken next.
        try await reader.read { db in
            var report = VerificationReport(recordsChecked: 0, checkpointsChecked: 0)
            func fail(_ record: Int64, _ reason: String) -> VerificationReport {
                report.problem = ChainProblem(record: record, reason: reason)
                return report
            }
            func signed(_ c: CheckpointRow) -> Bool { keys.isSigned(c) }
            var checkpoints: [Int64: CheckpointRow] = [:]
            for c in try db.fetchAll(CheckpointRow.self, CheckpointRow.selectAll + " ORDER BY seq") {
                guard signed(c) else { return fail(c.seq, "checkpoint signature is invalid (checkpoint table edited)") }
                checkpoints[c.seq] = c
            }
            if let conflict = conflicts.first {
                let seq = head?.checkpoint.seq ?? 0
                if conflict.hasPrefix(Self.missingHeadPrefix) {
                    return fail(seq, "a previous start found the signed head file missing although the trail had history "
                        + "(\(conflict)); records may have been removed")
                }
                return fail(seq, "a previous start found the head file ahead of the database (\(conflict)); records were removed")
            }

            // Blanked references are legitimate only for pseudonyms a chained erasure record names.
            let erasures = try db.column("SELECT subjectPseudonym FROM audit_event WHERE kind = 'subject_erased'", as: Data.self)
            let erased = Set(erasures)
            let lastErasure = try db.scalar("SELECT MAX(seq) FROM audit_event WHERE kind = 'subject_erased'", as: Int64.self)
            var derived = DerivedTables()
            var lookups: Set<Int64> = []
            var rotations: Set<Int64> = []
            var expectedSeq: Int64 = 0
            var previousHash = Chain.genesis
            // The walk stops at the first problem: thrown out of the row loop, returned below.
            struct Stop: Error { var record: Int64; var reason: String }
            do {
                try db.forEachInKeyOrder(EventRow.self, key: ["seq"]) { row in
                    if report.firstRecord == nil {
                        report.firstRecord = row.seq
                        if row.seq > 1 {
                            // Records before this one were purged: a signed anchor must hold their last hash.
                            guard let anchor = checkpoints[row.seq - 1] else {
                                throw Stop(record: 1, reason: "records 1…\(row.seq - 1) are missing and no signed purge anchor covers them")
                            }
                            previousHash = anchor.hash
                        }
                        expectedSeq = row.seq
                    }
                    guard row.seq == expectedSeq else {
                        throw Stop(record: expectedSeq, reason: "missing (deleted); the next record present is \(row.seq)")
                    }
                    guard row.prevHash == previousHash else {
                        throw Stop(record: row.seq, reason: "does not link to record \(row.seq - 1) (edited, reordered or the record before it was replaced)")
                    }
                    guard Chain.hash(previous: previousHash, row: row) == row.hash else {
                        throw Stop(record: row.seq, reason: "contents do not match its hash (edited)")
                    }
                    if let problem = sealedProblem(row, keys: keys, erased: erased) { throw Stop(record: row.seq, reason: problem) }
                    if let problem = purposeProblem(row, keys: keys, lastErasure: lastErasure) { throw Stop(record: row.seq, reason: problem) }
                    if row.kind == "auditor_query" {
                        lookups.insert(row.seq)
                        if let problem = try lookupSubjectsProblem(row, db) { throw Stop(record: row.seq, reason: problem) }
                    }
                    if row.kind == Self.keysRotatedKind {
                        guard let retired = keys.retiredPublicKeys[row.seq],
                              Self.detailString(row.detail, "retiredSigningKey") == retired.rawRepresentation.hex
                        else { throw Stop(record: row.seq, reason: "the key rotation it records does not match keys/\(AuditKeys.retiredPublicKeyFile(upTo: row.seq))") }
                        rotations.insert(row.seq)
                    }
                    if let problem = derived.apply(row) { throw Stop(record: row.seq, reason: problem) }
                    if row.seq % checkpointInterval == 0, checkpoints[row.seq] == nil {
                        throw Stop(record: row.seq, reason: "its signed checkpoint is missing (deleted)")
                    }
                    if let checkpoint = checkpoints[row.seq] {
                        guard checkpoint.hash == row.hash else {
                            throw Stop(record: row.seq, reason: "differs from its signed checkpoint (chain rewritten up to here)")
                        }
                        report.checkpointsChecked += 1
                    }
                    previousHash = row.hash
                    expectedSeq += 1
                    report.recordsChecked += 1
                    report.lastRecord = row.seq
                }
            } catch let stop as Stop {
                return fail(stop.record, stop.reason)
            }
            let last = report.lastRecord ?? 0
            // Citizens attributed to a record that is not a look-up (it would show in their Art. 15 export).
            for seq in try db.column("SELECT DISTINCT seq FROM lookup_subject ORDER BY seq", as: Int64.self) where !lookups.contains(seq) {
                return fail(seq, "lookup_subject names this record, which is not a look-up (inserted)")
            }
            // A retired key is trusted only for records up to a chained rotation that names it.
            if let first = report.firstRecord,
               let stray = keys.retiredPublicKeys.keys.filter({ $0 >= first && !rotations.contains($0) }).min() {
                return fail(stray, "keys/\(AuditKeys.retiredPublicKeyFile(upTo: stray)) is not named by a chained key rotation")
            }
            if let beyond = checkpoints.keys.filter({ $0 > last }).min() {
                return fail(last + 1, "missing (deleted); a signed checkpoint exists for record \(beyond)")
            }
            if headMissing, report.firstRecord != nil || !checkpoints.isEmpty {
                return fail(last + 1, "the signed head file (\(AuditDatabase.headFileName)) is missing or unreadable although "
                    + "the trail has history: the newest records may have been removed with it")
            }
            let signedHeads = (head.map { [("the signed head file", $0.checkpoint)] } ?? [])
                + anchors.map { ("anchor \($0.seq)", $0.checkpoint) }
            for (name, checkpoint) in signedHeads {
                guard signed(checkpoint) else { return fail(checkpoint.seq, "\(name): signature is invalid") }
                if checkpoint.seq > last {
                    return fail(last + 1, "missing (deleted); \(name) names record \(checkpoint.seq)")
                }
                if let first = report.firstRecord, checkpoint.seq >= first {
                    let stored = try db.scalar("SELECT hash FROM audit_event WHERE seq = ?", [checkpoint.seq], as: Data.self)
                    guard stored == checkpoint.hash else {
                        return fail(checkpoint.seq, "differs from \(name) (chain rewritten)")
                    }
                }
            }
            report.problem = try derived.firstDisagreement(db, keys: keys, erased: erased)
            return report
        }
    }

    static let keysRotatedKind = "keys_rotated"
    static let missingHeadPrefix = headFileName + ".missing-"

    /// A look-up's chained digest covers which citizens it returned; look-ups recorded before the
    /// digest existed carry none and are not checked.
    private static func lookupSubjectsProblem(_ row: EventRow, _ db: any SQLSession) throws -> String? {
        guard let recorded = detailString(row.detail, "citizensDigest") else { return nil }
        let stored = try db.column("SELECT subjectPseudonym FROM lookup_subject WHERE seq = ? ORDER BY subjectPseudonym",
                                   [row.seq], as: Data.self)
        guard Chain.lookupSubjectsDigest(stored) == recorded else {
            return "the citizens stored for this look-up (lookup_subject) differ from what it recorded (deleted, added or changed)"
        }
        return nil
    }

    static func detailString(_ detail: String, _ key: String) -> String? {
        guard detail.contains("\"\(key)\"") else { return nil }
        let object = try? JSONSerialization.jsonObject(with: Data(detail.utf8)) as? [String: Any]
        return object?[key] as? String
    }

    /// A sealed reference that no longer opens under its hashed pseudonym was edited or swapped.
    private static func sealedProblem(_ row: EventRow, keys: AuditKeys, erased: Set<Data>) -> String? {
        for (pseudonym, sealed, name) in [(row.actorPseudonym, row.actorSealed, "actor"),
                                          (row.subjectPseudonym, row.subjectSealed, "subject")] {
            guard let pseudonym, let sealed else {
                if (pseudonym == nil) != (sealed == nil) { return "\(name) reference is incomplete (edited)" }
                continue
            }
            if sealed == AuditKeys.erased {
                guard erased.contains(pseudonym) else { return "\(name) reference blanked without an erasure record (edited)" }
                continue
            }
            guard let opened = try? keys.open(sealed, pseudonym: pseudonym),
                  keys.pseudonym(SubjectRefBytes(opened)) == pseudonym
            else { return "sealed \(name) reference does not match its pseudonym (edited)" }
        }
        return nil
    }
}
