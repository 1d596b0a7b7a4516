import EventLoopExecutor
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import SamtalerumCore
import Signalling
import SignallingProtocol

/// Adapts a Hummingbird WebSocket to the transport-free `SignallingEndpoint`.
struct WebSocketFrameWriter: FrameWriter {
    let outbound: WebSocketOutboundWriter

    func send(_ text: String) async throws {
        try await outbound.write(.text(text))
    }

    func close(_ code: CloseCode, reason: String) async throws {
        try await outbound.close(.init(codeNumber: Int(code.rawValue)), reason: reason)
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
    static func shouldUpgrade(endpoint: SignallingEndpoint) -> @Sendable (HTTPRequest, any Channel, Logger) throws -> Upgrade {
        { request, channel, _ in
            guard request.method == .get, request.path?.split(separator: "?").first.map(String.init) == path else {
                return .dontUpgrade
            }
            let executor = EventLoopTaskExecutor(channel.eventLoop)
            return .upgrade([:]) { inbound, outbound, _ in
                try await withTaskExecutorPreference(executor) {
                    let frames = inbound.messages(maxSize: maxMessageBytes).map { message -> InboundFrame in
                        switch message {
                        case .text(let text): .text(text)
                        case .binary: .binary
                        }
                    }
                    try await endpoint.run(inbound: frames, writer: WebSocketFrameWriter(outbound: outbound),
                                           classifyFailure: classify)
                }
            }
        }
    }

    /// An oversized single frame arrives as NIO's own error; an oversized multi-frame message and
    /// other frame violations come through a type the WebSocket library does not export, whose
    /// description is the only handle. Anything else is a lost connection.
    static func classify(_ error: any Error) -> EndReason {
        if error is NIOWebSocketError { return .protocolError }
        let text = String(describing: error)
        return text.contains("messageTooLarge") || text.contains("protocolError") ? .protocolError : .connectionLost
    }
}
