import Logging
import ServiceLifecycle
import UnixSignals

/// SIGHUP re-reads the TLS certificate and key (a renewed certificate goes live without a
/// restart, so no call is dropped). A file that does not load is logged and the old pair stays.
struct CertificateReloadService: Service {
    let certificate: ServerCertificate
    /// Made before the server starts, so a SIGHUP at any moment after is a reload, never the
    /// default action (which ends the process).
    let hangups: UnixSignalsSequence
    let logger: Logger

    func run() async throws {
        for await _ in hangups.cancelOnGracefulShutdown() {
            do {
                let material = try certificate.reload()
                logger.notice("TLS certificate reloaded on SIGHUP", metadata: ["certificate": "\(material.summary)"])
            } catch {
                logger.error("TLS certificate reload on SIGHUP failed; new connections keep the previous certificate",
                             metadata: ["error": "\(error)"])
            }
        }
    }
}
