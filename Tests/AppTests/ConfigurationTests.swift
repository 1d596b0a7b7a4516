import AuditStore
import Foundation
import SamtalerumApp
import Testing
import TURN
import Yams

@Suite struct ConfigurationTests {
    static let shippedConfig = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appending(path: "Config/samtalerum.yaml")

    /// The documented file lists every key with the built-in default, so it must load to exactly
    /// the defaults: a key added to the code but not to the file (or a stale default) fails here.
    @Test func theShippedFileDocumentsExactlyTheDefaults() throws {
        let loaded = try ConfigurationLoader.load(file: Self.shippedConfig, environment: [:])
        #expect(loaded == AppConfiguration())
        let text = try String(contentsOf: Self.shippedConfig, encoding: .utf8)
        for section in ["server", "signalling", "identity", "turn", "audit", "logging"] {
            #expect(text.contains("\n\(section):\n"), "section \(section) is documented")
        }
    }

    /// The file must not merely load to the defaults (a missing key falls back to them): every key
    /// the code has is written out in the file with exactly the code's value.
    @Test func theShippedFileWritesOutEveryKeyWithTheCodesDefault() throws {
        let text = try String(contentsOf: Self.shippedConfig, encoding: .utf8)
        let file = try #require(try Yams.load(yaml: text) as? [String: [String: Any]])
        let defaults = try #require(try Yams.load(yaml: try YAMLEncoder().encode(AppConfiguration())) as? [String: [String: Any]])
        #expect(Set(file.keys) == Set(defaults.keys))
        for (section, keys) in defaults {
            for (key, value) in keys {
                let written = try #require(file[section]?[key], "\(section).\(key) is in Config/samtalerum.yaml")
                #expect("\(written)" == "\(value)", "\(section).\(key): the file says \(written), the code \(value)")
            }
        }
    }

    /// Keys any value of which is acceptable, or which are checked where they are used (the
    /// identity provider's settings when it is built, before anything is written).
    static let keysWithoutBounds: Set<String> = [
        "server.tlsPrivateKey", "server.allowPlainHTTPOffLoopback", "signalling.autoAdmit",
        "identity.externalIssuer", "identity.externalAudience", "identity.externalJWKSFile",
        "identity.externalRoleMapping", "identity.signInClientID", "identity.signInClientSecretFile",
        "turn.enabled", "turn.listenHost", "turn.publicHost", "turn.relayAddress", "turn.allowLoopbackPeers",
        "logging.logIPAddresses",
    ]

    /// A key added without a line in `validate()` fails here, naming it.
    @Test func everyKeyHasItsBoundsInValidate() throws {
        let source = try String(contentsOf: Self.shippedConfig.deletingLastPathComponent().deletingLastPathComponent()
            .appending(path: "Sources/SamtalerumApp/Configuration/AppConfiguration+Validation.swift"), encoding: .utf8)
        let defaults = try #require(try Yams.load(yaml: try YAMLEncoder().encode(AppConfiguration())) as? [String: [String: Any]])
        for (section, keys) in defaults {
            for key in keys.keys where !Self.keysWithoutBounds.contains("\(section).\(key)") {
                #expect(source.contains("\"\(section).\(key)\""), "\(section).\(key) has no bounds in AppConfiguration.validate()")
            }
        }
    }

    /// The relay's quotas have one source: the TURN module's own defaults.
    @Test func relayDefaultsAreTheRelayModulesDefaults() {
        let relay = TURNConfiguration(authSecret: "x"), turn = AppConfiguration().turn
        #expect(turn.maxAllocations == relay.maxAllocations)
        #expect(turn.maxAllocationsPerUser == relay.maxAllocationsPerUser)
        #expect(turn.maxBytesPerSecondPerAllocation == relay.maxBandwidthBytesPerSecond)
        #expect(turn.maxStreamConnections == relay.maxStreamConnections)
        #expect(turn.maxStreamConnections > turn.maxAllocations)
    }

    @Test(arguments: [
        ("server", "dataDir", "SAMTALERUM_SERVER_DATA_DIR"),
        ("turn", "tlsPort", "SAMTALERUM_TURN_TLS_PORT"),
        ("server", "publicURL", "SAMTALERUM_SERVER_PUBLIC_URL"),
        ("signalling", "inviteTTLSeconds", "SAMTALERUM_SIGNALLING_INVITE_TTL_SECONDS"),
        ("turn", "credentialTTLSeconds", "SAMTALERUM_TURN_CREDENTIAL_TTL_SECONDS"),
        ("identity", "externalJWKSFile", "SAMTALERUM_IDENTITY_EXTERNAL_JWKS_FILE"),
        ("logging", "logIPAddresses", "SAMTALERUM_LOGGING_LOG_IP_ADDRESSES"),
        ("turn", "maxBytesPerSecondPerAllocation", "SAMTALERUM_TURN_MAX_BYTES_PER_SECOND_PER_ALLOCATION"),
    ])
    func environmentNamesKeepAcronymsAsOneWord(section: String, key: String, name: String) {
        #expect(ConfigurationLoader.environmentName(section: section, key: key) == name)
    }

    @Test func acronymKeysAreSetFromTheirNaturalEnvironmentNames() throws {
        let loaded = try ConfigurationLoader.load(file: nil, environment: [
            "SAMTALERUM_SERVER_PUBLIC_URL": "https://samtale.kommune.dk",
            "SAMTALERUM_SIGNALLING_INVITE_TTL_SECONDS": "3600",
        ])
        #expect(loaded.publicBaseURL == "https://samtale.kommune.dk")
        #expect(loaded.signalling.inviteTTLSeconds == 3600)
    }

    @Test(arguments: ["SAMTALERUM_FOO", "SAMTALERUM_SERVER_PUBLIC_U_R_L", "SAMTALERUM_SERVER_PROT"])
    func unknownSamtalerumVariablesAreRefusedByName(name: String) {
        #expect(throws: ConfigurationError.unknownEnvironmentVariable(name)) {
            try ConfigurationLoader.load(file: nil, environment: [name: "1"])
        }
    }

    @Test func theProjectsToolVariablesAreNotConfiguration() throws {
        _ = try ConfigurationLoader.load(file: nil, environment: [
            "SAMTALERUM_BIN": "/x", "SAMTALERUM_WEB": "build", "SAMTALERUM_LOAD_TOKEN": "t", "SAMTALERUM_CONFIG": "/y",
            "SAMTALERUM_TEST_POSTGRES_URL": "postgres://postgres@127.0.0.1:5432/postgres", "SAMTALERUM_TEST_POSTGRES_DIR": "/tmp/x",
        ])
    }

    /// Each bad value is refused, naming its key; as an environment variable too.
    @Test(arguments: [
        ("server", "port", "70000"), ("server", "port", "-1"),
        ("server", "httpRedirectPort", "65536"),
        ("server", "maxConnections", "0"), ("server", "maxConnectionsPerAddress", "-1"),
        ("server", "handshakeTimeoutSeconds", "0"), ("server", "idleTimeoutSeconds", "-60"),
        ("server", "publicURL", "not a url"), ("server", "publicURL", "ftp://samtale.kommune.dk"),
        ("server", "host", ""), ("server", "dataDir", ""),
        ("server", "tlsCertificate", "/etc/samtalerum/chain.pem"),
        ("signalling", "helloTimeoutSeconds", "0"), ("signalling", "helloTimeoutSeconds", "-5"),
        ("signalling", "helloTimeoutSeconds", ".nan"),
        ("signalling", "pingIntervalSeconds", "0"), ("signalling", "inviteTTLSeconds", "0"),
        ("signalling", "inviteTTLSeconds", "-3600"), ("signalling", "resumeGraceSeconds", "-1"),
        ("turn", "port", "70000"), ("turn", "tlsPort", "-2"), ("turn", "relayPortMin", "0"),
        ("turn", "relayPortMax", "1000"), ("turn", "realm", ""), ("turn", "credentialTTLSeconds", "0"),
        ("turn", "maxAllocationsPerUser", "0"), ("turn", "maxAllocations", "-1"),
        ("turn", "maxBytesPerSecondPerAllocation", "-1"), ("turn", "unallocatedConnectionTimeoutSeconds", "0"),
        ("turn", "maxStreamConnections", "0"), ("turn", "maxStreamConnectionsPerAddress", "-1"),
        ("identity", "sessionTTLSeconds", "0"),
        ("audit", "retentionDays", "0"), ("audit", "retentionDays", "-30"),
        ("audit", "postgresURL", "mysql://audit@db/audit"), ("audit", "postgresURL", "postgres:///audit"),
        ("audit", "postgresURL", "postgres://audit@db"), ("audit", "postgresPasswordFile", "/etc/samtalerum/pw"),
        ("logging", "level", "verbose"), ("logging", "format", "xml"),
    ])
    func badValuesAreRefusedNamingTheKey(section: String, key: String, value: String) throws {
        let file = FileManager.default.temporaryDirectory.appending(path: "samtalerum-config-\(UUID().uuidString).yaml")
        try "\(section):\n  \(key): \(value.isEmpty ? "''" : value)\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        for (source, environment) in [(file, [String: String]()),
                                      (nil, [ConfigurationLoader.environmentName(section: section, key: key): value])] {
            do {
                _ = try ConfigurationLoader.load(file: source, environment: environment)
                Issue.record("\(section).\(key) = '\(value)' was accepted")
            } catch {
                #expect("\(error)".contains("\(section).\(key)"), "\(error)")
            }
        }
    }

    /// The store's backend follows audit.postgresURL; a bad URL is refused without showing its password.
    @Test func postgresURLSelectsTheSharedStoreAndIsReportedWithoutItsPassword() throws {
        #expect(try ConfigurationLoader.load(file: nil, environment: [:]).auditBackend == .sqlite)
        let shared = try ConfigurationLoader.load(file: nil, environment: [
            "SAMTALERUM_AUDIT_POSTGRES_URL": "postgres://audit@db.example/audit?sslmode=verify-full",
            "SAMTALERUM_AUDIT_POSTGRES_PASSWORD_FILE": "/etc/samtalerum/postgres-password",
        ])
        #expect(shared.auditBackend == .postgres(PostgresLocation(
            url: "postgres://audit@db.example/audit?sslmode=verify-full",
            passwordFile: URL(fileURLWithPath: "/etc/samtalerum/postgres-password"))))
        do {
            _ = try ConfigurationLoader.load(file: nil, environment: [
                "SAMTALERUM_AUDIT_POSTGRES_URL": "postgres://audit:s3cret@db.example/audit?sslmode=sometimes",
            ])
            Issue.record("an unknown sslmode was accepted")
        } catch {
            #expect("\(error)".contains("audit.postgresURL") && "\(error)".contains("sslmode"), "\(error)")
            #expect(!"\(error)".contains("s3cret"), "\(error)")
        }
    }

    @Test func commandLineFlagsAreValidatedToo() {
        #expect(throws: ConfigurationError.invalidValue(key: "server.port", value: "70000",
                                                          expected: "a port number (0: any free port) within 0…65535")) {
            try ConfigurationLoader.load(file: nil, environment: [:]) { $0.server.port = 70000 }
        }
    }

    @Test func environmentOverridesTheFileAndKeysMapToUpperSnakeCase() throws {
        let loaded = try ConfigurationLoader.load(file: Self.shippedConfig, environment: [
            "SAMTALERUM_SERVER_PORT": "9443",
            "SAMTALERUM_TURN_ALLOW_LOOPBACK_PEERS": "true",
            "SAMTALERUM_SIGNALLING_HELLO_TIMEOUT_SECONDS": "2.5",
            "SAMTALERUM_IDENTITY_EXTERNAL_ROLE_MAPPING": #"{"Samtalerum.Worker": worker}"#,
            "UNRELATED": "x",
        ])
        #expect(loaded.server.port == 9443)
        #expect(loaded.turn.allowLoopbackPeers)
        #expect(loaded.signalling.helloTimeoutSeconds == 2.5)
        #expect(loaded.identity.externalRoleMapping == ["Samtalerum.Worker": "worker"])
    }

    @Test(arguments: [
        ("server:\n  prot: 1\n", ConfigurationError.unknownKey("server.prot")),
        ("srever:\n  port: 1\n", .unknownKey("srever")),
        ("server:\n  port: eighty\n", .invalid("'server.port' has the wrong type")),
    ])
    func mistakesInTheFileAreErrorsNotSilentDefaults(yaml: String, expected: ConfigurationError) throws {
        let file = FileManager.default.temporaryDirectory.appending(path: "samtalerum-config-\(UUID().uuidString).yaml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(throws: expected) { try ConfigurationLoader.load(file: file, environment: [:]) }
    }

    @Test func aPartialFileKeepsTheOtherDefaults() throws {
        let file = FileManager.default.temporaryDirectory.appending(path: "samtalerum-config-\(UUID().uuidString).yaml")
        try "server:\n  host: 0.0.0.0\naudit:\n  retentionDays: 365\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let loaded = try ConfigurationLoader.load(file: file, environment: [:])
        var expected = AppConfiguration()
        expected.server.host = "0.0.0.0"
        expected.audit.retentionDays = 365
        #expect(loaded == expected)
        #expect(loaded.publicBaseURL == "https://0.0.0.0:8443")
    }
}
