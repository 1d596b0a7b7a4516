import Crypto
import Foundation
import HummingbirdTLS
import NIOSSL
import SwiftASN1
import Synchronization
import X509

/// The server's certificate and key: the configured PEM files, or a self-signed development
/// certificate created in the data directory at first start (production uses a real one, made
/// with the `openssl` CLI or the municipality's CA; see Docs/DEPLOYMENT.md).
public struct TLSMaterial: Sendable {
    public var certificateChain: [NIOSSLCertificate]
    public var privateKey: NIOSSLPrivateKey
    public var isSelfSigned: Bool

    /// Errors name the key and the file, so an operator knows which one to fix.
    public static func load(_ configuration: AppConfiguration) throws -> TLSMaterial {
        let server = configuration.server
        if !server.tlsCertificate.isEmpty {
            return try loadFiles(certificate: server.tlsCertificate, privateKey: server.tlsPrivateKey)
        }
        let directory = configuration.dataDirectory.appending(path: "tls")
        let (certificatePEM, keyPEM) = try DevelopmentCertificate.loadOrCreate(in: directory, host: server.host)
        return TLSMaterial(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8)),
            privateKey: try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem),
            isSelfSigned: true)
    }

    static func loadFiles(certificate: String, privateKey: String) throws(ConfigurationError) -> TLSMaterial {
        let certificateKey = "server.tlsCertificate", privateKeyKey = "server.tlsPrivateKey"
        let certificatePEM = try read(certificate, key: certificateKey)
        let keyPEM = try read(privateKey, key: privateKeyKey)
        guard let chain = try? NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8)), let leaf = chain.first else {
            throw .file(key: certificateKey, path: certificate, problem: "holds no PEM certificate")
        }
        guard let key = try? NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem) else {
            throw .file(key: privateKeyKey, path: privateKey, problem: "holds no unencrypted PEM private key")
        }
        // BoringSSL would only notice at the first handshake, which then fails for every client.
        if let leafCertificate = try? Certificate(derEncoded: leaf.toDERBytes()),
           let parsedKey = try? Certificate.PrivateKey(pemEncoded: keyPEM),
           parsedKey.publicKey != leafCertificate.publicKey {
            throw .file(key: privateKeyKey, path: privateKey, problem: "is not the key of the certificate in \(certificate)")
        }
        return TLSMaterial(certificateChain: chain, privateKey: key, isSelfSigned: false)
    }

    private static func read(_ path: String, key: String) throws(ConfigurationError) -> String {
        do { return try String(contentsOfFile: path, encoding: .utf8) } catch {
            let fm = FileManager.default
            let problem = !fm.fileExists(atPath: path) ? "does not exist"
                : !fm.isReadableFile(atPath: path) ? "is not readable by this user" : "cannot be read as text"
            throw .file(key: key, path: path, problem: problem)
        }
    }

    /// TLS 1.2 and newer only; used for HTTPS/WSS and for TURN over TLS alike.
    public var serverConfiguration: TLSConfiguration {
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: certificateChain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
        tls.minimumTLSVersion = .tlsv12
        // A closing connection waits this long for the peer's close_notify (default 5 s): on a
        // stop, a client that no longer reads (a live stream) would hold the exit that long.
        tls.shutdownTimeout = .seconds(1)
        return tls
    }

    /// A one-line description for the log: whose certificate, valid until when.
    var summary: String {
        guard let leaf = certificateChain.first, let parsed = try? Certificate(derEncoded: leaf.toDERBytes()) else {
            return "unreadable certificate"
        }
        return "\(parsed.subject), valid until \(parsed.notValidAfter)"
    }
}

/// The certificate and key every new TLS handshake presents, HTTPS/WSS and TURN over TLS alike.
/// `reload()` (on SIGHUP) swaps them in place: the listeners keep running, connections already
/// open keep the keys they agreed on, so no call is dropped.
public final class ServerCertificate: Sendable {
    private let configuration: AppConfiguration
    private let current: Mutex<TLSMaterial>
    /// What the contexts were built with; until a reload, handshakes need no override.
    private let initial: TLSMaterial

    public init(configuration: AppConfiguration) throws {
        self.configuration = configuration
        let material = try TLSMaterial.load(configuration)
        initial = material
        current = Mutex(material)
    }

    public var material: TLSMaterial { current.withLock { $0 } }

    /// Reads the files again; on any error the previous certificate stays in use.
    @discardableResult
    public func reload() throws -> TLSMaterial {
        let material = try TLSMaterial.load(configuration)
        current.withLock { $0 = material }
        return material
    }

    /// A context made from this configuration asks for the current certificate at each client
    /// hello, so one context serves across reloads.
    public var serverConfiguration: TLSConfiguration {
        var tls = initial.serverConfiguration
        tls.sslContextCallback = { [self] _, promise in
            let material = self.material
            guard material.certificateChain != initial.certificateChain else { return promise.succeed(.noChanges) }
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = material.certificateChain.map { .certificate($0) }
            override.privateKey = .privateKey(material.privateKey)
            promise.succeed(override)
        }
        return tls
    }
}

enum DevelopmentCertificate {
    static let validity: TimeInterval = 365 * 24 * 3600

    static func loadOrCreate(in directory: URL, host: String) throws -> (certificate: String, key: String) {
        let certificateURL = directory.appending(path: "dev-cert.pem")
        let keyURL = directory.appending(path: "dev-key.pem")
        if let certificate = try? String(contentsOf: certificateURL, encoding: .utf8),
           let key = try? String(contentsOf: keyURL, encoding: .utf8),
           let parsed = try? Certificate(pemEncoded: certificate),
           parsed.notValidAfter > Date().addingTimeInterval(24 * 3600) {
            return (certificate, key)
        }
        let (certificate, key) = try make(host: host, now: Date())
        let fm = FileManager.default
        try fm.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        guard fm.createFile(atPath: keyURL.path, contents: Data(key.utf8), attributes: [.posixPermissions: 0o600]),
              fm.createFile(atPath: certificateURL.path, contents: Data(certificate.utf8), attributes: [.posixPermissions: 0o644])
        else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: directory.path]) }
        return (certificate, key)
    }

    static func make(host: String, now: Date) throws -> (certificate: String, key: String) {
        let key = P256.Signing.PrivateKey()
        let certificateKey = Certificate.PrivateKey(key)
        let name = try DistinguishedName {
            OrganizationName("Samtalerum development")
            CommonName("Samtalerum dev certificate")
        }
        var names: [GeneralName] = [.dnsName("localhost"), ipName("127.0.0.1"), ipName("::1")].compactMap { $0 }
        if let extra = ipName(host) ?? (host.isEmpty || host == "0.0.0.0" || host == "::" ? nil : GeneralName.dnsName(host)),
           !names.contains(extra) {
            names.append(extra)
        }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
            try ExtendedKeyUsage([.serverAuth])
            SubjectAlternativeNames(names)
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(),
            publicKey: certificateKey.publicKey,
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(validity),
            issuer: name, subject: name, extensions: extensions, issuerPrivateKey: certificateKey)
        return (try certificate.serializeAsPEM().pemString, key.pemRepresentation)
    }

    /// An IP SAN, so browsers accept the certificate for https://127.0.0.1 and https://[::1].
    static func ipName(_ text: String) -> GeneralName? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return .ipAddress(ASN1OctetString(contentBytes: withUnsafeBytes(of: &v4) { ArraySlice($0) }))
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return .ipAddress(ASN1OctetString(contentBytes: withUnsafeBytes(of: &v6) { ArraySlice($0) }))
        }
        return nil
    }
}
