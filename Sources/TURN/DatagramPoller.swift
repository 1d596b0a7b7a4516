import CRelayIO
import Foundation
import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Reads the relay's UDP sockets: one thread, one epoll set, one `recvmmsg` batch per wake-up.
///
/// Not a NIO channel: NIO turns every datagram's sender into a `SocketAddress` whose host is
/// formatted as text (`inet_ntop`, i.e. `sprintf`), boxes it with the payload in an envelope and
/// passes it through a pipeline; at a trickle of one datagram per wake-up that was the relay's
/// user-space CPU per packet. Here the sender stays a `sockaddr` and the payload is read into a
/// buffer reused for every batch.
///
/// Sockets may be sent on from any thread; closing one is deferred (`remove`), so that a sender
/// that read the descriptor just before cannot write to a reused number.
final class DatagramPoller: @unchecked Sendable {
    private struct Registrations {
        var receivers: [CInt: (socket: DatagramSocket, receiver: any DatagramReceiver)] = [:]
        /// Removed sockets, closed once nobody can still be sending on them.
        var graveyard: [(socket: DatagramSocket, closeAt: ContinuousClock.Instant)] = []
        var stopping = false
        var started = false
    }

    /// The largest datagram kept (ChannelData carries at most 65 535 payload bytes after its
    /// 4-byte header); the most one read returns is `TURNConfiguration.datagramVectorReadCount`.
    static let datagramCapacity = 4 + 65_535
    static let maxBatch = 64
    /// Far longer than any `sendto` can take, even on a thread descheduled under load.
    static let closeDelay = Duration.seconds(10)

    private let epoll: CInt
    private let wakeup: CInt
    private let registrations = Mutex(Registrations())
    private let stopped = DispatchSemaphore(value: 0)
    private let batch: ReadBatch

    /// The epoll set and the wake-up eventfd are made here; `start` reports if the kernel refused them.
    init(batch: Int) {
        epoll = crelay_epoll_create()
        wakeup = crelay_eventfd()
        self.batch = ReadBatch(count: min(max(batch, 1), Self.maxBatch), capacity: Self.datagramCapacity)
    }

    func start() throws {
        guard epoll >= 0, wakeup >= 0 else { throw IOError(errnoCode: errno, reason: "epoll_create1/eventfd") }
        guard crelay_epoll_add(epoll, wakeup) == 0 else { throw IOError(errnoCode: errno, reason: "epoll_ctl") }
        registrations.withLock { $0.started = true }
        let thread = Thread { [self] in
            run()
            stopped.signal()
        }
        thread.name = "samtalerum-relay-udp"
        thread.start()
    }

    /// Starts reading `socket` for `receiver`, whose methods then run on the poller's thread.
    func add(_ socket: DatagramSocket, receiver: any DatagramReceiver) throws {
        try registrations.withLock { state in
            guard !state.stopping else { throw IOError(errnoCode: ESHUTDOWN, reason: "relay stopping") }
            guard crelay_epoll_add(epoll, socket.descriptor) == 0 else {
                throw IOError(errnoCode: errno, reason: "epoll_ctl")
            }
            state.receivers[socket.descriptor] = (socket, receiver)
        }
    }

    /// Stops reading and sending on `socket` at once; its descriptor is closed later.
    func remove(_ socket: DatagramSocket) {
        guard socket.markClosed() else { return }
        registrations.withLock { state in
            _ = crelay_epoll_remove(epoll, socket.descriptor)
            state.receivers[socket.descriptor] = nil
            state.graveyard.append((socket, .now + Self.closeDelay))
        }
    }

    /// Ends the thread and closes every socket still registered or waiting to be closed.
    func stop() async {
        let (first, started) = registrations.withLock { state in
            defer { state.stopping = true }
            return (!state.stopping, state.started)
        }
        guard first else { return }
        guard started else { return closeEverything() }
        var one: UInt64 = 1
        _ = write(wakeup, &one, MemoryLayout<UInt64>.size)
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                self.stopped.wait()
                done.resume()
            }
        }
    }

    private func run() {
        var ready = [CInt](repeating: 0, count: 64)
        while true {
            let count = crelay_epoll_wait(epoll, &ready, CInt(ready.count), 1000)
            let (stopping, due) = registrations.withLock { state -> (Bool, [DatagramSocket]) in
                // In removal order, so the first entry is the next one due.
                let now = ContinuousClock.now
                guard let first = state.graveyard.first, first.closeAt <= now else { return (state.stopping, []) }
                let due = state.graveyard.prefix { $0.closeAt <= now }.map(\.socket)
                state.graveyard.removeFirst(due.count)
                return (state.stopping, due)
            }
            for socket in due { close(socket.descriptor) }
            if stopping { break }
            guard count > 0 else { continue }
            for descriptor in ready.prefix(Int(count)) where descriptor != wakeup {
                guard let receiver = registrations.withLock({ $0.receivers[descriptor]?.receiver }) else { continue }
                batch.read(descriptor, into: receiver)
            }
        }
        closeEverything()
    }

    private func closeEverything() {
        let remaining = registrations.withLock { state in
            defer { state.receivers = [:]; state.graveyard = [] }
            return state.receivers.values.map(\.socket) + state.graveyard.map(\.socket)
        }
        for socket in remaining {
            _ = socket.markClosed()
            close(socket.descriptor)
        }
        if wakeup >= 0 { close(wakeup) }
        if epoll >= 0 { close(epoll) }
    }
}

/// Gets the datagrams read from one socket, on the poller's thread.
protocol DatagramReceiver: AnyObject, Sendable {
    func received(_ datagram: UnsafeRawBufferPointer, from sender: KernelAddress)
    /// After each read batch: counters are updated once per batch, not per datagram.
    func batchEnded()
}

/// The buffers of one `recvmmsg`, allocated once and reused for every read.
private final class ReadBatch: @unchecked Sendable {
    private let count: Int
    private let capacity: Int
    private let storage: UnsafeMutableRawBufferPointer
    private let senders: UnsafeMutableBufferPointer<sockaddr_storage>
    private let lengths: UnsafeMutableBufferPointer<CUnsignedInt>
    private let truncated: UnsafeMutableBufferPointer<CInt>

    init(count: Int, capacity: Int) {
        self.count = count
        self.capacity = capacity
        storage = .allocate(byteCount: count * capacity, alignment: 16)
        senders = .allocate(capacity: count)
        lengths = .allocate(capacity: count)
        truncated = .allocate(capacity: count)
    }

    deinit {
        storage.deallocate()
        senders.deallocate()
        lengths.deallocate()
        truncated.deallocate()
    }

    func read(_ descriptor: CInt, into receiver: any DatagramReceiver) {
        guard let base = storage.baseAddress else { return }
        let received = crelay_recv_batch(descriptor, base, capacity, CInt(count), senders.baseAddress,
                                         lengths.baseAddress, truncated.baseAddress)
        guard received > 0 else { return }
        for index in 0..<Int(received) {
            // Longer than any legal STUN or ChannelData datagram: the kernel cut it; drop it.
            guard truncated[index] == 0, let sender = KernelAddress(senders[index]) else { continue }
            receiver.received(UnsafeRawBufferPointer(start: base + index * capacity, count: Int(lengths[index])), from: sender)
        }
        receiver.batchEnded()
    }
}
