import Foundation
import STUN

public typealias Instant = ContinuousClock.Instant

/// Permission to exchange data with one peer IP address (RFC 8656 §9), any port.
public struct Permission: Hashable, Sendable {
    public var expiresAt: Instant
}

/// A channel number standing for one peer transport address (RFC 8656 §12).
public struct ChannelBinding: Hashable, Sendable {
    public var number: UInt16
    public var peer: TransportAddress
    public var expiresAt: Instant
}

/// Bytes and packets relayed, counted at the relay socket.
public struct TrafficCounters: Hashable, Sendable {
    public var bytesToPeer: UInt64 = 0
    public var packetsToPeer: UInt64 = 0
    public var bytesFromPeer: UInt64 = 0
    public var packetsFromPeer: UInt64 = 0
    /// Packets refused by the bandwidth cap, either direction.
    public var packetsDropped: UInt64 = 0
}

/// A token bucket (in bytes, or in replies for the 401 limiter): a cap that allows short bursts (a key frame) but not a sustained flood.
struct TokenBucket: Sendable {
    let bytesPerSecond: Double
    let burst: Double
    var tokens: Double
    var updatedAt: Instant

    init(rate: Double, burst: Double, now: Instant) {
        self.bytesPerSecond = rate
        self.burst = burst
        self.tokens = burst
        self.updatedAt = now
    }

    /// One second's worth of burst, and at least 64 KiB so a single large frame always fits.
    init(bytesPerSecond: Int, now: Instant) {
        self.init(rate: Double(bytesPerSecond), burst: max(Double(bytesPerSecond), 65_536), now: now)
    }

    mutating func take(_ bytes: Int, now: Instant) -> Bool {
        let elapsed = now - updatedAt
        if elapsed > .zero {
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            tokens = min(burst, tokens + seconds * bytesPerSecond)
            updatedAt = now
        }
        guard tokens >= Double(bytes) else { return false }
        tokens -= Double(bytes)
        return true
    }
}

/// One client's relayed transport address and everything attached to it (RFC 8656 §2.2).
public struct Allocation: Sendable {
    public let fiveTuple: FiveTuple
    public let relayAddress: TransportAddress
    public let username: String
    /// The id part of the REST username, so signalling can link traffic to its session.
    public let credentialID: String
    /// Long-term credential key; responses on this allocation are signed with it.
    let key: STUNKey
    /// The Allocate transaction that created it: a retransmitted request gets the same answer.
    let transactionID: TransactionID
    public let createdAt: Date
    public internal(set) var expiresAt: Instant
    public internal(set) var permissions: [IPAddress: Permission] = [:]
    public internal(set) var channels: [UInt16: ChannelBinding] = [:]
    var channelByPeer: [TransportAddress: UInt16] = [:]
    public internal(set) var counters = TrafficCounters()
    var bandwidth: TokenBucket?

    init(
        fiveTuple: FiveTuple, relayAddress: TransportAddress, username: String, credentialID: String,
        key: STUNKey, transactionID: TransactionID, createdAt: Date, expiresAt: Instant,
        bandwidth: TokenBucket?
    ) {
        self.fiveTuple = fiveTuple
        self.relayAddress = relayAddress
        self.username = username
        self.credentialID = credentialID
        self.key = key
        self.transactionID = transactionID
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.bandwidth = bandwidth
    }

    public func hasPermission(for ip: IPAddress, now: Instant) -> Bool {
        guard let p = permissions[ip] else { return false }
        return p.expiresAt > now
    }

    mutating func installPermission(for ip: IPAddress, until expiry: Instant) {
        permissions[ip] = Permission(expiresAt: expiry)
    }

    enum BindResult: Equatable { case bound, conflict }

    /// RFC 8656 §12: after a binding expires, its number and peer stay reserved for each other
    /// this long, so late packets for the old binding can't reach a new one.
    static let channelReuseHold: Duration = .seconds(300)

    /// RFC 8656 §12: a number stays tied to one peer and a peer to one number while bound and
    /// for `channelReuseHold` after; rebinding the same pair refreshes it.
    mutating func bindChannel(
        _ number: UInt16, to peer: TransportAddress, until expiry: Instant, permissionUntil: Instant, now: Instant
    ) -> BindResult {
        let held = now - Self.channelReuseHold
        if let existing = channels[number], existing.expiresAt > held, existing.peer != peer { return .conflict }
        if let other = channelByPeer[peer], other != number, let o = channels[other], o.expiresAt > held { return .conflict }
        if let stale = channels[number], stale.peer != peer { channelByPeer[stale.peer] = nil }
        if let old = channelByPeer[peer], old != number { channels[old] = nil }
        channels[number] = ChannelBinding(number: number, peer: peer, expiresAt: expiry)
        channelByPeer[peer] = number
        installPermission(for: peer.ip, until: max(permissionUntil, permissions[peer.ip]?.expiresAt ?? permissionUntil))
        return .bound
    }

    /// The live channel for a peer, if any: traffic from it is then sent as ChannelData.
    func channel(for peer: TransportAddress, now: Instant) -> UInt16? {
        guard let n = channelByPeer[peer], let b = channels[n], b.expiresAt > now else { return nil }
        return n
    }

    mutating func dropExpired(now: Instant) {
        permissions = permissions.filter { $0.value.expiresAt > now }
        // Expired bindings are kept through their hold: they still block conflicting rebinds.
        for (n, b) in channels where b.expiresAt + Self.channelReuseHold <= now {
            channels[n] = nil
            channelByPeer[b.peer] = nil
        }
    }

    mutating func admit(_ bytes: Int, now: Instant) -> Bool {
        guard var bucket = bandwidth else { return true }
        let ok = bucket.take(bytes, now: now)
        bandwidth = bucket
        if !ok { counters.packetsDropped &+= 1 }
        return ok
    }
}

/// A snapshot of one allocation's traffic for signalling and operators.
public struct AllocationStatistics: Hashable, Sendable {
    public var credentialID: String
    public var transport: ClientTransport
    public var bytesToPeer: UInt64
    public var packetsToPeer: UInt64
    public var bytesFromPeer: UInt64
    public var packetsFromPeer: UInt64
    public var packetsDropped: UInt64
    public var createdAt: Date
}
