import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import STUN
import Testing
@testable import TURN

/// The stream tests judge the relay by `StreamProbe.answersBinding()`, so the probe itself must
/// not take a slow answer for none. Against a stand-in server that answers late, and puts a stray
/// answer to another transaction in the same TCP segment as the real one, it must still see
/// every answer — as a relay on a stalled machine behaves.
@Suite struct StreamProbeTests {
    /// Answers each Binding after `delay`, writing an answer to some other transaction and the
    /// real one in one buffer.
    final class LateAnswers: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let delay: TimeAmount
        init(delay: TimeAmount) { self.delay = delay }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard let request = try? STUNMessage(bytes: unwrapInboundIn(data).readableBytesView) else { return }
            let stray = STUNMessage(method: .binding, class: .request).response(.successResponse).serialize()
            let answer = request.response(.successResponse).serialize()
            let channel = context.channel
            channel.eventLoop.scheduleTask(in: delay) {
                channel.writeAndFlush(ByteBuffer(bytes: stray + answer), promise: nil)
            }
        }
    }

    @Test func aLateAnswerInOneSegmentWithAStrayOneIsStillSeen() async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(ByteToMessageHandler(StreamFrameDecoder()))
                    try sync.addHandler(LateAnswers(delay: .milliseconds(2500)))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let probe = try await StreamProbe.connect(try #require(server.localAddress?.port))
        // The first answer comes after 2.5 s; each later one too, behind a stray answer.
        #expect(await probe.answersBinding())
        #expect(await probe.answersBinding())
        await probe.close()
        // A closed connection is told at once, not after the whole wait.
        let started = ContinuousClock.now
        #expect(await probe.answersBinding() == false)
        #expect(ContinuousClock.now - started < .seconds(5))
        try await server.close()
    }

    /// A connection whose peer addresses cannot be read (it was reset before they were) would
    /// have its bytes ignored and no idle timeout: it is closed as it becomes active.
    @Test func aStreamWithoutKnownAddressesIsClosedAtOnce() throws {
        let configuration = RelayIntegrationTests.configuration()
        let core = RelayCore(configuration: configuration, policy: PeerPolicy(), logger: Logger(label: "test"),
                             metrics: TURNMetrics(), poller: DatagramPoller(batch: 1))
        let channel = EmbeddedChannel(handler: StreamConnectionHandler(core: core, transport: .tcp))
        channel.pipeline.fireChannelActive()
        #expect(!channel.isActive)

        let known = EmbeddedChannel(handler: StreamConnectionHandler(core: core, transport: .tcp))
        known.localAddress = try SocketAddress(ipAddress: "127.0.0.1", port: 3478)
        try known.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 50000)).wait()
        #expect(known.isActive)
        _ = try? known.finish()
    }
}
