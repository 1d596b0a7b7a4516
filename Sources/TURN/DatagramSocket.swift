import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One UDP socket of the relay: the UDP listener or an allocation's relayed address. Read by
/// the `DatagramPoller`; written with one `sendto` per datagram from whichever thread relays it.
/// After `markClosed` nothing is sent any more; the poller closes the descriptor later.
final class DatagramSocket: Sendable {
    let descriptor: CInt
    private let open = Atomic<Bool>(true)

    private init(descriptor: CInt) { self.descriptor = descriptor }

    var isOpen: Bool { open.load(ordering: .acquiring) }

    /// True for the one call that closed it.
    func markClosed() -> Bool {
        open.exchange(false, ordering: .acquiringAndReleasing)
    }

    /// The address the socket is bound to (with the port the kernel chose for port 0).
    var localAddress: TransportAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard result == 0 else { return nil }
        return KernelAddress(storage).flatMap(TransportAddress.init)
    }

    /// Sends one datagram now. Dropped, as a congested network would, when the socket's send
    /// buffer is full, the destination refused an earlier one, or the socket is closed.
    func send(_ bytes: UnsafeRawBufferPointer, to destination: KernelAddress) {
        guard isOpen else { return }
        _ = destination.withSockAddr { address, length in
            sendto(descriptor, bytes.baseAddress, bytes.count, CInt(MSG_NOSIGNAL | MSG_DONTWAIT), address, length)
        }
    }

    /// Sends a 4-byte header (a ChannelData header) and a payload as one datagram, without
    /// copying them together first.
    func send(header: UInt32, _ payload: UnsafeRawBufferPointer, to destination: KernelAddress) {
        guard isOpen else { return }
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
                        return sendmsg(descriptor, &message, CInt(MSG_NOSIGNAL | MSG_DONTWAIT))
                    }
                }
            }
        }
    }

    /// A non-blocking UDP socket bound to `address` (port 0: any free one).
    static func bind(_ address: SocketAddress, reuseAddress: Bool = false) throws -> DatagramSocket {
        guard let kernel = KernelAddress(address) else {
            throw IOError(errnoCode: EAFNOSUPPORT, reason: "bind: not an IP address")
        }
        let flags = CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue) | CInt(SOCK_NONBLOCK.rawValue)
        let descriptor = socket(kernel.family, flags, 0)
        guard descriptor >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        var one: CInt = 1
        let bound = (!reuseAddress
            || setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size)) == 0)
            && kernel.withSockAddr { Glibc.bind(descriptor, $0, $1) } == 0
        guard bound else {
            let code = errno
            close(descriptor)
            throw IOError(errnoCode: code, reason: "bind")
        }
        return DatagramSocket(descriptor: descriptor)
    }
}

/// A socket address in the form the kernel takes and gives, converted once per peer or client
/// rather than per packet, and never to text.
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

    /// Built field by field, per packet if need be: no allocation, no text.
    init(_ address: TransportAddress) {
        switch address.ip {
        case .v4(let a):
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = address.port.bigEndian
            sin.sin_addr.s_addr = a.bigEndian
            self = .v4(sin)
        case .v6(let high, let low):
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = address.port.bigEndian
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { bytes in
                bytes.storeBytes(of: high.bigEndian, toByteOffset: 0, as: UInt64.self)
                bytes.storeBytes(of: low.bigEndian, toByteOffset: 8, as: UInt64.self)
            }
            self = .v6(sin6)
        }
    }

    init?(_ storage: sockaddr_storage) {
        var storage = storage
        switch CInt(storage.ss_family) {
        case AF_INET:
            self = .v4(withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) })
        case AF_INET6:
            self = .v6(withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self) })
        default:
            return nil
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

extension TransportAddress {
    /// The same conversion as from a NIO `SocketAddress`, without building one.
    init?(_ address: KernelAddress) {
        switch address {
        case .v4(let a):
            self.init(ip: .v4(UInt32(bigEndian: a.sin_addr.s_addr)), port: UInt16(bigEndian: a.sin_port))
        case .v6(let a):
            let bytes = withUnsafeBytes(of: a.sin6_addr) { Array($0) }
            guard let ip = IPAddress(bytes: bytes) else { return nil }
            self.init(ip: ip, port: UInt16(bigEndian: a.sin6_port))
        }
    }
}
