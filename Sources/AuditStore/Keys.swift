import Crypto
import Foundation

/// The secrets that make the database file meaningless on its own. They live in `DATA/keys/`,
/// never inside SQLite, so a copied or leaked `audit.sqlite` shows neither who met whom nor
/// lets anyone forge a checkpoint.
struct AuditKeys: Sendable {
    /// HMAC key for lookup pseudonyms. Rotating it changes every pseudonym (see Docs/GDPR.md).
    let pseudonymKey: SymmetricKey
    /// AEAD key for the recoverable copy of each reference, shown only to authorised auditors.
    let sealingKey: SymmetricKey
    /// Signs checkpoints and the head file, so a rewritten chain cannot be re-signed.
    let signingKey: Curve25519.Signing.PrivateKey
    /// Public halves of signing keys retired by `rotate-keys`, by the last record each may sign
    /// (the rotation record): old checkpoints stay verifiable, and a leaked old key cannot
    /// vouch for anything newer.
    let retiredPublicKeys: [Int64: Curve25519.Signing.PublicKey]

    static let auditKeyFile = "audit.key"
    static let signingKeyFile = "checkpoint.ed25519"
    static let publicKeyFile = "checkpoint.pub"
    static let pendingSuffix = ".new"

    /// `checkpoint-<last record it signs>.pub`: a signing key retired by a rotation.
    static func retiredPublicKeyFile(upTo seq: Int64) -> String { "checkpoint-\(seq).pub" }
    /// First byte of every sealed blob, so a future key generation can be told apart.
    static let sealVersion: UInt8 = 1
    /// What an Art. 17 erasure leaves in place of a sealed reference.
    static let erased = Data([0])

    /// `create: false` never invents keys: read-only inspection, or a database with history that
    /// fresh keys could not open (a lost key must be restored, not silently replaced).
    static func loadOrCreate(in directory: URL, create: Bool = true) throws -> AuditKeys {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let auditKey = try readOrCreateSecret(directory.appendingPathComponent(auditKeyFile), count: 64, create: create)
        let signing = try readOrCreateSecret(directory.appendingPathComponent(signingKeyFile), count: 32, create: create)
        let signingKey = try Curve25519.Signing.PrivateKey(rawRepresentation: signing)
        // The public half lets an external verifier check checkpoints without any secret.
        let publicURL = directory.appendingPathComponent(publicKeyFile)
        if !FileManager.default.fileExists(atPath: publicURL.path) {
            try writeNew(publicURL, bytes: signingKey.publicKey.rawRepresentation, mode: 0o644)
        }
        return AuditKeys(pseudonymKey: SymmetricKey(data: auditKey.prefix(32)),
                         sealingKey: SymmetricKey(data: auditKey.suffix(32)),
                         signingKey: signingKey, retiredPublicKeys: try loadRetiredPublicKeys(in: directory))
    }

    static func loadRetiredPublicKeys(in directory: URL) throws -> [Int64: Curve25519.Signing.PublicKey] {
        var keys: [Int64: Curve25519.Signing.PublicKey] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path)
        where name.hasPrefix("checkpoint-") && name.hasSuffix(".pub") {
            guard let seq = Int64(name.dropFirst("checkpoint-".count).dropLast(".pub".count)) else { continue }
            let url = directory.appendingPathComponent(name)
            do {
                keys[seq] = try Curve25519.Signing.PublicKey(rawRepresentation: try Data(contentsOf: url))
            } catch {
                throw AuditStoreError.corruptKeyFile(url.path)
            }
        }
        return keys
    }

    /// Signed by the current key, or by a retired key that was still in force at that record.
    func isSigned(_ checkpoint: CheckpointRow) -> Bool {
        let message = Chain.checkpointMessage(seq: checkpoint.seq, hash: checkpoint.hash, signedAt: checkpoint.signedAt)
        if signingKey.publicKey.isValidSignature(checkpoint.signature, for: message) { return true }
        return retiredPublicKeys.contains { upTo, key in
            checkpoint.seq <= upTo && key.isValidSignature(checkpoint.signature, for: message)
        }
    }

    func pseudonym(_ ref: SubjectRefBytes) -> Data {
        var mac = HMAC<SHA256>(key: pseudonymKey)
        mac.update(data: Data("samtalerum.subject.v1\u{0}".utf8))
        mac.update(data: ref.bytes)
        return Data(mac.finalize())
    }

    /// A look-up's purpose, keyed like a pseudonym: the chain holds this, the record a sealed copy.
    func purposeMac(_ purpose: String) -> Data {
        var mac = HMAC<SHA256>(key: pseudonymKey)
        mac.update(data: Data("samtalerum.purpose.v1\u{0}".utf8))
        mac.update(data: Data(purpose.utf8))
        return Data(mac.finalize())
    }

    /// The pseudonym is authenticated data, so a sealed reference moved to another row's
    /// pseudonym no longer opens.
    func seal(_ ref: SubjectRefBytes, pseudonym: Data) throws -> Data {
        let box = try ChaChaPoly.seal(ref.bytes, using: sealingKey, authenticating: pseudonym)
        return Data([Self.sealVersion]) + box.combined
    }

    func open(_ sealed: Data, pseudonym: Data) throws -> String {
        guard sealed.first == Self.sealVersion else { throw AuditStoreError.unreadableReference }
        let box = try ChaChaPoly.SealedBox(combined: sealed.dropFirst())
        let plain = try ChaChaPoly.open(box, using: sealingKey, authenticating: pseudonym)
        guard let text = String(validating: plain, as: UTF8.self) else { throw AuditStoreError.unreadableReference }
        return text
    }

    static func readOrCreateSecret(_ url: URL, count: Int, create: Bool) throws -> Data {
        if FileManager.default.fileExists(atPath: url.path) {
            let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
            if let mode = attributes[.posixPermissions] as? NSNumber, mode.intValue & 0o077 != 0 {
                throw AuditStoreError.insecureKeyFile(url.path)
            }
            let data = try Data(contentsOf: url)
            guard data.count == count else { throw AuditStoreError.corruptKeyFile(url.path) }
            return data
        }
        guard create else { throw AuditStoreError.missingKeys(url.path) }
        let secret = SymmetricKey(size: SymmetricKeySize(bitCount: count * 8)).withUnsafeBytes { Data($0) }
        try writeNew(url, bytes: secret, mode: 0o600)
        return secret
    }

    /// O_EXCL + the final mode at creation: the secret is never readable by others, not even
    /// briefly, and two processes racing at first start cannot both create a key.
    static func writeNew(_ url: URL, bytes: Data, mode: mode_t) throws {
        let fd = Foundation.open(url.path, O_WRONLY | O_CREAT | O_EXCL, mode)
        guard fd >= 0 else { throw AuditStoreError.io("create \(url.path)", errno) }
        defer { close(fd) }
        try bytes.withUnsafeBytes { raw in
            guard raw.count > 0 else { return }
            guard let base = raw.baseAddress, write(fd, base, raw.count) == raw.count else {
                throw AuditStoreError.io("write \(url.path)", errno)
            }
        }
        guard fsync(fd) == 0 else { throw AuditStoreError.io("fsync \(url.path)", errno) }
        try syncDirectory(url.deletingLastPathComponent())
    }

    static func syncDirectory(_ url: URL) throws {
        let fd = Foundation.open(url.path, O_RDONLY)
        guard fd >= 0 else { throw AuditStoreError.io("open \(url.path)", errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw AuditStoreError.io("fsync \(url.path)", errno) }
    }
}

/// UTF-8 bytes of a reference, named so the HMAC/seal call sites read clearly.
struct SubjectRefBytes {
    let bytes: Data
    init(_ raw: String) { bytes = Data(raw.utf8) }
}
