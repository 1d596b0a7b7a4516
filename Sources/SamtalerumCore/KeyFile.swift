import Foundation

/// Secrets that must live outside the database file (token, audit and TURN keys): created once,
/// readable only by the owner. Shared by every module that keeps a key in the data directory.
public enum KeyFile {
    public enum Failure: Error, CustomStringConvertible {
        case wrongSize(path: String, expected: Int, actual: Int)
        public var description: String {
            switch self {
            case .wrongSize(let path, let expected, let actual):
                "key file \(path) holds \(actual) bytes, expected \(expected); refusing to overwrite it"
            }
        }
    }

    public static func loadOrCreate(at url: URL, byteCount: Int) throws -> Data {
        let fm = FileManager.default
        if let existing = fm.contents(atPath: url.path) {
            guard existing.count == byteCount else {
                throw Failure.wrongSize(path: url.path, expected: byteCount, actual: existing.count)
            }
            return existing
        }
        try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true,
                               attributes: [.posixPermissions: 0o700])
        var generator = SystemRandomNumberGenerator()
        let bytes = Data((0..<byteCount).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
        guard fm.createFile(atPath: url.path, contents: bytes, attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
        }
        return bytes
    }
}
