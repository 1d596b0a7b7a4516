import NIOSSL

/// Everything the relay needs; the app fills it from its own config file and CLI flags.
public struct TURNConfiguration: Sendable {
    /// Address the UDP, TCP and TLS listeners bind to.
    public var listenHost: String = "0.0.0.0"
    /// UDP and TCP listener port (the same number for both). 0 picks a free port; see
    /// `TURNRelayService.boundPorts` for the result.
    public var port: Int = 3478
    /// TLS listener port; 443 also works (run as root or with CAP_NET_BIND_SERVICE) and gets
    /// through firewalls that only pass HTTPS. Ignored without `tlsContext`.
    public var tlsPort: Int = 5349
    /// Enables the TLS listener.
    public var tlsContext: NIOSSLContext?
    public var enableUDP = true
    public var enableTCP = true

    /// IPv4 address relay sockets bind to and advertise in XOR-RELAYED-ADDRESS. It must be an
    /// address peers can reach: the public address, or 127.0.0.1 in tests.
    public var relayIPv4: String? = "127.0.0.1"
    /// IPv6 relay address; nil answers REQUESTED-ADDRESS-FAMILY IPv6 with 440.
    public var relayIPv6: String?
    /// Relay ports are drawn at random from this range, both ends included.
    public var relayPortRange: ClosedRange<Int> = 49152...65535

    public var realm: String = "samtalerum"
    /// Shared secret for REST credentials (`TURNCredentials.issue`), as coturn's static-auth-secret.
    public var authSecret: String

    public var defaultAllocationLifetime: Duration = .seconds(600)
    public var maxAllocationLifetime: Duration = .seconds(3600)
    public var permissionLifetime: Duration = .seconds(300)
    public var channelLifetime: Duration = .seconds(600)
    /// How long a NONCE stays valid before the client gets 438 and retries.
    public var nonceLifetime: Duration = .seconds(600)

    /// 486 above this many allocations per credential id. A browser makes one per TURN URI and
    /// ICE restart, so a handful; the bound stops one leaked credential from taking the server.
    public var maxAllocationsPerUser: Int = 16
    /// 508 above this many allocations in total.
    public var maxAllocations: Int = 2000
    /// Credential ids starting with this belong to the pre-call network check: strangers may hold
    /// them, so they get their own small quota and short lifetime instead of a participant's.
    public static let checkCredentialPrefix = "check-"
    /// 486 above this many allocations with check credentials, all of them together, so they can
    /// never take the capacity participants need.
    public var maxCheckAllocations: Int = 32
    /// Longest lifetime of an allocation made with a check credential (a check gathers candidates
    /// for a few seconds).
    public var maxCheckAllocationLifetime: Duration = .seconds(60)
    /// A left participant's credential id is refused (401) for this long after the leave; set it
    /// to the credential TTL signalling issues with, so no credential of a left participant outlives it.
    public var revokedCredentialRetention: Duration = .seconds(4 * 3600)
    /// Per allocation and direction, in bytes per second; nil for no cap.
    public var maxBandwidthBytesPerSecond: Int? = 2_500_000
    /// 401 replies per client IP per second, after a burst of `unauthenticatedReplyBurst`: a
    /// spoofed flood can't use the server as a reflector, while an office behind one NAT address
    /// still gets its challenges (a dropped one costs the client a 0.5 s retransmission).
    public var unauthenticatedRepliesPerSecond: Double = 10
    public var unauthenticatedReplyBurst: Double = 20

    /// UNSAFE outside tests: lets clients relay to 127.0.0.0/8 and ::1 on this host.
    public var allowLoopbackPeers = false
    /// Ranges allowed even though the default deny list covers them (e.g. an internal media network).
    public var allowedPeerRanges: [IPRange] = []
    /// Extra ranges to deny.
    public var deniedPeerRanges: [IPRange] = []

    /// A TCP/TLS connection that has no allocation for this long is closed: a client opens its
    /// connection to allocate, so one that never does (or whose allocation ended) only holds a socket.
    public var unallocatedConnectionTimeout: Duration = .seconds(30)
    /// Concurrent TCP/TLS client connections, TCP and TLS together; beyond it new ones are closed
    /// at accept. Each allocation over a stream needs one, so keep it above `maxAllocations`.
    public var maxStreamConnections: Int = 4096
    /// Of those, from one client address (an IPv6 /64); 0: no such cap. An office behind one NAT
    /// address needs a few per browser, so this is generous; a flood from one host meets it first.
    public var maxStreamConnectionsPerAddress: Int = 256
    /// Longest STUN message or ChannelData frame accepted on a TCP/TLS connection, and so the most
    /// a connection buffers; a longer one closes the connection. The default admits every legal frame.
    public var maxStreamFrameBytes: Int = 20 + 65_535

    /// Client and peer addresses are personal data: keep them out of logs unless debugging.
    public var logIPAddresses = false
    /// How many datagrams one UDP read may return (recvmmsg), 1–64.
    public var datagramVectorReadCount = 32

    public init(authSecret: String) {
        self.authSecret = authSecret
    }
}
