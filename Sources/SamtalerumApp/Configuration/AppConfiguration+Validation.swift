import Foundation
import Logging

extension AppConfiguration {
    /// Every value against its bounds, so a typo never starts a server that misbehaves (a port
    /// that wraps around, meetings born expired, every WebSocket closed at once). The error names
    /// the key as written in Config/samtalerum.yaml. A new key adds its line here.
    public func validate() throws(ConfigurationError) {
        try check("server.host", server.host, !server.host.isEmpty && !server.host.contains(where: \.isWhitespace),
                  "an address or host name")
        try check("server.port", server.port, in: 0...65535, "a port number (0: any free port)")
        try check("server.publicURL", server.publicURL, server.publicURL.isEmpty || Self.isBaseURL(server.publicURL),
                  "empty or an absolute http(s) URL such as https://samtale.kommune.dk")
        try check("server.dataDir", server.dataDir, !server.dataDir.isEmpty, "a directory path")
        try check("server.tlsCertificate", server.tlsCertificate,
                  server.tlsCertificate.isEmpty == server.tlsPrivateKey.isEmpty,
                  "given together with server.tlsPrivateKey (both empty: a development certificate)")
        try check("server.httpRedirectPort", server.httpRedirectPort, in: 0...65535, "a port number (0: no redirect listener)")
        try check("server.maxConnections", server.maxConnections, in: 1...1_000_000, "a count")
        try check("server.maxConnectionsPerAddress", server.maxConnectionsPerAddress, in: 0...1_000_000, "a count (0: no cap)")
        try check("server.handshakeTimeoutSeconds", server.handshakeTimeoutSeconds, in: 1...3600, "seconds")
        try check("server.idleTimeoutSeconds", server.idleTimeoutSeconds, in: 1...86_400, "seconds")
        try check("server.nodeName", server.nodeName, server.nodeName.count <= 64 && server.nodeName.allSatisfy {
            $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0))
        }, "empty (the host name) or up to 64 letters, digits, '-', '_', '.'")
        try check("server.plainHTTPPort", server.plainHTTPPort, in: 0...65535, "a port number (0: no plain-HTTP listener)")
        try check("server.plainHTTPHost", server.plainHTTPHost,
                  server.plainHTTPPort == 0 || server.allowPlainHTTPOffLoopback || Self.isLoopback(server.plainHTTPHost),
                  "a loopback address (127.0.0.1, ::1, localhost) unless server.allowPlainHTTPOffLoopback is true")
        if case .failure(let bad) = TrustedProxies.parse(server.trustedProxies) {
            throw .invalidValue(key: "server.trustedProxies" + "[\(bad.index)]", value: bad.text,
                                expected: "an address or a CIDR range such as 10.0.0.0/8 or 2001:db8::/32")
        }

        try check("signalling.helloTimeoutSeconds", signalling.helloTimeoutSeconds, in: 0.1...300, "seconds")
        try check("signalling.pingIntervalSeconds", signalling.pingIntervalSeconds, in: 1...3600, "seconds")
        try check("signalling.inviteTTLSeconds", signalling.inviteTTLSeconds, in: 60...(366 * 86_400), "seconds")
        try check("signalling.resumeGraceSeconds", signalling.resumeGraceSeconds, in: 0...86_400, "seconds (0: no resume)")

        try check("identity.sessionTTLSeconds", identity.sessionTTLSeconds, in: 60...(7 * 86_400), "seconds")

        try check("turn.port", turn.port, in: 0...65535, "a port number (0: any free port)")
        try check("turn.tlsPort", turn.tlsPort, in: 0...65535, "a port number (0: any free port)")
        try check("turn.relayPortMin", turn.relayPortMin, in: 1...65535, "a port number")
        try check("turn.relayPortMax", turn.relayPortMax, in: max(1, turn.relayPortMin)...65535,
                  "a port number, at least turn.relayPortMin")
        try check("turn.realm", turn.realm, !turn.realm.isEmpty, "a non-empty name")
        try check("turn.credentialTTLSeconds", turn.credentialTTLSeconds, in: 60...(7 * 86_400), "seconds")
        try check("turn.maxAllocationsPerUser", turn.maxAllocationsPerUser, in: 1...1_000_000, "a count")
        try check("turn.maxAllocations", turn.maxAllocations, in: 1...1_000_000, "a count")
        try check("turn.maxBytesPerSecondPerAllocation", turn.maxBytesPerSecondPerAllocation, in: 0...(1 << 32),
                  "bytes per second (0: no cap)")
        try check("turn.unallocatedConnectionTimeoutSeconds", turn.unallocatedConnectionTimeoutSeconds, in: 1...3600, "seconds")
        try check("turn.maxStreamConnections", turn.maxStreamConnections, in: 1...1_000_000, "a count")
        try check("turn.maxStreamConnectionsPerAddress", turn.maxStreamConnectionsPerAddress, in: 0...1_000_000,
                  "a count (0: no cap)")

        let policies = RelayPolicy.allCases.map(\.rawValue)
        try check("turn.relayPolicy", turn.relayPolicy, policies.contains(turn.relayPolicy), "one of " + policies.joined(separator: ", "))
        try check("turn.relayStatusIntervalSeconds", turn.relayStatusIntervalSeconds, in: 1...3600, "seconds")
        try check("turn.relayStatusTimeoutSeconds", turn.relayStatusTimeoutSeconds, in: 1...max(1, turn.relayStatusIntervalSeconds),
                  "seconds, at most turn.relayStatusIntervalSeconds")
        try check("turn.statusHost", turn.statusHost, !turn.statusHost.isEmpty && !turn.statusHost.contains(where: \.isWhitespace),
                  "an address or host name")
        try check("turn.statusPort", turn.statusPort, in: 0...65535, "a port number (0: any free port)")
        for (index, relay) in turn.relays.enumerated() {
            if let problem = relay.problem() {
                throw .invalidValue(key: "turn.relays" + "[\(index)].\(problem.key)", value: problem.value, expected: problem.expected)
            }
            if turn.relays[..<index].contains(where: { $0.name == relay.name }) {
                throw .invalidValue(key: "turn.relays" + "[\(index)].name", value: relay.name, expected: "a name no other relay in the list has")
            }
        }

        // Zero or less would purge the whole trail at start and every hour after (issue #11).
        try check("audit.retentionDays", audit.retentionDays, in: 1...36_500, "days")
        try check("audit.postgresURL", redactedPostgresURL, postgresURLProblem == nil,
                  "empty (SQLite in server.dataDir) or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=…]"
                      + (postgresURLProblem.map { " (\($0))" } ?? ""))
        try check("audit.postgresPasswordFile", audit.postgresPasswordFile,
                  audit.postgresPasswordFile.isEmpty || !audit.postgresURL.isEmpty, "empty unless audit.postgresURL is set")

        let levels = Logger.Level.allCases.map(\.rawValue)
        try check("logging.level", logging.level, levels.contains(logging.level), "one of " + levels.joined(separator: ", "))
        let formats = LogFormat.allCases.map(\.rawValue)
        try check("logging.format", logging.format, formats.contains(logging.format), "one of " + formats.joined(separator: ", "))
    }

    private func check<Value: Comparable>(_ key: String, _ value: Value, in range: ClosedRange<Value>, _ what: String)
        throws(ConfigurationError) {
        // `contains` is false for NaN too, so a non-number never passes.
        try check(key, value, range.contains(value), "\(what) within \(range.lowerBound)…\(range.upperBound)")
    }

    private func check(_ key: String, _ value: some Any, _ valid: Bool, _ expected: String) throws(ConfigurationError) {
        guard valid else { throw .invalidValue(key: key, value: "\(value)", expected: expected) }
    }

    static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" { return true }
        guard let network = TrustedProxies.Network(host) else { return false }
        return TrustedProxies.Network("127.0.0.0/8")!.contains(network.bytes) || TrustedProxies.Network("::1")!.contains(network.bytes)
    }

    static func isBaseURL(_ text: String) -> Bool {
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased(),
              scheme == "https" || scheme == "http", let host = url.host, !host.isEmpty else { return false }
        return url.query == nil && url.fragment == nil && url.user == nil
    }
}
