import Foundation
import STUN
import Testing
@testable import TURN

/// RFC 8656 rules on Refresh's address family (§7.3) and on reusing channels after they expire (§12).
@Suite struct ChannelHoldAndRefreshTests {
    typealias H = HandlerHarness

    @Test func refreshWithTheOtherAddressFamilyGets443() throws {
        var h = try H()
        _ = try h.allocate()
        let before = try #require(h.handler.table[h.tuple]).expiresAt
        h.advance(.seconds(10))
        let mismatch = try H.response(h.authed(.refresh) { $0.appendAddressFamily(.ipv6) })
        #expect(try mismatch.errorCode?.code == .peerAddressFamilyMismatch)
        #expect(mismatch.checkIntegrity(key: h.key) == .valid)
        // Refused means untouched: the lifetime was not extended.
        #expect(h.handler.table[h.tuple]?.expiresAt == before)
        #expect(try H.code(h.authed(.refresh) { $0.appendAddressFamily(.ipv4) }) == nil)
        #expect(h.handler.table[h.tuple]?.expiresAt == h.now + .seconds(600))
    }

    @Test func refreshOfAnIPv6AllocationAsIPv4Gets443() throws {
        var h = try H(configure: { $0.relayIPv6 = "2001:db8::1" })
        let actions = try h.authed(.allocate) {
            $0.appendRequestedTransport(.udp)
            $0.appendAddressFamily(.ipv6)
        }
        guard case .openRelay(let pending)? = actions.first else { Issue.record("no relay"); return }
        let relay = try TransportAddress("[2001:db8::1]:50000")
        let response = h.handler.completeAllocation(pending, relay: relay, now: h.now, date: h.date)
        #expect(response != nil)
        #expect(try H.code(h.authed(.refresh) { $0.appendAddressFamily(.ipv4) }) == 443)
        #expect(try H.code(h.authed(.refresh) { $0.appendAddressFamily(.ipv6) }) == nil)
    }

    @Test func anExpiredChannelIsHeldFiveMinutesBeforeRebindingDifferently() throws {
        var h = try H(configure: {
            $0.channelLifetime = .seconds(60)
            $0.defaultAllocationLifetime = .seconds(3600)
        })
        _ = try h.allocate()
        #expect(try H.code(h.bind(0x4000, "198.51.100.9:7000")) == nil)
        h.advance(.seconds(60))
        #expect(h.handler.channelDataToPeer(from: h.tuple, channel: 0x4000, bytes: 1, now: h.now) == nil)

        // Expired, but within the hold: neither the number nor the peer may go elsewhere,
        // and housekeeping must not forget the binding meanwhile.
        _ = h.handler.expire(now: h.now)
        #expect(try H.code(h.bind(0x4000, "198.51.100.10:7000")) == 400)
        #expect(try H.code(h.bind(0x4001, "198.51.100.9:7000")) == 400)
        h.advance(.seconds(299))
        _ = h.handler.expire(now: h.now)
        #expect(try H.code(h.bind(0x4000, "198.51.100.10:7000")) == 400)
        #expect(try H.code(h.bind(0x4001, "198.51.100.9:7000")) == 400)

        // After the hold both are free.
        h.advance(.seconds(1))
        #expect(try H.code(h.bind(0x4000, "198.51.100.10:7000")) == nil)
        #expect(try H.code(h.bind(0x4001, "198.51.100.9:7000")) == nil)
        let route = h.handler.channelDataToPeer(from: h.tuple, channel: 0x4000, bytes: 1, now: h.now)
        #expect(route?.peer == (try TransportAddress("198.51.100.10:7000")))
    }

    @Test func theSamePairMayBeReboundDuringTheHold() throws {
        var h = try H(configure: {
            $0.channelLifetime = .seconds(60)
            $0.defaultAllocationLifetime = .seconds(3600)
        })
        _ = try h.allocate()
        #expect(try H.code(h.bind(0x4000, "198.51.100.9:7000")) == nil)
        h.advance(.seconds(120))
        _ = h.handler.expire(now: h.now)
        #expect(try H.code(h.bind(0x4000, "198.51.100.9:7000")) == nil)
        #expect(h.handler.channelDataToPeer(from: h.tuple, channel: 0x4000, bytes: 1, now: h.now) != nil)
    }

    @Test func heldBindingsAreDroppedAfterTheHold() throws {
        var h = try H(configure: {
            $0.channelLifetime = .seconds(60)
            $0.defaultAllocationLifetime = .seconds(3600)
        })
        _ = try h.allocate()
        #expect(try H.code(h.bind(0x4000, "198.51.100.9:7000")) == nil)
        h.advance(.seconds(359))
        _ = h.handler.expire(now: h.now)
        #expect(h.handler.table[h.tuple]?.channels.count == 1)
        h.advance(.seconds(1))
        _ = h.handler.expire(now: h.now)
        #expect(h.handler.table[h.tuple]?.channels.isEmpty == true)
    }
}
