import Logging
import NIOCore
import NIOPosix
import STUN
import ServiceLifecycle
import Testing
@testable import TURN

/// A raw TCP connection to the relay that sends what the test says and sees when the server closes.
struct StreamProbe {
    let channel: any Channel
    let inbox: Inbox

    static func connect(_ port: Int, from source: String? = nil) async throws -> StreamProbe {
        let inbox = Inbox()
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        if let source { bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: source, port: 0)) }
        let channel = try await bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Whole messages, however TCP cut or joined the server's writes.
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(StreamFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(FrameCollector(inbox: inbox))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return StreamProbe(channel: channel, inbox: inbox)
    }

    func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    /// Whether a Binding request is answered before the connection closes (or `limit` passes).
    /// Only the answer to this request counts: one to an earlier request that came after its
    /// caller stopped waiting is skipped, so a single late answer cannot leave the probe one
    /// answer behind for the rest of the connection (which made a slow relay look silent).
    func answersBinding(within limit: Duration = .seconds(20)) async -> Bool {
        let request = STUNMessage(method: .binding, class: .request)
        guard (try? await send(request.serialize())) != nil else { return false }
        let isAnswer: ([UInt8]) -> Bool = { (try? STUNMessage(bytes: $0))?.transactionID == request.transactionID }
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            let closed = !channel.isActive
            if (try? await inbox.next(timeout: .milliseconds(100), where: isAnswer)) != nil { return true }
            // What arrived before the close has been looked at: a refused connection ends the wait.
            if closed { return false }
        }
        return false
    }

    /// How long until the connection was seen closed, or nil if it stayed open for `timeout`.
    func waitForClose(timeout: Duration) async throws -> Duration? {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < timeout {
            if !channel.isActive { return ContinuousClock.now - start }
            try await Task.sleep(for: .milliseconds(5))
        }
        return nil
    }

    func close() async { try? await channel.close() }
}

@Suite(.serialized) struct StreamLimitsTests {
    typealias R = RelayIntegrationTests

    @Test func aConnectionWithoutAllocationIsClosedAfterTheTimeout() async throws {
        // Long enough that a Binding sent right after connecting is answered even when the
        // parallel test run stalls this machine for a second or two (it once got none at 2 s).
        let timeout = Duration.seconds(6)
        var configuration = R.configuration()
        configuration.unallocatedConnectionTimeout = timeout
        try await R.withRelay(configuration) { _, ports in
            let tcp = try #require(ports.tcp)
            // Allocate first: on a loaded machine the handshake alone may take a good part of the timeout.
            var allocated = try await TURNTestClient.stream(server: tcp, tls: false, credentials: R.credentials("idle"), realm: "itest")
            _ = try await allocated.allocate()

            let opened = ContinuousClock.now
            let idle = try await StreamProbe.connect(tcp)
            // A frame that never completes doesn't count.
            let stalled = try await StreamProbe.connect(tcp)
            // The server may already have closed it if this machine stalled past the timeout.
            try? await stalled.send([0x40, 0x00, 0x00, 0x64, 1, 2, 3, 4])
            // Nor does talking without allocating: Bindings are answered until the timeout closes it.
            // A talker the machine stalled past its whole timeout before its first answer says
            // nothing either way: another one tries, at most three in all.
            var talker = try await StreamProbe.connect(tcp)
            var answered = 0
            for attempt in 1...3 where answered == 0 {
                if attempt > 1 { talker = try await StreamProbe.connect(tcp) }
                while talker.channel.isActive, ContinuousClock.now - opened < .seconds(60) {
                    if await talker.answersBinding() { answered += 1 }
                }
            }
            #expect(answered > 0)

            for probe in [idle, talker, stalled] {
                #expect(try await probe.waitForClose(timeout: .seconds(30)) != nil)
            }
            #expect(ContinuousClock.now - opened >= timeout)
            // Well past the timeout, the connection holding an allocation still works.
            try await Task.sleep(for: timeout)
            let binding = try await allocated.transact(STUNMessage(method: .binding, class: .request))
            #expect(binding.class == .successResponse)
            await allocated.close()
        }
    }

    @Test func connectionsBeyondTheCapAreClosedAtAccept() async throws {
        var configuration = R.configuration()
        configuration.maxStreamConnections = 2
        try await R.withRelay(configuration) { _, ports in
            let tcp = try #require(ports.tcp)
            let first = try await StreamProbe.connect(tcp)
            let second = try await StreamProbe.connect(tcp)
            #expect(await first.answersBinding())
            #expect(await second.answersBinding())
            let third = try await StreamProbe.connect(tcp)
            #expect(try await third.waitForClose(timeout: .seconds(30)) != nil)
            #expect(first.channel.isActive && second.channel.isActive)

            // A slot frees when a connection ends.
            await first.close()
            var admitted = false
            for _ in 0..<40 where !admitted {
                let next = try await StreamProbe.connect(tcp)
                // A refused connection never answers; an admitted one does, however slow the machine.
                admitted = await next.answersBinding()
                await next.close()
            }
            #expect(admitted)
            await second.close()
        }
    }

    @Test func oversizedFramesAndGarbageCloseTheConnection() async throws {
        var configuration = R.configuration()
        configuration.maxStreamFrameBytes = 1024
        try await R.withRelay(configuration) { _, ports in
            let tcp = try #require(ports.tcp)
            let fine = try await StreamProbe.connect(tcp)
            #expect(await fine.answersBinding())

            // ChannelData announcing 2000 bytes: refused from its header, before any payload.
            let oversized = try await StreamProbe.connect(tcp)
            try await oversized.send([0x40, 0x00, 0x07, 0xD0])
            #expect(try await oversized.waitForClose(timeout: .seconds(2)) != nil)

            let garbage = try await StreamProbe.connect(tcp)
            try await garbage.send(Array("GET / HTTP/1.1\r\n\r\n".utf8))
            #expect(try await garbage.waitForClose(timeout: .seconds(2)) != nil)

            #expect(fine.channel.isActive)
            await fine.close()
        }
    }

    @Test func gracefulShutdownClosesAcceptedConnections() async throws {
        let service = TURNRelayService(configuration: R.configuration(tls: try TestTLS.serverContext()))
        let group = ServiceGroup(configuration: .init(services: [service], logger: Logger(label: "turn-test")))
        let task = Task { try await group.run() }
        let ports = try await service.boundPorts()
        let plain = try await StreamProbe.connect(try #require(ports.tcp))
        #expect(await plain.answersBinding())
        // A TLS connection still in its handshake is a client connection too.
        let tls = try await StreamProbe.connect(try #require(ports.tls))
        var allocated = try await TURNTestClient.stream(
            server: try #require(ports.tcp), tls: false, credentials: R.credentials("shutdown"), realm: "itest")
        _ = try await allocated.allocate()

        await group.triggerGracefulShutdown()
        try await task.value
        #expect(try await plain.waitForClose(timeout: .seconds(2)) != nil)
        #expect(try await tls.waitForClose(timeout: .seconds(2)) != nil)
        #expect(service.statistics().isEmpty)
        await allocated.close()
    }
}
