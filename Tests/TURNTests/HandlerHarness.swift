import Foundation
import STUN
@testable import TURN

enum TestError: Error { case noResponse, unexpected(String) }

extension TransportAddress {
    init(_ text: String) throws {
        guard let stun = STUNAddress(text) else { throw TestError.unexpected("bad address \(text)") }
        self.init(stun)
    }
}

/// Drives a `TURNRequestHandler` as a client would, with a clock the test moves by hand.
struct HandlerHarness {
    static let secret = "north-wind"
    static let realm = "test.realm"

    var handler: TURNRequestHandler
    var now = ContinuousClock.now
    var date = Date(timeIntervalSince1970: 1_800_000_000)
    var nonce: String?
    var credentials: TURNCredentials.Issued
    let tuple: FiveTuple
    var nextRelayPort: UInt16 = 49152

    init(configure: (inout TURNConfiguration) -> Void = { _ in }, policy: PeerPolicy = PeerPolicy(),
         client: String = "198.51.100.7:50000", transport: ClientTransport = .udp) throws {
        var configuration = TURNConfiguration(authSecret: Self.secret)
        configuration.realm = Self.realm
        configuration.relayIPv4 = "203.0.113.1"
        configure(&configuration)
        handler = TURNRequestHandler(configuration: configuration, policy: policy)
        credentials = TURNCredentials.issue(secret: Self.secret, id: "sess-1", ttl: .seconds(3600), now: date)
        tuple = FiveTuple(client: try TransportAddress(client), server: try TransportAddress("203.0.113.1:3478"),
                          transport: transport)
    }

    mutating func advance(_ d: Duration) {
        now += d
        date += TimeInterval(d.components.seconds)
    }

    mutating func send(_ m: STUNMessage, from: FiveTuple? = nil) -> [TURNAction] {
        handler.handle(m, from: from ?? tuple, now: now, date: date)
    }

    /// The single response in `actions`, decoded.
    static func response(_ actions: [TURNAction]) throws -> STUNMessage {
        for case .respond(let bytes) in actions { return try STUNMessage(bytes: bytes) }
        throw TestError.noResponse
    }

    static func code(_ actions: [TURNAction]) throws -> UInt16? {
        try response(actions).errorCode?.code.rawValue
    }

    var key: STUNKey {
        STUNKey.longTerm(username: credentials.username, realm: Self.realm, password: credentials.password)
    }

    /// Sends an authenticated request, fetching a nonce first like a real client.
    mutating func authed(
        _ method: STUNMethod, from: FiveTuple? = nil, password: String? = nil,
        _ build: (inout STUNMessage) -> Void = { _ in }
    ) throws -> [TURNAction] {
        if nonce == nil {
            let challenge = try Self.response(send(STUNMessage(method: .allocate, class: .request), from: from))
            nonce = try challenge.nonce
        }
        var m = STUNMessage(method: method, class: .request)
        build(&m)
        m.appendString(.username, credentials.username)
        m.appendString(.realm, Self.realm)
        m.appendString(.nonce, nonce ?? "")
        let key = STUNKey.longTerm(username: credentials.username, realm: Self.realm,
                                   password: password ?? credentials.password)
        m.appendMessageIntegrity(key: key)
        m.appendFingerprint()
        return send(m, from: from)
    }

    /// Allocates and completes the relay with the next fake port; returns the relayed address.
    mutating func allocate(from: FiveTuple? = nil) throws -> TransportAddress {
        let actions = try authed(.allocate, from: from) { $0.appendRequestedTransport(.udp) }
        guard case .openRelay(let pending)? = actions.first else {
            throw TestError.unexpected("no openRelay: \(try Self.code(actions) ?? 0)")
        }
        let relay = TransportAddress(ip: .v4(0xCB00_7101), port: nextRelayPort)
        nextRelayPort += 1
        guard let bytes = handler.completeAllocation(pending, relay: relay, now: now, date: date) else {
            throw TestError.unexpected("allocation no longer pending")
        }
        let response = try STUNMessage(bytes: bytes)
        guard response.class == .successResponse, response.checkIntegrity(key: key) == .valid else {
            throw TestError.unexpected("allocate failed")
        }
        return relay
    }

    mutating func permit(_ peer: String) throws -> [TURNAction] {
        let address = try TransportAddress(peer)
        return try authed(.createPermission) { $0.appendXORAddress(.xorPeerAddress, address.stunAddress) }
    }

    mutating func bind(_ channel: UInt16, _ peer: String) throws -> [TURNAction] {
        let address = try TransportAddress(peer)
        return try authed(.channelBind) {
            $0.appendChannelNumber(ChannelNumber(rawValue: channel))
            $0.appendXORAddress(.xorPeerAddress, address.stunAddress)
        }
    }
}
