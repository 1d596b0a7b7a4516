import Foundation
import STUN
import Testing
@testable import TURN

@Suite struct RequestHandlerTests {
    typealias H = HandlerHarness

    @Test func bindingReturnsTheClientsAddress() throws {
        var h = try H()
        let response = try H.response(h.send(STUNMessage(method: .binding, class: .request)))
        #expect(response.class == .successResponse)
        #expect(try response.xorAddress(.xorMappedAddress) == h.tuple.client.stunAddress)
    }

    @Test func unauthenticatedAllocateIsChallengedWithASmallReply() throws {
        var h = try H()
        var request = STUNMessage(method: .allocate, class: .request)
        request.appendRequestedTransport(.udp)
        let actions = h.send(request)
        let response = try H.response(actions)
        #expect(try response.errorCode?.code == .unauthenticated)
        #expect(try response.realm == H.realm)
        #expect(try response.nonce != nil)
        guard case .respond(let bytes)? = actions.first else { return }
        // No amplification: the challenge stays within a few times a minimal request.
        #expect(bytes.count <= 4 * request.encodedLength)
        #expect(!response.contains(.messageIntegrity))
    }

    @Test func challengesAreRateLimitedPerClient() throws {
        var h = try H(configure: { $0.unauthenticatedRepliesPerSecond = 1 })
        let request = STUNMessage(method: .allocate, class: .request)
        let answered = (0..<40).filter { _ in !h.send(request).isEmpty }.count
        #expect(answered == 20)
        h.advance(.seconds(1))
        #expect(!h.send(request).isEmpty)
        let other = FiveTuple(client: try TransportAddress("198.51.100.8:1"), server: h.tuple.server, transport: .udp)
        #expect(!h.send(request, from: other).isEmpty)
    }

    @Test func allocateSucceedsAndIsSigned() throws {
        var h = try H()
        let relay = try h.allocate()
        let allocation = try #require(h.handler.table[h.tuple])
        #expect(allocation.relayAddress == relay)
        #expect(allocation.credentialID == "sess-1")
        #expect(allocation.expiresAt == h.now + .seconds(600))
    }

    @Test func retransmittedAllocateGetsTheSameAnswerAndAnotherGets437() throws {
        var h = try H()
        let first = try h.authed(.allocate) { $0.appendRequestedTransport(.udp) }
        guard case .openRelay(let pending)? = first.first else { Issue.record("no relay"); return }
        // While the relay socket is being bound, a retransmission (the same signed request) is ignored.
        var retransmission = STUNMessage(method: .allocate, class: .request, transactionID: pending.transactionID)
        retransmission.appendRequestedTransport(.udp)
        retransmission.appendString(.username, h.credentials.username)
        retransmission.appendString(.realm, H.realm)
        retransmission.appendString(.nonce, h.nonce ?? "")
        retransmission.appendMessageIntegrity(key: h.key)
        retransmission.appendFingerprint()
        #expect(h.send(retransmission).isEmpty)
        let relay = try TransportAddress("203.0.113.1:50000")
        _ = h.handler.completeAllocation(pending, relay: relay, now: h.now, date: h.date)
        let again = try H.response(h.send(retransmission))
        #expect(again.class == .successResponse)
        #expect(again.checkIntegrity(key: h.key) == .valid)
        #expect(try again.xorAddress(.xorRelayedAddress) == relay.stunAddress)
        #expect(try H.code(h.authed(.allocate) { $0.appendRequestedTransport(.udp) }) == 437)
    }

    @Test func allocateValidatesTransportAndFamily() throws {
        var h = try H()
        #expect(try H.code(h.authed(.allocate) { $0.appendRequestedTransport(.tcp) }) == 442)
        #expect(try H.code(h.authed(.allocate)) == 400)
        #expect(try H.code(h.authed(.allocate) {
            $0.appendRequestedTransport(.udp)
            $0.appendAddressFamily(.ipv6)
        }) == 440)
        #expect(try H.code(h.authed(.allocate) {
            $0.appendRequestedTransport(.udp)
            $0.appendReservationToken(42)
        }) == 508)
        #expect(try H.code(h.authed(.allocate) {
            $0.appendRequestedTransport(.udp)
            $0.appendEvenPort(reserveNext: true)
        }) == 508)
        let even = try h.authed(.allocate) {
            $0.appendRequestedTransport(.udp)
            $0.appendEvenPort(reserveNext: false)
            $0.appendDontFragment()
        }
        guard case .openRelay(let pending)? = even.first else { Issue.record("EVEN-PORT R=0 refused"); return }
        #expect(pending.evenPort)
    }

    @Test func ipv6RelayWhenConfigured() throws {
        var h = try H(configure: { $0.relayIPv6 = "2001:db8::1"; $0.relayIPv4 = nil })
        #expect(try H.code(h.authed(.allocate) { $0.appendRequestedTransport(.udp) }) == 440)
        let actions = try h.authed(.allocate) { $0.appendRequestedTransport(.udp); $0.appendAddressFamily(.ipv6) }
        guard case .openRelay(let pending)? = actions.first else { Issue.record("refused"); return }
        #expect(pending.family == .ipv6)
    }

    @Test func wrongPasswordAndExpiredUsernameGet401() throws {
        var h = try H()
        #expect(try H.code(h.authed(.allocate, password: "guess") { $0.appendRequestedTransport(.udp) }) == 401)
        h.credentials = TURNCredentials.issue(secret: H.secret, id: "old", ttl: .seconds(60), now: h.date - 120)
        #expect(try H.code(h.authed(.allocate) { $0.appendRequestedTransport(.udp) }) == 401)
    }

    @Test func staleNonceGets438AndTheClientRetries() throws {
        var h = try H()
        _ = try h.authed(.binding)  // fetches a nonce
        h.advance(.seconds(601))
        h.credentials = TURNCredentials.issue(secret: H.secret, id: "sess-1", ttl: .seconds(3600), now: h.date)
        let stale = try H.response(h.authed(.allocate) { $0.appendRequestedTransport(.udp) })
        #expect(try stale.errorCode?.code == .staleNonce)
        h.nonce = try stale.nonce
        let retry = try h.authed(.allocate) { $0.appendRequestedTransport(.udp) }
        guard case .openRelay? = retry.first else { Issue.record("retry refused"); return }
        h.nonce = "forged.0123456789abcdef01234567"
        let other = FiveTuple(client: try TransportAddress("198.51.100.7:2"), server: h.tuple.server, transport: .udp)
        #expect(try H.code(h.authed(.allocate, from: other) { $0.appendRequestedTransport(.udp) }) == 438)
    }

    @Test func requestsWithoutAllocationGet437() throws {
        var h = try H()
        #expect(try H.code(h.authed(.refresh)) == 437)
        #expect(try H.code(h.permit("198.51.100.9:1")) == 437)
        #expect(try H.code(h.bind(0x4000, "198.51.100.9:1")) == 437)
    }

    @Test func refreshWithAnotherUsernameGets441() throws {
        var h = try H()
        _ = try h.allocate()
        h.credentials = TURNCredentials.issue(secret: H.secret, id: "someone-else", ttl: .seconds(3600), now: h.date)
        #expect(try H.code(h.authed(.refresh)) == 441)
    }

    @Test func refreshExtendsAndZeroDeletes() throws {
        var h = try H()
        let relay = try h.allocate()
        let response = try H.response(h.authed(.refresh) { $0.appendLifetime(99_999) })
        #expect(try response.lifetime == 3600)
        #expect(h.handler.table[h.tuple]?.expiresAt == h.now + .seconds(3600))
        let gone = try h.authed(.refresh) { $0.appendLifetime(0) }
        #expect(gone.contains(.closeRelay(relay)))
        #expect(try H.response(gone).lifetime == 0)
        #expect(h.handler.table.count == 0)
    }

    @Test func allocationsExpire() throws {
        var h = try H()
        let relay = try h.allocate()
        h.advance(.seconds(599))
        #expect(h.handler.expire(now: h.now).isEmpty)
        h.advance(.seconds(1))
        #expect(h.handler.expire(now: h.now) == [.closeRelay(relay)])
    }

    @Test func permissionsGateTrafficAndExpireAfter300s() throws {
        var h = try H()
        let relay = try h.allocate()
        let peer = try TransportAddress("198.51.100.9:7000")
        #expect(h.handler.peerDataToClient(relay: relay, peer: peer, bytes: 10, now: h.now) == nil)
        #expect(try H.code(h.permit("198.51.100.9:1")) == nil)
        #expect(h.handler.peerDataToClient(relay: relay, peer: peer, bytes: 10, now: h.now)?.channel == .some(nil))
        h.advance(.seconds(300))
        #expect(h.handler.peerDataToClient(relay: relay, peer: peer, bytes: 10, now: h.now) == nil)
    }

    @Test(arguments: ["127.0.0.1:1", "10.0.0.1:1", "169.254.169.254:80", "224.0.0.1:5", "203.0.113.1:9"])
    func deniedPeersGet403(_ peer: String) throws {
        var h = try H(policy: PeerPolicy(ownAddresses: [.v4(0xCB00_7101)]))
        _ = try h.allocate()
        #expect(try H.code(h.permit(peer)) == 403)
        #expect(try H.code(h.bind(0x4001, peer)) == 403)
    }

    @Test func peerOfTheOtherFamilyGets443() throws {
        var h = try H()
        _ = try h.allocate()
        #expect(try H.code(h.permit("[2001:db8::9]:1")) == 443)
    }

    @Test func channelBindRoutesBothWaysAndExpires() throws {
        var h = try H()
        let relay = try h.allocate()
        let peer = try TransportAddress("198.51.100.9:7000")
        #expect(try H.code(h.bind(0x4000, "198.51.100.9:7000")) == nil)
        let route = h.handler.channelDataToPeer(from: h.tuple, channel: 0x4000, bytes: 100, now: h.now)
        #expect(route?.relay == relay && route?.peer == peer)
        #expect(h.handler.peerDataToClient(relay: relay, peer: peer, bytes: 50, now: h.now)?.channel == 0x4000)
        // The same number for another peer, or another number for this peer, is refused.
        #expect(try H.code(h.bind(0x4000, "198.51.100.10:7000")) == 400)
        #expect(try H.code(h.bind(0x4001, "198.51.100.9:7000")) == 400)
        #expect(try H.code(h.bind(0x3FFF, "198.51.100.10:7000")) == 400)
        #expect(try H.code(h.bind(0x8000, "198.51.100.10:7000")) == 400)
        let stats = try #require(h.handler.table.statistics().first)
        #expect(stats.bytesToPeer == 100 && stats.packetsToPeer == 1)
        #expect(stats.bytesFromPeer == 50 && stats.packetsFromPeer == 1)
        #expect(stats.credentialID == "sess-1" && stats.transport == .udp)
        h.advance(.seconds(300))
        #expect(h.handler.channelDataToPeer(from: h.tuple, channel: 0x4000, bytes: 1, now: h.now) == nil)
        #expect(try H.code(h.permit("198.51.100.9:1")) == nil)
        #expect(h.handler.channelDataToPeer(from: h.tuple, channel: 0x4000, bytes: 1, now: h.now) != nil)
        h.advance(.seconds(299))
        #expect(try H.code(h.authed(.refresh)) == nil)
        h.advance(.seconds(1))
        #expect(try H.code(h.permit("198.51.100.9:1")) == nil)
        // The binding (600 s) has lapsed although allocation and permission are live.
        #expect(h.handler.channelDataToPeer(from: h.tuple, channel: 0x4000, bytes: 1, now: h.now) == nil)
    }

    @Test func sendIndicationNeedsAPermission() throws {
        var h = try H()
        let relay = try h.allocate()
        let peer = try TransportAddress("198.51.100.9:7000")
        var send = STUNMessage(method: .send, class: .indication)
        send.appendXORAddress(.xorPeerAddress, peer.stunAddress)
        send.appendData([1, 2, 3])
        #expect(h.send(send).isEmpty)
        _ = try h.permit("198.51.100.9:1")
        #expect(h.send(send) == [.sendToPeer(relay: relay, peer: peer, data: [1, 2, 3])])
    }

    @Test func quotasPerUserAndTotal() throws {
        var h = try H(configure: { $0.maxAllocationsPerUser = 2; $0.maxAllocations = 3 })
        func tuple(_ port: Int) throws -> FiveTuple {
            FiveTuple(client: try TransportAddress("198.51.100.7:\(port)"), server: h.tuple.server, transport: .udp)
        }
        _ = try h.allocate(from: tuple(1))
        _ = try h.allocate(from: tuple(2))
        #expect(try H.code(h.authed(.allocate, from: tuple(3)) { $0.appendRequestedTransport(.udp) }) == 486)
        h.credentials = TURNCredentials.issue(secret: H.secret, id: "sess-2", ttl: .seconds(3600), now: h.date)
        _ = try h.allocate(from: tuple(4))
        #expect(try H.code(h.authed(.allocate, from: tuple(5)) { $0.appendRequestedTransport(.udp) }) == 508)
    }

    @Test func bandwidthCapDropsTheExcess() throws {
        var h = try H(configure: { $0.maxBandwidthBytesPerSecond = 100_000 })
        _ = try h.allocate()
        _ = try h.bind(0x4000, "198.51.100.9:7000")
        let sent = (0..<200).filter { _ in
            h.handler.channelDataToPeer(from: h.tuple, channel: 0x4000, bytes: 1000, now: h.now) != nil
        }.count
        #expect(sent == 100)
        h.advance(.milliseconds(500))
        #expect(h.handler.channelDataToPeer(from: h.tuple, channel: 0x4000, bytes: 1000, now: h.now) != nil)
        #expect(h.handler.table.statistics().first?.packetsDropped == 100)
    }

    @Test func disconnectWhileTheRelayIsBeingBoundLeavesNothing() throws {
        var h = try H(transport: .tcp)
        let actions = try h.authed(.allocate) { $0.appendRequestedTransport(.udp) }
        guard case .openRelay(let pending)? = actions.first else { Issue.record("refused"); return }
        #expect(h.handler.clientDisconnected(h.tuple).isEmpty)
        #expect(h.handler.completeAllocation(pending, relay: try TransportAddress("203.0.113.1:50000"), now: h.now, date: h.date) == nil)
        #expect(h.handler.table.count == 0)
    }

    @Test func releasingACredentialEndsOnlyItsAllocations() throws {
        var h = try H()
        func tuple(_ port: Int) throws -> FiveTuple {
            FiveTuple(client: try TransportAddress("198.51.100.7:\(port)"), server: h.tuple.server, transport: .udp)
        }
        let first = try h.allocate(from: tuple(1))
        let second = try h.allocate(from: tuple(2))
        h.credentials = TURNCredentials.issue(secret: H.secret, id: "sess-2", ttl: .seconds(3600), now: h.date)
        _ = try h.allocate(from: tuple(3))
        #expect(h.handler.release(credentialIDs: ["sess-unknown"], now: h.now).isEmpty)
        let released = h.handler.release(credentialIDs: ["sess-1"], now: h.now)
        #expect(released.count == 2 && released.contains(.closeRelay(first)) && released.contains(.closeRelay(second)))
        #expect(h.handler.table.count == 1)
        #expect(h.handler.table.allocationCount(credentialID: "sess-1") == 0)
        #expect(h.handler.table.allocationCount(credentialID: "sess-2") == 1)
    }

    @Test func streamDisconnectDeletesTheAllocation() throws {
        var h = try H(transport: .tcp)
        let relay = try h.allocate()
        #expect(h.handler.clientDisconnected(h.tuple) == [.closeRelay(relay)])
        #expect(h.handler.table.count == 0)
    }

    @Test func unknownComprehensionRequiredAttributeGets420() throws {
        var h = try H()
        let response = try H.response(h.authed(.allocate) {
            $0.appendRequestedTransport(.udp)
            $0.append(AttributeType(rawValue: 0x7ABC), value: [0, 0, 0, 0])
        })
        #expect(try response.errorCode?.code == .unknownAttribute)
        #expect(try response.unknownAttributes == [AttributeType(rawValue: 0x7ABC)])
    }

    private static func tuple(_ port: Int, of h: H) throws -> FiveTuple {
        FiveTuple(client: try TransportAddress("198.51.100.7:\(port)"), server: h.tuple.server, transport: .udp)
    }

    @Test func errorsAfterAuthenticationAreSignedAsTheRequestWas() throws {
        var h = try H()
        let response = try H.response(h.authed(.refresh))
        #expect(try response.errorCode?.code == .allocationMismatch)
        #expect(response.checkIntegrity(key: h.key) == .valid)
        let unknown = try H.response(h.authed(.refresh) { $0.append(AttributeType(rawValue: 0x7ABC), value: [0, 0, 0, 0]) })
        #expect(try unknown.errorCode?.code == .unknownAttribute)
        #expect(unknown.checkIntegrity(key: h.key) == .valid)
    }

    @Test func bindingWithUnknownComprehensionRequiredAttributeGets420() throws {
        var h = try H()
        var m = STUNMessage(method: .binding, class: .request)
        m.append(AttributeType(rawValue: 0x7ABC), value: [0, 0, 0, 0])
        let response = try H.response(h.send(m))
        #expect(try response.errorCode?.code == .unknownAttribute)
        #expect(try response.unknownAttributes == [AttributeType(rawValue: 0x7ABC)])
    }

    @Test func everyUnauthenticatedErrorIsRateLimited() throws {
        var h = try H(configure: { $0.unauthenticatedRepliesPerSecond = 1 })
        let unknownMethod = STUNMessage(method: STUNMethod(rawValue: 0x0FF), class: .request)
        #expect((0..<40).filter { _ in !h.send(unknownMethod).isEmpty }.count == 20)
        var h2 = try H(configure: { $0.unauthenticatedRepliesPerSecond = 1 })
        let refresh = STUNMessage(method: .refresh, class: .request)
        #expect((0..<40).filter { _ in !h2.send(refresh).isEmpty }.count == 20)
    }

    @Test func allocationsNeverOutliveTheirCredential() throws {
        var h = try H()
        h.credentials = TURNCredentials.issue(secret: H.secret, id: "short", ttl: .seconds(120), now: h.date)
        let actions = try h.authed(.allocate) { $0.appendRequestedTransport(.udp); $0.appendLifetime(3600) }
        guard case .openRelay(let pending)? = actions.first else { Issue.record("refused"); return }
        #expect(pending.lifetime == .seconds(120))
    }

    @Test func checkCredentialsHaveTheirOwnQuotaAndAShortLifetime() throws {
        var h = try H(configure: { $0.maxCheckAllocations = 2 })
        for port in 1...2 {
            h.credentials = TURNCredentials.issue(secret: H.secret, id: "check-\(port)", ttl: .seconds(120), now: h.date)
            _ = try h.allocate(from: Self.tuple(port, of: h))
        }
        #expect(h.handler.table.allocations.values.allSatisfy { $0.expiresAt == h.now + .seconds(60) })
        // A check only gathers its candidate: it may not relay to anyone.
        let peer = try TransportAddress("198.51.100.9:1")
        #expect(try H.code(h.authed(.createPermission, from: Self.tuple(2, of: h)) {
            $0.appendXORAddress(.xorPeerAddress, peer.stunAddress)
        }) == 403)
        h.credentials = TURNCredentials.issue(secret: H.secret, id: "check-3", ttl: .seconds(120), now: h.date)
        #expect(try H.code(h.authed(.allocate, from: Self.tuple(3, of: h)) { $0.appendRequestedTransport(.udp) }) == 486)
        h.credentials = TURNCredentials.issue(secret: H.secret, id: "participant", ttl: .seconds(3600), now: h.date)
        _ = try h.allocate(from: Self.tuple(4, of: h))
    }

    @Test func aLeftParticipantsCredentialAllocatesNoMore() throws {
        var h = try H()
        _ = try h.allocate(from: Self.tuple(1, of: h))
        _ = h.handler.release(credentialIDs: ["sess-1"], now: h.now)
        #expect(try H.code(h.authed(.allocate, from: Self.tuple(2, of: h)) { $0.appendRequestedTransport(.udp) }) == 401)
        h.credentials = TURNCredentials.issue(secret: H.secret, id: "sess-2", ttl: .seconds(3600), now: h.date)
        _ = try h.allocate(from: Self.tuple(3, of: h))
    }

    @Test func anotherAllocationsRelayedAddressIsThePermittedOwnAddress() throws {
        let own = try #require(IPAddress("203.0.113.1"))
        var h = try H(policy: PeerPolicy(ownAddresses: [own]))
        _ = try h.allocate(from: Self.tuple(1, of: h))
        let other = try h.allocate(from: Self.tuple(2, of: h))
        let permit = { (h: inout H, peer: TransportAddress) in
            try H.code(h.authed(.createPermission, from: Self.tuple(1, of: h)) { $0.appendXORAddress(.xorPeerAddress, peer.stunAddress) })
        }
        #expect(try permit(&h, other) == nil)
        #expect(try permit(&h, TransportAddress("203.0.113.1:3478")) == 403)
        #expect(try permit(&h, TransportAddress("203.0.113.1:\(other.port + 1)")) == 403)
    }
}

@Suite struct CredentialTests {
    @Test func restCredentialsMatchCoturn() {
        // Reference value computed independently (Python hmac/base64) for the same inputs.
        let issued = TURNCredentials.issue(
            secret: "north-wind", id: "sess-1", ttl: .seconds(3600), now: Date(timeIntervalSince1970: 1_800_000_000))
        #expect(issued.username == "1800003600:sess-1")
        #expect(issued.password == "cwsocu4s4dA6CX9SmwY7JmpNl+g=")
        #expect(issued.expiresAt == Date(timeIntervalSince1970: 1_800_003_600))
        let parsed = TURNCredentials.parse(username: issued.username)
        #expect(parsed?.expiresAt == 1_800_003_600 && parsed?.id == "sess-1")
        #expect(TURNCredentials.parse(username: "alice") == nil)
    }

    @Test func noncesExpireAndAreBoundToTheClient() throws {
        let issuer = NonceIssuer(lifetimeSeconds: 600)
        let a = try #require(IPAddress("198.51.100.7")), b = try #require(IPAddress("198.51.100.8"))
        let nonce = issuer.make(for: a, unixNow: 1000)
        #expect(issuer.check(nonce, for: a, unixNow: 1600) == .valid)
        #expect(issuer.check(nonce, for: a, unixNow: 1601) == .stale)
        #expect(issuer.check(nonce, for: b, unixNow: 1000) == .stale)
        #expect(issuer.check("garbage", for: a, unixNow: 1000) == .stale)
    }
}
