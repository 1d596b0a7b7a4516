import Foundation
import SamtalerumApp
import Testing

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

    @Test func environmentOverridesTheFileAndKeysMapToUpperSnakeCase() throws {
        #expect(ConfigurationLoader.environmentName(section: "server", key: "dataDir") == "SAMTALERUM_SERVER_DATA_DIR")
        #expect(ConfigurationLoader.environmentName(section: "turn", key: "tlsPort") == "SAMTALERUM_TURN_TLS_PORT")
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
