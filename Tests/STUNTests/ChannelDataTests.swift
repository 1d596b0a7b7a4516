import STUN
import Testing

@Suite("ChannelData and stream framing")
struct ChannelDataTests {
    @Test func headerAndPayload() throws {
        let frame: [UInt8] = [0x40, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]
        let header = try ChannelData.header(of: frame)
        #expect(header == ChannelData.Header(channel: ChannelNumber(rawValue: 0x4001), length: 5))
        #expect(header.frameLength(padded: false) == 9)
        #expect(header.frameLength(padded: true) == 12)
        let parsed = try ChannelData(bytes: frame + [0, 0, 0])
        #expect(parsed.channel.rawValue == 0x4001)
        #expect(parsed.payload == [1, 2, 3, 4, 5])
        let raw = try frame.withUnsafeBytes { buffer throws(STUNParseError) in try ChannelData.header(of: buffer) }
        #expect(raw == header)
    }

    @Test(arguments: [
        ([UInt8](), STUNParseError.truncatedChannelData),
        ([0x40, 0x00], .truncatedChannelData),
        ([0x40, 0x00, 0x00, 0x05, 1, 2], .truncatedChannelData),
        ([0x3F, 0xFF, 0x00, 0x00], .invalidChannelNumber(0x3FFF)),
        ([0x50, 0x00, 0x00, 0x00], .invalidChannelNumber(0x5000)),
        ([0x7F, 0xFF, 0x00, 0x00], .invalidChannelNumber(0x7FFF)),
    ])
    func malformedHeader(bytes: [UInt8], error: STUNParseError) {
        #expect(throws: error) { try ChannelData.header(of: bytes) }
        #expect(throws: error) { try ChannelData.header(of: bytes[...]) }
        #expect(throws: error) {
            try bytes.withUnsafeBytes { buffer throws(STUNParseError) in try ChannelData.header(of: buffer) }
        }
        #expect(throws: error) { try ChannelData(bytes: bytes) }
    }

    @Test func encoding() throws {
        let data = ChannelData(channel: ChannelNumber(rawValue: 0x4FFF), payload: Array("hello".utf8))
        #expect(data.serialize(padded: false) == [0x4F, 0xFF, 0x00, 0x05] + Array("hello".utf8))
        #expect(data.serialize(padded: true) == [0x4F, 0xFF, 0x00, 0x05] + Array("hello".utf8) + [0, 0, 0])
        #expect(try ChannelData(bytes: data.serialize(padded: true)) == data)
        let h = ChannelData.headerBytes(channel: ChannelNumber(rawValue: 0x4002), length: 0x0123)
        #expect([h.0, h.1, h.2, h.3] == [0x40, 0x02, 0x01, 0x23])
        #expect(!ChannelNumber(rawValue: 0x5000).isValid)
        #expect(ChannelNumber(rawValue: 0x4000).isValid)
    }

    @Test(arguments: [
        ([UInt8](), Int?.none),
        ([0x00], nil),
        ([0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xA4], nil),
        ([0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xA4, 0x42], 28),
        ([0x01, 0x01, 0xFF, 0xFC, 0x21, 0x12, 0xA4, 0x42], 20 + 0xFFFC),
        ([0x40, 0x00], nil),
        ([0x40, 0x00, 0x00], nil),
        ([0x40, 0x00, 0x00, 0x00], 4),
        ([0x40, 0x00, 0x00, 0x05, 1], 12),
        ([0x4F, 0xFF, 0x00, 0x08], 12),
    ])
    func frameLength(prefix: [UInt8], expected: Int?) throws {
        #expect(try StreamFraming.frameLength(of: prefix) == expected)
    }

    @Test(arguments: [
        ([UInt8]([0x80]), STUNParseError.notSTUNOrChannelData),
        ([0xFF, 0xFF, 0xFF, 0xFF], .notSTUNOrChannelData),
        ([0x50, 0x00, 0x00, 0x00], .invalidChannelNumber(0x5000)),
        ([0x00, 0x01, 0x00, 0x02, 0x21, 0x12, 0xA4, 0x42], .lengthNotMultipleOf4),
        ([0x00, 0x01, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04], .badMagicCookie),
    ])
    func framingGarbage(prefix: [UInt8], error: STUNParseError) {
        #expect(throws: error) { try StreamFraming.frameLength(of: prefix) }
    }

    /// Splits a stream of STUN messages and padded ChannelData frames the way a TCP reader would.
    @Test func splitsAStream() throws {
        var refresh = STUNMessage(method: .refresh, class: .request)
        refresh.appendLifetime(0)
        refresh.appendFingerprint()
        let stun = refresh.serialize()
        var stream: [UInt8] = []
        ChannelData.append(channel: ChannelNumber(rawValue: 0x4000), payload: [9, 9, 9, 9, 9], padded: true, to: &stream)
        stream += stun
        ChannelData.append(channel: ChannelNumber(rawValue: 0x4001), payload: [], padded: true, to: &stream)
        stream += stun.prefix(10)

        var rest = stream[...]
        var frames: [ArraySlice<UInt8>] = []
        while let length = try StreamFraming.frameLength(of: rest), rest.count >= length {
            frames.append(rest.prefix(length))
            rest = rest.dropFirst(length)
        }
        #expect(frames.map(\.count) == [12, stun.count, 4])
        #expect(try ChannelData(bytes: frames[0]).payload == [9, 9, 9, 9, 9])
        #expect(try STUNMessage(bytes: frames[1]) == refresh)
        #expect(try ChannelData(bytes: frames[2]).payload.isEmpty)
        #expect(rest.count == 10)
        #expect(try StreamFraming.frameLength(of: rest) == stun.count)
    }
}
