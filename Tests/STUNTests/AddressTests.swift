import STUN
import Testing

@Suite("STUNAddress")
struct AddressTests {
    @Test(arguments: [
        ("192.0.2.1", "192.0.2.1"),
        ("0.0.0.0", "0.0.0.0"),
        ("255.255.255.255", "255.255.255.255"),
        ("::", "::"),
        ("::1", "::1"),
        ("2001:DB8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:0db8:0000:0000:0000:0000:0002:0001", "2001:db8::2:1"),
        ("1:0:2:0:3:0:4:0", "1:0:2:0:3:0:4:0"),
        ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
        ("fe80::", "fe80::"),
        ("::ffff:7f00:1", "::ffff:127.0.0.1"),
        ("::ffff:192.0.2.9", "::ffff:192.0.2.9"),
        ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
    ])
    func canonicalText(input: String, canonical: String) throws {
        let address = try #require(STUNAddress(ip: input, port: 3478))
        #expect(address.ipString == canonical)
        #expect(STUNAddress(ip: canonical, port: 3478) == address)
        #expect(STUNAddress(ipBytes: address.ipBytes, port: 3478) == address)
    }

    @Test(arguments: [
        "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.04444", "1..2.3", "a.b.c.d", " 1.2.3.4",
        ":", ":::", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", ":1::", "1:", "g::",
        "::1.2.3", "1:2:3:4:5:6:7:1.2.3.4", "fe80::1%eth0",
    ])
    func rejectsBadText(input: String) {
        #expect(STUNAddress(ip: input, port: 1) == nil)
    }

    @Test func hostPortText() throws {
        let v4 = try #require(STUNAddress("198.51.100.4:65535"))
        #expect(v4.ipv4 == 0xC633_6404)
        #expect(v4.port == 65535)
        #expect(v4.description == "198.51.100.4:65535")
        let v6 = try #require(STUNAddress("[2001:db8::1]:3478"))
        #expect(v6.family == .ipv6)
        #expect(v6.description == "[2001:db8::1]:3478")
        #expect(v6.ipv4 == nil)
        for bad in ["1.2.3.4", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:+1", "2001:db8::1:80", "[::1]80", "[::1"] {
            #expect(STUNAddress(bad) == nil, "\(bad)")
        }
        #expect(try #require(STUNAddress("127.0.0.1:1")).isLoopback)
        #expect(try #require(STUNAddress("[::1]:1")).isLoopback)
        #expect(STUNAddress(ipBytes: [1, 2, 3], port: 1) == nil)
    }

    @Test func xorAndPlainEncodingsRoundTrip() throws {
        var generator = SplitMix64(state: 7)
        for _ in 0..<200 {
            let v4 = STUNAddress(ipv4: UInt32.random(in: .min ... .max, using: &generator), port: .random(in: 0...65535, using: &generator))
            let v6 = STUNAddress(ipv6High: generator.next(), ipv6Low: generator.next(), port: .random(in: 0...65535, using: &generator))
            var message = STUNMessage(method: .allocate, class: .successResponse, transactionID: .random(using: &generator))
            message.appendXORAddress(.xorRelayedAddress, v4)
            message.appendXORAddress(.xorRelayedAddress, v6)
            message.appendAddress(.alternateServer, v6)
            let parsed = try STUNMessage(bytes: message.serialize())
            #expect(try parsed.xorAddresses(.xorRelayedAddress) == [v4, v6])
            #expect(try parsed.address(.alternateServer) == v6)
            #expect(STUNAddress(ip: v6.ipString, port: v6.port) == v6)
            #expect(STUNAddress(v4.description) == v4)
        }
    }
}
