import ConnectionLimits
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL

/// What an HTTP listener does with a connection before Hummingbird sees it: counts it against
/// the listener's caps (closing it at once beyond them), adds TLS, and closes it unless a complete
/// request head arrives within `firstRequestTimeout` of the accept. An idle socket, a stalled TLS
/// handshake or a slowloris head each hold a descriptor, and Hummingbird's own idle timeout only
/// starts once a first request has been read (on a WebSocket-upgrading listener). On such a
/// listener `UndecidedRequestGuard` also covers the time between a complete head and the upgrade
/// decision, and answers the heads the HTTP parser rejects.
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
        .flatMapThrowing { value in
            let pipeline = channel.pipeline.syncOperations
            if let upgrader = try? pipeline.handler(type: NIOTypedHTTPServerUpgradeHandler<HTTP1WebSocketUpgradeChannel.UpgradeResult>.self) {
                try pipeline.addHandler(UndecidedRequestGuard(timeout: gate.firstRequestTimeout), position: .after(upgrader))
            }
            return .admitted(value)
        }
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

/// Watches a WebSocket-upgrading connection from its accept until the upgrade handler has decided
/// between HTTP and WebSocket. Until then nothing past the upgrade handler reads: it forwards
/// neither the request head nor a parser error, and Hummingbird's idle timeout is not yet in the
/// pipeline, so a head the HTTP decoder rejects (a NUL byte in a header value) would hold the
/// connection open for good. A parser error is answered with 400 and a close, as Hummingbird does
/// once it reads; a decision that has not come within the first request's deadline closes it.
final class UndecidedRequestGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let timeout: TimeAmount
    private var deadline: Scheduled<Void>?
    private var answered = false

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    /// The first read to get here is the request head the upgrade handler passed on to HTTP.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
        stepOut(context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        context.fireUserInboundEventTriggered(event)
        if event is HTTPServerUpgradeEvents { stepOut(context) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError, !answered else {
            context.fireErrorCaught(error)
            return
        }
        answered = true
        let head = HTTPResponseHead(version: .http1_1, status: .badRequest,
                                    headers: ["connection": "close", "content-length": "0"])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }

    private func stepOut(_ context: ChannelHandlerContext) {
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
