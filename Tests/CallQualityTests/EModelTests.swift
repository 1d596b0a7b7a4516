import CallQuality
import Testing

@Suite struct EModelTests {
    @Test(arguments: [
        // (rtt ms, jitter ms, loss, expected MOS range)
        (20.0, 0.0, 0.0, 4.35...4.45),
        (20.0, 5.0, 0.0, 4.33...4.43),
        (20.0, 0.0, 0.01, 4.15...4.30),
        (20.0, 0.0, 0.05, 3.60...3.85),
        (20.0, 0.0, 0.10, 3.00...3.35),
        (400.0, 0.0, 0.0, 4.00...4.20),
        (400.0, 60.0, 0.0, 3.20...3.50),
        (800.0, 0.0, 0.0, 2.70...3.10),
        (100.0, 20.0, 0.20, 1.90...2.60),
    ])
    func knownPoints(rtt: Double, jitter: Double, loss: Double, expected: ClosedRange<Double>) {
        let mos = QualityModel.audioMOS(rttMs: rtt, jitterMs: jitter, packetLoss: loss)
        #expect(expected.contains(mos), "rtt \(rtt) jitter \(jitter) loss \(loss) gave MOS \(mos)")
    }

    @Test func noImpairmentRatingAndClamp() {
        #expect(QualityModel.mos(rating: 93.2) > 4.4)
        #expect(QualityModel.mos(rating: -5) == 1)
        #expect(QualityModel.mos(rating: 120) == 4.5)
        #expect(QualityModel.audioMOS(rttMs: 10_000, jitterMs: 1000, packetLoss: 1) == 1)
    }

    @Test func delayImpairmentHasAKneeAt177ms() {
        let below = QualityModel.delayImpairment(oneWayDelayMs: 177) - QualityModel.delayImpairment(oneWayDelayMs: 167)
        let above = QualityModel.delayImpairment(oneWayDelayMs: 197) - QualityModel.delayImpairment(oneWayDelayMs: 187)
        #expect(abs(below - 0.24) < 1e-9)
        #expect(abs(above - 1.34) < 1e-9)
    }

    @Test(arguments: [0.0, 20.0, 150.0, 400.0])
    func moreLossNeverRaisesTheScore(rtt: Double) {
        var previous = Double.infinity
        for step in 0...100 {
            let mos = QualityModel.audioMOS(rttMs: rtt, jitterMs: 10, packetLoss: Double(step) / 100)
            #expect(mos <= previous)
            previous = mos
        }
    }

    @Test(arguments: [0.0, 0.02, 0.1])
    func moreDelayNeverRaisesTheScore(loss: Double) {
        var previous = Double.infinity
        for rtt in stride(from: 0.0, through: 2000, by: 10) {
            let mos = QualityModel.audioMOS(rttMs: rtt, jitterMs: rtt / 20, packetLoss: loss)
            #expect(mos <= previous)
            previous = mos
        }
    }

    @Test(arguments: [
        // (fps, freezes, frozen seconds, penalty range)
        (30.0, 0, 0.0, 0.0...0.0),
        (15.0, 0, 0.0, 0.0...0.0),
        (11.5, 0, 0.0, 0.39...0.41),
        (8.0, 0, 0.0, 0.79...0.81),
        (4.0, 0, 0.0, 1.39...1.41),
        (30.0, 1, 0.5, 0.67...0.68),
        (30.0, 3, 2.0, 2.0...2.0),
    ])
    func videoPenalties(fps: Double, freezes: Int, frozen: Double, expected: ClosedRange<Double>) {
        let penalty = QualityModel.videoPenalty(framesPerSecond: fps, freezeCount: freezes, freezeSeconds: frozen, intervalSeconds: 2)
        #expect(expected.contains(penalty), "fps \(fps) freezes \(freezes)/\(frozen) s gave \(penalty)")
    }

    @Test func lowerFrameRateNeverLowersThePenalty() {
        var previous = -1.0
        for fps in stride(from: 60.0, through: 0, by: -0.5) {
            let penalty = QualityModel.videoPenalty(framesPerSecond: fps, freezeCount: 0, freezeSeconds: 0, intervalSeconds: 2)
            #expect(penalty >= previous)
            previous = penalty
        }
    }
}
