import Foundation
import Logging
import NIOCore
import NIOPosix
@testable import SamtalerumApp
import SamtalerumCore
import SignallingProtocol
import Testing
import TURN

/// `turn.relays` and `turn.relayPolicy`: the entry's keys, their checks, and the pure choice.
@Suite struct RelayListTests {
    static func load(yaml: String, environment: [String: String] = [:]) throws -> AppConfiguration {
        let file = FileManager.default.temporaryDirectory.appending(path: "samtalerum-relays-\(UUID().uuidString).yaml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        return try ConfigurationLoader.load(file: file, environment: environment)
    }

    @Test func anEntryTakesDefaultsForTheKeysItLeavesOut() throws {
        let loaded = try Self.load(yaml: """
            turn:
              relayPolicy: least-loaded
              relays:
                - name: a
                  host: 203.0.113.2
                  networks: [10.20.0.0/16]
                  statusURL: http://203.0.113.2:9478/health/ready
                - name: b
                  urls: ["turns:turn-b.kommune.dk:443?transport=tcp", "stun:turn-b.kommune.dk:3478"]
            """)
        #expect(loaded.turn.relays == [
            RelayNode(name: "a", host: "203.0.113.2", networks: ["10.20.0.0/16"], statusURL: "http://203.0.113.2:9478/health/ready"),
            RelayNode(name: "b", urls: ["turns:turn-b.kommune.dk:443?transport=tcp", "stun:turn-b.kommune.dk:3478"]),
        ])
        #expect(loaded.turn.relays[0].uris.turn == ["turn:203.0.113.2:3478?transport=udp", "turn:203.0.113.2:3478?transport=tcp",
                                                    "turns:203.0.113.2:5349?transport=tcp"])
        #expect(loaded.turn.relays[1].uris.stun == ["stun:turn-b.kommune.dk:3478"])
        #expect(loaded.turn.relays[1].uris.turn == ["turns:turn-b.kommune.dk:443?transport=tcp"])
    }

    @Test func theListCanComeFromTheEnvironment() throws {
        let loaded = try ConfigurationLoader.load(file: nil, environment: [
            "SAMTALERUM_TURN_RELAYS": "[{name: a, host: turn-a, tlsPort: 0}, {name: b, host: 'fd00::2'}]",
        ])
        #expect(loaded.turn.relays.map(\.name) == ["a", "b"])
        #expect(loaded.turn.relays[0].uris.turn.count == 2)
        #expect(loaded.turn.relays[1].uris.stun == ["stun:[fd00::2]:3478"])
        #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.load(file: nil, environment: ["SAMTALERUM_TURN_RELAYS": "name: a"])
        }
    }

    /// Each mistake is refused before anything starts, with the key of the entry named.
    @Test(arguments: [
        ("- {name: a, host: h, prot: 1}", "turn.relays[0].prot"),
        ("- {host: h}", "turn.relays[0].name"),
        ("- {name: a}", "turn.relays[0].host"),
        ("- {name: a, host: h, port: 0}", "turn.relays[0].port"),
        ("- {name: a, host: h, tlsPort: 70000}", "turn.relays[0].tlsPort"),
        ("- {name: a, urls: ['http://x']}", "turn.relays[0].urls"),
        ("- {name: a, urls: ['stun:x:3478']}", "turn.relays[0].urls"),
        ("- {name: a, host: h, networks: [10.0.0.0/33]}", "turn.relays[0].networks"),
        ("- {name: a, host: h, statusURL: 'ftp://x/'}", "turn.relays[0].statusURL"),
        ("- {name: a, host: h}\n    - {name: a, host: i}", "turn.relays[1].name"),
    ])
    func badEntriesAreRefusedNamingTheKey(entries: String, key: String) {
        do {
            _ = try Self.load(yaml: "turn:\n  relays:\n    \(entries)\n")
            Issue.record("accepted: \(entries)")
        } catch {
            #expect("\(error)".contains(key), "\(error)")
        }
    }

    @Test func anUnknownPolicyIsRefused() {
        #expect(throws: ConfigurationError.self) { try Self.load(yaml: "turn:\n  relayPolicy: random\n") }
        #expect(throws: ConfigurationError.self) { try Self.load(yaml: "turn:\n  relayStatusTimeoutSeconds: 9\n") }
    }

    /// Every `turn.*` key `serve` and `relay` share reaches the relay itself: each set to a value
    /// other than its default, each read back (turn.maxStreamConnectionsPerAddress once did nothing).
    @Test func everyRelayKeyReachesTheRelaysConfiguration() throws {
        let data = FileManager.default.temporaryDirectory.appending(path: "samtalerum-wiring-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: data) }
        let loaded = try Self.load(yaml: """
            server:
              dataDir: \(data.path)
            turn:
              listenHost: 203.0.113.7
              port: 3479
              tlsPort: 5350
              relayAddress: 203.0.113.8
              relayPortMin: 50000
              relayPortMax: 50100
              realm: kommune
              credentialTTLSeconds: 7200
              maxAllocationsPerUser: 5
              maxAllocations: 300
              maxBytesPerSecondPerAllocation: 1000000
              unallocatedConnectionTimeoutSeconds: 12
              maxStreamConnections: 900
              maxStreamConnectionsPerAddress: 17
              allowLoopbackPeers: true
            logging:
              logIPAddresses: true
            """)
        let relay = try loaded.turnConfiguration(secret: "s", certificate: ServerCertificate(configuration: loaded))
        #expect(relay.listenHost == "203.0.113.7")
        #expect(relay.port == 3479 && relay.tlsPort == 5350 && relay.tlsContext != nil)
        #expect(relay.relayIPv4 == "203.0.113.8" && relay.relayIPv6 == nil)
        #expect(relay.relayPortRange == 50000...50100)
        #expect(relay.realm == "kommune")
        #expect(relay.revokedCredentialRetention == .seconds(7200))
        #expect(relay.maxAllocationsPerUser == 5 && relay.maxAllocations == 300)
        #expect(relay.maxBandwidthBytesPerSecond == 1_000_000)
        #expect(relay.unallocatedConnectionTimeout == .seconds(12))
        #expect(relay.maxStreamConnections == 900)
        #expect(relay.maxStreamConnectionsPerAddress == 17)
        #expect(relay.allowLoopbackPeers && relay.logIPAddresses)
    }

    /// A status endpoint on loopback that answers every request with `response`, or never.
    final class CannedHTTP: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let response: String?
        init(response: String?) { self.response = response }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard let response else { return }
            context.writeAndFlush(NIOAny(ByteBuffer(string: response)), promise: nil)
        }
    }

    static func statusServer(_ response: String?) async throws -> (any Channel, String) {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { $0.pipeline.addHandler(CannedHTTP(response: response)) }
            .bind(host: "127.0.0.1", port: 0).get()
        return (channel, "http://127.0.0.1:\(channel.localAddress?.port ?? 0)/health/ready")
    }

    static func http(_ status: String, _ body: String) -> String {
        "HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
    }

    /// The monitor reads the count a relay reports; a status that hangs, answers 503 or
    /// something else, or refuses the connection makes the relay unreachable within the timeout.
    @Test func theMonitorReadsTheLoadAndGivesUpOnASilentStatus() async throws {
        let data = FileManager.default.temporaryDirectory.appending(path: "samtalerum-monitor-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: data) }
        var configuration = AppConfiguration()
        configuration.server.dataDir = data.path
        let monitor = RelayStatusMonitor(
            directory: RelayDirectory(configuration: configuration, credentials: try RelayCredentials(configuration: configuration)),
            interval: .seconds(1), timeout: .seconds(1), logger: Logger(label: "test"))

        let (ready, readyURL) = try await Self.statusServer(Self.http("200 OK", #"{"status":"ready","node":"r","allocations":7,"maxAllocations":50}"#))
        #expect(await monitor.poll(readyURL) == .load(allocations: 7, capacity: 50))
        let (starting, startingURL) = try await Self.statusServer(Self.http("503 Service Unavailable", #"{"status":"starting"}"#))
        #expect(await monitor.poll(startingURL) == .unreachable)
        let (other, otherURL) = try await Self.statusServer(Self.http("200 OK", "<html>not a relay</html>"))
        #expect(await monitor.poll(otherURL) == .unreachable)
        let (silent, silentURL) = try await Self.statusServer(nil)
        let started = ContinuousClock.now
        #expect(await monitor.poll(silentURL) == .unreachable)
        #expect(ContinuousClock.now - started < .seconds(10))
        let closedURL = readyURL
        try await ready.close()
        #expect(await monitor.poll(closedURL) == .unreachable)
        for channel in [starting, other, silent] { try await channel.close() }
    }

    static let a = RelayNode(name: "a", host: "a", networks: ["10.1.0.0/16"])
    static let b = RelayNode(name: "b", host: "b", networks: ["10.2.0.0/16", "2001:db8::/32"])
    static let c = RelayNode(name: "c", host: "c")

    @Test func nearestPicksTheRelayOfTheClientsNetworkEvenWhenBusier() {
        let status: [RelayStatus] = [.load(allocations: 1, capacity: nil), .load(allocations: 50, capacity: nil), .unknown]
        #expect(RelayChoice.pick([Self.a, Self.b, Self.c], status: status, client: IPAddress("10.2.3.4"), policy: .nearest) == 1)
        #expect(RelayChoice.pick([Self.a, Self.b, Self.c], status: status, client: IPAddress("2001:db8::7"), policy: .nearest) == 1)
        // No network holds it: the least loaded.
        #expect(RelayChoice.pick([Self.a, Self.b, Self.c], status: status, client: IPAddress("192.0.2.1"), policy: .nearest) == 0)
        // least-loaded ignores networks.
        #expect(RelayChoice.pick([Self.a, Self.b, Self.c], status: status, client: IPAddress("10.2.3.4"), policy: .leastLoaded) == 0)
    }

    @Test func aNearRelayThatIsUnreachableOrFullIsSkipped() {
        let near = IPAddress("10.2.3.4")
        #expect(RelayChoice.pick([Self.a, Self.b], status: [.load(allocations: 9, capacity: nil), .unreachable],
                                 client: near, policy: .nearest) == 0)
        #expect(RelayChoice.pick([Self.a, Self.b], status: [.load(allocations: 9, capacity: nil), .load(allocations: 10, capacity: 10)],
                                 client: near, policy: .nearest) == 0)
    }

    @Test func leastLoadedRanksKnownLoadsFirstThenTheListOrder() {
        #expect(RelayChoice.pick([Self.a, Self.b, Self.c], status: [.load(allocations: 7, capacity: 100), .load(allocations: 3, capacity: 100), .unknown],
                                 client: nil, policy: .leastLoaded) == 1)
        #expect(RelayChoice.pick([Self.a, Self.b, Self.c], status: [.unreachable, .unknown, .unknown], client: nil, policy: .leastLoaded) == 1)
        #expect(RelayChoice.pick([Self.a, Self.b], status: [.load(allocations: 2, capacity: nil), .load(allocations: 2, capacity: nil)],
                                 client: nil, policy: .leastLoaded) == 0)
    }

    @Test func nothingReachableFallsBackToTheFirst() {
        #expect(RelayChoice.pick([Self.a, Self.b, Self.c], status: [.unreachable, .unreachable, .unreachable],
                                 client: IPAddress("10.2.0.1"), policy: .nearest) == 0)
    }

    /// The participant's credentials are coturn's REST format for the chosen relay's URIs, and
    /// the assignment is remembered for the ops view until the participant leaves.
    @Test func theDirectoryIssuesCredentialsForTheChosenRelayAndRemembersIt() throws {
        let data = FileManager.default.temporaryDirectory.appending(path: "samtalerum-relays-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: data) }
        var configuration = AppConfiguration()
        configuration.server.dataDir = data.path
        configuration.turn.relays = [Self.a, Self.b]
        let credentials = try RelayCredentials(configuration: configuration)
        let directory = RelayDirectory(configuration: configuration, credentials: credentials)
        directory.update(0, .load(allocations: 4, capacity: nil))
        directory.update(1, .load(allocations: 4, capacity: nil))
        let now = Date()
        let servers = directory.iceServers(id: "e-1", client: IPAddress("10.2.0.9"), now: now)
        #expect(servers.map(\.urls) == [["stun:b:3478"], ["turn:b:3478?transport=udp", "turn:b:3478?transport=tcp", "turns:b:5349?transport=tcp"]])
        let username = try #require(servers[1].username)
        #expect(username.hasSuffix(":e-1"))
        #expect(servers[1].credential == TURNCredentials.password(secret: credentials.secret, username: username))
        // The pick counted as one more on b until the next poll: a tie is now a's.
        #expect(directory.iceServers(id: "e-2", client: nil, now: now)[0].urls == ["stun:a:3478"])
        #expect(directory.relays(of: [EndpointID(rawValue: "e-1"), EndpointID(rawValue: "e-2")]) == [
            EndpointID(rawValue: "e-1"): "b", EndpointID(rawValue: "e-2"): "a"])
        directory.forget([EndpointID(rawValue: "e-1")])
        #expect(directory.relays(of: [EndpointID(rawValue: "e-1")]).isEmpty)
    }
}
