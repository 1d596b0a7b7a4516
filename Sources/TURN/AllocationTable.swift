import Foundation

/// All allocations, keyed by the client's 5-tuple and indexed by relayed address.
/// A plain value: the I/O layer owns one behind a lock and performs what it returns.
public struct AllocationTable: Sendable {
    public private(set) var allocations: [FiveTuple: Allocation] = [:]
    private var byRelay: [TransportAddress: FiveTuple] = [:]
    private var countByCredential: [String: Int] = [:]

    public init() {}

    public var count: Int { allocations.count }

    public subscript(tuple: FiveTuple) -> Allocation? { allocations[tuple] }

    public func allocationCount(credentialID: String) -> Int { countByCredential[credentialID] ?? 0 }

    /// Allocations of every credential id with this prefix (the network check's).
    public func allocationCount(credentialIDPrefix prefix: String) -> Int {
        countByCredential.reduce(0) { $0 + ($1.key.hasPrefix(prefix) ? $1.value : 0) }
    }

    /// Whether `address` is a live allocation's relayed transport address on this relay.
    public func isRelayedAddress(_ address: TransportAddress) -> Bool { byRelay[address] != nil }

    mutating func insert(_ allocation: Allocation) {
        if let old = allocations[allocation.fiveTuple] { _ = remove(old.fiveTuple) }
        allocations[allocation.fiveTuple] = allocation
        byRelay[allocation.relayAddress] = allocation.fiveTuple
        countByCredential[allocation.credentialID, default: 0] += 1
    }

    @discardableResult
    mutating func remove(_ tuple: FiveTuple) -> Allocation? {
        guard let a = allocations.removeValue(forKey: tuple) else { return nil }
        byRelay[a.relayAddress] = nil
        let left = (countByCredential[a.credentialID] ?? 1) - 1
        countByCredential[a.credentialID] = left > 0 ? left : nil
        return a
    }

    /// Mutates in place through the values view: one hash lookup and no copy of the
    /// allocation's dictionaries, which matters on the per-packet path.
    @discardableResult
    mutating func update<R>(_ tuple: FiveTuple, _ body: (inout Allocation) -> R?) -> R? {
        guard let i = allocations.index(forKey: tuple) else { return nil }
        return body(&allocations.values[i])
    }

    /// Removes every allocation made with one of these credentials.
    mutating func remove(credentialIDs: Set<String>) -> [Allocation] {
        guard credentialIDs.contains(where: { countByCredential[$0] != nil }) else { return [] }
        return allocations.values.filter { credentialIDs.contains($0.credentialID) }.compactMap { remove($0.fiveTuple) }
    }

    /// Removes expired allocations and prunes expired permissions and channels of the rest.
    public mutating func expire(now: Instant) -> [Allocation] {
        var gone: [Allocation] = []
        for tuple in Array(allocations.keys) {
            guard let a = allocations[tuple] else { continue }
            if a.expiresAt <= now {
                if let removed = remove(tuple) { gone.append(removed) }
            } else {
                update(tuple) { a -> Void? in a.dropExpired(now: now) }
            }
        }
        return gone
    }

    // MARK: - Data path

    /// Where a ChannelData message from the client goes: nil means drop it silently
    /// (unknown channel, expired binding or permission, or over the bandwidth cap).
    public mutating func channelDataToPeer(from tuple: FiveTuple, channel: UInt16, bytes: Int, now: Instant) -> (relay: TransportAddress, peer: TransportAddress)? {
        update(tuple) { a in
            guard a.expiresAt > now, let binding = a.channels[channel], binding.expiresAt > now,
                  a.hasPermission(for: binding.peer.ip, now: now), a.admit(bytes, now: now)
            else { return nil }
            a.counters.bytesToPeer &+= UInt64(bytes)
            a.counters.packetsToPeer &+= 1
            return (a.relayAddress, binding.peer)
        }
    }

    /// A Send indication's data: permitted only to peers with a live permission.
    public mutating func sendIndicationToPeer(from tuple: FiveTuple, peer: TransportAddress, bytes: Int, now: Instant) -> TransportAddress? {
        update(tuple) { a in
            guard a.expiresAt > now, a.hasPermission(for: peer.ip, now: now), a.admit(bytes, now: now) else { return nil }
            a.counters.bytesToPeer &+= UInt64(bytes)
            a.counters.packetsToPeer &+= 1
            return a.relayAddress
        }
    }

    /// How a datagram from a peer reaches the client: nil means drop (no permission — the core
    /// of TURN's filtering), otherwise the client's 5-tuple and the channel to use if one is bound.
    public mutating func peerDataToClient(relay: TransportAddress, peer: TransportAddress, bytes: Int, now: Instant) -> (client: FiveTuple, channel: UInt16?)? {
        guard let tuple = byRelay[relay] else { return nil }
        return update(tuple) { a in
            guard a.expiresAt > now, a.hasPermission(for: peer.ip, now: now), a.admit(bytes, now: now) else { return nil }
            a.counters.bytesFromPeer &+= UInt64(bytes)
            a.counters.packetsFromPeer &+= 1
            return (tuple, a.channel(for: peer, now: now))
        }
    }

    public func statistics() -> [AllocationStatistics] {
        allocations.values.map(\.statistics).sorted { $0.createdAt < $1.createdAt }
    }
}

extension Allocation {
    public var statistics: AllocationStatistics {
        AllocationStatistics(
            credentialID: credentialID, transport: fiveTuple.transport,
            bytesToPeer: counters.bytesToPeer, packetsToPeer: counters.packetsToPeer,
            bytesFromPeer: counters.bytesFromPeer, packetsFromPeer: counters.packetsFromPeer,
            packetsDropped: counters.packetsDropped, createdAt: createdAt
        )
    }
}
