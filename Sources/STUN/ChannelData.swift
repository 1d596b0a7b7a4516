/// A TURN ChannelData message (RFC 8656 §12.4): 2-byte channel number, 2-byte length, payload.
public struct ChannelData: Hashable, Sendable {
    public static let headerLength = 4

    /// The fixed 4-byte header.
    public struct Header: Hashable, Sendable {
        public var channel: ChannelNumber
        /// Payload length in bytes, excluding the header and any padding.
        public var length: Int

        public init(channel: ChannelNumber, length: Int) {
            self.channel = channel
            self.length = length
        }

        /// Header plus payload, rounded up to a multiple of 4 when `padded` (mandatory over TCP/TLS).
        @inlinable
        public func frameLength(padded: Bool) -> Int {
            ChannelData.headerLength + (padded ? (length + 3) & ~3 : length)
        }
    }

    public var channel: ChannelNumber
    public var payload: ArraySlice<UInt8>

    public init(channel: ChannelNumber, payload: some Sequence<UInt8>) {
        self.channel = channel
        self.payload = ArraySlice(payload)
    }

    /// Parses a datagram or frame; the payload shares `bytes`. Trailing padding is allowed.
    public init(bytes: ArraySlice<UInt8>) throws(STUNParseError) {
        let header = try Self.header(of: bytes)
        let start = bytes.startIndex + Self.headerLength
        self.channel = header.channel
        self.payload = bytes[start..<(start + header.length)]
    }

    public init(bytes: [UInt8]) throws(STUNParseError) {
        try self.init(bytes: bytes[...])
    }

    /// Reads and checks the header without allocating: the channel must be 0x4000-0x4FFF and the declared
    /// payload must fit in `bytes`.
    @inlinable
    public static func header(of bytes: some Collection<UInt8>) throws(STUNParseError) -> Header {
        guard bytes.count >= headerLength else { throw .truncatedChannelData }
        let header = unsafeHeader(bytes)
        guard header.channel.isValid else { throw .invalidChannelNumber(header.channel.rawValue) }
        guard bytes.count - headerLength >= header.length else { throw .truncatedChannelData }
        return header
    }

    /// Same check over raw memory (e.g. inside `ByteBuffer.withUnsafeReadableBytes`).
    @inlinable
    public static func header(of buffer: UnsafeRawBufferPointer) throws(STUNParseError) -> Header {
        guard buffer.count >= headerLength else { throw .truncatedChannelData }
        let channel = UInt16(buffer[0]) << 8 | UInt16(buffer[1])
        let length = Int(UInt16(buffer[2]) << 8 | UInt16(buffer[3]))
        guard ChannelNumber.validRange.contains(channel) else { throw .invalidChannelNumber(channel) }
        guard buffer.count - headerLength >= length else { throw .truncatedChannelData }
        return Header(channel: ChannelNumber(rawValue: channel), length: length)
    }

    /// The header fields of at least 4 bytes, unchecked.
    @inlinable
    static func unsafeHeader(_ bytes: some Collection<UInt8>) -> Header {
        var i = bytes.startIndex
        var b = (UInt16(0), UInt16(0), UInt16(0), UInt16(0))
        b.0 = UInt16(bytes[i]); i = bytes.index(after: i)
        b.1 = UInt16(bytes[i]); i = bytes.index(after: i)
        b.2 = UInt16(bytes[i]); i = bytes.index(after: i)
        b.3 = UInt16(bytes[i])
        return Header(channel: ChannelNumber(rawValue: b.0 << 8 | b.1), length: Int(b.2 << 8 | b.3))
    }

    /// The 4 header bytes, for writing straight into an outgoing buffer.
    @inlinable
    public static func headerBytes(channel: ChannelNumber, length: Int) -> (UInt8, UInt8, UInt8, UInt8) {
        (UInt8(truncatingIfNeeded: channel.rawValue >> 8), UInt8(truncatingIfNeeded: channel.rawValue),
         UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length))
    }

    /// Encodes the frame; pad for TCP/TLS. Traps on a payload longer than 65535 bytes.
    public func serialize(padded: Bool) -> [UInt8] {
        var out = [UInt8]()
        Self.append(channel: channel, payload: payload, padded: padded, to: &out)
        return out
    }

    /// Appends a frame to `out` without building a `ChannelData` value first.
    public static func append(
        channel: ChannelNumber, payload: some Collection<UInt8>, padded: Bool, to out: inout [UInt8]
    ) {
        precondition(payload.count <= 0xFFFF, "ChannelData payload too long")
        let header = Header(channel: channel, length: payload.count)
        out.reserveCapacity(out.count + header.frameLength(padded: true))
        out.appendBigEndian(channel.rawValue)
        out.appendBigEndian(UInt16(payload.count))
        out.append(contentsOf: payload)
        if padded { out.append(contentsOf: repeatElement(0, count: (4 - payload.count % 4) % 4)) }
    }
}

/// Framing of the TURN byte stream over TCP/TLS, where STUN messages and padded ChannelData frames
/// alternate with no other delimiter (RFC 8656 §12.5).
public enum StreamFraming {
    /// Length of the complete frame that `prefix` starts with; nil when more bytes are needed to tell.
    /// Throws when the stream cannot be STUN or ChannelData, after which the connection is unusable.
    @inlinable
    public static func frameLength(of prefix: some Collection<UInt8>) throws(STUNParseError) -> Int? {
        guard let first = prefix.first else { return nil }
        switch PacketKind(firstByte: first) {
        case .stun:
            guard prefix.count >= 8 else { return nil }
            let length = Int(prefix.uint16(at: 2))
            guard length % 4 == 0 else { throw .lengthNotMultipleOf4 }
            guard prefix.uint32(at: 4) == STUNMessage.magicCookie else { throw .badMagicCookie }
            return STUNMessage.headerLength + length
        case .channelData:
            guard prefix.count >= ChannelData.headerLength else { return nil }
            let header = ChannelData.unsafeHeader(prefix)
            guard header.channel.isValid else { throw .invalidChannelNumber(header.channel.rawValue) }
            return header.frameLength(padded: true)
        case .other:
            throw .notSTUNOrChannelData
        }
    }
}
