/// `excellent`, `good`, `poor` or `lost`: the values of `QualityReport.class` on the wire.
public struct QualityClass: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let excellent = QualityClass(rawValue: "excellent")
    public static let good = QualityClass(rawValue: "good")
    public static let poor = QualityClass(rawValue: "poor")
    public static let lost = QualityClass(rawValue: "lost")

    /// Lower MOS bound of each measured class, best first. Below the last bound is `poor`.
    static let bounds: [(QualityClass, Double)] = [(.excellent, 4.0), (.good, 3.5)]
    /// A class is only left upwards once the MOS clears the next bound by this much.
    public static let hysteresis = 0.1

    /// `poor` and `lost` are what the audit summary counts as "poor or worse".
    public var isPoorOrWorse: Bool { self == .poor || self == .lost }

    static func plain(mos: Double) -> QualityClass {
        bounds.first { mos >= $0.1 }?.0 ?? .poor
    }

    /// Downgrades as soon as the MOS drops below the current class's bound, upgrades only
    /// with `hysteresis` to spare, so a MOS hovering at a bound does not flap.
    static func next(mos: Double, current: QualityClass?) -> QualityClass {
        let plain = plain(mos: mos)
        guard let current, let currentRank = rank(current) else { return plain }
        if (rank(plain) ?? currentRank) >= currentRank { return plain }
        let cleared = Self.plain(mos: mos - hysteresis)
        return (rank(cleared) ?? currentRank) < currentRank ? cleared : current
    }

    private static func rank(_ c: QualityClass) -> Int? {
        if c == .poor { return bounds.count }
        return bounds.firstIndex { $0.0 == c }
    }
}

/// A plain-language hint code the pages translate (Docs/QUALITY.md lists the texts).
public struct QualityHint: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    /// Video suffers but audio would carry: "Svag forbindelse — prøv kun lyd".
    public static let tryAudioOnly = QualityHint(rawValue: "try-audio-only")
    /// Even audio suffers on this participant's connection.
    public static let weakConnection = QualityHint(rawValue: "weak-connection")
    /// Shown to the sender: the other participant receives this one's media poorly.
    public static let peerWeakConnection = QualityHint(rawValue: "peer-weak-connection")
    public static let reconnecting = QualityHint(rawValue: "reconnecting")
}

/// The current verdict for one direction of media.
public struct QualityAssessment: Sendable, Equatable {
    public var `class`: QualityClass
    /// Smoothed MOS, 1…4.5 (1 when lost).
    public var mos: Double
    public var hint: QualityHint?
    /// False until the first sample arrives; the verdict is then only a placeholder.
    public var measured: Bool

    public init(class: QualityClass, mos: Double, hint: QualityHint?, measured: Bool = true) {
        self.class = `class`
        self.mos = mos
        self.hint = hint
        self.measured = measured
    }

    /// The same verdict as the *sender* of that media should see it: the weak link is on the
    /// peer's side (or between), so the advice to switch to audio only is not theirs to act on.
    public var forSender: QualityAssessment {
        var copy = self
        if hint == .tryAudioOnly || hint == .weakConnection { copy.hint = .peerWeakConnection }
        return copy
    }
}
