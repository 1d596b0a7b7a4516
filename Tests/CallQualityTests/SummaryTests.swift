import CallQuality
import Foundation
import SamtalerumCore
import Testing

private let t0 = Date(timeIntervalSince1970: 1_800_000_000)
private func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

@Suite struct SummaryTests {
    @Test func aggregatesTimeWeighted() throws {
        var summary = SessionQualityAccumulator(startedAt: t0)
        summary.record(QualityAssessment(class: .excellent, mos: 4.4, hint: nil), receivedBy: .citizen, at: at(0))
        summary.record(QualityAssessment(class: .poor, mos: 2.4, hint: .tryAudioOnly), receivedBy: .citizen, at: at(60))
        summary.record(QualityAssessment(class: .lost, mos: 1, hint: .reconnecting), receivedBy: .citizen, at: at(80))
        summary.recordReconnect()
        summary.record(QualityAssessment(class: .good, mos: 3.9, hint: nil), receivedBy: .citizen, at: at(90))
        summary.record(QualityAssessment(class: .excellent, mos: 4.3, hint: nil), receivedBy: .worker, at: at(10))
        summary.recordCandidatePair(localCandidateType: "host", remoteCandidateType: "srflx")
        summary.recordCandidatePair(localCandidateType: "relay", remoteCandidateType: "host")
        summary.recordCandidatePair(localCandidateType: "host", remoteCandidateType: "host")

        let result = summary.summary(at: at(100))
        #expect(result.totalSeconds == 100)
        #expect(result.reconnects == 1)
        #expect(result.path == .relayed, "a relay seen once is what operations need to know")
        let citizen = try #require(result.directions.first { $0.receiver == .citizen })
        #expect(citizen.minMOS == 2.4)
        // 60 s at 4.4, 20 s at 2.4, 10 s at 3.9 over 90 measured seconds; the lost 10 s are excluded.
        #expect(abs((citizen.averageMOS ?? 0) - (60 * 4.4 + 20 * 2.4 + 10 * 3.9) / 90) < 1e-9)
        #expect(abs(citizen.percentPoorOrWorse - 30) < 1e-9)
        #expect(citizen.lostSeconds == 10)
        let worker = try #require(result.directions.first { $0.receiver == .worker })
        #expect(worker.minMOS == 4.3)
        #expect(worker.percentPoorOrWorse == 0)
    }

    @Test func emptySessionAndRoundTripThroughJSON() throws {
        var summary = SessionQualityAccumulator(startedAt: t0)
        summary.record(QualityAssessment(class: .good, mos: 4.4, hint: nil, measured: false), receivedBy: .worker, at: at(0))
        let result = summary.summary(at: at(30))
        #expect(result.path == .unknown)
        #expect(result.directions.first?.minMOS == nil)
        #expect(result.directions.first?.averageMOS == nil)
        let data = try JSONEncoder().encode(result)
        #expect(try JSONDecoder().decode(SessionQualitySummary.self, from: data) == result)
        #expect(String(decoding: data, as: UTF8.self).contains("\"path\":\"unknown\""))
    }

    @Test(arguments: [
        ("host", "host", MediaPath.direct), ("srflx", "prflx", .direct), ("relay", "host", .relayed),
        ("host", "relay", .relayed), (nil, nil, .unknown), (nil, "srflx", .direct),
    ] as [(String?, String?, MediaPath)])
    func pathFromCandidateTypes(local: String?, remote: String?, expected: MediaPath) {
        #expect(MediaPath(localCandidateType: local, remoteCandidateType: remote) == expected)
    }
}
