import Foundation

/// A signed head taken out of the data directory (`samtalerum audit anchor`), e.g. into the
/// municipality's log system every hour. Whoever controls the server can delete records, their
/// checkpoints and the head file together and, holding the signing key, even sign a new head;
/// they cannot reach back into a log they do not control. `verify --anchor` then shows that the
/// trail still contains every record an anchor names, with the same hash.
public struct HeadAnchor: Sendable, Equatable, Codable {
    public var seq: Int64
    public var hash: String
    public var signedAt: Int64
    public var signature: String
    /// The public key that checks `signature` (keys/checkpoint.pub at the time), for readers
    /// outside the server; verify uses its own key files, not this field.
    public var publicKey: String

    var checkpoint: CheckpointRow {
        CheckpointRow(seq: seq, hash: Data(hex: hash) ?? Data(), signedAt: signedAt, signature: Data(hex: signature) ?? Data())
    }

    /// One JSON object per line: the form it is logged and read back in.
    public var line: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// Every line of an anchor file that holds an anchor (other log text is skipped), oldest first.
    public static func parse(lines text: String) throws -> [HeadAnchor] {
        var anchors: [HeadAnchor] = []
        for line in text.split(whereSeparator: \.isNewline) {
            guard let start = line.firstIndex(of: "{") else { continue }
            guard let anchor = try? JSONDecoder().decode(HeadAnchor.self, from: Data(line[start...].utf8)) else {
                throw AuditStoreError.invalidQuery("not an anchor line: \(line.prefix(80))")
            }
            anchors.append(anchor)
        }
        return anchors
    }
}

extension AuditDatabase {
    /// The current signed head, for export to a place the server cannot rewrite.
    public func anchor() throws -> HeadAnchor {
        guard let head = readHead() else {
            throw AuditStoreError.io("read \(headURL.path)", ENOENT)
        }
        let c = head.checkpoint
        return HeadAnchor(seq: c.seq, hash: c.hash.hex, signedAt: c.signedAt, signature: c.signature.hex,
                          publicKey: keys.signingKey.publicKey.rawRepresentation.hex)
    }
}
