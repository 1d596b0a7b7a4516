import ConnectionLimits
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOSSL

/// What an HTTP listener does with a connection before Hummingbird sees it: counts it against
/// the listener's caps (closing it at once beyond them), adds TLS, and closes it unless a complete
/// request head arrives within `firstRequestTimeout` of the accept. An idle socket, a stalled TLS
/// handshake or a slowloris head each hold a descriptor, and Hummingbird's own idle timeout only
/// starts once a first request has been read (on a WebSocket-upgrading listener).
struct ConnectionGuard: Sendable {
    let limiter: ConnectionLimiter
    let tls: NIOSSLContext?
    let firstRequestTimeout: TimeAmount

    /// A server builder whose connections pass this guard before `base` sets them up.
    func serverBuilder<Base: ServerChildChannel>(
        _ base: @escaping @Sendable (@escaping HTTPChannelHandler.Responder) -> Base
    ) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in GuardedChildChannel(base: base(responder), gate: self) }
    }
}

struct GuardedChildChannel<Base: ServerChildChannel>: ServerChildChannel {
    /// A refused connection is already closed; it is handed on rather than failed, because a
    /// failed child setup would end Hummingbird's accept loop.
    enum Value: ServerChildChannelValue {
        case refused(any Channel)
        case admitted(Base.Value)

        var channel: any Channel {
            switch self {
            case .refused(let channel): channel
            case .admitted(let value): value.channel
            }
        }
    }

    let base: Base
    let gate: ConnectionGuard

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        guard gate.limiter.admit(channel) else {
            channel.close(promise: nil)
            return channel.eventLoop.makeSucceededFuture(.refused(channel))
        }
        return channel.eventLoop.makeCompletedFuture {
            let pipeline = channel.pipeline.syncOperations
            if let tls = gate.tls { try pipeline.addHandler(NIOSSLServerHandler(context: tls)) }
            try pipeline.addHandler(FirstRequestDeadline(timeout: gate.firstRequestTimeout))
        }
        .flatMap { base.setup(channel: channel, logger: logger) }
        .map { .admitted($0) }
    }

    func handle(value: Value, logger: Logger) async {
        guard case .admitted(let admitted) = value else { return }
        await base.handle(value: admitted, logger: logger)
    }
}

/// Closes the connection unless the blank line ending the first request head arrives in time,
/// then steps out of the pipeline: from there Hummingbird's idle timeout, or the WebSocket's
/// pings and hello timeout, watch it.
final class FirstRequestDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let timeout: TimeAmount
    private var deadline: Scheduled<Void>?
    /// The last four bytes seen, so a CRLFCRLF split across reads is still found.
    private var lastBytes: UInt32 = 0

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    private func start(_ context: ChannelHandlerContext) {
        guard deadline == nil else { return }
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var headComplete = false
        for byte in unwrapInboundIn(data).readableBytesView {
            lastBytes = lastBytes << 8 | UInt32(byte)
            if lastBytes == 0x0D0A_0D0A {
                headComplete = true
                break
            }
        }
        context.fireChannelRead(data)
        if headComplete { context.pipeline.syncOperations.removeHandler(context: context, promise: nil) }
    }
}
