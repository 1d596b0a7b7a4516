import STUN

/// What the pure request handler asks the I/O layer to do.
public enum TURNAction: Sendable, Equatable {
    /// Send these bytes (an encoded STUN message) back to the client on its 5-tuple.
    case respond([UInt8])
    /// Bind a relay socket, then call `TURNRequestHandler.completeAllocation` (or
    /// `failAllocation` if no port could be bound) and send the response it returns.
    case openRelay(PendingAllocation)
    /// Send a Send indication's data from the relayed address to the peer.
    case sendToPeer(relay: TransportAddress, peer: TransportAddress, data: ArraySlice<UInt8>)
    /// The allocation is gone: close its relay socket.
    case closeRelay(TransportAddress)
}

/// An Allocate request that passed every check and only lacks its relay socket.
public struct PendingAllocation: Sendable, Equatable {
    public enum Family: Sendable, Equatable { case ipv4, ipv6 }

    public let fiveTuple: FiveTuple
    public let family: Family
    /// EVEN-PORT asked for an even relay port.
    public let evenPort: Bool
    let transactionID: TransactionID
    let username: String
    let credentialID: String
    let key: STUNKey
    let usesSHA256: Bool
    let lifetime: Duration
    let wantsFingerprint: Bool

    func response(_ cls: STUNClass) -> STUNMessage {
        STUNMessage(method: .allocate, class: cls, transactionID: transactionID)
    }
}
