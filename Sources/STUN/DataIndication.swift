/// Direct encoding of TURN Data indications, the relay's per-packet STUN path for peers without a channel:
/// one buffer, no intermediate attribute values.
extension STUNMessage {
    /// Header, XOR-PEER-ADDRESS and the DATA attribute header: everything that precedes the payload.
    /// Write the payload after it, then `dataIndicationPadding(payloadLength:)` zero bytes.
    /// Returns nil when the payload cannot fit in one STUN message (drop the packet, RFC 8656 §11.3).
    public static func dataIndicationPrefix(
        peer: STUNAddress, payloadLength: Int, transactionID: TransactionID = .random()
    ) -> [UInt8]? {
        let address = encodeAddress(peer, xor: transactionID)
        let body = 4 + address.count + 4 + (payloadLength + 3) & ~3
        guard payloadLength >= 0, body <= maxBodyLength else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(headerLength + body - (payloadLength + 3) & ~3)
        out.appendBigEndian(STUNMessageType(method: .data, class: .indication).rawValue)
        out.appendBigEndian(UInt16(body))
        out.appendBigEndian(magicCookie)
        out.appendBigEndian(transactionID.high)
        out.appendBigEndian(transactionID.low)
        out.appendBigEndian(AttributeType.xorPeerAddress.rawValue)
        out.appendBigEndian(UInt16(address.count))
        out.append(contentsOf: address)
        out.appendBigEndian(AttributeType.data.rawValue)
        out.appendBigEndian(UInt16(payloadLength))
        return out
    }

    @inlinable
    public static func dataIndicationPadding(payloadLength: Int) -> Int { (4 - payloadLength % 4) % 4 }

    /// A complete Data indication, or nil when the payload is too large for one message.
    public static func dataIndication(
        peer: STUNAddress, payload: some Collection<UInt8>, transactionID: TransactionID = .random()
    ) -> [UInt8]? {
        guard var out = dataIndicationPrefix(peer: peer, payloadLength: payload.count, transactionID: transactionID)
        else { return nil }
        out.reserveCapacity(out.count + payload.count + 3)
        out.append(contentsOf: payload)
        out.append(contentsOf: repeatElement(0, count: dataIndicationPadding(payloadLength: payload.count)))
        return out
    }
}
