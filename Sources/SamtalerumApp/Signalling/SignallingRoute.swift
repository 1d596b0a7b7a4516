import EventLoopExecutor
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOSSL
import NIOWebSocket
import SamtalerumCore
import Signalling
import SignallingProtocol
import TURN

/// Adapts a Hummingbird WebSocket to the transport-free `SignallingEndpoint`.
struct WebSocketFrameWriter: FrameWriter {
    let outbound: WebSocketOutboundWriter
    let channel: any Channel

    /// How long an aborted connection may take to take its last frames before it is dropped.
    static let abortFlushTimeout = TimeAmount.seconds(10)

    func send(_ text: String) async throws {
        try await outbound.write(.text(text))
    }

    func close(_ code: CloseCode, reason: String) async throws {
        try await outbound.close(.init(codeNumber: Int(code.rawValue)), reason: reason)
    }

    /// Writes on the channel itself: the outbound writer waits for the client to read, which a
    /// slow consumer does not, and its queue would keep our last words behind everything else.
    func abort(lastWords: String?, _ code: CloseCode, reason: String) async {
        let channel = channel
        if let lastWords {
            channel.write(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: lastWords)), promise: nil)
        }
        var payload = ByteBuffer()
        payload.writeInteger(code.rawValue)
        payload.writeString(reason)
        let written = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, data: payload), promise: written)
        let deadline = channel.eventLoop.scheduleTask(in: Self.abortFlushTimeout) { channel.close(promise: nil) }
        written.futureResult.whenComplete { _ in
            deadline.cancel()
            channel.close(promise: nil)
        }
    }
}

/// RFC 6455 §5.1: a server must close the connection on a frame from the client that is not
/// masked (1002). The WebSocket decoder accepts either, so this handler reads the frame headers
/// in the plaintext stream below it, from the `101` answer on, and fails the connection there.
final class WebSocketMaskCheck: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    struct UnmaskedFrame: Error {}

    private enum State { case http, frames, failed }
    private var state = State.http
    /// The header of the frame being read, while it spans reads.
    private var header: [UInt8] = []
    private var payloadLeft: UInt64 = 0

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if state == .http, case .byteBuffer(let head) = unwrapOutboundIn(data), head.readableBytesView.starts(with: "HTTP/1.1 101".utf8) {
            state = .frames
        }
        context.write(data, promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch state {
        case .http:
            context.fireChannelRead(data)
        case .frames:
            if allMasked(unwrapInboundIn(data).readableBytesView) {
                context.fireChannelRead(data)
            } else {
                state = .failed
                var close = context.channel.allocator.buffer(capacity: 4)
                close.writeBytes([0x88, 0x02])
                close.writeInteger(UInt16(1002))
                context.writeAndFlush(wrapOutboundOut(.byteBuffer(close)), promise: nil)
                context.fireErrorCaught(UnmaskedFrame())
                context.close(promise: nil)
            }
        case .failed:
            break
        }
    }

    /// Walks the frame headers in `bytes`, skipping payloads; false at the first unmasked frame.
    private func allMasked(_ bytes: ByteBufferView) -> Bool {
        var index = bytes.startIndex
        while index < bytes.endIndex {
            if payloadLeft > 0 {
                let step = min(UInt64(bytes.endIndex - index), payloadLeft)
                index += Int(step)
                payloadLeft -= step
                continue
            }
            header.append(bytes[index])
            index += 1
            guard header.count >= 2 else { continue }
            guard header[1] & 0x80 != 0 else { return false }
            let short = header[1] & 0x7F
            let extended = short == 126 ? 2 : short == 127 ? 8 : 0
            guard header.count == 2 + extended + 4 else { continue }
            payloadLeft = extended == 0 ? UInt64(short) : header[2..<(2 + extended)].reduce(0) { $0 << 8 | UInt64($1) }
            header.removeAll(keepingCapacity: true)
        }
        return true
    }
}

enum SignallingRoute {
    /// One text message is at most 64 KiB (Docs/PROTOCOL.md, "Limits").
    static let maxMessageBytes = 65_536
    static let path = "/ws"

    typealias Upgrade = ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>>

    /// Upgrades `GET /ws` and hands the socket to the protocol. Decided from the request head
    /// alone: the router-based upgrade keeps a reference cycle through its request context,
    /// which would hold every closed connection's context (and the app behind it) forever.
    static func shouldUpgrade(endpoint: SignallingEndpoint, proxies: TrustedProxies)
        -> @Sendable (HTTPRequest, any Channel, Logger) throws -> Upgrade {
        { request, channel, _ in
            guard request.method == .get, request.path?.split(separator: "?").first.map(String.init) == path else {
                return .dontUpgrade
            }
            // Below the HTTP codec, which the upgrade replaces: the check sees every frame's bytes.
            let tls = try? channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)
            try channel.pipeline.syncOperations.addHandler(WebSocketMaskCheck(), position: tls.map { .after($0) } ?? .first)
            let executor = EventLoopTaskExecutor(channel.eventLoop)
            let client = proxies.client(peer: channel.remoteAddress, fields: request.headerFields).flatMap(TransportAddress.init)?.ip
            return .upgrade([:]) { inbound, outbound, _ in
                // The relay policy's "nearest" reads it where the participant's ICE servers are made.
                try await RelayClientAddress.$current.withValue(client) { try await withTaskExecutorPreference(executor) {
                    let frames = inbound.messages(maxSize: maxMessageBytes).map { message -> InboundFrame in
                        switch message {
                        case .text(let text): .text(text)
                        case .binary: .binary
                        }
                    }
                    try await endpoint.run(inbound: frames, writer: WebSocketFrameWriter(outbound: outbound, channel: channel),
                                           classifyFailure: classify)
                } }
            }
        }
    }

    /// An oversized single frame arrives as NIO's own error, an unmasked frame as ours; an
    /// oversized multi-frame message, invalid UTF-8 and other frame violations come through a type
    /// the WebSocket library does not export, whose description is the only handle. Anything else
    /// is a lost connection.
    static func classify(_ error: any Error) -> EndReason {
        if error is NIOWebSocketError || error is WebSocketMaskCheck.UnmaskedFrame { return .protocolError }
        let text = String(describing: error)
        let violations = ["messageTooLarge", "protocolError", "dataInconsistentWithMessage"]
        return violations.contains(where: text.contains) ? .protocolError : .connectionLost
    }
}
