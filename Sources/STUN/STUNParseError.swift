/// Why a STUN message, attribute value or ChannelData frame was rejected.
public enum STUNParseError: Error, Hashable, Sendable {
    /// Fewer than the 20 header bytes.
    case truncatedHeader
    /// The two leading bits of the message type are not zero.
    case notSTUN
    case badMagicCookie
    case lengthNotMultipleOf4
    /// The header's length field disagrees with the number of bytes supplied.
    case lengthMismatch
    /// An attribute header or value runs past the end of the message.
    case truncatedAttribute
    /// FINGERPRINT must be the last attribute.
    case attributeAfterFingerprint
    /// The attribute's value does not have the shape its type requires.
    case malformedAttribute(AttributeType)
    /// A ChannelData frame whose channel is outside 0x4000-0x4FFF.
    case invalidChannelNumber(UInt16)
    /// A ChannelData frame shorter than its 4-byte header plus declared length.
    case truncatedChannelData
    /// A stream frame that is neither STUN nor ChannelData.
    case notSTUNOrChannelData
}
