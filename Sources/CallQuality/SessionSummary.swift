import Foundation
import SamtalerumCore

/// Whether media went through the TURN relay; stored in the audit trail as a string.
public struct MediaPath: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let direct = MediaPath(rawValue: "direct")
    public static let relayed = MediaPath(rawValue: "relayed")
    public static let unknown = MediaPath(rawValue: "unknown")

    /// From the selected candidate pair's types (`host`, `srflx`, `prflx`, `relay`).
    public init(localCandidateType: String?, remoteCandidateType: String?) {
        let types = [localCandidateType, remoteCandidateType].compactMap { $0 }
        if types.isEmpty { self = .unknown } else if types.contains("relay") { self = .relayed } else { self = .direct }
    }
}

/// Quality of one direction over a whole session (media received by `receiver`).
public struct DirectionQualitySummary: Codable, Sendable, Equatable {
    public var receiver: PeerID
    /// Over measured, not-lost time; nil if no measurement ever arrived.
    public var minMOS: Double?
    public var averageMOS: Double?
    /// Share of the session (0…100) spent `poor` or `lost`.
    public var percentPoorOrWorse: Double
    public var lostSeconds: Double
}

/// What the audit trail keeps about a session's quality: no raw statistics, only aggregates.
public struct SessionQualitySummary: Codable, Sendable, Equatable {
    public var totalSeconds: Double
    public var path: MediaPath
    public var reconnects: Int
    public var directions: [DirectionQualitySummary]
}

/// Accumulates assessments as they change, time-weighted: each assessment holds from the moment
/// it is recorded until the next one (or the end). Pure; every method takes `now`.
public struct SessionQualityAccumulator: Sendable {
    private struct Direction: Sendable {
        var since: Date
        var last: QualityAssessment?
        var minMOS: Double?
        var mosSeconds = 0.0
        var measuredSeconds = 0.0
        var poorSeconds = 0.0
        var lostSeconds = 0.0

        mutating func close(at now: Date) {
            let span = max(now.timeIntervalSince(since), 0)
            since = max(now, since)
            guard let last else { return }
            if last.class.isPoorOrWorse { poorSeconds += span }
            if last.class == .lost {
                lostSeconds += span
            } else if last.measured {
                mosSeconds += last.mos * span
                measuredSeconds += span
            }
        }
    }

    private let startedAt: Date
    private var directions: [PeerID: Direction] = [:]
    private var order: [PeerID] = []
    private var path = MediaPath.unknown
    private var reconnects = 0

    public init(startedAt: Date) { self.startedAt = startedAt }

    public mutating func record(_ assessment: QualityAssessment, receivedBy receiver: PeerID, at now: Date) {
        var direction = directions[receiver] ?? {
            order.append(receiver)
            return Direction(since: startedAt)
        }()
        direction.close(at: now)
        direction.last = assessment
        if assessment.measured, assessment.class != .lost {
            direction.minMOS = min(direction.minMOS ?? assessment.mos, assessment.mos)
        }
        directions[receiver] = direction
    }

    /// Once any side reports a relayed pair the session counts as relayed: that is the fact
    /// operations need (TURN capacity), even if ICE later found a direct path.
    public mutating func recordCandidatePair(localCandidateType: String?, remoteCandidateType: String?) {
        let seen = MediaPath(localCandidateType: localCandidateType, remoteCandidateType: remoteCandidateType)
        if seen == .relayed || path == .unknown { path = seen }
    }

    public mutating func recordReconnect() { reconnects += 1 }

    public func summary(at now: Date) -> SessionQualitySummary {
        let total = max(now.timeIntervalSince(startedAt), 0)
        let perDirection = order.compactMap { role -> DirectionQualitySummary? in
            guard var direction = directions[role] else { return nil }
            direction.close(at: now)
            return DirectionQualitySummary(
                receiver: role,
                minMOS: direction.minMOS,
                averageMOS: direction.measuredSeconds > 0 ? direction.mosSeconds / direction.measuredSeconds : direction.minMOS,
                percentPoorOrWorse: total > 0 ? 100 * direction.poorSeconds / total : 0,
                lostSeconds: direction.lostSeconds)
        }
        return SessionQualitySummary(totalSeconds: total, path: path, reconnects: reconnects, directions: perDirection)
    }
}
