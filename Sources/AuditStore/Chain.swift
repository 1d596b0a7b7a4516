import Crypto
import Foundation
import SamtalerumCore

/// The hash chain: each record stores SHA-256(previous hash || canonical bytes of itself).
/// Sealed references are outside the hash (their AEAD tag binds them to the hashed pseudonym),
/// so the sealing key can be rotated without rewriting history.
enum Chain {
    static let genesis = Data(repeating: 0, count: 32)

    static func canonicalBytes(_ row: EventRow) -> Data {
        var out = Data("samtalerum.audit.v1".utf8)
        out.appendBigEndian(UInt64(bitPattern: row.seq))
        out.appendBigEndian(UInt64(bitPattern: row.at))
        out.appendField(Data(row.kind.utf8))
        out.appendField(row.meetingId.map { Data($0.utf8) })
        out.appendField(row.sessionId.map { Data($0.utf8) })
        out.appendField(row.actorPseudonym)
        out.appendField(row.subjectPseudonym)
        out.appendField(Data(row.detail.utf8))
        return out
    }

    static func hash(previous: Data, row: EventRow) -> Data {
        var hasher = SHA256()
        hasher.update(data: previous)
        hasher.update(data: canonicalBytes(row))
        return Data(hasher.finalize())
    }

    static func checkpointMessage(seq: Int64, hash: Data, signedAt: Int64) -> Data {
        var out = Data("samtalerum.checkpoint.v1".utf8)
        out.appendBigEndian(UInt64(bitPattern: seq))
        out.appendBigEndian(UInt64(bitPattern: signedAt))
        out.append(hash)
        return out
    }

    /// Binds the lookup_subject rows of one look-up to its chained record. Pseudonyms are fixed
    /// 32-byte HMACs, sorted, so concatenation is unambiguous.
    static func lookupSubjectsDigest(_ sortedPseudonyms: [Data]) -> String {
        var hasher = SHA256()
        hasher.update(data: Data("samtalerum.lookup-subjects.v1".utf8))
        for pseudonym in sortedPseudonyms { hasher.update(data: pseudonym) }
        return Data(hasher.finalize()).hex
    }

    /// Compact JSON with sorted keys. Hand-written because it runs once per record and Foundation's
    /// serializer dominated the write path; the stored text, not a re-encoding, is what gets hashed.
    static func detailJSON(_ detail: [String: any Sendable]) throws -> String {
        var out = ""
        try writeJSON(detail, into: &out)
        return out
    }

    private static func writeJSON(_ value: Any, into out: inout String) throws {
        switch value {
        case let text as String: writeJSONString(text, into: &out)
        case let flag as Bool: out += flag ? "true" : "false"
        case let number as Int: out += String(number)
        case let number as Int64: out += String(number)
        case let object as [String: any Sendable]: try writeJSONObject(object, into: &out)
        case let object as [String: String]: try writeJSONObject(object, into: &out)
        case let list as [[String: String]]:
            out += "["
            for (i, item) in list.enumerated() {
                if i > 0 { out += "," }
                try writeJSONObject(item, into: &out)
            }
            out += "]"
        default: throw AuditStoreError.invalidQuery("unsupported detail value \(type(of: value))")
        }
    }

    private static func writeJSONObject(_ object: [String: some Any], into out: inout String) throws {
        out += "{"
        for (i, key) in object.keys.sorted().enumerated() {
            if i > 0 { out += "," }
            writeJSONString(key, into: &out)
            out += ":"
            if let value = object[key] { try writeJSON(value, into: &out) }
        }
        out += "}"
    }

    private static func writeJSONString(_ text: String, into out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += "\\u00" + String(scalar.value >> 4, radix: 16) + String(scalar.value & 0xF, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}

/// A signed copy of the newest (seq, hash), kept in `DATA/audit.head` outside SQLite so that
/// deleting the newest records *and* their checkpoints is still noticed.
struct SignedHead: Equatable {
    var checkpoint: CheckpointRow

    static let size = 8 + 8 + 32 + 64

    var bytes: Data {
        var out = Data()
        out.appendBigEndian(UInt64(bitPattern: checkpoint.seq))
        out.appendBigEndian(UInt64(bitPattern: checkpoint.signedAt))
        out.append(checkpoint.hash)
        out.append(checkpoint.signature)
        return out
    }

    init(checkpoint: CheckpointRow) { self.checkpoint = checkpoint }

    init?(bytes: Data) {
        let b = Data(bytes)
        guard b.count == Self.size else { return nil }
        let seq = Int64(bitPattern: b.readBigEndian(at: 0))
        let signedAt = Int64(bitPattern: b.readBigEndian(at: 8))
        checkpoint = CheckpointRow(seq: seq, hash: b.subdata(in: 16..<48), signedAt: signedAt,
                                   signature: b.subdata(in: 48..<112))
    }
}

extension AuditDatabase {
    /// Runs `body` in one write transaction (serialised with every other append, on every node),
    /// then publishes the signed head. Everything that appends to the chain goes through here (or
    /// its sync twin).
    @discardableResult
    func appendCommitted<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        try await engine.write({ db in (try body(db), try self.lastRecord(db)) },
                               afterCommit: { self.publishHeadAfterCommit($0.1) }).0
    }

    @discardableResult
    func appendCommittedSync<T>(_ body: (any SQLSession) throws -> T) throws -> T {
        try engine.writeSync({ db in (try body(db), try lastRecord(db)) },
                             afterCommit: { publishHeadAfterCommit($0.1) }).0
    }

    /// Still on the writer, after the commit: the head file can lag the database (crash here) but
    /// never run ahead of it. A failure is logged, not thrown: the records are durable.
    private func publishHeadAfterCommit(_ head: ChainRecord?) {
        guard let head else { return }
        do {
            try publishHead(seq: head.seq, hash: head.hash, at: head.at)
        } catch {
            logger.error("could not write the signed head file", metadata: ["error": "\(error)"])
        }
    }

    func lastRecord(_ db: any SQLSession) throws -> ChainRecord? {
        guard let row = try db.fetchOne("SELECT seq, hash, at FROM audit_event ORDER BY seq DESC LIMIT 1") else { return nil }
        return ChainRecord(seq: try row[0], hash: try row[1], at: try row[2])
    }

    /// The newest record, or after a purge of everything the anchor checkpoint, or genesis.
    func chainTip(_ db: any SQLSession) throws -> (seq: Int64, hash: Data) {
        if let last = try lastRecord(db) { return (last.seq, last.hash) }
        if let anchor = try db.fetchOne(CheckpointRow.self, CheckpointRow.selectAll + " ORDER BY seq DESC LIMIT 1") {
            return (anchor.seq, anchor.hash)
        }
        return (0, Chain.genesis)
    }

    @discardableResult
    func appendEvent(_ db: any SQLSession, kind: String, at: Int64, meeting: String?, session: String?,
                     actor: StoredRef?, subject: StoredRef?, detail: [String: any Sendable],
                     purpose: StoredRef? = nil) throws -> EventRow {
        let tip = try chainTip(db)
        var detail = detail
        if let purpose { detail[Self.purposeMacKey] = purpose.pseudonym.hex }
        var row = EventRow(seq: tip.seq + 1, at: at, kind: kind, meetingId: meeting, sessionId: session,
                           actorPseudonym: actor?.pseudonym, actorSealed: actor?.sealed,
                           subjectPseudonym: subject?.pseudonym, subjectSealed: subject?.sealed,
                           detail: try Chain.detailJSON(detail), prevHash: tip.hash, hash: Data(),
                           purposeSealed: purpose?.sealed)
        row.hash = Chain.hash(previous: tip.hash, row: row)
        try row.insert(db)
        if row.seq % checkpointInterval == 0 {
            try insertCheckpoint(db, seq: row.seq, hash: row.hash, at: at)
        }
        return row
    }

    func signedCheckpoint(seq: Int64, hash: Data, at: Int64) throws -> CheckpointRow {
        let signature = try keys.signingKey.signature(for: Chain.checkpointMessage(seq: seq, hash: hash, signedAt: at))
        return CheckpointRow(seq: seq, hash: hash, signedAt: at, signature: Data(signature))
    }

    func insertCheckpoint(_ db: any SQLSession, seq: Int64, hash: Data, at: Int64) throws {
        try signedCheckpoint(seq: seq, hash: hash, at: at).insert(db, orIgnore: true)
    }

    func publishHead(seq: Int64, hash: Data, at: Int64) throws {
        let head = SignedHead(checkpoint: try signedCheckpoint(seq: seq, hash: hash, at: at))
        let tmp = dataDirectory.appendingPathComponent(Self.headFileName + ".tmp")
        try head.bytes.write(to: tmp)
        guard rename(tmp.path, headURL.path) == 0 else { throw AuditStoreError.io("rename \(tmp.path)", errno) }
    }

    func readHead() -> SignedHead? {
        guard let data = try? Data(contentsOf: headURL) else { return nil }
        return SignedHead(bytes: data)
    }

    /// Evidence files of incidents found at start (a head that contradicted the database, or no
    /// head although the trail had history); verify fails while any exists.
    func conflictHeadFiles() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dataDirectory.path)) ?? []
        return names.filter { $0.hasPrefix(Self.headFileName + ".conflict-") || $0.hasPrefix(Self.missingHeadPrefix) }.sorted()
    }

    /// At start: a head ahead of (or different from) the database means records were removed
    /// while the server was down. Keep that head as evidence, then carry on from the database.
    /// A new, empty trail gets a head for the empty chain at once, so from then on a missing head
    /// file is never normal: with history, it means the newest records may have gone with it.
    func reconcileHead() throws {
        try appendCommittedSync { db in
            guard let head = self.readHead() else {
                let hasHistory = try self.lastRecord(db) != nil
                    || db.scalar("SELECT 1 FROM checkpoint LIMIT 1", as: Int64.self) != nil
                if !hasHistory {
                    try self.publishHead(seq: 0, hash: Chain.genesis, at: Date().auditMilliseconds)
                    return
                }
                if case .postgres = self.backend, !self.dataDirectoryUsedBefore {
                    // A node joining a shared trail (its data directory never held a store) has no
                    // head of its own yet. The heads of the nodes that wrote the trail still name
                    // their newest records; this one starts at the tip (published after this
                    // transaction). A used directory that lost its head is an incident as on SQLite.
                    self.logger.notice("no signed head file in this data directory; starting one at the shared trail's tip")
                    return
                }
                let evidence = self.dataDirectory.appendingPathComponent(
                    "\(Self.missingHeadPrefix)\(Int(Date().timeIntervalSince1970))")
                try AuditKeys.writeNew(evidence, bytes: Data("the signed head file was missing or unreadable at start\n".utf8),
                                       mode: 0o600)
                self.logger.critical("audit head file is missing although the trail has history; records may have been removed",
                                     metadata: ["evidence": "\(evidence.lastPathComponent)"])
                return
            }
            let stored = try db.scalar("SELECT hash FROM audit_event WHERE seq = ?", [head.checkpoint.seq], as: Data.self)
            let first = try db.scalar("SELECT MIN(seq) FROM audit_event", as: Int64.self)
            let purged = first.map { head.checkpoint.seq < $0 } ?? false
            if stored == head.checkpoint.hash || purged { return }
            let aside = self.dataDirectory.appendingPathComponent(
                "\(Self.headFileName).conflict-\(Int(Date().timeIntervalSince1970))")
            _ = rename(self.headURL.path, aside.path)
            self.logger.critical("audit head does not match the database; records may have been removed",
                                 metadata: ["head": "\(head.checkpoint.seq)", "evidence": "\(aside.lastPathComponent)"])
        }
    }
}

/// The newest record's place in the chain, as the signed head names it.
struct ChainRecord: Sendable {
    var seq: Int64
    var hash: Data
    var at: Int64
}

extension Data {
    mutating func appendBigEndian(_ value: UInt64) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }

    /// 0xFF marks NULL; otherwise a 4-byte length then the bytes, so no two field lists collide.
    mutating func appendField(_ value: Data?) {
        guard let value else { append(0xFF); return }
        append(0x00)
        Swift.withUnsafeBytes(of: UInt32(value.count).bigEndian) { append(contentsOf: $0) }
        append(value)
    }

    func readBigEndian(at offset: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<8 { value = value << 8 | UInt64(self[startIndex + offset + i]) }
        return value
    }
}
