import Foundation

/// What one participant's browser reported about media *it received* in the last interval
/// (the lead maps `CallStats` onto this). Every field is optional: a missing field keeps the
/// previous estimate instead of counting as bad.
public struct QualitySample: Sendable, Equatable {
    public var rttMs: Double?
    public var jitterMs: Double?
    /// Fraction 0…1 of packets lost on the way to this participant.
    public var packetLoss: Double?
    public var framesPerSecond: Double?
    /// Freezes and frozen seconds within this interval (not cumulative).
    public var freezeCount: Int?
    public var freezeSeconds: Double?
    public var audioOnly: Bool?
    /// Incoming media bitrate; only used to decide whether to suggest audio only.
    public var bitrateKbps: Double?
    /// WebSocket ping→pong time measured by the server; stands in for `rttMs` when the
    /// browser has no media RTT yet (e.g. before the first RTCP receiver report).
    public var serverRttMs: Double?

    public init(rttMs: Double? = nil, jitterMs: Double? = nil, packetLoss: Double? = nil, framesPerSecond: Double? = nil,
                freezeCount: Int? = nil, freezeSeconds: Double? = nil, audioOnly: Bool? = nil,
                bitrateKbps: Double? = nil, serverRttMs: Double? = nil) {
        self.rttMs = rttMs
        self.jitterMs = jitterMs
        self.packetLoss = packetLoss
        self.framesPerSecond = framesPerSecond
        self.freezeCount = freezeCount
        self.freezeSeconds = freezeSeconds
        self.audioOnly = audioOnly
        self.bitrateKbps = bitrateKbps
        self.serverRttMs = serverRttMs
    }
}

/// The ITU-T G.107 E-model, reduced to the terms a WebRTC/Opus call can measure, plus video
/// penalties. Every constant is explained in Docs/QUALITY.md.
public enum QualityModel {
    /// Default transmission rating with no impairments (G.107 default parameters).
    public static let r0 = 93.2
    /// Opus 20 ms frames plus the encoder's look-ahead.
    public static let codecDelayMs = 26.5
    /// The playout buffer holds about two jitters' worth of audio.
    public static let jitterBufferFactor = 2.0
    /// Opus at WebRTC bitrates is transparent on the narrowband E-model scale.
    public static let opusIe = 0.0
    /// Loss robustness of Opus with packet-loss concealment and in-band FEC.
    public static let opusBpl = 20.0
    /// Knee of the delay impairment: beyond it, delay hurts conversation much more.
    public static let delayKneeMs = 177.3

    public static let fluentFrameRate = 15.0
    public static let choppyFrameRate = 8.0
    /// The MOS cost at `choppyFrameRate`; it grows linearly from 0 at `fluentFrameRate`.
    public static let choppyFrameRatePenalty = 0.8
    /// Extra MOS cost per frame per second below `choppyFrameRate`.
    public static let belowChoppyPenaltyPerFPS = 0.15
    public static let penaltyPerFreeze = 0.3
    /// MOS cost for an interval spent entirely frozen.
    public static let fullyFrozenPenalty = 1.5
    public static let maxFreezePenalty = 2.0

    /// Mouth-to-ear delay: half the round trip, the jitter buffer and the codec.
    public static func oneWayDelayMs(rttMs: Double, jitterMs: Double) -> Double {
        max(0, rttMs) / 2 + jitterBufferFactor * max(0, jitterMs) + codecDelayMs
    }

    /// Delay impairment Id (the usual piecewise approximation of G.107's Idd term).
    public static func delayImpairment(oneWayDelayMs d: Double) -> Double {
        0.024 * d + (d > delayKneeMs ? 0.11 * (d - delayKneeMs) : 0)
    }

    /// Effective equipment impairment for random loss (G.107 Ie,eff with BurstR = 1).
    public static func effectiveEquipmentImpairment(packetLoss: Double) -> Double {
        let percent = min(max(packetLoss, 0), 1) * 100
        return opusIe + (95 - opusIe) * percent / (percent + opusBpl)
    }

    public static func rating(rttMs: Double, jitterMs: Double, packetLoss: Double) -> Double {
        let d = oneWayDelayMs(rttMs: rttMs, jitterMs: jitterMs)
        return r0 - delayImpairment(oneWayDelayMs: d) - effectiveEquipmentImpairment(packetLoss: packetLoss)
    }

    /// G.107 R → MOS mapping, clamped to 1…4.5.
    public static func mos(rating r: Double) -> Double {
        if r <= 0 { return 1 }
        if r >= 100 { return 4.5 }
        let mos = 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r)
        return min(max(mos, 1), 4.5)
    }

    public static func audioMOS(rttMs: Double, jitterMs: Double, packetLoss: Double) -> Double {
        mos(rating: rating(rttMs: rttMs, jitterMs: jitterMs, packetLoss: packetLoss))
    }

    /// How much worse video is than the audio path it shares, from frame rate and freezes.
    public static func videoPenalty(framesPerSecond: Double?, freezeCount: Int, freezeSeconds: Double,
                                    intervalSeconds: Double) -> Double {
        var penalty = 0.0
        if let fps = framesPerSecond, fps < fluentFrameRate {
            let clamped = max(fps, 0)
            let span = fluentFrameRate - choppyFrameRate
            penalty += choppyFrameRatePenalty * min(fluentFrameRate - clamped, span) / span
            if clamped < choppyFrameRate { penalty += belowChoppyPenaltyPerFPS * (choppyFrameRate - clamped) }
        }
        let frozenFraction = intervalSeconds > 0 ? min(max(freezeSeconds, 0) / intervalSeconds, 1) : 0
        let freeze = penaltyPerFreeze * Double(max(freezeCount, 0)) + fullyFrozenPenalty * frozenFraction
        return penalty + min(freeze, maxFreezePenalty)
    }
}
