import Testing
@testable import TURN

@Suite struct PeerPolicyTests {
    static let denied: [String] = [
        "0.0.0.0", "0.255.255.255",
        "127.0.0.1", "127.255.255.254",
        "10.0.0.1", "10.255.255.255",
        "172.16.0.1", "172.31.255.255",
        "192.168.0.1", "192.168.255.255",
        "100.64.0.1", "100.127.255.255",
        "169.254.169.254", "169.254.0.1",
        "192.0.0.8",
        "198.18.0.1", "198.19.255.255",
        "224.0.0.1", "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "::", "::1",
        "::127.0.0.1",
        "fe80::1", "febf::ffff",
        "fc00::1", "fd12:3456::1",
        "fec0::1",
        "ff02::1", "ff0e::fb",
        "100::1",
        // IPv4-mapped, NAT64 and 6to4 forms of denied IPv4 ranges.
        "::ffff:127.0.0.1", "::ffff:10.1.2.3", "::ffff:169.254.169.254", "::ffff:192.168.1.1",
        "::ffff:0.0.0.0", "::ffff:224.0.0.1", "::ffff:255.255.255.255",
        "64:ff9b::7f00:1", "64:ff9b::a00:1",
        "2002:7f00:1::1", "2002:c0a8:101::1",
    ]

    static let allowed: [String] = [
        "8.8.8.8", "1.1.1.1", "9.255.255.255", "11.0.0.0", "172.15.255.255", "172.32.0.0",
        "192.167.255.255", "192.169.0.0", "100.63.255.255", "100.128.0.0", "169.253.255.255",
        "198.51.100.7", "203.0.113.5", "223.255.255.255",
        "2001:db8::1", "2a00:1450:4001::200e", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
    ]

    @Test(arguments: denied)
    func deniesByDefault(_ text: String) throws {
        let ip = try #require(IPAddress(text))
        #expect(!PeerPolicy().permits(ip), "\(text) must be denied")
    }

    @Test(arguments: allowed)
    func allowsPublicAddresses(_ text: String) throws {
        let ip = try #require(IPAddress(text))
        #expect(PeerPolicy().permits(ip), "\(text) must be allowed")
    }

    @Test func everyDefaultRangeIsCoveredByTheTable() {
        #expect(PeerPolicy.deniedByDefault.count == 20)
        for entry in PeerPolicy.deniedByDefault {
            let hit = Self.denied.compactMap(IPAddress.init).contains { entry.range.contains($0) }
            #expect(hit, "no table entry inside \(entry.range)")
        }
    }

    @Test func loopbackNeedsTheExplicitUnsafeOption() throws {
        let loop4 = try #require(IPAddress("127.0.0.1")), loop6 = try #require(IPAddress("::1"))
        let policy = PeerPolicy(allowLoopback: true, ownAddresses: [loop4])
        #expect(policy.permits(loop4))
        #expect(policy.permits(loop6))
        #expect(!policy.permits(try #require(IPAddress("10.0.0.1"))))
        #expect(!policy.permits(try #require(IPAddress("::ffff:10.0.0.1"))))
    }

    @Test func ownAddressesAreDenied() throws {
        let own = try #require(IPAddress("203.0.113.9"))
        #expect(!PeerPolicy(ownAddresses: [own]).permits(own))
        #expect(!PeerPolicy(ownAddresses: [own]).permits(try #require(IPAddress("::ffff:203.0.113.9"))))
    }

    @Test func explicitAllowAndDenyRanges() throws {
        let policy = PeerPolicy(
            allowed: [try #require(IPRange("10.20.0.0/16"))],
            denied: [try #require(IPRange("198.51.100.0/24"))])
        #expect(policy.permits(try #require(IPAddress("10.20.1.1"))))
        #expect(!policy.permits(try #require(IPAddress("10.21.1.1"))))
        #expect(!policy.permits(try #require(IPAddress("198.51.100.7"))))
    }

    @Test func rangeParsing() {
        #expect(IPRange("10.0.0.0/33") == nil)
        #expect(IPRange("fe80::/129") == nil)
        #expect(IPRange("nonsense") == nil)
        #expect(IPRange("::/0")?.contains(IPAddress("2001:db8::1")!) == true)
        #expect(IPRange("0.0.0.0/0")?.contains(IPAddress("::1")!) == false)
    }
}
