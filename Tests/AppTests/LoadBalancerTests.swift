import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import HummingbirdWSClient
import Logging
import NIOCore
import NIOPosix
@testable import SamtalerumApp
import SamtalerumCore
import SignallingProtocol
import Synchronization
import Testing

/// Behind a load balancer: the plain-HTTP listener for TLS offload, the node's name, and the
/// forwarded client address believed only from `server.trustedProxies`.
@Suite(.timeLimit(.minutes(2))) struct LoadBalancerTests {
    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!

    /// Six network checks per client address, then 429 (`IceCheckGate`). A client that forges
    /// `X-Forwarded-For` to look like someone new each time gets nowhere unless its peer is a
    /// trusted proxy; behind a trusted one each forwarded client has its own allowance.
    @Test(arguments: [false, true]) func aForwardedClientAddressCountsOnlyFromATrustedProxy(trusted: Bool) async throws {
        let (_, directory) = try await TestServer.run(adjust: {
            $0.server.trustedProxies = trusted ? ["127.0.0.0/8", "::1"] : []
        }) { server in
            let token = try await server.token(.worker, subject: "w-lb")
            func check(from client: String) async throws -> HTTPResponse.Status {
                try await server.client.execute(uri: "/api/ice-check", method: .get,
                                                headers: [.authorization: "Bearer \(token)", Self.forwardedFor: client]).status
            }
            for _ in 0..<6 { #expect(try await check(from: "198.51.100.7") == .ok) }
            #expect(try await check(from: "198.51.100.7") == .tooManyRequests)
            // Someone else, as far as the forwarded address says.
            #expect(try await check(from: "198.51.100.8") == (trusted ? .ok : .tooManyRequests))
            // A proxy chain: the client is the rightmost address that is not a trusted proxy.
            #expect(try await check(from: "198.51.100.7, 198.51.100.9, 127.0.0.1") == (trusted ? .ok : .tooManyRequests))
        }
        withTemporaryDirectoryRemoved(directory)
    }

    @Test func thePlainHTTPListenerServesPagesHealthAndSignallingAndNamesTheNode() async throws {
        let port = try ServerSocketProbe.freePort()
        let (_, directory) = try await TestServer.run(adjust: {
            $0.server.plainHTTPPort = port
            $0.server.nodeName = "node-lb-1"
            $0.server.publicURL = "https://samtale.example"
            $0.server.trustedProxies = ["127.0.0.1"]
        }) { server in
            let health = try await Self.get(port: port, path: "/health/ready")
            #expect(health.head.hasPrefix("HTTP/1.1 200"))
            #expect(health.body.contains(#""node":"node-lb-1""#))
            let tlsHealth = String(buffer: try await server.client.execute(uri: "/health/ready", method: .get).body)
            #expect(tlsHealth.contains(#""node":"node-lb-1""#))
            #expect(try await Self.get(port: port, path: "/join").head.hasPrefix("HTTP/1.1 200"))
            // The balancer received this one over plain HTTP: to HTTPS with it.
            let plain = try await Self.get(port: port, path: "/join", headers: ["X-Forwarded-Proto: http"])
            #expect(plain.head.hasPrefix("HTTP/1.1 308"))
            #expect(plain.head.lowercased().contains("location: https://samtale.example/join"))
            #expect(try await Self.get(port: port, path: "/join", headers: ["X-Forwarded-Proto: https"]).head.hasPrefix("HTTP/1.1 200"))

            // Signalling through it, with the meeting as the balancer's routing hint.
            let meeting = try await server.createMeeting(worker: "w-lb")
            let welcome = try await Self.hello(port: port, meeting: meeting.meetingId, token: meeting.invite)
            guard case .welcome(let greeting) = welcome else { throw TestFailure("no welcome over plain HTTP: \(welcome)") }
            #expect(greeting.role == .citizen)
        }
        withTemporaryDirectoryRemoved(directory)
    }

    @Test func aPlainHTTPListenerOffLoopbackNeedsTheExplicitOptIn() throws {
        var configuration = AppConfiguration()
        configuration.server.plainHTTPPort = 8080
        configuration.server.plainHTTPHost = "0.0.0.0"
        #expect { try configuration.validate() } throws: { "\($0)".contains("server.plainHTTPHost") }
        configuration.server.plainHTTPHost = "::1"
        try configuration.validate()
        configuration.server.plainHTTPHost = "10.0.0.5"
        configuration.server.allowPlainHTTPOffLoopback = true
        try configuration.validate()
    }

    @Test func trustedProxiesAreCIDRsAndMayComeFromTheEnvironment() throws {
        #expect { try ConfigurationLoader.load(file: nil, environment: ["SAMTALERUM_SERVER_TRUSTED_PROXIES": "[10.0.0.0/8, nonsense]"]) }
            throws: { "\($0)".contains("server.trustedProxies[1]") }
        let loaded = try ConfigurationLoader.load(file: nil, environment: ["SAMTALERUM_SERVER_TRUSTED_PROXIES": #"[10.0.0.0/8, "::1"]"#])
        #expect(loaded.server.trustedProxies == ["10.0.0.0/8", "::1"])
        #expect { try ConfigurationLoader.load(file: nil, environment: ["SAMTALERUM_SERVER_NODE_NAME": "node 1"]) }
            throws: { "\($0)".contains("server.nodeName") }
    }

    @Test func theClientAddressIsTheNearestUntrustedHop() throws {
        let proxies = try TrustedProxies.parse(["10.0.0.0/8", "2001:db8::/32"]).get()
        let balancer = try SocketAddress(ipAddress: "10.1.2.3", port: 443)
        let stranger = try SocketAddress(ipAddress: "192.0.2.1", port: 443)
        func client(_ peer: SocketAddress, _ forwarded: String) -> String? {
            var fields = HTTPFields()
            fields[Self.forwardedFor] = forwarded
            return proxies.client(peer: peer, fields: fields)?.ipAddress
        }
        #expect(client(stranger, "198.51.100.7") == "192.0.2.1")
        #expect(client(balancer, "198.51.100.7") == "198.51.100.7")
        #expect(client(balancer, "203.0.113.5, 198.51.100.7, 10.9.9.9") == "198.51.100.7")
        // Every hop a trusted proxy: the farthest one named.
        #expect(client(balancer, "[2001:db8::1]:4711, 10.0.0.1") == "2001:db8::1")
        #expect(client(balancer, "garbage") == "10.1.2.3")
        #expect(proxies.trusts(try SocketAddress(ipAddress: "2001:db8:ffff::1", port: 1)))
        #expect(!proxies.trusts(try SocketAddress(ipAddress: "2001:db9::1", port: 1)))
        #expect(!proxies.trusts(try SocketAddress(ipAddress: "11.0.0.1", port: 1)))
        #expect(throws: TrustedProxies.InvalidEntry.self) { try TrustedProxies.parse(["10.0.0.0/33"]).get() }
    }

    /// A plain request with extra header lines, read to the end (`Connection: close`).
    static func get(port: Int, path: String, headers: [String] = []) async throws -> (head: String, body: String) {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        return try await channel.executeThenClose { inbound, outbound in
            let extra = headers.map { $0 + "\r\n" }.joined()
            try await outbound.write(ByteBuffer(string: "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\(extra)Connection: close\r\n\r\n"))
            var received = ""
            for try await chunk in inbound { received += String(buffer: chunk) }
            let parts = received.components(separatedBy: "\r\n\r\n")
            return (parts.first ?? "", parts.dropFirst().joined(separator: "\r\n\r\n"))
        }
    }

    /// `ws://…/ws?meeting=…`, `hello`, and the first answer.
    static func hello(port: Int, meeting: String, token: String) async throws -> ServerMessage {
        let answer = Mutex<String?>(nil)
        _ = try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/ws?meeting=\(meeting)", configuration: .init(),
                                              logger: Logger(label: "test-plain-ws")) { inbound, outbound, _ in
            try await outbound.write(.text(ClientMessage.hello(Hello(token: token)).encoded()))
            for try await message in inbound.messages(maxSize: 1 << 16) {
                if case .text(let text) = message { answer.withLock { $0 = text } }
                break
            }
            try await outbound.close(.normalClosure, reason: nil)
        }
        guard let text = answer.withLock({ $0 }) else { throw TestFailure("no answer over ws://") }
        return try ServerMessage.decode(text)
    }
}
