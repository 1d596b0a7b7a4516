import Crypto
import Foundation
import Logging
import SamtalerumCore

/// `samtalerum audit rotate-keys`: new sealing and signing keys, with the server stopped.
///
/// The HMAC pseudonym key stays: the chain hashes pseudonyms, so changing it would rewrite
/// history. Sealed copies sit outside the hash and are re-sealed in one transaction that also
/// chains a `keys_rotated` record naming both public keys. The old public key is kept as
/// `keys/checkpoint-<that record>.pub`; old secrets are replaced, not kept.
///
/// Crash safety: the new keys are written (fsynced) as `*.new` before the transaction; only
/// after it commits are they renamed over the old ones. A rerun after a crash finishes the
/// renames if the rotation record exists, and otherwise discards the `*.new` files.
extension AuditDatabase {
    public static func rotateKeys(dataDirectory: URL, backend: AuditBackend = .sqlite, actor: SubjectRef, at: Date = Date(),
                                  checkpointInterval: Int = 64,
                                  logger: Logger = Logger(label: "samtalerum.audit")) throws -> KeyRotationReport {
        let keysDirectory = dataDirectory.appendingPathComponent(keysDirectoryName)
        if backend == .sqlite,
           !FileManager.default.fileExists(atPath: dataDirectory.appendingPathComponent(databaseFileName).path) {
            throw AuditStoreError.missingKeys(dataDirectory.appendingPathComponent(databaseFileName).path)
        }
        let store = try open(dataDirectory: dataDirectory, backend: backend, checkpointInterval: checkpointInterval,
                             logger: logger, duringRotation: ())
        let report: KeyRotationReport
        do {
            report = try store.rotateOrResume(keysDirectory: keysDirectory, actor: actor, at: at)
            try store.shutDown()
        } catch {
            try? store.shutDown()
            throw error
        }
        try installPendingKeys(in: keysDirectory, retired: store.keys.signingKey.publicKey, upTo: report.rotationRecord)
        // Opening again publishes the head file under the new signing key.
        try open(dataDirectory: dataDirectory, backend: backend, checkpointInterval: checkpointInterval, logger: logger)
            .shutDown()
        return report
    }

    private func rotateOrResume(keysDirectory: URL, actor: SubjectRef, at: Date) throws -> KeyRotationReport {
        let pendingSigningURL = keysDirectory.appendingPathComponent(AuditKeys.signingKeyFile + AuditKeys.pendingSuffix)
        let pendingAuditURL = keysDirectory.appendingPathComponent(AuditKeys.auditKeyFile + AuditKeys.pendingSuffix)
        if let pending = try? AuditKeys.readOrCreateSecret(pendingSigningURL, count: 32, create: false),
           let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: pending),
           let seq = try rotationRecord(naming: key.publicKey) {
            logger.notice("finishing an interrupted key rotation", metadata: ["record": "\(seq)"])
            return KeyRotationReport(rotationRecord: seq, referencesResealed: 0,
                                     retiredPublicKeyFile: AuditKeys.retiredPublicKeyFile(upTo: seq))
        }
        // Left by a rotation that never committed: the database still uses the current keys.
        for url in [pendingAuditURL, pendingSigningURL] { try? FileManager.default.removeItem(at: url) }

        let sealing = SymmetricKey(size: .bits256)
        let signing = Curve25519.Signing.PrivateKey()
        let auditKey = keys.pseudonymKey.withUnsafeBytes { Data($0) } + sealing.withUnsafeBytes { Data($0) }
        try AuditKeys.writeNew(pendingAuditURL, bytes: auditKey, mode: 0o600)
        try AuditKeys.writeNew(pendingSigningURL, bytes: signing.rawRepresentation, mode: 0o600)
        let next = AuditKeys(pseudonymKey: keys.pseudonymKey, sealingKey: sealing, signingKey: signing,
                             retiredPublicKeys: [:])
        let actorPseudonym = pseudonym(actor)
        let actorRef = StoredRef(pseudonym: actorPseudonym,
                                 sealed: try next.seal(SubjectRefBytes(actor.rawValue), pseudonym: actorPseudonym))
        let retired = keys.signingKey.publicKey.rawRepresentation.hex
        let (seq, count) = try appendCommittedSync { db in
            let count = try self.reseal(db, with: next)
            let event = try self.appendEvent(db, kind: Self.keysRotatedKind, at: at.auditMilliseconds, meeting: nil,
                                             session: nil, actor: actorRef, subject: nil,
                                             detail: ["retiredSigningKey": retired,
                                                      "signingKey": signing.publicKey.rawRepresentation.hex,
                                                      "referencesResealed": count])
            return (event.seq, count)
        }
        return KeyRotationReport(rotationRecord: seq, referencesResealed: count,
                                 retiredPublicKeyFile: AuditKeys.retiredPublicKeyFile(upTo: seq))
    }

    private func rotationRecord(naming key: Curve25519.Signing.PublicKey) throws -> Int64? {
        try engine.readSync { db in
            let rows = try db.fetchAll("SELECT seq, detail FROM audit_event WHERE kind = ? ORDER BY seq DESC",
                                       [Self.keysRotatedKind])
            for row in rows where Self.detailString(try row[1], "signingKey") == key.rawRepresentation.hex {
                return try row[0]
            }
            return nil
        }
    }

    /// Every sealed copy, opened with the current key and sealed again with the next one.
    /// Erased copies stay blank.
    private func reseal(_ db: any SQLSession, with next: AuditKeys) throws -> Int {
        // Each table's primary key names the row to update.
        let columns: [(table: String, key: [String], pseudonym: String, sealed: String)] = [
            ("audit_event", ["seq"], "actorPseudonym", "actorSealed"),
            ("audit_event", ["seq"], "subjectPseudonym", "subjectSealed"),
            ("meeting", ["id"], "workerPseudonym", "workerSealed"),
            ("meeting", ["id"], "citizenPseudonym", "citizenSealed"),
            ("participant", ["sessionId", "role", "refPseudonym"], "refPseudonym", "refSealed"),
        ]
        var count = 0
        for column in columns {
            let rows = try db.fetchAll("""
                SELECT \(column.pseudonym), \(column.sealed), \(column.key.joined(separator: ", ")) FROM \(column.table)
                WHERE \(column.sealed) IS NOT NULL AND \(column.sealed) != ?
                """, [AuditKeys.erased])
            let whereKey = column.key.map { "\($0) = ?" }.joined(separator: " AND ")
            for row in rows {
                let pseudonym: Data = try row[0]
                let plain = try keys.open(try row[1], pseudonym: pseudonym)
                let sealed = try next.seal(SubjectRefBytes(plain), pseudonym: pseudonym)
                try db.execute("UPDATE \(column.table) SET \(column.sealed) = ? WHERE \(whereKey)",
                               values: [.blob(sealed)] + row.values.dropFirst(2))
            }
            count += rows.count
        }
        let purposes = try db.fetchAll("""
            SELECT seq, detail, purposeSealed FROM audit_event WHERE purposeSealed IS NOT NULL AND purposeSealed != ?
            """, [AuditKeys.erased])
        for row in purposes {
            guard let mac = Self.detailString(try row[1], Self.purposeMacKey).flatMap(Data.init(hex:)) else { continue }
            let plain = try keys.open(try row[2], pseudonym: mac)
            try db.execute("UPDATE audit_event SET purposeSealed = ? WHERE seq = ?",
                           [try next.seal(SubjectRefBytes(plain), pseudonym: mac), try row[0] as Int64])
            count += 1
        }
        return count
    }

    /// After the commit: keep the old public key, then move the new keys into place. The pending
    /// signing key goes last, so while it exists a rerun knows the rotation is unfinished.
    private static func installPendingKeys(in directory: URL, retired: Curve25519.Signing.PublicKey,
                                           upTo seq: Int64) throws {
        let fm = FileManager.default
        let retiredURL = directory.appendingPathComponent(AuditKeys.retiredPublicKeyFile(upTo: seq))
        if (try? Data(contentsOf: retiredURL)) != retired.rawRepresentation {
            try? fm.removeItem(at: retiredURL)
            try AuditKeys.writeNew(retiredURL, bytes: retired.rawRepresentation, mode: 0o644)
        }
        let pendingSigning = directory.appendingPathComponent(AuditKeys.signingKeyFile + AuditKeys.pendingSuffix)
        let pendingAudit = directory.appendingPathComponent(AuditKeys.auditKeyFile + AuditKeys.pendingSuffix)
        guard let signing = try? Curve25519.Signing.PrivateKey(
            rawRepresentation: try AuditKeys.readOrCreateSecret(pendingSigning, count: 32, create: false))
        else { return }
        let publicURL = directory.appendingPathComponent(AuditKeys.publicKeyFile)
        let publicTmp = publicURL.appendingPathExtension("tmp")
        try? fm.removeItem(at: publicTmp)
        try AuditKeys.writeNew(publicTmp, bytes: signing.publicKey.rawRepresentation, mode: 0o644)
        try renameReplacing(publicTmp, publicURL)
        if fm.fileExists(atPath: pendingAudit.path) {
            try renameReplacing(pendingAudit, directory.appendingPathComponent(AuditKeys.auditKeyFile))
        }
        try renameReplacing(pendingSigning, directory.appendingPathComponent(AuditKeys.signingKeyFile))
        try AuditKeys.syncDirectory(directory)
    }

    private static func renameReplacing(_ from: URL, _ to: URL) throws {
        guard rename(from.path, to.path) == 0 else { throw AuditStoreError.io("rename \(from.path)", errno) }
    }
}
