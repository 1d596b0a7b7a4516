import Crypto
import Foundation
import Identity
import SamtalerumCore
import Synchronization

/// Sign-ins in progress and signed-in browsers, in memory: a restart signs everyone out, which
/// is the point of short sessions. Plain tables that take `now`; `StaffSessions` guards them.
struct SignInTable {
    struct Pending: Sendable {
        var verifier: String
        var nonce: String
        var next: String
        var startedAt: Date
    }

    struct Session: Sendable {
        var identity: StaffIdentity
        /// Kept for the IdP's logout (`id_token_hint`).
        var idToken: String
    }

    /// A sign-in must come back from the IdP within this long.
    static let pendingLifetime: TimeInterval = 600
    /// Bounds memory against someone starting sign-ins in a loop.
    static let maxPending = 10_000
    static let maxSessions = 100_000

    private(set) var pending: [String: Pending] = [:]
    private(set) var sessions: [String: Session] = [:]

    mutating func begin(state: String, _ login: Pending, now: Date) {
        sweep(now: now)
        if pending.count >= Self.maxPending, let oldest = pending.min(by: { $0.value.startedAt < $1.value.startedAt }) {
            pending[oldest.key] = nil
        }
        pending[state] = login
    }

    /// The sign-in `state` names, once: a replayed callback finds nothing.
    mutating func finish(state: String, now: Date) -> Pending? {
        guard let login = pending.removeValue(forKey: state),
              now.timeIntervalSince(login.startedAt) < Self.pendingLifetime else { return nil }
        return login
    }

    mutating func open(id: String, _ session: Session, now: Date) {
        sweep(now: now)
        if sessions.count >= Self.maxSessions,
           let oldest = sessions.min(by: { $0.value.identity.expiresAt < $1.value.identity.expiresAt }) {
            sessions[oldest.key] = nil
        }
        sessions[id] = session
    }

    func session(id: String, now: Date) -> Session? {
        guard let session = sessions[id], now < session.identity.expiresAt else { return nil }
        return session
    }

    mutating func close(id: String) -> Session? { sessions.removeValue(forKey: id) }

    private mutating func sweep(now: Date) {
        pending = pending.filter { now.timeIntervalSince($0.value.startedAt) < Self.pendingLifetime }
        sessions = sessions.filter { now < $0.value.identity.expiresAt }
    }
}

final class StaffSessions: Sendable {
    private let table = Mutex(SignInTable())
    let clock: WallClock

    init(clock: WallClock) { self.clock = clock }

    func begin(state: String, _ login: SignInTable.Pending) {
        let now = clock.now()
        table.withLock { $0.begin(state: state, login, now: now) }
    }

    func finish(state: String) -> SignInTable.Pending? {
        let now = clock.now()
        return table.withLock { $0.finish(state: state, now: now) }
    }

    /// A new session for `identity`; returns the cookie value (256 random bits).
    func open(_ identity: StaffIdentity, idToken: String) -> String {
        let id = Self.randomToken()
        let now = clock.now()
        table.withLock { $0.open(id: id, .init(identity: identity, idToken: idToken), now: now) }
        return id
    }

    func identity(session id: String) -> StaffIdentity? {
        let now = clock.now()
        return table.withLock { $0.session(id: id, now: now)?.identity }
    }

    func close(session id: String) -> SignInTable.Session? {
        table.withLock { $0.close(id: id) }
    }

    /// 32 random bytes, base64url without padding.
    static func randomToken() -> String {
        base64URL(Data(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }))
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// PKCE S256 (RFC 7636): the challenge sent to the IdP for a verifier kept here.
    static func challenge(for verifier: String) -> String {
        base64URL(Data(SHA256.hash(data: Data(verifier.utf8))))
    }
}
