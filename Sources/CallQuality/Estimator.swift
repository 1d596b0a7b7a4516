import Foundation

/// Smoothed quality of one direction of media (what one participant receives). A plain
/// value: feed it samples with the time they arrived; it never reads a clock.
public struct QualityEstimator: Sendable {
    public struct Settings: Sendable, Equatable {
        /// How often browsers send `stats`.
        public var interval: TimeInterval
        /// Silence longer than this many intervals counts as `lost`.
        public var lostAfterIntervals: Double
        /// Loss at or above this fraction counts as `lost` at once.
        public var lostPacketLoss: Double
        /// Weight of a new score that is worse than the estimate (fast fall)…
        public var alphaWorse: Double
        /// …and of one that is better (slow recovery).
        public var alphaBetter: Double
        /// Audio at or above this MOS is good enough to carry the call alone.
        public var audioCarriesMOS: Double
        /// Below this incoming bitrate a video call is starved; audio only helps.
        public var lowBitrateKbps: Double

        public init(interval: TimeInterval = 2, lostAfterIntervals: Double = 3, lostPacketLoss: Double = 0.5,
                    alphaWorse: Double = 0.7, alphaBetter: Double = 0.15, audioCarriesMOS: Double = 3.1,
                    lowBitrateKbps: Double = 150) {
            self.interval = interval
            self.lostAfterIntervals = lostAfterIntervals
            self.lostPacketLoss = lostPacketLoss
            self.alphaWorse = alphaWorse
            self.alphaBetter = alphaBetter
            self.audioCarriesMOS = audioCarriesMOS
            self.lowBitrateKbps = lowBitrateKbps
        }
    }

    public let settings: Settings
    private let startedAt: Date
    private var lastSampleAt: Date?
    /// Last reported value of each metric; a missing field keeps these.
    private var rttMs = 0.0
    private var jitterMs = 0.0
    private var packetLoss = 0.0
    private var framesPerSecond: Double?
    private var audioOnly = false
    private var bitrateKbps: Double?
    private var smoothedMOS: Double?
    private var smoothedAudioMOS: Double?
    private var current: QualityClass?
    private var lostByLoss = false

    /// `startedAt`: when this direction began (the session start), so silence from the very
    /// beginning also ends in `lost`.
    public init(startedAt: Date, settings: Settings = Settings()) {
        self.startedAt = startedAt
        self.settings = settings
    }

    public mutating func ingest(_ sample: QualitySample, at now: Date) -> QualityAssessment {
        let previous = lastSampleAt
        let resumedAfterSilence = previous.map { isSilent(since: $0, at: now) } ?? false
        lastSampleAt = now
        if let rtt = sample.rttMs ?? sample.serverRttMs, rtt.isFinite { rttMs = max(rtt, 0) }
        if let jitter = sample.jitterMs, jitter.isFinite { jitterMs = max(jitter, 0) }
        if let loss = sample.packetLoss, loss.isFinite { packetLoss = min(max(loss, 0), 1) }
        if let fps = sample.framesPerSecond, fps.isFinite { framesPerSecond = max(fps, 0) }
        if let only = sample.audioOnly { audioOnly = only }
        if let bitrate = sample.bitrateKbps, bitrate.isFinite { bitrateKbps = max(bitrate, 0) }

        lostByLoss = packetLoss >= settings.lostPacketLoss
        if lostByLoss {
            smoothedMOS = 1
            smoothedAudioMOS = 1
            current = .lost
            return assessment(at: now)
        }

        let audio = QualityModel.audioMOS(rttMs: rttMs, jitterMs: jitterMs, packetLoss: packetLoss)
        var score = audio
        if !audioOnly {
            let elapsed = previous.map { now.timeIntervalSince($0) } ?? settings.interval
            let interval = min(max(elapsed, settings.interval / 2), settings.interval * 2)
            let freezeSeconds = sample.freezeSeconds.flatMap { $0.isFinite ? $0 : nil } ?? 0
            score -= QualityModel.videoPenalty(framesPerSecond: framesPerSecond, freezeCount: sample.freezeCount ?? 0,
                                               freezeSeconds: freezeSeconds, intervalSeconds: interval)
            score = max(score, 1)
        }
        // After silence or a loss-induced `lost`, the old estimate says nothing about now.
        let fresh = resumedAfterSilence || current == .lost
        smoothedMOS = fresh ? score : smooth(smoothedMOS, toward: score)
        smoothedAudioMOS = fresh ? audio : smooth(smoothedAudioMOS, toward: audio)
        current = QualityClass.next(mos: smoothedMOS ?? score, current: fresh ? nil : current)
        return assessment(at: now)
    }

    /// The last report, or the start when none came yet: the silence `assessment` measures from.
    public var lastHeardAt: Date { lastSampleAt ?? startedAt }

    /// The verdict at `now` without a new sample: only the passage of time can change it.
    public func assessment(at now: Date) -> QualityAssessment {
        guard let lastSampleAt, let mos = smoothedMOS, let current else {
            if isSilent(since: startedAt, at: now) { return QualityAssessment(class: .lost, mos: 1, hint: .reconnecting) }
            return QualityAssessment(class: .good, mos: QualityModel.audioMOS(rttMs: 0, jitterMs: 0, packetLoss: 0),
                                     hint: nil, measured: false)
        }
        if lostByLoss || isSilent(since: lastSampleAt, at: now) {
            return QualityAssessment(class: .lost, mos: 1, hint: .reconnecting)
        }
        return QualityAssessment(class: current, mos: mos, hint: hint(for: current))
    }

    private func isSilent(since: Date, at now: Date) -> Bool {
        now.timeIntervalSince(since) > settings.interval * settings.lostAfterIntervals
    }

    private func smooth(_ estimate: Double?, toward value: Double) -> Double {
        guard let estimate else { return value }
        let alpha = value < estimate ? settings.alphaWorse : settings.alphaBetter
        return estimate + alpha * (value - estimate)
    }

    private func hint(for qualityClass: QualityClass) -> QualityHint? {
        guard qualityClass == .poor else { return nil }
        if audioOnly { return .weakConnection }
        let audioCarries = (smoothedAudioMOS ?? 1) >= settings.audioCarriesMOS
        let starved = bitrateKbps.map { $0 < settings.lowBitrateKbps } ?? false
        return audioCarries || starved ? .tryAudioOnly : .weakConnection
    }
}
