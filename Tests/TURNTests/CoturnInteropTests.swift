import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import TURN

/// coturn's own test client against the in-process relay (skipped where coturn isn't installed:
/// `apt-get install -y coturn`). Tests/e2e/turn/test_turn_interop.py does the same against the
/// built `samtalerum` binary.
@Suite(.serialized, .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/turnutils_uclient")))
struct CoturnInteropTests {
    static func freeUDPPort() async throws -> Int {
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        defer { channel.close(promise: nil) }
        return channel.localAddress?.port ?? 0
    }

    /// Starts turnutils_peer on a free port and waits until it echoes, so no test races its start.
    /// The port is free when chosen but another test may take it before the peer binds (the peer
    /// then exits), and a cold start beside the whole parallel suite can take seconds: so a few
    /// ports, and patience for each.
    static func startPeer() async throws -> (process: Process, port: Int) {
        let probe = try await UDPSocket.bind()
        defer { probe.channel.close(promise: nil) }
        for _ in 0..<3 {
            let port = try await freeUDPPort()
            let peer = Process()
            peer.executableURL = URL(fileURLWithPath: "/usr/bin/turnutils_peer")
            peer.arguments = ["-L", "127.0.0.1", "-p", String(port)]
            peer.standardOutput = FileHandle.nullDevice
            peer.standardError = FileHandle.nullDevice
            try peer.run()
            let address = try SocketAddress(ipAddress: "127.0.0.1", port: port)
            for _ in 0..<150 where peer.isRunning {
                try await probe.send([1, 2, 3, 4], to: address)
                if (try? await probe.inbox.next(timeout: .milliseconds(100))) != nil { return (peer, port) }
            }
            // turnutils_peer ignores SIGTERM.
            kill(peer.processIdentifier, SIGKILL)
        }
        throw TestError.unexpected("turnutils_peer did not start")
    }

    /// Runs a process to completion (killed after `timeout`) and returns its combined output.
    static func run(_ path: String, _ arguments: [String], timeout: Duration = .seconds(60)) async throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let deadline = ContinuousClock.now + timeout
        let reader = Task.detached { pipe.fileHandleForReading.readDataToEndOfFile() }
        while process.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning { process.terminate() }
        return String(decoding: await reader.value, as: UTF8.self)
    }

    @Test(arguments: [["-c"], ["-c", "-t"], ["-c", "-t", "-S"], ["-c", "-s"]])
    func uclientLosesNothing(_ flags: [String]) async throws {
        let tls = try TestTLS.serverContext()
        var configuration = RelayIntegrationTests.configuration(tls: tls)
        configuration.maxAllocationsPerUser = 50
        try await RelayIntegrationTests.withRelay(configuration) { _, ports in
            let (peer, peerPort) = try await Self.startPeer()
            defer { kill(peer.processIdentifier, SIGKILL) }

            let port = flags.contains("-S") ? try #require(ports.tls) : try #require(ports.udp)
            let output = try await Self.run("/usr/bin/turnutils_uclient", flags + [
                "-W", RelayIntegrationTests.secret, "-u", "uclient", "-p", String(port),
                "-e", "127.0.0.1", "-r", String(peerPort), "-n", "50", "-m", "2", "-l", "170", "-z", "5",
                "127.0.0.1",
            ])
            #expect(output.contains("Total lost packets 0 (0.000000%)"), "\(output.suffix(1500))")
        }
    }
}
