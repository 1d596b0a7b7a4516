import Foundation
import STUN

/// The TURN server's decisions, without I/O: a STUN message, the client's 5-tuple and the time
/// in; the bytes to send and sockets to open or close out. The NIO layer owns one behind a lock.
public struct TURNRequestHandler: Sendable {
    public private(set) var table = AllocationTable()
    let configuration: TURNConfiguration
    let policy: PeerPolicy
    private let nonces: NonceIssuer
    /// Allocate requests waiting for their relay socket; a retransmission is then ignored.
    private var pending: [FiveTuple: String] = [:]
    /// Replies to requests that did not authenticate, per client IP: see `limited`.
    private var unauthenticatedBudget: [IPAddress: TokenBucket] = [:]
    /// Credential ids whose holders left, each until its retention ends: see `release`.
    private var revoked: [String: Instant] = [:]

    public init(configuration: TURNConfiguration, policy: PeerPolicy) {
        self.configuration = configuration
        self.policy = policy
        self.nonces = NonceIssuer(lifetimeSeconds: configuration.nonceLifetime.components.seconds)
    }

    public mutating func handle(_ message: STUNMessage, from tuple: FiveTuple, now: Instant, date: Date) -> [TURNAction] {
        switch (message.class, message.method) {
        case (.request, .binding):
            // RFC 8489 §6.3.1: an attribute the server must understand and does not is a 420.
            if let refusal = unknownAttributesReply(message, key: nil) {
                return limited(refusal, from: tuple, now: now)
            }
            var response = message.response(.successResponse)
            response.appendXORAddress(.xorMappedAddress, tuple.client.stunAddress)
            return [.respond(finish(response, request: message, key: nil))]
        case (.request, .allocate), (.request, .refresh), (.request, .createPermission), (.request, .channelBind):
            return authenticatedRequest(message, from: tuple, now: now, date: date)
        case (.request, _):
            return limited(errorReply(.badRequest, to: message, key: nil), from: tuple, now: now)
        case (.indication, .send):
            return sendIndication(message, from: tuple, now: now)
        default:
            return []
        }
    }

    // MARK: - Authentication (RFC 8489 §9.2, long-term credentials with REST usernames)

    private struct Authenticated {
        var username: String
        var credentialID: String
        var key: STUNKey
        /// The credential's remaining lifetime: no allocation made or refreshed with it outlives it.
        var remaining: Duration
    }

    private mutating func authenticatedRequest(_ m: STUNMessage, from tuple: FiveTuple, now: Instant, date: Date) -> [TURNAction] {
        var reaped: [TURNAction] = []
        if let stale = table[tuple], stale.expiresAt <= now {
            table.remove(tuple)
            reaped = [.closeRelay(stale.relayAddress)]
        }
        return reaped + authenticatedRequest(m, existing: table[tuple], from: tuple, now: now, date: date)
    }

    /// Authentication comes first (RFC 8489 §9.2.4), so every later answer, errors included, is
    /// signed the way the request was; a client drops an unsigned answer to a signed request and
    /// retransmits for half a minute or more.
    private mutating func authenticatedRequest(
        _ m: STUNMessage, existing: Allocation?, from tuple: FiveTuple, now: Instant, date: Date
    ) -> [TURNAction] {
        let auth: Authenticated
        switch authenticate(m, from: tuple, now: now, date: date) {
        case .success(let a): auth = a
        case .failure(let reply): return reply.actions
        }
        if let refusal = unknownAttributesReply(m, key: auth.key) { return [.respond(refusal)] }
        if m.method == .allocate, let existing {
            // A retransmitted Allocate gets the original answer; any other is a mismatch.
            guard existing.transactionID == m.transactionID else {
                return [.respond(errorReply(.allocationMismatch, to: m, key: auth.key))]
            }
            return [.respond(allocateSuccess(existing, style: ReplyStyle(m), response: m.response(.successResponse),
                                             lifetime: existing.expiresAt - now))]
        }
        if m.method == .allocate, pending[tuple] != nil { return [] }
        guard m.method == .allocate || existing != nil else {
            return [.respond(errorReply(.allocationMismatch, to: m, key: auth.key))]
        }
        if let existing, existing.username != auth.username {
            return [.respond(errorReply(.wrongCredentials, to: m, key: auth.key))]
        }
        switch m.method {
        case .allocate: return allocate(m, from: tuple, auth: auth)
        case .refresh: return refresh(m, from: tuple, auth: auth, now: now)
        case .createPermission: return createPermission(m, from: tuple, auth: auth, now: now)
        default: return channelBind(m, from: tuple, auth: auth, now: now)
        }
    }

    private struct Rejection: Error { var actions: [TURNAction] }

    private mutating func authenticate(_ m: STUNMessage, from tuple: FiveTuple, now: Instant, date: Date) -> Result<Authenticated, Rejection> {
        let unixNow = Int64(date.timeIntervalSince1970)
        guard m.contains(.messageIntegrity) || m.contains(.messageIntegritySHA256) else {
            return .failure(challenge(m, from: tuple, now: now, unixNow: unixNow))
        }
        guard let username = try? m.username, let realm = try? m.realm, let nonce = try? m.nonce else {
            return .failure(Rejection(actions: limited(errorReply(.badRequest, to: m, key: nil), from: tuple, now: now)))
        }
        guard nonces.check(nonce, for: tuple.client.ip, unixNow: unixNow) == .valid else {
            var response = m.response(.errorResponse)
            response.appendErrorCode(.staleNonce)
            response.appendString(.realm, configuration.realm)
            response.appendString(.nonce, nonces.make(for: tuple.client.ip, unixNow: unixNow))
            return .failure(Rejection(actions: limited(finish(response, request: m, key: nil), from: tuple, now: now)))
        }
        guard realm == configuration.realm,
              let parsed = TURNCredentials.parse(username: username), parsed.expiresAt > unixNow,
              !isRevoked(String(parsed.id), now: now)
        else { return .failure(challenge(m, from: tuple, now: now, unixNow: unixNow)) }
        let password = TURNCredentials.password(secret: configuration.authSecret, username: username)
        let key = STUNKey.longTerm(username: username, realm: realm, password: password)
        guard m.checkIntegrity(key: key) == .valid else {
            return .failure(challenge(m, from: tuple, now: now, unixNow: unixNow))
        }
        return .success(Authenticated(username: username, credentialID: String(parsed.id), key: key,
                                      remaining: .seconds(parsed.expiresAt - unixNow)))
    }

    private func isRevoked(_ credentialID: String, now: Instant) -> Bool {
        guard let until = revoked[credentialID] else { return false }
        return until > now
    }

    /// 401 with REALM and a fresh NONCE; rate limited and kept small like every unauthenticated reply.
    private mutating func challenge(_ m: STUNMessage, from tuple: FiveTuple, now: Instant, unixNow: Int64) -> Rejection {
        var response = m.response(.errorResponse)
        response.appendErrorCode(.unauthenticated)
        response.appendString(.realm, configuration.realm)
        response.appendString(.nonce, nonces.make(for: tuple.client.ip, unixNow: unixNow))
        return Rejection(actions: limited(finish(response, request: m, key: nil), from: tuple, now: now))
    }

    /// A reply to a request that did not authenticate (400, 401, 420, 438): at most
    /// `unauthenticatedRepliesPerSecond` per client IP after a burst, beyond that none, so a
    /// spoofed source can't turn the server into a reflector.
    private mutating func limited(_ reply: [UInt8], from tuple: FiveTuple, now: Instant) -> [TURNAction] {
        let ip = tuple.client.ip
        var bucket = unauthenticatedBudget[ip] ?? TokenBucket(
            rate: configuration.unauthenticatedRepliesPerSecond, burst: configuration.unauthenticatedReplyBurst, now: now)
        let allowed = bucket.take(1, now: now)
        unauthenticatedBudget[ip] = bucket
        return allowed ? [.respond(reply)] : []
    }

    /// 420 with UNKNOWN-ATTRIBUTES when the request carries comprehension-required attributes
    /// this server does not know; nil when it doesn't.
    private func unknownAttributesReply(_ m: STUNMessage, key: STUNKey?) -> [UInt8]? {
        let unknown = m.unknownComprehensionRequiredAttributes()
        guard !unknown.isEmpty else { return nil }
        var response = m.response(.errorResponse)
        response.appendErrorCode(.unknownAttribute)
        response.appendUnknownAttributes(unknown)
        return finish(response, request: m, key: key)
    }

    // MARK: - Allocate (RFC 8656 §7)

    private mutating func allocate(_ m: STUNMessage, from tuple: FiveTuple, auth: Authenticated) -> [TURNAction] {
        let transport: TransportProtocol?, evenPort: Bool?, token: UInt64?, family: AddressFamily?, requested: UInt32?
        do {
            transport = try m.requestedTransport
            evenPort = try m.evenPort
            token = try m.reservationToken
            family = try m.addressFamily()
            requested = try m.lifetime
        } catch {
            return [.respond(errorReply(.badRequest, to: m, key: auth.key))]
        }
        guard let transport else { return [.respond(errorReply(.badRequest, to: m, key: auth.key))] }
        guard transport == .udp else { return [.respond(errorReply(.unsupportedTransportProtocol, to: m, key: auth.key))] }
        // No reservations are ever handed out, so any token is unknown; RFC 8656 §7.2 says 508.
        if token != nil {
            let code: ErrorCode = evenPort != nil || family != nil ? .badRequest : .insufficientCapacity
            return [.respond(errorReply(code, to: m, key: auth.key))]
        }
        if evenPort == true { return [.respond(errorReply(.insufficientCapacity, to: m, key: auth.key))] }
        let chosen: PendingAllocation.Family
        switch family ?? .ipv4 {
        case .ipv4 where configuration.relayIPv4 != nil: chosen = .ipv4
        case .ipv6 where configuration.relayIPv6 != nil: chosen = .ipv6
        default: return [.respond(errorReply(.addressFamilyNotSupported, to: m, key: auth.key))]
        }
        let perUser = table.allocationCount(credentialID: auth.credentialID)
            + pending.values.filter { $0 == auth.credentialID }.count
        guard perUser < configuration.maxAllocationsPerUser else {
            return [.respond(errorReply(.allocationQuotaReached, to: m, key: auth.key))]
        }
        if isCheck(auth.credentialID) {
            let prefix = TURNConfiguration.checkCredentialPrefix
            let checks = table.allocationCount(credentialIDPrefix: prefix) + pending.values.filter { $0.hasPrefix(prefix) }.count
            guard checks < configuration.maxCheckAllocations else {
                return [.respond(errorReply(.allocationQuotaReached, to: m, key: auth.key))]
            }
        }
        guard table.count + pending.count < configuration.maxAllocations else {
            return [.respond(errorReply(.insufficientCapacity, to: m, key: auth.key))]
        }
        pending[tuple] = auth.credentialID
        return [.openRelay(PendingAllocation(
            fiveTuple: tuple, family: chosen, evenPort: evenPort != nil, transactionID: m.transactionID,
            username: auth.username, credentialID: auth.credentialID, key: auth.key,
            usesSHA256: m.contains(.messageIntegritySHA256), lifetime: lifetime(requested: requested, auth: auth),
            wantsFingerprint: m.contains(.fingerprint)
        ))]
    }

    /// The relay socket for `request` is bound at `relay`: record the allocation and answer.
    /// Nil when the client went away meanwhile (its TCP connection closed): close the socket.
    public mutating func completeAllocation(_ request: PendingAllocation, relay: TransportAddress, now: Instant, date: Date) -> [UInt8]? {
        guard pending.removeValue(forKey: request.fiveTuple) != nil else { return nil }
        let allocation = Allocation(
            fiveTuple: request.fiveTuple, relayAddress: relay, username: request.username,
            credentialID: request.credentialID, key: request.key,
            transactionID: request.transactionID, createdAt: date, expiresAt: now + request.lifetime,
            bandwidth: configuration.maxBandwidthBytesPerSecond.map { TokenBucket(bytesPerSecond: $0, now: now) }
        )
        table.insert(allocation)
        return allocateSuccess(allocation, style: ReplyStyle(request), response: request.response(.successResponse),
                               lifetime: request.lifetime)
    }

    /// No relay port could be bound.
    public mutating func failAllocation(_ request: PendingAllocation) -> [UInt8] {
        pending[request.fiveTuple] = nil
        var response = request.response(.errorResponse)
        response.appendErrorCode(.insufficientCapacity)
        return finish(response, style: ReplyStyle(request), key: request.key)
    }

    private func allocateSuccess(_ a: Allocation, style: ReplyStyle, response: STUNMessage, lifetime: Duration) -> [UInt8] {
        var response = response
        response.appendXORAddress(.xorRelayedAddress, a.relayAddress.stunAddress)
        response.appendLifetime(UInt32(clamping: max(lifetime, .zero).components.seconds))
        response.appendXORAddress(.xorMappedAddress, a.fiveTuple.client.stunAddress)
        return finish(response, style: style, key: a.key)
    }

    /// RFC 8656 §7.2: at least the default, at most the maximum; and never past the credential's
    /// expiry (its holder could not refresh or delete it after that), nor past the check cap.
    private func lifetime(requested: UInt32?, auth: Authenticated) -> Duration {
        let asked = requested.map { Duration.seconds($0) } ?? configuration.defaultAllocationLifetime
        var granted = min(max(asked, configuration.defaultAllocationLifetime), configuration.maxAllocationLifetime, auth.remaining)
        if isCheck(auth.credentialID) { granted = min(granted, configuration.maxCheckAllocationLifetime) }
        return granted
    }

    private func isCheck(_ credentialID: String) -> Bool {
        credentialID.hasPrefix(TURNConfiguration.checkCredentialPrefix)
    }

    // MARK: - Refresh (RFC 8656 §8)

    private mutating func refresh(_ m: STUNMessage, from tuple: FiveTuple, auth: Authenticated, now: Instant) -> [TURNAction] {
        let requested: UInt32?, family: AddressFamily?
        do {
            requested = try m.lifetime
            family = try m.addressFamily()
        } catch {
            return [.respond(errorReply(.badRequest, to: m, key: auth.key))]
        }
        // RFC 8656 §7.3: a family that is not the allocation's is a mismatch, not a new request.
        if let family, let allocation = table[tuple], (family == .ipv4) != allocation.relayAddress.ip.isIPv4 {
            return [.respond(errorReply(.peerAddressFamilyMismatch, to: m, key: auth.key))]
        }
        var response = m.response(.successResponse)
        if requested == 0 {
            guard let gone = table.remove(tuple) else { return [] }
            response.appendLifetime(0)
            return [.respond(finish(response, request: m, key: auth.key)), .closeRelay(gone.relayAddress)]
        }
        let granted = lifetime(requested: requested, auth: auth)
        table.update(tuple) { a -> Void? in a.expiresAt = now + granted }
        response.appendLifetime(UInt32(clamping: granted.components.seconds))
        return [.respond(finish(response, request: m, key: auth.key))]
    }

    // MARK: - Permissions and channels (RFC 8656 §9, §11)

    private mutating func createPermission(_ m: STUNMessage, from tuple: FiveTuple, auth: Authenticated, now: Instant) -> [TURNAction] {
        guard let allocation = table[tuple], let peers = try? m.xorAddresses(.xorPeerAddress), !peers.isEmpty else {
            return [.respond(errorReply(.badRequest, to: m, key: auth.key))]
        }
        for peer in peers {
            if let code = refusal(for: TransportAddress(peer), in: allocation) {
                return [.respond(errorReply(code, to: m, key: auth.key))]
            }
        }
        let expiry = now + configuration.permissionLifetime
        table.update(tuple) { a -> Void? in
            for peer in peers { a.installPermission(for: IPAddress(peer), until: expiry) }
        }
        return [.respond(finish(m.response(.successResponse), request: m, key: auth.key))]
    }

    /// RFC 8656 narrowed channels to 0x4000-0x4FFF, but RFC 5766 clients (coturn's among them)
    /// still pick up to 0x7FFF; both are unambiguous ChannelData on the wire, so both are accepted.
    static let channelRange: ClosedRange<UInt16> = 0x4000...0x7FFF

    private mutating func channelBind(_ m: STUNMessage, from tuple: FiveTuple, auth: Authenticated, now: Instant) -> [TURNAction] {
        guard let allocation = table[tuple], let number = try? m.channelNumber, Self.channelRange.contains(number.rawValue),
              let stunPeer = try? m.xorAddress(.xorPeerAddress)
        else { return [.respond(errorReply(.badRequest, to: m, key: auth.key))] }
        let peer = TransportAddress(stunPeer)
        if let code = refusal(for: peer, in: allocation) { return [.respond(errorReply(code, to: m, key: auth.key))] }
        let result = table.update(tuple) { a in
            a.bindChannel(number.rawValue, to: peer, until: now + configuration.channelLifetime,
                          permissionUntil: now + configuration.permissionLifetime, now: now)
        }
        guard result == .bound else { return [.respond(errorReply(.badRequest, to: m, key: auth.key))] }
        return [.respond(finish(m.response(.successResponse), request: m, key: auth.key))]
    }

    private func refusal(for peer: TransportAddress, in allocation: Allocation) -> ErrorCode? {
        if peer.ip.isIPv4 != allocation.relayAddress.ip.isIPv4 { return .peerAddressFamilyMismatch }
        // A network check only gathers its relayed candidate: it never needs a peer, and its
        // credential may be a stranger's, so it relays nothing.
        if isCheck(allocation.credentialID) { return .forbidden }
        return permitsPeer(peer) ? nil : .forbidden
    }

    /// The policy's verdict, except that another live allocation's relayed address on this relay
    /// is always a permitted peer: two parties that both need the relay reach each other through
    /// it, although the relay's own address is denied to everything else.
    private func permitsPeer(_ peer: TransportAddress) -> Bool {
        policy.permits(peer.ip) || table.isRelayedAddress(peer)
    }

    // MARK: - Data (RFC 8656 §10)

    private mutating func sendIndication(_ m: STUNMessage, from tuple: FiveTuple, now: Instant) -> [TURNAction] {
        guard let stunPeer = try? m.xorAddress(.xorPeerAddress), let data = m.data else { return [] }
        let peer = TransportAddress(stunPeer)
        guard permitsPeer(peer),
              let relay = table.sendIndicationToPeer(from: tuple, peer: peer, bytes: data.count, now: now)
        else { return [] }
        return [.sendToPeer(relay: relay, peer: peer, data: data)]
    }

    public mutating func channelDataToPeer(from tuple: FiveTuple, channel: UInt16, bytes: Int, now: Instant) -> (relay: TransportAddress, peer: TransportAddress)? {
        table.channelDataToPeer(from: tuple, channel: channel, bytes: bytes, now: now)
    }

    public mutating func peerDataToClient(relay: TransportAddress, peer: TransportAddress, bytes: Int, now: Instant) -> (client: FiveTuple, channel: UInt16?)? {
        table.peerDataToClient(relay: relay, peer: peer, bytes: bytes, now: now)
    }

    // MARK: - Housekeeping

    /// Whether the client has an allocation or is getting one (its relay socket is being bound).
    public func hasAllocation(for tuple: FiveTuple) -> Bool {
        table[tuple] != nil || pending[tuple] != nil
    }

    /// Drops expired allocations (closing their relays), permissions, channels and rate-limit entries.
    public mutating func expire(now: Instant) -> [TURNAction] {
        unauthenticatedBudget = unauthenticatedBudget.filter { now - $0.value.updatedAt < .seconds(10) }
        revoked = revoked.filter { $0.value > now }
        return table.expire(now: now).map { .closeRelay($0.relayAddress) }
    }

    /// Signalling says these credentials' holders left the call: their allocations end now rather
    /// than at the end of their lifetime (a closing browser does not always send Refresh 0 over UDP),
    /// and their credentials are refused from now on, though they have hours left.
    public mutating func release(credentialIDs: Set<String>, now: Instant) -> [TURNAction] {
        for id in credentialIDs { revoked[id] = now + configuration.revokedCredentialRetention }
        return table.remove(credentialIDs: credentialIDs).map { .closeRelay($0.relayAddress) }
    }

    /// The client's TCP/TLS connection closed: its allocation goes with it (RFC 8656 §3.1).
    public mutating func clientDisconnected(_ tuple: FiveTuple) -> [TURNAction] {
        pending[tuple] = nil
        return table.remove(tuple).map { [.closeRelay($0.relayAddress)] } ?? []
    }

    // MARK: - Encoding

    private func errorReply(_ code: ErrorCode, to request: STUNMessage, key: STUNKey?) -> [UInt8] {
        var response = request.response(.errorResponse)
        response.appendErrorCode(code)
        return finish(response, request: request, key: key)
    }

    /// How a response is signed: as the client signed its request.
    private struct ReplyStyle {
        var sha256: Bool
        var fingerprint: Bool

        init(_ request: STUNMessage) {
            sha256 = request.contains(.messageIntegritySHA256)
            fingerprint = request.contains(.fingerprint)
        }

        init(_ pending: PendingAllocation) {
            sha256 = pending.usesSHA256
            fingerprint = pending.wantsFingerprint
        }
    }

    private func finish(_ message: STUNMessage, request: STUNMessage, key: STUNKey?) -> [UInt8] {
        finish(message, style: ReplyStyle(request), key: key)
    }

    private func finish(_ message: STUNMessage, style: ReplyStyle, key: STUNKey?) -> [UInt8] {
        var message = message
        if let key {
            if style.sha256 { message.appendMessageIntegritySHA256(key: key) } else { message.appendMessageIntegrity(key: key) }
        }
        if style.fingerprint { message.appendFingerprint() }
        return message.serialize()
    }
}
