import Crypto
import Foundation

/// Time-limited TURN credentials in the "TURN REST API" shape coturn accepts with
/// `--use-auth-secret`: username `<expiry-unix-seconds>:<id>`, password
/// `base64(HMAC-SHA1(secret, username))`. Signalling issues them; the relay only needs the secret.
public enum TURNCredentials {
    public struct Issued: Hashable, Sendable {
        public var username: String
        public var password: String
        public var expiresAt: Date
    }

    public static func issue(secret: String, id: String, ttl: Duration, now: Date = Date()) -> Issued {
        let expiry = Int64(now.timeIntervalSince1970) + ttl.components.seconds
        let username = "\(expiry):\(id)"
        return Issued(
            username: username,
            password: password(secret: secret, username: username),
            expiresAt: Date(timeIntervalSince1970: TimeInterval(expiry))
        )
    }

    public static func password(secret: String, username: String) -> String {
        let mac = HMAC<Insecure.SHA1>.authenticationCode(
            for: Array(username.utf8), using: SymmetricKey(data: Array(secret.utf8)))
        return Data(mac).base64EncodedString()
    }

    /// The expiry and credential id of a REST username; nil for any other shape.
    public static func parse(username: String) -> (expiresAt: Int64, id: Substring)? {
        guard let colon = username.firstIndex(of: ":"),
              let expiry = Int64(username[..<colon])
        else { return nil }
        return (expiry, username[username.index(after: colon)...])
    }
}

/// Stateless nonces: the expiry time plus a MAC over it and the client's address, so the server
/// keeps nothing per client and a nonce can't be replayed from elsewhere or past its expiry.
struct NonceIssuer: Sendable {
    let key: SymmetricKey
    let lifetime: Int64

    init(lifetimeSeconds: Int64, key: SymmetricKey = SymmetricKey(size: .bits256)) {
        self.key = key
        self.lifetime = lifetimeSeconds
    }

    func make(for client: IPAddress, unixNow: Int64) -> String {
        let expiry = unixNow + lifetime
        let hexExpiry = String(UInt64(bitPattern: expiry), radix: 16)
        return hexExpiry + "." + mac(hexExpiry, client)
    }

    /// A forged or foreign nonce is treated as stale: the client simply retries with a fresh one.
    enum Verdict { case valid, stale }

    func check(_ nonce: String, for client: IPAddress, unixNow: Int64) -> Verdict {
        let parts = nonce.split(separator: ".", maxSplits: 1)
        guard parts.count == 2, let expiry = UInt64(parts[0], radix: 16),
              mac(String(parts[0]), client) == parts[1]
        else { return .stale }
        return Int64(bitPattern: expiry) >= unixNow ? .valid : .stale
    }

    private func mac(_ hexExpiry: String, _ client: IPAddress) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Array(hexExpiry.utf8) + client.bytes, using: key)
        return code.prefix(12).map { String($0 >> 4, radix: 16) + String($0 & 0xf, radix: 16) }.joined()
    }
}
