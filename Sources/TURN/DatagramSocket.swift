import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A UDP socket of the relay's data path: NIO reads it, the relay writes to it with one
/// `sendto` per packet. NIO's write path (pending-write queue, an `AddressedEnvelope` and a
/// promise per datagram, a flush per read batch) was most of the relay's own CPU per packet.
///
/// The relay opens and binds the socket itself and hands it to NIO, so it knows the descriptor.
/// Writing to it is safe only on the channel's event loop while the channel is open: NIO closes
/// the descriptor on that loop, so it cannot be closed (and its number reused) meanwhile.
struct DatagramSocket: Sendable {
    let channel: any Channel
    let descriptor: CInt

    /// Sends one datagram now. Dropped, as a congested network would, when the socket's send
    /// buffer is full, the destination refused an earlier one, or the socket is closed.
    func send(_ bytes: UnsafeRawBufferPointer, to destination: KernelAddress) {
        guard channel.eventLoop.inEventLoop, channel.isActive else { return }
        _ = destination.withSockAddr { address, length in
            sendto(descriptor, bytes.baseAddress, bytes.count, CInt(MSG_NOSIGNAL), address, length)
        }
    }

    /// Sends a 4-byte header (a ChannelData header) and a payload as one datagram, without
    /// copying them together first.
    func send(header: UInt32, _ payload: UnsafeRawBufferPointer, to destination: KernelAddress) {
        guard channel.eventLoop.inEventLoop, channel.isActive else { return }
        var header = header.bigEndian
        withUnsafeMutableBytes(of: &header) { head in
            // A tuple, not an array: two contiguous iovecs on the stack, no allocation per packet.
            var parts = (iovec(iov_base: head.baseAddress, iov_len: head.count),
                         iovec(iov_base: UnsafeMutableRawPointer(mutating: payload.baseAddress), iov_len: payload.count))
            withUnsafeMutablePointer(to: &parts) { pointer in
                pointer.withMemoryRebound(to: iovec.self, capacity: 2) { vectors in
                    _ = destination.withSockAddr { address, length in
                        var message = msghdr()
                        message.msg_name = UnsafeMutableRawPointer(mutating: address)
                        message.msg_namelen = length
                        message.msg_iov = vectors
                        message.msg_iovlen = 2
                        return sendmsg(descriptor, &message, CInt(MSG_NOSIGNAL))
                    }
                }
            }
        }
    }

    /// Binds a UDP socket to `address` (port 0: any) and lets NIO adopt it, reading with
    /// `handler`, on `eventLoop`.
    static func open(
        _ address: SocketAddress, reuseAddress: Bool = false, on eventLoop: any EventLoop, vectorReadCount: Int,
        bytesPerDatagram: Int, handler: @escaping @Sendable (DatagramSocket) -> any ChannelHandler
    ) -> EventLoopFuture<DatagramSocket> {
        let descriptor: CInt
        do {
            descriptor = try bindDescriptor(address, reuseAddress: reuseAddress)
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
        // On failure NIO has either closed the descriptor or never taken it; closing it here
        // could close a number already reused elsewhere, so a failed adoption leaks it instead.
        return DatagramBootstrap(group: eventLoop)
            .channelOption(.datagramVectorReadMessageCount, value: vectorReadCount)
            // One recvmmsg per wake-up (epoll is level-triggered, so what is left wakes it again):
            // NIO's default of 4 reads costs a second, empty recvmmsg when packets trickle in.
            .channelOption(.maxMessagesPerRead, value: 1)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: vectorReadCount * bytesPerDatagram))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(handler(DatagramSocket(channel: channel, descriptor: descriptor)))
                }
            }
            .withBoundSocket(descriptor)
            .map { DatagramSocket(channel: $0, descriptor: descriptor) }
    }

    private static func bindDescriptor(_ address: SocketAddress, reuseAddress: Bool) throws -> CInt {
        guard let kernel = KernelAddress(address) else {
            throw IOError(errnoCode: EAFNOSUPPORT, reason: "bind: not an IP address")
        }
        let descriptor = socket(kernel.family, CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        var one: CInt = 1
        let bound = (!reuseAddress
            || setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size)) == 0)
            && kernel.withSockAddr { bind(descriptor, $0, $1) } == 0
        guard bound else {
            let code = errno
            close(descriptor)
            throw IOError(errnoCode: code, reason: "bind")
        }
        return descriptor
    }
}

/// A socket address in the form `sendto` takes, built once per peer or client rather than per packet.
enum KernelAddress: Sendable {
    case v4(sockaddr_in)
    case v6(sockaddr_in6)

    init?(_ address: SocketAddress) {
        switch address {
        case .v4(let a): self = .v4(a.address)
        case .v6(let a): self = .v6(a.address)
        default: return nil
        }
    }

    var family: CInt {
        switch self {
        case .v4: AF_INET
        case .v6: AF_INET6
        }
    }

    func withSockAddr<Result>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
        switch self {
        case .v4(var address):
            withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        case .v6(var address):
            withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
    }
}
