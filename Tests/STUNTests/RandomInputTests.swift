import STUN
import Testing

/// Random, truncated and bit-flipped inputs must only ever produce values or typed errors.
@Suite("Random input")
struct RandomInputTests {
    static let seeds: [[UInt8]] = [
        RFC5769.request, RFC5769.ipv4Response, RFC5769.ipv6Response, RFC5769.longTermRequest,
        ChannelData(channel: ChannelNumber(rawValue: 0x4000), payload: Array(0..<33)).serialize(padded: true),
    ]

    @Test func neverTraps() {
        var generator = SplitMix64(state: 0x5354_554E)
        let key = STUNKey.shortTerm(password: RFC5769.shortTermPassword)
        var parsedCount = 0
        for i in 0..<20_000 {
            let input = Self.input(iteration: i, using: &generator)
            if probe(input, key: key) { parsedCount += 1 }
        }
        // The generator is seeded: this count only moves when the decoder's acceptance rules change.
        #expect(parsedCount > 2_000)
    }

    static func input(iteration i: Int, using generator: inout SplitMix64) -> [UInt8] {
        let seed = seeds[i % seeds.count]
        switch i % 4 {
        case 0:
            return (0..<Int.random(in: 0..<120, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        case 1:
            return Array(seed.prefix(Int.random(in: 0...seed.count, using: &generator)))
        case 2:
            var bytes = seed
            for _ in 0...(i % 5) { bytes[Int.random(in: 0..<bytes.count, using: &generator)] ^= 1 << UInt8(i % 8) }
            return bytes
        default:
            // A valid header followed by random TLV soup stresses the attribute walker and accessors.
            let body = (0..<(4 * Int.random(in: 0..<30, using: &generator))).map { _ in
                UInt8.random(in: 0...255, using: &generator)
            }
            return stunMessage(body, type: UInt16.random(in: 0...0x3FFF, using: &generator))
        }
    }

    /// Runs every decoder over `input`; returns whether it parsed as a STUN message.
    func probe(_ input: [UInt8], key: STUNKey) -> Bool {
        _ = STUNMessage.isSTUN(input)
        _ = try? ChannelData.header(of: input)
        _ = try? ChannelData(bytes: input)
        if let length = try? StreamFraming.frameLength(of: input) {
            #expect(length >= 4)
        }
        guard let message = try? STUNMessage(bytes: input) else { return false }
        #expect(message.serialize() == input)
        _ = message.verifyMessageIntegrity(key: key)
        _ = message.verifyMessageIntegritySHA256(key: key)
        _ = message.verifyFingerprint()
        _ = message.unknownComprehensionRequiredAttributes()
        for attribute in message.attributes {
            _ = try? message.xorAddresses(attribute.type)
            _ = try? message.address(attribute.type)
            _ = try? message.string(attribute.type)
            _ = try? message.addressFamily(attribute.type)
        }
        _ = try? message.lifetime
        _ = try? message.channelNumber
        _ = try? message.requestedTransport
        _ = try? message.evenPort
        _ = try? message.reservationToken
        _ = try? message.errorCode
        _ = try? message.unknownAttributes
        _ = try? message.passwordAlgorithms
        _ = try? message.passwordAlgorithm
        if !message.contains(.fingerprint) {
            var copy = message
            copy.appendFingerprint()
            #expect(copy.verifyFingerprint())
        }
        return true
    }
}
