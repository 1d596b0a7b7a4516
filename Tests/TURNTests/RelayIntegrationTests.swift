import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import STUN
import Testing
@testable import TURN

/// Real sockets on 127.0.0.1: the relay in-process, a UDP peer, and UDP/TCP/TLS clients.
@Suite(.serialized) struct RelayIntegrationTests {
    static let secret = "integration-secret"

    static func configuration(tls: NIOSSLContext? = nil) -> TURNConfiguration {
        var c = TURNConfiguration(authSecret: secret)
        c.listenHost = "127.0.0.1"
        c.port = 0
        c.tlsPort = 0
        c.tlsContext = tls
        c.relayIPv4 = "127.0.0.1"
        c.relayPortRange = 42000...42999
        c.allowLoopbackPeers = true
        c.realm = "itest"
        return c
    }

    /// Runs `body` with a started relay and stops it afterwards.
    static func withRelay(
        _ configuration: TURNConfiguration,
        _ body: (TURNRelayService, TURNRelayService.BoundPorts) async throws -> Void
    ) async throws {
        let service = TURNRelayService(configuration: configuration)
        let task = Task { try await service.run() }
        defer { task.cancel() }
        let ports = try await service.boundPorts()
        try await body(service, ports)
        task.cancel()
        _ = await task.result
    }

    static func credentials(_ id: String) -> TURNCredentials.Issued {
        TURNCredentials.issue(secret: secret, id: id, ttl: .seconds(600))
    }

    /// Allocate, permission, Send/Data indications, then ChannelBind and ChannelData both ways.
    static func exerciseRelay(_ client: inout TURNTestClient, peer: UDPSocket, ipv6: Bool = false) async throws {
        let relay = try await client.allocate(family: ipv6 ? .ipv6 : nil)
        let loopback = ipv6 ? "::1" : "127.0.0.1"
        #expect(relay.ipString == loopback)
        let peerAddress = try #require(STUNAddress(ip: loopback, port: UInt16(peer.port)))

        // Nothing passes before a permission exists.
        let relaySocket = try SocketAddress(ipAddress: loopback, port: Int(relay.port))
        try await peer.send([9, 9, 9], to: relaySocket)
        // The relay socket lives on the client connection's event loop: once a request on the
        // connection is answered, that loop has also read (and dropped) the datagram queued before it.
        _ = try await client.transact(STUNMessage(method: .binding, class: .request))

        let permission = try await client.authed(.createPermission) { $0.appendXORAddress(.xorPeerAddress, peerAddress) }
        #expect(permission.class == .successResponse)
        #expect(permission.checkIntegrity(key: client.key) == .valid)

        var send = STUNMessage(method: .send, class: .indication)
        send.appendXORAddress(.xorPeerAddress, peerAddress)
        send.appendData(Array("hello peer".utf8))
        try await client.send(send.serialize())
        let atPeer = try await peer.inbox.next()
        #expect(atPeer.bytes == Array("hello peer".utf8))
        #expect(atPeer.from?.port == Int(relay.port))

        try await peer.send(Array("hello client".utf8), to: relaySocket)
        let dataIndication = try STUNMessage(bytes: try await client.inbox.next { STUNMessage.isSTUN($0) }.bytes)
        #expect(dataIndication.method == .data && dataIndication.class == .indication)
        #expect(try dataIndication.xorAddress(.xorPeerAddress) == peerAddress)
        #expect(dataIndication.data.map(Array.init) == Array("hello client".utf8))

        let bind = try await client.authed(.channelBind) {
            $0.appendChannelNumber(ChannelNumber(rawValue: 0x4001))
            $0.appendXORAddress(.xorPeerAddress, peerAddress)
        }
        #expect(bind.class == .successResponse)

        for size in [1, 3, 100, 1200] {
            let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            var frame: [UInt8] = [0x40, 0x01, UInt8(size >> 8), UInt8(size & 0xff)] + payload
            while frame.count % 4 != 0 { frame.append(0) }  // padding: required on streams, harmless on UDP
            try await client.send(frame)
            #expect(try await peer.inbox.next().bytes == payload)

            try await peer.send(payload, to: relaySocket)
            let back = try await client.inbox.next { $0.first == 0x40 }.bytes
            #expect(Array(back.prefix(4)) == [0x40, 0x01, UInt8(size >> 8), UInt8(size & 0xff)])
            #expect(Array(back.dropFirst(4).prefix(size)) == payload)
        }
    }

    @Test func udpClientRelaysBothWays() async throws {
        try await Self.withRelay(Self.configuration()) { service, ports in
            let peer = try await UDPSocket.bind()
            var client = try await TURNTestClient.udp(server: try #require(ports.udp), credentials: Self.credentials("udp-1"), realm: "itest")
            try await Self.exerciseRelay(&client, peer: peer)

            let stats = try #require(service.statistics().first { $0.credentialID == "udp-1" })
            #expect(stats.transport == .udp)
            #expect(stats.packetsToPeer == 5 && stats.bytesToPeer == 10 + 1 + 3 + 100 + 1200)
            #expect(stats.packetsFromPeer == 5 && stats.bytesFromPeer == 12 + 1 + 3 + 100 + 1200)

            let gone = try await client.authed(.refresh) { $0.appendLifetime(0) }
            #expect(gone.class == .successResponse)
            #expect(service.statistics().isEmpty)
            await client.close()
            try await peer.channel.close()
        }
    }

    @Test func ipv6RelayForAnIPv4Client() async throws {
        var configuration = Self.configuration()
        configuration.relayIPv6 = "::1"
        try await Self.withRelay(configuration) { _, ports in
            let peer = try await UDPSocket.bind(host: "::1")
            var client = try await TURNTestClient.udp(server: try #require(ports.udp), credentials: Self.credentials("v6"), realm: "itest")
            try await Self.exerciseRelay(&client, peer: peer, ipv6: true)
            await client.close()
            try await peer.channel.close()
        }
    }

    @Test func tcpClientRelaysAndDisconnectEndsTheAllocation() async throws {
        try await Self.withRelay(Self.configuration()) { service, ports in
            let peer = try await UDPSocket.bind()
            var client = try await TURNTestClient.stream(
                server: try #require(ports.tcp), tls: false, credentials: Self.credentials("tcp-1"), realm: "itest")
            try await Self.exerciseRelay(&client, peer: peer)
            #expect(service.statistics().first?.transport == .tcp)
            await client.close()
            for _ in 0..<200 where !service.statistics().isEmpty { try await Task.sleep(for: .milliseconds(10)) }
            #expect(service.statistics().isEmpty)
            try await peer.channel.close()
        }
    }

    @Test func tlsClientRelays() async throws {
        let context = try TestTLS.serverContext()
        try await Self.withRelay(Self.configuration(tls: context)) { service, ports in
            let peer = try await UDPSocket.bind()
            var client = try await TURNTestClient.stream(
                server: try #require(ports.tls), tls: true, credentials: Self.credentials("tls-1"), realm: "itest")
            try await Self.exerciseRelay(&client, peer: peer)
            #expect(service.statistics().first?.transport == .tls)
            await client.close()
            try await peer.channel.close()
        }
    }

    @Test func deniedPeerGets403EvenWithLoopbackAllowed() async throws {
        try await Self.withRelay(Self.configuration()) { _, ports in
            var client = try await TURNTestClient.udp(server: try #require(ports.udp), credentials: Self.credentials("deny"), realm: "itest")
            _ = try await client.allocate()
            for ip in ["10.0.0.1", "192.168.1.1", "169.254.169.254", "224.0.0.1"] {
                let peer = try #require(STUNAddress(ip: ip, port: 9))
                let response = try await client.authed(.createPermission) { $0.appendXORAddress(.xorPeerAddress, peer) }
                #expect(try response.errorCode?.code == .forbidden, "\(ip)")
            }
            await client.close()
        }
    }

    @Test func bindingOverUDPAndTCP() async throws {
        try await Self.withRelay(Self.configuration()) { _, ports in
            for client in [
                try await TURNTestClient.udp(server: try #require(ports.udp), credentials: Self.credentials("b"), realm: "itest"),
                try await TURNTestClient.stream(server: try #require(ports.tcp), tls: false, credentials: Self.credentials("b"), realm: "itest"),
            ] {
                let response = try await client.transact(STUNMessage(method: .binding, class: .request))
                #expect(response.class == .successResponse)
                #expect(try response.xorAddress(.xorMappedAddress)?.ipString == "127.0.0.1")
                await client.close()
            }
        }
    }
}

/// A throwaway self-signed certificate made with the openssl CLI: real TLS, no fixtures in the repo.
enum TestTLS {
    static func serverContext() throws -> NIOSSLContext {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("turn-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = dir.appendingPathComponent("key.pem").path, cert = dir.appendingPathComponent("cert.pem").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = ["req", "-x509", "-newkey", "rsa:2048", "-nodes",
                             "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
        // TLS 1.0/1.1 sign with MD5+SHA-1, which current OpenSSL clients (turnutils_uclient) refuse.
        configuration.minimumTLSVersion = .tlsv12
        return try NIOSSLContext(configuration: configuration)
    }
}
