import Foundation
import NIOSSL
import PostgresNIO

/// `audit.postgresURL` (and `audit.postgresPasswordFile`) parsed: the one parser of that URL, used
/// by configuration validation and by the engine. Errors name the configuration key, never the
/// password.
public struct PostgresSettings: Sendable, Equatable {
    public static let urlKey = "audit.postgresURL"
    public static let passwordFileKey = "audit.postgresPasswordFile"

    /// libpq's names, with libpq's meaning: `prefer` (the default) tries TLS without checking the
    /// certificate and falls back to plain; `require` insists on TLS without checking; `verify-ca`
    /// checks the chain; `verify-full` also the host name (the one to use across a network).
    public enum SSLMode: String, Sendable, CaseIterable {
        case disable, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    public var database: String
    public var sslMode: SSLMode
    /// `sslrootcert=FILE`: the CA that signed the server's certificate (PEM) instead of the
    /// system's trust store, for verify-ca/verify-full against a private CA.
    public var rootCertificateFile: String?
    /// From the URL or (wins) the password file; never printed.
    var password: String?

    /// The URL without its password, for messages and logs.
    public var redacted: String {
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return "postgres://\(user)@\(hostPart):\(port)/\(database)?sslmode=\(sslMode.rawValue)"
    }

    /// `url` with the password of its user part, if any, replaced by `***`: for messages about a
    /// URL that may not even parse.
    public static func redacting(_ url: String) -> String {
        guard let scheme = url.range(of: "://") else { return url }
        let rest = url[scheme.upperBound...]
        let authorityEnd = rest.firstIndex(where: { "/?#".contains($0) }) ?? rest.endIndex
        guard let at = rest[..<authorityEnd].lastIndex(of: "@"),
              let colon = rest[..<at].firstIndex(of: ":") else { return url }
        return String(url[..<rest.index(after: colon)]) + "***" + String(url[at...])
    }

    /// Parses `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=…&sslrootcert=…]`
    /// (`postgresql://` too). Does not read the password file: see `resolved()`.
    public init(url: String) throws(PostgresSettingsError) {
        let invalid = { (why: String) in PostgresSettingsError.invalidURL(why) }
        guard let components = URLComponents(string: url) else { throw invalid("not a URL") }
        guard let scheme = components.scheme?.lowercased(), scheme == "postgres" || scheme == "postgresql" else {
            throw invalid("the scheme must be postgres:// or postgresql://")
        }
        guard let host = components.host, !host.isEmpty else { throw invalid("no host") }
        // URLComponents keeps the brackets of an IPv6 literal.
        self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        port = components.port ?? 5432
        guard (1...65535).contains(port) else { throw invalid("port \(port) is out of range") }
        guard let user = components.user.flatMap({ $0.removingPercentEncoding }), !user.isEmpty else {
            throw invalid("no user (postgres://USER@HOST/DATABASE)")
        }
        self.user = user
        password = components.password.flatMap { $0.removingPercentEncoding }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        guard let database = path.removingPercentEncoding, !database.isEmpty, !database.contains("/") else {
            throw invalid("no database (postgres://USER@HOST/DATABASE)")
        }
        self.database = database
        sslMode = .prefer
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let mode = item.value.flatMap(SSLMode.init(rawValue:)) else {
                    let known = SSLMode.allCases.map(\.rawValue).joined(separator: ", ")
                    throw invalid("sslmode must be one of \(known)")
                }
                sslMode = mode
            case "sslrootcert":
                guard let file = item.value, !file.isEmpty else { throw invalid("sslrootcert needs a file") }
                rootCertificateFile = file
            default:
                throw invalid("unknown parameter \(item.name) (sslmode and sslrootcert are understood)")
            }
        }
    }

    /// The settings with the password file read: its first line is the password and wins over one
    /// in the URL.
    public static func resolve(_ location: PostgresLocation) throws(PostgresSettingsError) -> PostgresSettings {
        var settings = try PostgresSettings(url: location.url)
        if let file = location.passwordFile {
            guard let text = try? String(contentsOf: file, encoding: .utf8) else {
                throw .unreadablePasswordFile(file.path)
            }
            let line = text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let password = line.hasSuffix("\r") ? String(line.dropLast()) : line
            guard !password.isEmpty else { throw .unreadablePasswordFile(file.path) }
            settings.password = password
        }
        return settings
    }

    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        var configuration = PostgresConnection.Configuration(host: host, port: port, username: user,
                                                             password: password, database: database,
                                                             tls: try tls())
        // No explicit TLS server name: postgres-nio sends the host as SNI unless it is an IP
        // address, and NIOSSL checks the certificate against that name, or else against the
        // address it connected to (an IP subjectAltName), for verify-full.
        configuration.options.additionalStartupParameters = [
            ("application_name", "samtalerum-audit"),
            // A node that vanishes mid-transaction (power loss, partition: no FIN reaches the
            // server) would hold the append lock until the kernel's default keepalive gives up,
            // hours later, stalling every other node's records. With these the server drops it
            // after about 25 s. (Not an idle-in-transaction timeout: a live node may compute
            // longer than that between two statements of a purge, a rotation or a verify.)
            ("tcp_keepalives_idle", "10"),
            ("tcp_keepalives_interval", "5"),
            ("tcp_keepalives_count", "3"),
        ]
        return configuration
    }

    private func tls() throws -> PostgresConnection.Configuration.TLS {
        var tls = TLSConfiguration.makeClientConfiguration()
        switch sslMode {
        case .disable: return .disable
        case .prefer, .require: tls.certificateVerification = .none
        case .verifyCA: tls.certificateVerification = .noHostnameVerification
        case .verifyFull: tls.certificateVerification = .fullVerification
        }
        if let rootCertificateFile { tls.trustRoots = .file(rootCertificateFile) }
        let context = try NIOSSLContext(configuration: tls)
        return sslMode == .prefer ? .prefer(context) : .require(context)
    }

    /// The `PG*` environment of libpq tools (pg_dump): the password travels in the environment,
    /// never on a command line other users can read.
    var libpqEnvironment: [String: String] {
        var environment = ["PGHOST": host, "PGPORT": String(port), "PGUSER": user, "PGDATABASE": database,
                           "PGSSLMODE": sslMode.rawValue, "PGAPPNAME": "samtalerum-audit-backup"]
        if let password { environment["PGPASSWORD"] = password }
        if let rootCertificateFile { environment["PGSSLROOTCERT"] = rootCertificateFile }
        return environment
    }
}

public enum PostgresSettingsError: Error, Equatable, CustomStringConvertible {
    case invalidURL(String)
    case unreadablePasswordFile(String)

    /// What is wrong, without the key's name.
    public var reason: String {
        switch self {
        case .invalidURL(let why): why
        case .unreadablePasswordFile(let path): "\(path) cannot be read or is empty"
        }
    }

    public var description: String {
        switch self {
        case .invalidURL(let why): "\(PostgresSettings.urlKey) is invalid: \(why)"
        case .unreadablePasswordFile(let path):
            "\(PostgresSettings.passwordFileKey) \(path) cannot be read or is empty"
        }
    }
}
