import NIOCore
import NIOPosix
import Testing
@testable import TURN

/// `maxStreamConnectionsPerAddress`: one host's flood meets its own cap while others still get in.
@Suite(.serialized) struct StreamAddressCapTests {
    typealias R = RelayIntegrationTests

    /// A raw TCP connection from `source` (all of 127/8 is this host on Linux).
    static func connect(_ port: Int, from source: String) async throws -> StreamProbe {
        try await StreamProbe.connect(port, from: source)
    }

    @Test func oneAddressIsCappedAndAnotherStillGetsIn() async throws {
        var configuration = R.configuration()
        configuration.maxStreamConnectionsPerAddress = 2
        try await R.withRelay(configuration) { service, ports in
            let tcp = try #require(ports.tcp)
            let first = try await Self.connect(tcp, from: "127.0.0.2")
            let second = try await Self.connect(tcp, from: "127.0.0.2")
            #expect(await first.answersBinding())
            #expect(await second.answersBinding())
            let third = try await Self.connect(tcp, from: "127.0.0.2")
            #expect(try await third.waitForClose(timeout: .seconds(30)) != nil)

            let other = try await Self.connect(tcp, from: "127.0.0.3")
            #expect(await other.answersBinding())
            #expect(first.channel.isActive && second.channel.isActive)

            // The address gets its slot back when one of its connections ends.
            await first.close()
            var admitted = false
            for _ in 0..<40 where !admitted {
                let next = try await Self.connect(tcp, from: "127.0.0.2")
                // A refused connection never answers; an admitted one does, however slow the machine.
                admitted = await next.answersBinding()
                await next.close()
            }
            #expect(admitted)
            for probe in [second, other] { await probe.close() }
        }
    }
}
