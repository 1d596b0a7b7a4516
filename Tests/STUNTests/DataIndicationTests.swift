import STUN
import Testing

@Suite("Data indication fast path")
struct DataIndicationTests {
    @Test(arguments: [0, 1, 3, 4, 5, 1200])
    func matchesGeneralEncoder(payloadLength: Int) throws {
        let id = TransactionID(high: 0x0102_0304, low: 0x0506_0708_090A_0B0C)
        let payload = (0..<payloadLength).map { UInt8(truncatingIfNeeded: $0) }
        for peer in [try #require(STUNAddress("192.0.2.10:5000")), try #require(STUNAddress("[2001:db8::9]:1"))] {
            var general = STUNMessage(method: .data, class: .indication, transactionID: id)
            general.appendXORAddress(.xorPeerAddress, peer)
            general.appendData(payload)
            let fast = try #require(STUNMessage.dataIndication(peer: peer, payload: payload, transactionID: id))
            #expect(fast == general.serialize())
            let parsed = try STUNMessage(bytes: fast)
            #expect(try parsed.xorAddress(.xorPeerAddress) == peer)
            #expect(parsed.data.map(Array.init) == payload)
        }
    }

    @Test func refusesOversizedPayload() throws {
        let peer = try #require(STUNAddress("[2001:db8::9]:1"))
        let largest = (STUNMessage.maxBodyLength - 4 - 20 - 4) & ~3
        #expect(STUNMessage.dataIndicationPrefix(peer: peer, payloadLength: largest) != nil)
        #expect(STUNMessage.dataIndicationPrefix(peer: peer, payloadLength: largest + 1) == nil)
        #expect(STUNMessage.dataIndicationPrefix(peer: peer, payloadLength: -1) == nil)
    }
}
