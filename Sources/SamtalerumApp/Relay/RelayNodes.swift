import Foundation
import TURN

/// One relay of `turn.relays`: a `samtalerum relay`, a coturn, or another signalling node's
/// embedded relay. All of them share `DATA/keys/turn.secret`, so the coturn REST credentials
/// signalling issues work on any of them.
public struct RelayNode: Sendable, Equatable, Codable {
    /// Names the relay in the ops view, metrics and logs; unique within the list.
    public var name = ""
    /// Host name or address written into the stun:/turn:/turns: URIs (unless `urls` is given).
    public var host = ""
    public var port = 3478
    /// 0: no turns: URI for this relay.
    public var tlsPort = 5349
    /// Explicit URIs instead of the ones made from host and ports, e.g. `turns:turn-a.kommune.dk:443?transport=tcp`.
    public var urls: [String] = []
    /// Client networks (CIDR) for which this relay is the nearest (`turn.relayPolicy: nearest`).
    public var networks: [String] = []
    /// Where its load is read: a `samtalerum relay`'s `http://HOST:STATUSPORT/health/ready`.
    /// Empty: load unknown (coturn has no such endpoint); such a relay is never skipped as unreachable.
    public var statusURL = ""

    public init(name: String = "", host: String = "", port: Int = 3478, tlsPort: Int = 5349, urls: [String] = [],
                networks: [String] = [], statusURL: String = "") {
        (self.name, self.host, self.port, self.tlsPort) = (name, host, port, tlsPort)
        (self.urls, self.networks, self.statusURL) = (urls, networks, statusURL)
    }

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case name, host, port, tlsPort, urls, networks, statusURL
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Keys left out take the defaults above; a misspelt key is an error naming it, as everywhere
    /// else in the configuration.
    public init(from decoder: any Decoder) throws {
        let known = Set(CodingKeys.allCases.map(\.rawValue))
        if let unknown = try decoder.container(keyedBy: AnyKey.self).allKeys.first(where: { !known.contains($0.stringValue) }) {
            throw ConfigurationError.unknownKey(Self.path(decoder.codingPath) + "." + unknown.stringValue)
        }
        let values = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = RelayNode()
        name = try values.decodeIfPresent(String.self, forKey: .name) ?? defaults.name
        host = try values.decodeIfPresent(String.self, forKey: .host) ?? defaults.host
        port = try values.decodeIfPresent(Int.self, forKey: .port) ?? defaults.port
        tlsPort = try values.decodeIfPresent(Int.self, forKey: .tlsPort) ?? defaults.tlsPort
        urls = try values.decodeIfPresent([String].self, forKey: .urls) ?? defaults.urls
        networks = try values.decodeIfPresent([String].self, forKey: .networks) ?? defaults.networks
        statusURL = try values.decodeIfPresent(String.self, forKey: .statusURL) ?? defaults.statusURL
    }

    /// `turn.relays[1]`, as the keys are written in messages.
    static func path(_ codingPath: [any CodingKey]) -> String {
        codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().dropFirst().description
    }

    /// What a browser is given for this relay: STUN, and TURN over UDP, TCP and TLS.
    var uris: (stun: [String], turn: [String]) {
        guard urls.isEmpty else {
            return (urls.filter { $0.hasPrefix("stun:") || $0.hasPrefix("stuns:") },
                    urls.filter { $0.hasPrefix("turn:") || $0.hasPrefix("turns:") })
        }
        let host = RelayCredentials.uriHost(host)
        var turn = ["turn:\(host):\(port)?transport=udp", "turn:\(host):\(port)?transport=tcp"]
        if tlsPort > 0 { turn.append("turns:\(host):\(tlsPort)?transport=tcp") }
        return (["stun:\(host):\(port)"], turn)
    }

    var ranges: [IPRange] { networks.compactMap(IPRange.init) }

    /// Why this entry is unusable, if it is: (the key within the entry, the value, what it must be).
    func problem() -> (key: String, value: String, expected: String)? {
        if name.isEmpty || name.contains(where: { $0.isWhitespace || $0.isNewline }) || name.count > 64 {
            return ("name", name, "1–64 characters without spaces")
        }
        if urls.isEmpty {
            if host.isEmpty || host.contains(where: \.isWhitespace) {
                return ("host", host, "a host name or address (or give urls)")
            }
            if !(1...65535).contains(port) { return ("port", "\(port)", "a port number within 1…65535") }
            if !(0...65535).contains(tlsPort) { return ("tlsPort", "\(tlsPort)", "a port number within 0…65535 (0: no turns:)") }
        }
        if let bad = urls.first(where: { url in
            !["stun:", "stuns:", "turn:", "turns:"].contains(where: url.hasPrefix) || url.contains(where: \.isWhitespace)
        }) {
            return ("urls", bad, "stun:, turn: or turns: URIs such as turns:turn-a.kommune.dk:443?transport=tcp")
        }
        if !urls.isEmpty, uris.turn.isEmpty { return ("urls", "\(urls)", "a list with at least one turn: or turns: URI") }
        if let bad = networks.first(where: { IPRange($0) == nil }) {
            return ("networks", bad, "CIDR ranges such as 10.20.0.0/16 or 2001:db8::/32")
        }
        if !statusURL.isEmpty, URLComponents(string: statusURL).map({ url in
            ["http", "https"].contains(url.scheme?.lowercased() ?? "") && !(url.host ?? "").isEmpty
        }) != true {
            return ("statusURL", statusURL, "empty or an http(s) URL such as http://10.0.0.5:9478/health/ready")
        }
        return nil
    }
}

/// How signalling picks one of `turn.relays` for a joining participant.
public enum RelayPolicy: String, Sendable, CaseIterable {
    /// A relay whose `networks` hold the client's address (least loaded among them); none: as least-loaded.
    case nearest
    /// The reachable relay reporting the fewest allocations; relays of unknown load after those of known load.
    case leastLoaded = "least-loaded"
}
