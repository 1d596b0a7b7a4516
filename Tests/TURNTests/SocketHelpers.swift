import NIOCore
import NIOPosix
import NIOSSL
import STUN
import Synchronization
@testable import TURN

/// Received packets, collected by a channel handler and awaited by the test.
final class Inbox: Sendable {
    private let items = Mutex<[(bytes: [UInt8], from: SocketAddress?)]>([])

    func append(_ bytes: [UInt8], from: SocketAddress?) {
        items.withLock { $0.append((bytes, from)) }
    }

    /// The next packet matching `accept`, skipping (and dropping) others; polls until `timeout`.
    func next(
        timeout: Duration = .seconds(5), where accept: ([UInt8]) -> Bool = { _ in true }
    ) async throws -> (bytes: [UInt8], from: SocketAddress?) {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let hit = items.withLock { items -> (bytes: [UInt8], from: SocketAddress?)? in
                guard let i = items.firstIndex(where: { accept($0.bytes) }) else { return nil }
                let item = items[i]
                items.removeSubrange(...i)
                return item
            }
            if let hit { return hit }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw TestError.noResponse
    }

    func isEmpty() -> Bool { items.withLock { $0.isEmpty } }
}

final class DatagramCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let inbox: Inbox
    init(inbox: Inbox) { self.inbox = inbox }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        inbox.append(Array(envelope.data.readableBytesView), from: envelope.remoteAddress)
    }
}

final class FrameCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let inbox: Inbox
    init(inbox: Inbox) { self.inbox = inbox }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        inbox.append(Array(unwrapInboundIn(data).readableBytesView), from: nil)
    }
}

/// A UDP socket on loopback (the peer, or a UDP TURN client).
struct UDPSocket {
    let channel: any Channel
    let inbox: Inbox

    static func bind(host: String = "127.0.0.1") async throws -> UDPSocket {
        let inbox = Inbox()
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DatagramCollector(inbox: inbox))
                }
            }
            .bind(host: host, port: 0).get()
        return UDPSocket(channel: channel, inbox: inbox)
    }

    init(channel: any Channel, inbox: Inbox) {
        self.channel = channel
        self.inbox = inbox
    }

    var port: Int { channel.localAddress?.port ?? 0 }

    func send(_ bytes: [UInt8], to address: SocketAddress) async throws {
        try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: ByteBuffer(bytes: bytes)))
    }
}

/// A TURN client over UDP, TCP or TLS, speaking through the STUN module.
struct TURNTestClient {
    let send: @Sendable ([UInt8]) async throws -> Void
    let inbox: Inbox
    /// Over UDP a request or its answer may be lost (a busy machine's full socket buffer), so the
    /// client retransmits as RFC 8489 §6.2.1 asks; streams deliver or fail.
    var retransmits = false
    let close: @Sendable () async -> Void
    var nonce: String?
    var credentials: TURNCredentials.Issued
    let realm: String

    static func udp(server: Int, credentials: TURNCredentials.Issued, realm: String) async throws -> TURNTestClient {
        let socket = try await UDPSocket.bind()
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: server)
        return TURNTestClient(
            send: { try await socket.send($0, to: address) }, inbox: socket.inbox, retransmits: true,
            close: { try? await socket.channel.close() }, credentials: credentials, realm: realm)
    }

    static func stream(server: Int, tls: Bool, credentials: TURNCredentials.Issued, realm: String) async throws -> TURNTestClient {
        let inbox = Inbox()
        let sslContext = tls ? try NIOSSLContext(configuration: {
            var c = TLSConfiguration.makeClientConfiguration()
            c.certificateVerification = .none
            return c
        }()) : nil
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let sslContext { try sync.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: nil)) }
                    try sync.addHandler(ByteToMessageHandler(StreamFrameDecoder()))
                    try sync.addHandler(FrameCollector(inbox: inbox))
                }
            }
            .connect(host: "127.0.0.1", port: server).get()
        return TURNTestClient(
            send: { try await channel.writeAndFlush(ByteBuffer(bytes: $0)) }, inbox: inbox,
            close: { try? await channel.close() }, credentials: credentials, realm: realm)
    }

    var key: STUNKey {
        STUNKey.longTerm(username: credentials.username, realm: realm, password: credentials.password)
    }

    /// Sends a request and waits for the response with its transaction id.
    func transact(_ m: STUNMessage) async throws -> STUNMessage {
        let bytes = m.serialize()
        let id = m.transactionID
        let isReply = { (packet: [UInt8]) in STUNMessage.isSTUN(packet) && (try? STUNMessage(bytes: packet))?.transactionID == id }
        for _ in 0..<(retransmits ? 9 : 0) {
            try await send(bytes)
            if let reply = try? await inbox.next(timeout: .milliseconds(500), where: isReply) { return try STUNMessage(bytes: reply.bytes) }
        }
        try await send(bytes)
        return try STUNMessage(bytes: try await inbox.next(where: isReply).bytes)
    }

    /// An authenticated request; on 401/438 it takes the new nonce and retries once.
    mutating func authed(_ method: STUNMethod, _ build: (inout STUNMessage) -> Void = { _ in }) async throws -> STUNMessage {
        for _ in 0..<2 {
            var m = STUNMessage(method: method, class: .request)
            build(&m)
            if let nonce {
                m.appendString(.username, credentials.username)
                m.appendString(.realm, realm)
                m.appendString(.nonce, nonce)
                m.appendMessageIntegrity(key: key)
            }
            m.appendFingerprint()
            let response = try await transact(m)
            let code = try response.errorCode?.code
            guard code == .unauthenticated || code == .staleNonce, let fresh = try response.nonce else {
                return response
            }
            nonce = fresh
        }
        throw TestError.unexpected("authentication failed")
    }

    mutating func allocate(family: AddressFamily? = nil) async throws -> STUNAddress {
        let response = try await authed(.allocate) {
            $0.appendRequestedTransport(.udp)
            if let family { $0.appendAddressFamily(family) }
        }
        guard response.class == .successResponse, response.checkIntegrity(key: key) == .valid,
              let relay = try response.xorAddress(.xorRelayedAddress)
        else { throw TestError.unexpected("allocate: \(String(describing: try? response.errorCode))") }
        return relay
    }
}
