import CoreMetrics
import Hummingbird
import Identity
import Synchronization

/// Who gets a relay credential for the pre-call network check: the holder of an invite or a staff
/// token, at most `burst` times per client address and then one per `refill`. Without it the
/// check route handed every stranger a TURN relay.
final class IceCheckGate: Sendable {
    static let burst = 6
    static let refill: Duration = .seconds(10)
    /// Addresses tracked before full buckets (idle for `burst × refill`) are forgotten.
    static let pruneAbove = 1024

    private struct Bucket {
        var tokens: Double
        var updatedAt: ContinuousClock.Instant
    }

    private let authority: TokenAuthority
    private let buckets = Mutex<[String: Bucket]>([:])

    init(authority: TokenAuthority) {
        self.authority = authority
    }

    /// Throws the problem to answer with (401, 429); returns when a credential may be issued.
    func admit(_ request: Request, clientAddress: String, now: ContinuousClock.Instant) async throws {
        guard let header = request.headers[.authorization], header.count > 7, header.prefix(7).lowercased() == "bearer " else {
            throw rejected(.unauthorized, Problem(.unauthorized, detail: "send Authorization: Bearer <invite or staff token>"))
        }
        do {
            _ = try await authority.verifyCredential(String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces))
        } catch {
            throw rejected(.unauthorized, Problem(.unauthorized, detail: "the token is not valid here"))
        }
        guard take(clientAddress, now: now) else {
            throw rejected(.limited, Problem(.tooManyRequests, detail: "too many network checks from this address; try again shortly"))
        }
        Self.count(.issued)
    }

    private func take(_ address: String, now: ContinuousClock.Instant) -> Bool {
        let rate = 1 / (Double(Self.refill.components.seconds) + Double(Self.refill.components.attoseconds) * 1e-18)
        let burst = Double(Self.burst)
        return buckets.withLock { buckets in
            if buckets.count > Self.pruneAbove {
                buckets = buckets.filter { Self.seconds(now - $0.value.updatedAt) * rate + $0.value.tokens < burst }
            }
            var bucket = buckets[address] ?? Bucket(tokens: burst, updatedAt: now)
            bucket.tokens = min(burst, bucket.tokens + Self.seconds(now - bucket.updatedAt) * rate)
            bucket.updatedAt = now
            let allowed = bucket.tokens >= 1
            if allowed { bucket.tokens -= 1 }
            buckets[address] = bucket
            return allowed
        }
    }

    private static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    enum Outcome: String { case issued, unauthorized, limited }

    private func rejected(_ outcome: Outcome, _ problem: Problem) -> Problem {
        Self.count(outcome)
        return problem
    }

    private static func count(_ outcome: Outcome) {
        Counter(label: "samtalerum_ice_check_requests_total", dimensions: [("outcome", outcome.rawValue)]).increment()
    }
}

extension Problem.Kind {
    static let tooManyRequests = Problem.Kind(slug: "too-many-requests", title: "Too many requests", status: .tooManyRequests)
}
