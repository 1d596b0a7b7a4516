import CallQuality
import Foundation
import Testing

private let t0 = Date(timeIntervalSince1970: 1_800_000_000)
private func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

private let clean = QualitySample(rttMs: 20, jitterMs: 2, packetLoss: 0, framesPerSecond: 30, freezeCount: 0, freezeSeconds: 0)
private let awful = QualitySample(rttMs: 300, jitterMs: 40, packetLoss: 0.15, framesPerSecond: 5, freezeCount: 2, freezeSeconds: 1)

/// Feeds samples every 2 s starting at `start` seconds; returns the last assessment.
@discardableResult
private func feed(_ estimator: inout QualityEstimator, _ samples: [QualitySample], from start: Double) -> [QualityAssessment] {
    samples.enumerated().map { index, sample in estimator.ingest(sample, at: at(start + 2 * Double(index))) }
}

@Suite struct EstimatorTests {
    @Test func cleanCallIsExcellentWithoutHint() {
        var estimator = QualityEstimator(startedAt: t0)
        let result = feed(&estimator, Array(repeating: clean, count: 5), from: 2).last
        #expect(result?.class == .excellent)
        #expect(result?.hint == nil)
        #expect(result?.measured == true)
    }

    @Test func oneBadSampleShowsAtOnceAndRecoveryTakesSeveral() {
        var estimator = QualityEstimator(startedAt: t0)
        feed(&estimator, Array(repeating: clean, count: 5), from: 2)
        let bad = estimator.ingest(awful, at: at(12))
        #expect(bad.class == .poor)
        #expect(abs(bad.mos - 2.02) < 0.01)
        let recovery = feed(&estimator, Array(repeating: clean, count: 20), from: 14)
        #expect(recovery[0].class == .poor, "a single good sample must not flip the class back")
        #expect(recovery[1].class == .poor)
        // Docs/QUALITY.md: back to good on the 7th clean sample (14 s), excellent on the 13th (26 s).
        #expect(recovery.firstIndex { $0.class != .poor } == 6)
        #expect(recovery.firstIndex { $0.class == .excellent } == 12)
        let moses = recovery.map(\.mos)
        #expect(zip(moses, moses.dropFirst()).allSatisfy { $0 <= $1 }, "recovery is monotone")
    }

    @Test func missingFieldsKeepThePreviousEstimate() {
        var estimator = QualityEstimator(startedAt: t0)
        feed(&estimator, Array(repeating: clean, count: 3), from: 2)
        let before = estimator.assessment(at: at(6))
        let after = estimator.ingest(QualitySample(), at: at(8))
        #expect(after.class == before.class)
        #expect(abs(after.mos - before.mos) < 0.01)
    }

    @Test func serverRoundTripStandsInForMissingMediaRTT() {
        var viaServer = QualityEstimator(startedAt: t0)
        var viaMedia = QualityEstimator(startedAt: t0)
        let a = viaServer.ingest(QualitySample(jitterMs: 2, packetLoss: 0, serverRttMs: 700), at: at(2))
        let b = viaMedia.ingest(QualitySample(rttMs: 700, jitterMs: 2, packetLoss: 0), at: at(2))
        #expect(a.mos == b.mos)
    }

    @Test(arguments: [
        // (seconds of silence after the last sample, expected class)
        (2.0, QualityClass.excellent), (5.9, .excellent), (6.0, .excellent), (6.1, .lost), (60.0, .lost),
    ])
    func lostAfterThreeSilentIntervals(silence: Double, expected: QualityClass) {
        var estimator = QualityEstimator(startedAt: t0)
        feed(&estimator, Array(repeating: clean, count: 3), from: 2)
        let result = estimator.assessment(at: at(6 + silence))
        #expect(result.class == expected)
        #expect(result.hint == (expected == .lost ? .reconnecting : nil))
    }

    @Test func silenceFromTheStartIsLostAndUnmeasuredBefore() {
        let estimator = QualityEstimator(startedAt: t0)
        #expect(estimator.assessment(at: at(3)).measured == false)
        #expect(estimator.assessment(at: at(3)).class == .good)
        #expect(estimator.assessment(at: at(7)).class == .lost)
    }

    @Test func heavyLossIsLostAtOnceAndASampleAfterSilenceStartsFresh() {
        var estimator = QualityEstimator(startedAt: t0)
        feed(&estimator, Array(repeating: clean, count: 3), from: 2)
        let lost = estimator.ingest(QualitySample(packetLoss: 0.5), at: at(8))
        #expect(lost.class == .lost)
        #expect(lost.hint == .reconnecting)
        // A clean report after a loss-induced `lost` is taken as it is, not averaged with 1.0.
        let back = estimator.ingest(QualitySample(packetLoss: 0), at: at(10))
        #expect(back.class == .excellent)
        // Same after silence.
        #expect(estimator.assessment(at: at(30)).class == .lost)
        #expect(estimator.ingest(clean, at: at(32)).class == .excellent)
    }

    @Test func hysteresisKeepsTheClassAtABoundary() {
        // Loss tuned so the audio MOS sits just around the 4.0 excellent/good bound.
        func sample(_ loss: Double) -> QualitySample { QualitySample(rttMs: 20, jitterMs: 0, packetLoss: loss, audioOnly: true) }
        let below = 0.033, above = 0.028  // MOS ≈ 3.98 and ≈ 4.05
        #expect(QualityModel.audioMOS(rttMs: 20, jitterMs: 0, packetLoss: below) < 4.0)
        #expect((4.0..<4.1).contains(QualityModel.audioMOS(rttMs: 20, jitterMs: 0, packetLoss: above)))
        var estimator = QualityEstimator(startedAt: t0)
        feed(&estimator, Array(repeating: sample(below), count: 5), from: 2)
        #expect(estimator.assessment(at: at(10)).class == .good)
        let flapping = feed(&estimator, Array(repeating: sample(above), count: 20) + [sample(below), sample(above)], from: 12)
        #expect(flapping.allSatisfy { $0.class == .good }, "a MOS just over the bound does not upgrade")
        let clear = feed(&estimator, Array(repeating: sample(0), count: 12), from: 60)
        #expect(clear.last?.class == .excellent)
    }

    @Test(arguments: [
        // (sample, expected hint)
        (QualitySample(rttMs: 20, jitterMs: 2, packetLoss: 0, framesPerSecond: 3, freezeCount: 2, freezeSeconds: 1.2), QualityHint.tryAudioOnly),
        (QualitySample(rttMs: 20, jitterMs: 2, packetLoss: 0.12, framesPerSecond: 25), .weakConnection),
        (QualitySample(rttMs: 20, jitterMs: 2, packetLoss: 0.12, framesPerSecond: 25, bitrateKbps: 90), .tryAudioOnly),
        (QualitySample(rttMs: 20, jitterMs: 2, packetLoss: 0.12, audioOnly: true, bitrateKbps: 90), .weakConnection),
        (QualitySample(rttMs: 20, jitterMs: 2, packetLoss: 0, framesPerSecond: 3, audioOnly: true), nil),
    ])
    func hints(sample: QualitySample, expected: QualityHint?) {
        var estimator = QualityEstimator(startedAt: t0)
        let result = estimator.ingest(sample, at: at(2))
        #expect(result.hint == expected, "class \(result.class) mos \(result.mos)")
    }

    @Test func senderSeesThePeersWeakConnection() {
        let receiving = QualityAssessment(class: .poor, mos: 2.8, hint: .tryAudioOnly)
        #expect(receiving.forSender.hint == .peerWeakConnection)
        #expect(receiving.forSender.class == .poor)
        let lost = QualityAssessment(class: .lost, mos: 1, hint: .reconnecting)
        #expect(lost.forSender.hint == .reconnecting)
    }
}
