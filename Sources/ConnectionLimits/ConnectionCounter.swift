/// The open connections of one listener, in total and per client address, held against two caps,
/// and the state that lets a flood be reported once rather than once per refused connection.
/// Pure: the caller passes `now` and logs or counts what comes back.
public struct ConnectionCounter<Address: Hashable & Sendable>: Sendable {
    public enum Refusal: String, Sendable, Hashable {
        /// The listener holds `maxConnections`.
        case listenerFull = "listener"
        /// The client's address holds `maxPerAddress`.
        case addressFull = "address"
    }

    /// What the operator should hear: each kind of refusal once per episode, and the episode's
    /// end with how many connections were refused during it.
    public enum Notice: Sendable, Equatable {
        case capReached(Refusal)
        case capCleared(refused: Int)
    }

    public let maxConnections: Int
    /// 0: no per-address cap.
    public let maxPerAddress: Int
    /// An episode ends at the first connection opened or closed this long after its last refusal.
    public let quietPeriod: Duration

    public private(set) var open = 0
    private var perAddress: [Address: Int] = [:]
    private var episode: Episode?

    private struct Episode {
        var lastRefusal: ContinuousClock.Instant
        var refused = 0
        var reported: Set<Refusal> = []
    }

    public init(maxConnections: Int, maxPerAddress: Int, quietPeriod: Duration = .seconds(60)) {
        self.maxConnections = maxConnections
        self.maxPerAddress = maxPerAddress
        self.quietPeriod = quietPeriod
    }

    /// Open connections from `address` (for tests and metrics).
    public func open(from address: Address) -> Int { perAddress[address] ?? 0 }

    /// Counts a new connection, or says why it must be closed at once. A connection without a
    /// known address counts only against the listener's cap.
    public mutating func admit(_ address: Address?, now: ContinuousClock.Instant) -> (refusal: Refusal?, notice: Notice?) {
        let refusal: Refusal? =
            if open >= maxConnections { .listenerFull }
            else if maxPerAddress > 0, let address, perAddress[address, default: 0] >= maxPerAddress { .addressFull }
            else { nil }
        guard let refusal else {
            open += 1
            if let address { perAddress[address, default: 0] += 1 }
            return (nil, endEpisodeIfQuiet(now: now))
        }
        var current = episode ?? Episode(lastRefusal: now)
        current.lastRefusal = now
        current.refused += 1
        let first = current.reported.insert(refusal).inserted
        episode = current
        return (refusal, first ? .capReached(refusal) : nil)
    }

    /// An admitted connection closed.
    public mutating func release(_ address: Address?, now: ContinuousClock.Instant) -> Notice? {
        open = max(0, open - 1)
        if let address, let count = perAddress[address] {
            perAddress[address] = count > 1 ? count - 1 : nil
        }
        return endEpisodeIfQuiet(now: now)
    }

    private mutating func endEpisodeIfQuiet(now: ContinuousClock.Instant) -> Notice? {
        guard let current = episode, now - current.lastRefusal >= quietPeriod else { return nil }
        episode = nil
        return .capCleared(refused: current.refused)
    }
}
