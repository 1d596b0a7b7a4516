import Foundation

/// The server's data directory (mode 0700), and whether this start made it: a start that fails
/// before serving removes a directory it created, so a typo in the configuration does not leave
/// a stray directory with fresh keys behind (a later correct start would use those keys).
struct DataDirectory {
    let url: URL
    /// The outermost directory this start made (dataDir or a missing parent of it), if any.
    let created: URL?

    init(_ configuration: AppConfiguration) throws(ConfigurationError) {
        url = configuration.dataDirectory
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: url.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw .file(key: "server.dataDir", path: url.path, problem: "exists and is not a directory")
            }
            created = nil
            return
        }
        var outermost = url
        while !fm.fileExists(atPath: outermost.deletingLastPathComponent().path) { outermost.deleteLastPathComponent() }
        do {
            try fm.createDirectory(at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw .file(key: "server.dataDir", path: url.path, problem: "cannot be created (\(error.localizedDescription))")
        }
        created = outermost
    }

    func removeIfCreated() {
        guard let created else { return }
        try? FileManager.default.removeItem(at: created)
    }
}
