// swift-tools-version:6.2
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "Samtalerum",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "samtalerum", targets: ["samtalerum"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    ],
    targets: [
        // Shared domain vocabulary: identifiers, roles, end reasons, the session recorder contract.
        .target(name: "SamtalerumCore", swiftSettings: strict),
        // Runs a connection's Swift tasks on the NIO event loop that owns its socket.
        .target(
            name: "EventLoopExecutor",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict
        ),
        // The Linux calls (epoll, eventfd, recvmmsg) of the relay's UDP poller.
        .target(name: "CRelayIO"),
        // Pure STUN/TURN wire format: no networking, no I/O.
        .target(
            name: "STUN",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        // TURN relay: allocation state (pure) and the NIO listeners that drive it.
        .target(
            name: "TURN",
            dependencies: [
                "STUN", "CRelayIO", "ConnectionLimits",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // Connection caps per listener and per client address, and the open-file budget they share.
        .target(
            name: "ConnectionLimits",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        // Signalling protocol v1: the JSON wire types only.
        .target(name: "SignallingProtocol", dependencies: ["SamtalerumCore"], swiftSettings: strict),
        // Call quality: per-direction scores from client statistics (pure; Docs/QUALITY.md).
        .target(name: "CallQuality", dependencies: ["SamtalerumCore"], swiftSettings: strict),
        // Tokens and roles: worker/ops/auditor bearer tokens, citizen invites.
        .target(
            name: "Identity",
            dependencies: [
                "SamtalerumCore",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        // Closed rooms: the room state machine and the registry that pairs endpoints.
        .target(
            name: "Signalling",
            dependencies: [
                "SamtalerumCore", "SignallingProtocol", "Identity", "CallQuality",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        // Record of meetings and sessions: SQLite (GRDB) embedded, or PostgreSQL (postgres-nio).
        .target(
            name: "AuditStore",
            dependencies: [
                "SamtalerumCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // The Hummingbird application: HTTPS + WSS, meetings API, web pages, services.
        .target(
            name: "SamtalerumApp",
            dependencies: [
                "SamtalerumCore", "STUN", "TURN", "SignallingProtocol", "Signalling", "Identity", "AuditStore",
                "EventLoopExecutor", "ConnectionLimits",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            resources: [.copy("Web")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "samtalerum",
            dependencies: [
                "SamtalerumCore", "SamtalerumApp", "AuditStore", "Identity", "TURN",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // Signalling load generator (Scripts/load-signalling): N rooms × 2 real WSS endpoints.
        .executableTarget(
            name: "samtalerum-load",
            dependencies: [
                "SignallingProtocol", "SamtalerumCore", "EventLoopExecutor",
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // libFuzzer entry point for the STUN/ChannelData decoder (Scripts/fuzz-stun).
        .executableTarget(name: "STUNFuzz", dependencies: ["STUN"], swiftSettings: strict),
        .testTarget(name: "CallQualityTests", dependencies: ["CallQuality"], swiftSettings: strict),
        .testTarget(name: "STUNTests", dependencies: ["STUN"], swiftSettings: strict),
        .testTarget(name: "TURNTests", dependencies: ["TURN", "STUN", .product(name: "NIOEmbedded", package: "swift-nio")],
                    swiftSettings: strict),
        .testTarget(name: "ConnectionLimitsTests", dependencies: ["ConnectionLimits"], swiftSettings: strict),
        .testTarget(name: "SignallingTests", dependencies: ["SamtalerumCore", "Signalling", "SignallingProtocol", "Identity"], swiftSettings: strict),
        .testTarget(
            name: "IdentityTests",
            dependencies: ["SamtalerumCore", "Identity", .product(name: "JWTKit", package: "jwt-kit")],
            swiftSettings: strict
        ),
        .testTarget(name: "AuditStoreTests", dependencies: ["SamtalerumCore", "AuditStore",
                                                            .product(name: "Logging", package: "swift-log"),
                                                            .product(name: "PostgresNIO", package: "postgres-nio"),
                                                            .product(name: "NIOCore", package: "swift-nio")],
                    swiftSettings: strict),
        .testTarget(
            name: "AppTests",
            dependencies: [
                "SamtalerumCore", "SamtalerumApp", "SignallingProtocol", "Identity", "AuditStore", "TURN",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
    ]
)
