import AuditStore
import ConnectionLimits
import Foundation
import Hummingbird
import HummingbirdTLS
import HummingbirdWebSocket
import Identity
import Logging
import NIOSSL
import SamtalerumCore
import ServiceLifecycle
import Signalling
import SignallingProtocol
import TURN
import UnixSignals

/// Assembles the whole server: HTTPS + WSS on one port, the audit store, and the services.
public func buildApplication(
    configuration: AppConfiguration,
    clock: WallClock = .system,
    onServerRunning: @escaping @Sendable (_ port: Int) async -> Void = { _ in },
    onRelayRunning: @escaping @Sendable (TURNRelayService.BoundPorts) -> Void = { _ in }
) async throws -> some ApplicationProtocol {
    try await buildServer(configuration: configuration, clock: clock, onServerRunning: onServerRunning,
                          onRelayRunning: onRelayRunning).application
}

/// The application plus what must happen before its HTTP server stops: on SIGTERM/SIGINT the
/// signalling side ends every session as `server_shutdown` and closes clients with 1001 first.
public struct SamtalerumServer: Sendable {
    public let application: Application<RouterResponder<ClientAddressContext>>
    let registry: RoomRegistry
    let logger: Logger

    /// Long enough for clients to hear the close; short enough for a service manager's stop.
    static let shutdownLimit: Duration = .seconds(10)

    public func run() async throws {
        var configuration = ServiceGroupConfiguration(
            services: [.init(service: application), .init(service: SignallingShutdownService(registry: registry))],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        configuration.maximumGracefulShutdownDuration = Self.shutdownLimit
        try await ServiceGroup(configuration: configuration).run()
    }
}

public func buildServer(
    configuration: AppConfiguration,
    clock: WallClock = .system,
    onServerRunning: @escaping @Sendable (_ port: Int) async -> Void = { _ in },
    onRelayRunning: @escaping @Sendable (TURNRelayService.BoundPorts) -> Void = { _ in }
) async throws -> SamtalerumServer {
    MetricsExporter.bootstrap()
    var logger = Logger(label: "samtalerum")
    logger.logLevel = configuration.logLevel
    let nodeName = configuration.nodeName
    logger[metadataKey: "node"] = "\(nodeName)"

    // Everything that can be checked without writing is checked first; a start that fails
    // after that removes the data directory it created, so no keys of a server that never ran remain.
    try configuration.validate()
    let openFiles = DescriptorBudget.raiseOpenFileLimit()
    let caps = ConnectionCaps(configuration: configuration, openFileLimit: openFiles.after)
    caps.log(limit: openFiles, logger: logger)
    let externalIdentity = try configuration.externalIdentityProvider()
    try await ListenerPreflight.check(configuration)
    let dataDirectory = try DataDirectory(configuration)
    var started = false
    defer { if !started { dataDirectory.removeIfCreated() } }
    let certificate = try ServerCertificate(configuration: configuration)
    let hangups = await UnixSignalsSequence(trapping: .sighup)
    let audit = try AuditDatabase.open(dataDirectory: dataDirectory.url, backend: configuration.auditBackend, clock: clock,
                                       node: nodeName, logger: logger)
    let recorder = ObservedAuditRecorder(store: audit, logger: logger, node: nodeName)
    let authority = try await TokenAuthority(dataDirectory: dataDirectory.url, external: externalIdentity, clock: clock)

    // First in the list, so it is shut down last: every other service may still record.
    var services: [any Service] = [
        AuditStoreService(audit: audit, logger: logger),
        AuditRetentionService(database: audit, retention: .seconds(configuration.audit.retentionDays * 86_400),
                              clock: ContinuousClock(), wallClock: clock, logger: logger),
        CertificateReloadService(certificate: certificate, hangups: hangups, logger: logger),
    ]
    var relay: TURNRelayService?
    // The list of relay nodes needs the shared secret even when this node runs no relay itself.
    let relayCredentials = configuration.turn.enabled || !configuration.turn.relays.isEmpty
        ? try RelayCredentials(configuration: configuration) : nil
    let relays = relayCredentials.map { RelayDirectory(configuration: configuration, credentials: $0) }
    if configuration.turn.enabled, let credentials = relayCredentials {
        var relayConfiguration = try configuration.turnConfiguration(secret: credentials.secret, certificate: certificate)
        relayConfiguration.maxStreamConnections = caps.turnStreams
        relayConfiguration.maxAllocations = caps.relayAllocations
        let service = TURNRelayService(configuration: relayConfiguration, logger: logger)
        services += [service, RelayAnnouncer(relay: service, credentials: credentials, logger: logger, announce: onRelayRunning)]
        relay = service
    }
    if let relays, !relays.nodes.isEmpty {
        services.append(RelayStatusMonitor(directory: relays, interval: .seconds(configuration.turn.relayStatusIntervalSeconds),
                                           timeout: .seconds(configuration.turn.relayStatusTimeoutSeconds), logger: logger))
    }
    let iceServers: IceServerProvider = { endpoint, _ in
        relays?.iceServers(id: endpoint.rawValue, client: RelayClientAddress.current, now: clock.now()) ?? []
    }

    if configuration.server.httpRedirectPort > 0 {
        services.append(HTTPRedirect.application(
            host: configuration.server.host, port: configuration.server.httpRedirectPort,
            baseURL: configuration.publicBaseURL,
            gate: ConnectionGuard(
                limiter: ConnectionLimiter(listener: "http-redirect", maxConnections: caps.httpRedirect,
                                           maxPerAddress: configuration.server.maxConnectionsPerAddress, logger: logger),
                tls: nil, firstRequestTimeout: .seconds(Int64(configuration.server.handshakeTimeoutSeconds))),
            idleTimeout: .seconds(Int64(configuration.server.idleTimeoutSeconds)), logger: logger))
    }
    let signalling = configuration.signalling
    let registry = RoomRegistry(
        directory: audit, recorder: recorder, iceServers: iceServers,
        releaseRelay: { [relay] endpoints in
            relay?.releaseAllocations(credentialIDs: Set(endpoints.map(\.rawValue)))
            relays?.forget(endpoints)
        },
        tokens: authority, node: nodeName,
        policy: RoomPolicy(autoAdmit: signalling.autoAdmit, graceSeconds: TimeInterval(signalling.resumeGraceSeconds)),
        clock: clock, logger: logger)
    services.append(RoomSweeper(registry: registry))
    services.append(NodeLivenessService(
        database: audit, node: nodeName,
        silence: RoomPolicy(graceSeconds: TimeInterval(signalling.resumeGraceSeconds)).handoverSilence,
        clock: ContinuousClock(), wallClock: clock, logger: logger))
    let endpoint = SignallingEndpoint(
        registry: registry, authority: authority,
        settings: EndpointSettings(helloTimeout: .milliseconds(Int(signalling.helloTimeoutSeconds * 1000)),
                                   pingInterval: signalling.pingIntervalSeconds, resumeGraceSeconds: signalling.resumeGraceSeconds),
        logger: logger)

    let router = Router(context: ClientAddressContext.self)
    let proxies = try TrustedProxies.parse(configuration.server.trustedProxies).get()
    router.add(middleware: ForwardedClientMiddleware(proxies: proxies, publicBaseURL: configuration.publicBaseURL))
    router.add(middleware: HTTPMetricsMiddleware())
    router.add(middleware: ServerErrorMiddleware(logger: logger))
    router.add(middleware: WebAssetsMiddleware(web: try WebAssets.bundled()))
    let sessions = StaffSessions(clock: clock)
    let signIn = try configuration.signInClient()
    let authenticator = BearerAuthenticator(authority: authority, sessions: signIn == nil ? nil : sessions)
    router.addRoutes(SignInController(client: signIn, sessions: sessions, authority: authority, logger: logger).routes,
                     atPath: "/auth")
    router.addRoutes(MeetingsController(
        authenticator: authenticator, authority: authority, recorder: recorder, directory: audit,
        calendar: audit, registry: registry,
        publicBaseURL: configuration.publicBaseURL,
        inviteTTL: TimeInterval(configuration.signalling.inviteTTLSeconds), clock: clock
    ).routes, atPath: "/api")
    router.addRoutes(HealthController(registry: registry, recorder: recorder, node: nodeName).routes, atPath: "/health")
    OpsController(authenticator: authenticator, registry: registry, relay: relay, relays: relays, clock: clock,
                  iceCheckGate: IceCheckGate(authority: authority))
        .addRoutes(api: router.group("api"), root: router)
    router.addRoutes(AuditController(authenticator: authenticator, store: audit, clock: clock).routes, atPath: "/api/audit")


    let webSocket = WebSocketServerConfiguration(
        maxFrameSize: SignallingRoute.maxMessageBytes,
        // The signalling endpoint enforces the documented silence rule itself (Docs/PROTOCOL.md,
        // "Limits"); the library's ping timeout would close with 1001, which means shutdown.
        autoPing: .disabled,
        validateUTF8: true)
    if configuration.server.plainHTTPPort > 0 {
        // For a load balancer that terminates TLS: the same routes, unencrypted, on loopback unless
        // allowed off it. No per-address cap: every connection comes from the balancer.
        services.append(Application(
            router: router,
            server: ConnectionGuard(
                limiter: ConnectionLimiter(listener: "plain-http", maxConnections: caps.https, maxPerAddress: 0, logger: logger),
                tls: nil, firstRequestTimeout: .seconds(Int64(configuration.server.handshakeTimeoutSeconds))
            ).serverBuilder { responder in
                HTTP1WebSocketUpgradeChannel(
                    responder: responder,
                    configuration: .init(http1: .init(idleTimeout: .seconds(Int64(configuration.server.idleTimeoutSeconds))), ws: webSocket),
                    shouldUpgrade: SignallingRoute.shouldUpgrade(endpoint: endpoint, proxies: proxies))
            },
            configuration: .init(address: .hostname(configuration.server.plainHTTPHost, port: configuration.server.plainHTTPPort),
                                 serverName: "Samtalerum"),
            logger: { var quiet = logger; quiet.logLevel = max(quiet.logLevel, .debug); return quiet }()))
    }
    let app = Application(
        router: router,
        server: ConnectionGuard(
            limiter: ConnectionLimiter(listener: "https", maxConnections: caps.https,
                                       maxPerAddress: configuration.server.maxConnectionsPerAddress, logger: logger),
            tls: try NIOSSLContext(configuration: certificate.serverConfiguration),
            firstRequestTimeout: .seconds(Int64(configuration.server.handshakeTimeoutSeconds))
        ).serverBuilder { responder in
            HTTP1WebSocketUpgradeChannel(
                responder: responder,
                configuration: .init(http1: .init(idleTimeout: .seconds(Int64(configuration.server.idleTimeoutSeconds))), ws: webSocket),
                shouldUpgrade: SignallingRoute.shouldUpgrade(endpoint: endpoint, proxies: proxies))
        },
        configuration: .init(address: .hostname(configuration.server.host, port: configuration.server.port),
                             serverName: "Samtalerum"),
        services: services,
        onServerRunning: { channel in
            await onServerRunning(channel.localAddress?.port ?? configuration.server.port)
        },
        // The WebSocket library logs the first bytes of every frame at trace, chat included:
        // the HTTP/WebSocket server's logger never goes below debug, so no frame content is logged.
        logger: { var quiet = logger; quiet.logLevel = max(quiet.logLevel, .debug); return quiet }())
    started = true
    return SamtalerumServer(application: app, registry: registry, logger: logger)
}

extension AppConfiguration {
    /// The IdP sign-in for staff pages, when `identity.signInClientID` is set.
    func signInClient() throws -> OIDCClient? {
        guard !identity.signInClientID.isEmpty else { return nil }
        guard !identity.externalIssuer.isEmpty else {
            throw ConfigurationError.invalid("identity.signInClientID needs externalIssuer (and its JWKS file)")
        }
        var secret: String?
        if !identity.signInClientSecretFile.isEmpty {
            do {
                secret = try String(contentsOfFile: identity.signInClientSecretFile, encoding: .utf8)
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            } catch {
                throw ConfigurationError.unreadable(identity.signInClientSecretFile, error.localizedDescription)
            }
        }
        do {
            return try OIDCClient(settings: OIDCSettings(
                issuer: identity.externalIssuer, clientID: identity.signInClientID, clientSecret: secret,
                publicBaseURL: publicBaseURL, sessionTTL: TimeInterval(identity.sessionTTLSeconds)))
        } catch {
            throw ConfigurationError.invalid("\(error)")
        }
    }

    func externalIdentityProvider() throws -> ExternalIdentityProvider? {
        guard !identity.externalIssuer.isEmpty else { return nil }
        guard !identity.externalJWKSFile.isEmpty, !identity.externalAudience.isEmpty else {
            throw ConfigurationError.invalid("identity.externalIssuer needs externalAudience and externalJWKSFile")
        }
        let jwks: String
        do { jwks = try String(contentsOfFile: identity.externalJWKSFile, encoding: .utf8) } catch {
            throw ConfigurationError.unreadable(identity.externalJWKSFile, error.localizedDescription)
        }
        var mapping: [String: Role] = [:]
        for (external, local) in identity.externalRoleMapping {
            let role = Role(rawValue: local)
            guard Role.staff.contains(role) else {
                throw ConfigurationError.invalid("identity.externalRoleMapping maps '\(external)' to unknown role '\(local)'")
            }
            mapping[external] = role
        }
        return ExternalIdentityProvider(issuer: identity.externalIssuer, audience: identity.externalAudience,
                                        jwksJSON: jwks, roleMapping: mapping)
    }
}

/// Ends the places of participants who did not come back within the grace period.
struct RoomSweeper: Service {
    let registry: RoomRegistry
    var interval: Duration = .seconds(1)

    func run() async throws {
        while !Task.isShuttingDownGracefully {
            try await Task.sleep(for: interval)
            await registry.expire()
        }
    }
}

/// On an orderly stop, sessions end as `server_shutdown` and clients hear 1001 before the
/// HTTP server goes away (it runs in a group beside the application, so it stops first).
struct SignallingShutdownService: Service {
    let registry: RoomRegistry

    func run() async throws {
        try? await gracefulShutdown()
        await registry.shutdown()
    }
}

/// Closes the audit store on an orderly stop, after everything that records into it.
struct AuditStoreService: Service {
    let audit: AuditDatabase
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        do { try audit.shutDown() } catch {
            logger.error("closing the audit store failed", metadata: ["error": "\(error)"])
        }
    }
}
