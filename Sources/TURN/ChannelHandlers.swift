import NIOCore
import STUN

/// The client-to-peer half of the data path, shared by the UDP and stream listeners: ChannelData
/// is routed from its 4-byte header alone and its payload sent straight from the received bytes.
struct ChannelDataForwarder {
    private var packets = 0
    private var bytes = 0

    /// `frame` starts at a ChannelData header; stream frames may carry trailing padding.
    mutating func forward(_ frame: UnsafeRawBufferPointer, from tuple: FiveTuple, core: RelayCore) {
        guard frame.count >= 4 else { return }
        let number = UInt16(frame[0]) << 8 | UInt16(frame[1])
        let length = Int(frame[2]) << 8 | Int(frame[3])
        guard frame.count >= 4 + length,
              let (relay, peer) = core.channelDataToPeer(from: tuple, channel: number, bytes: length, now: .now)
        else { return }
        relay.send(UnsafeRawBufferPointer(rebasing: frame[4..<(4 + length)]), to: KernelAddress(peer))
        packets += 1
        bytes += length
    }

    /// Counters once per read batch, not per packet.
    mutating func count(metrics: TURNMetrics) {
        guard packets > 0 else { return }
        metrics.relayed(toPeer: true, packets: packets, bytes: bytes)
        packets = 0
        bytes = 0
    }
}

/// The UDP listener (port 3478): every datagram is one STUN message or ChannelData. Runs on the
/// poller's thread only, hence unchecked.
final class DatagramListener: DatagramReceiver, @unchecked Sendable {
    private let core: RelayCore
    private let socket: DatagramSocket
    private let server: TransportAddress
    private var forwarder = ChannelDataForwarder()

    init(core: RelayCore, socket: DatagramSocket, server: TransportAddress) {
        self.core = core
        self.socket = socket
        self.server = server
    }

    func received(_ datagram: UnsafeRawBufferPointer, from sender: KernelAddress) {
        guard let first = datagram.first, let client = TransportAddress(sender) else { return }
        let tuple = FiveTuple(client: client, server: server, transport: .udp)
        switch PacketKind(firstByte: first) {
        case .channelData:
            forwarder.forward(datagram, from: tuple, core: core)
        case .stun:
            core.receiveSTUN(ByteBuffer(bytes: datagram), from: tuple, sink: .datagram(listener: socket, client: sender))
        case .other:
            return
        }
    }

    func batchEnded() {
        forwarder.count(metrics: core.metrics)
    }
}

/// Splits a TCP/TLS byte stream into STUN messages and (4-padded) ChannelData frames.
/// A frame longer than `maxFrameBytes` is refused from its header, so a connection never
/// buffers more than one frame's worth of bytes.
struct StreamFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    struct NotTURN: Error {}
    struct FrameTooLong: Error {}

    var maxFrameBytes = STUNMessage.headerLength + 65_535

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let start = buffer.readerIndex
        guard let first = buffer.getInteger(at: start, as: UInt8.self),
              let length = buffer.getInteger(at: start + 2, as: UInt16.self)
        else { return .needMoreData }
        let frameLength: Int
        switch PacketKind(firstByte: first) {
        case .stun: frameLength = STUNMessage.headerLength + Int(length)
        case .channelData: frameLength = 4 + (Int(length) + 3) & ~3
        case .other: throw NotTURN()
        }
        guard frameLength <= maxFrameBytes else { throw FrameTooLong() }
        guard let frame = buffer.readSlice(length: frameLength) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }
}

/// One TCP or TLS client connection; its allocation ends when the connection does.
final class StreamConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let core: RelayCore
    private let transport: ClientTransport
    private var tuple: FiveTuple?
    private var forwarder = ChannelDataForwarder()

    init(core: RelayCore, transport: ClientTransport) {
        self.core = core
        self.transport = transport
    }

    func channelActive(context: ChannelHandlerContext) {
        guard let remote = context.channel.remoteAddress.flatMap(TransportAddress.init),
              let local = context.channel.localAddress.flatMap(TransportAddress.init) else {
            // The peer went before its address could be read (reset right after connecting):
            // without a 5-tuple nothing it sends could be answered, and no idle timeout would
            // ever close it, so it is closed now.
            context.close(promise: nil)
            return
        }
        let tuple = FiveTuple(client: remote, server: local, transport: transport)
        self.tuple = tuple
        Self.closeUnlessAllocated(context.channel, tuple: tuple, core: core)
        context.fireChannelActive()
    }

    /// Every `unallocatedConnectionTimeout` the connection must hold an allocation (or be
    /// getting one), else it is closed: a connection costs a socket and buffers even when idle.
    private static func closeUnlessAllocated(_ channel: any Channel, tuple: FiveTuple, core: RelayCore) {
        channel.eventLoop.scheduleTask(in: TimeAmount(core.configuration.unallocatedConnectionTimeout)) {
            guard channel.isActive else { return }
            if core.hasAllocation(tuple) {
                closeUnlessAllocated(channel, tuple: tuple, core: core)
            } else {
                core.logger.debug("closing TURN stream without allocation")
                channel.close(promise: nil)
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard let tuple, let first = frame.getInteger(at: frame.readerIndex, as: UInt8.self) else { return }
        if PacketKind(firstByte: first) == .channelData {
            frame.withUnsafeReadableBytes { forwarder.forward($0, from: tuple, core: core) }
        } else {
            core.receiveSTUN(frame, from: tuple, sink: .stream(context.channel))
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        forwarder.count(metrics: core.metrics)
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let tuple { core.clientDisconnected(tuple) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        core.logger.debug("TURN stream closed on error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }
}

/// A relayed transport address: datagrams from permitted peers go back to the client as
/// ChannelData when a channel is bound, else as a Data indication. Runs on the poller's thread.
final class RelayReceiver: DatagramReceiver, @unchecked Sendable {
    private let core: RelayCore
    private let sink: ClientSink
    private let relay: TransportAddress
    private var packets = 0
    private var bytes = 0

    init(core: RelayCore, sink: ClientSink, relay: TransportAddress) {
        self.core = core
        self.sink = sink
        self.relay = relay
    }

    func received(_ payload: UnsafeRawBufferPointer, from sender: KernelAddress) {
        let count = payload.count
        guard let peer = TransportAddress(sender), count <= 65_000 else { return }
        switch (core.peerData(relay: relay, peer: peer, bytes: count, now: .now), sink) {
        case (.drop, _):
            return
        case (.channelData(let number), .datagram(let listener, let client)):
            listener.send(header: UInt32(number) << 16 | UInt32(count), payload, to: client)
        case (.channelData(let number), .stream(let channel)):
            // Over a stream, ChannelData is padded to a multiple of 4 (RFC 8656, section 12.5).
            let padding = (4 - count % 4) % 4
            var out = channel.allocator.buffer(capacity: 4 + count + padding)
            out.writeInteger(number)
            out.writeInteger(UInt16(count))
            out.writeBytes(payload)
            out.writeRepeatingByte(0, count: padding)
            channel.write(out, promise: nil)
        case (.dataIndication, _):
            var message = STUNMessage(method: .data, class: .indication)
            message.appendXORAddress(.xorPeerAddress, peer.stunAddress)
            message.appendData(payload)
            sink.writeAndFlush(ByteBuffer(bytes: message.serialize()))
        }
        packets += 1
        bytes += count
    }

    func batchEnded() {
        guard packets > 0 else { return }
        if case .stream(let channel) = sink { channel.flush() }
        core.metrics.relayed(toPeer: false, packets: packets, bytes: bytes)
        packets = 0
        bytes = 0
    }
}
