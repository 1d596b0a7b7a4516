import Foundation
import HummingbirdWSClient
import Logging
import NIOSSL
import NIOWebSocket
import SignallingProtocol

/// A real WSS client speaking the signalling protocol, scripted by a test.
final class WebSocketPeer: Sendable {
    enum Failure: Error { case timeout(String), closed }

    private let toSend: AsyncStream<String>.Continuation
    private let inbox = Inbox()
    private let connection: Task<WebSocketCloseFrame?, any Error>

    init(port: Int) {
        let (sendStream, toSend) = AsyncStream.makeStream(of: String.self)
        self.toSend = toSend
        let inbox = inbox
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none
        connection = Task {
            defer { Task { await inbox.finish() } }
            return try await WebSocketClient.connect(
                url: "wss://localhost:\(port)/ws", configuration: .init(maxFrameSize: 1 << 20), tlsConfiguration: tls,
                logger: Logger(label: "test-peer")
            ) { inbound, outbound, _ in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await text in sendStream { try await outbound.write(.text(text)) }
                        try await outbound.close(.normalClosure, reason: nil)
                    }
                    for try await message in inbound.messages(maxSize: 1 << 20) {
                        if case .text(let text) = message { await inbox.push(text) }
                    }
                    group.cancelAll()
                }
            }
        }
    }

    func send(_ message: ClientMessage) { toSend.yield(message.encoded()) }
    func sendRaw(_ text: String) { toSend.yield(text) }
    /// Ends the connection without `leave`, as a browser tab being closed does.
    func drop() { toSend.finish() }

    /// The first message also waits for the TLS handshake, which the whole suite running in
    /// parallel on two cores can hold up for seconds.
    func next(within seconds: Double = 10) async throws -> ServerMessage {
        try await withThrowingTaskGroup(of: ServerMessage.self) { group in
            group.addTask {
                guard let text = await self.inbox.next() else { throw Failure.closed }
                return try ServerMessage.decode(text)
            }
            group.addTask {
                try await Task.sleep(for: .seconds(seconds))
                throw Failure.timeout("no message within \(seconds) s")
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    /// Waits for the server to close the connection and returns its close code.
    func closeCode(within seconds: Double = 10) async throws -> UInt16? {
        try await withThrowingTaskGroup(of: UInt16?.self) { group in
            group.addTask {
                let frame = try await self.connection.value
                return frame.map { UInt16(webSocketErrorCode: $0.closeCode) }
            }
            group.addTask {
                try await Task.sleep(for: .seconds(seconds))
                throw Failure.timeout("still open after \(seconds) s")
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    deinit { toSend.finish() }
}

/// Messages in arrival order; one waiting reader at a time (tests read sequentially).
actor Inbox {
    private var buffer: [String] = []
    private var finished = false
    private var waiter: CheckedContinuation<String?, Never>?

    func push(_ text: String) {
        if let waiter {
            self.waiter = nil
            waiter.resume(returning: text)
        } else {
            buffer.append(text)
        }
    }

    func finish() {
        finished = true
        waiter?.resume(returning: nil)
        waiter = nil
    }

    func next() async -> String? {
        if !buffer.isEmpty { return buffer.removeFirst() }
        if finished { return nil }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { waiter = $0 }
        } onCancel: {
            Task { await self.cancelWaiter() }
        }
    }

    private func cancelWaiter() {
        waiter?.resume(returning: nil)
        waiter = nil
    }
}
