import CallQuality
import Foundation
import SamtalerumCore
import SignallingProtocol

/// Live call quality per meeting: one estimator per receiving participant, and the session's
/// summary for the audit trail. Pure state; the registry feeds it and sends what it returns.
struct QualityBoard: Sendable {
    private struct SessionRecord: Sendable {
        var accumulator: SessionQualityAccumulator
        var roundTrips: [Double] = []
        var lossSamples: [Double] = []

        mutating func record(_ stats: CallStats, _ assessment: QualityAssessment, receivedBy peer: PeerID, at now: Date) {
            accumulator.record(assessment, receivedBy: peer, at: now)
            accumulator.recordCandidatePair(localCandidateType: stats.localCandidateType, remoteCandidateType: stats.remoteCandidateType)
            if let rtt = stats.rttMs, roundTrips.count < maxSamples { roundTrips.append(rtt) }
            if let loss = stats.packetLossIn, lossSamples.count < maxSamples { lossSamples.append(loss) }
        }
    }

    /// Everything known about one meeting's quality. One entry per meeting, changed in place:
    /// every stats message touches it, and a copy would copy the sample arrays too.
    private struct MeetingQuality: Sendable {
        var estimators: [PeerID: QualityEstimator] = [:]
        var sent: [PeerID: QualityUpdate] = [:]
        var session: SessionRecord?
        /// Each participant's last `stats.audioOnly`: it sends no video, by choice or for want of a camera.
        var sendsNoVideo: [PeerID: Bool] = [:]

        mutating func ingest(_ stats: CallStats, peer: PeerID, now: Date) {
            if let audioOnly = stats.audioOnly { sendsNoVideo[peer] = audioOnly }
            // A stats message's `audioOnly` is about what its sender sends; the estimator judges
            // what this peer receives, which has no picture only when none of the others sends one.
            var sample = QualitySample(stats)
            let senders = estimators.keys.filter { $0 != peer }
            if !senders.isEmpty { sample.audioOnly = senders.allSatisfy { sendsNoVideo[$0] == true } }
            let assessment = estimators[peer, default: QualityEstimator(startedAt: now)].ingest(sample, at: now)
            session?.record(stats, assessment, receivedBy: peer, at: now)
        }

        mutating func updates(for room: Room, now: Date) -> [RoomAction] {
            var actions: [RoomAction] = []
            let inCall = room.session?.peers ?? []
            // Once per peer, not once per pair: this runs for every stats message.
            let verdicts = room.members.keys.reduce(into: [PeerID: QualityAssessment]()) { verdicts, peer in
                verdicts[peer] = estimators[peer].flatMap { QualityBoard.verdict($0, now: now) }
            }
            // Only those in the call: a guest waiting to be admitted hears nothing about it.
            for member in room.members.values where inCall.contains(member.peer) {
                guard let endpoint = member.endpoint else { continue }
                let receiving = verdicts[member.peer]
                let sending = inCall.lazy.filter { $0 != member.peer }
                    .compactMap { verdicts[$0] }
                    .min { $0.mos < $1.mos }?.forSender
                guard receiving != nil || sending != nil else { continue }
                let update = QualityUpdate(receiving: receiving.map(QualityBoard.report), sending: sending.map(QualityBoard.report))
                if sent[member.peer].map({ !QualityBoard.sameVerdict($0, update) }) ?? true {
                    sent[member.peer] = update
                    actions.append(.send(endpoint, .quality(update)))
                }
            }
            return actions
        }
    }

    /// Enough for a median over a long call without growing without bound.
    static let maxSamples = 2000

    /// By meeting first, so a room's end forgets its entries without scanning everyone's.
    private var meetings: [MeetingID: MeetingQuality] = [:]
    /// Reports come this often; a participant silent for longer may be turning `lost`.
    static let reportInterval = QualityEstimator.Settings().interval

    mutating func ingest(_ stats: CallStats, meeting: MeetingID, peer: PeerID, now: Date) {
        meetings[meeting, default: MeetingQuality()].ingest(stats, peer: peer, now: now)
    }

    /// The `quality` message each present member should get now, if it changed. What a member
    /// sends is judged by the others' reception; in a mesh the worst of them speaks for it.
    mutating func updates(for room: Room, now: Date) -> [RoomAction] {
        meetings[room.meeting.id, default: MeetingQuality()].updates(for: room, now: now)
    }

    /// Whether someone in the call has not reported for a whole interval: only then can a verdict
    /// change without a new report, so only then does the sweep need to look.
    func hasQuietParticipant(in room: Room, now: Date) -> Bool {
        guard let peers = room.session?.peers else { return false }
        let byPeer = meetings[room.meeting.id]?.estimators ?? [:]
        return peers.contains { byPeer[$0].map { now.timeIntervalSince($0.lastHeardAt) >= Self.reportInterval } ?? true }
    }

    func report(meeting: MeetingID, peer: PeerID, now: Date) -> QualityReport? {
        meetings[meeting]?.estimators[peer].flatMap { Self.verdict($0, now: now) }.map(Self.report)
    }

    /// Nothing is said before the first sample, unless the silence itself has become `lost`.
    private static func verdict(_ estimator: QualityEstimator, now: Date) -> QualityAssessment? {
        let assessment = estimator.assessment(at: now)
        return assessment.measured || assessment.class == .lost ? assessment : nil
    }

    /// Estimators start with the session, so a side whose browser never reports turns `lost`.
    mutating func sessionStarted(meeting: MeetingID, peers: Set<PeerID>, at: Date) {
        meetings[meeting, default: MeetingQuality()].session = SessionRecord(accumulator: SessionQualityAccumulator(startedAt: at))
        for peer in peers { entered(meeting: meeting, peer: peer, at: at) }
    }

    /// A participant in the call from `at`: silence from here on counts.
    mutating func entered(meeting: MeetingID, peer: PeerID, at: Date) {
        if meetings[meeting]?.estimators[peer] == nil {
            meetings[meeting, default: MeetingQuality()].estimators[peer] = QualityEstimator(startedAt: at)
        }
    }

    mutating func reconnected(meeting: MeetingID) {
        meetings[meeting]?.session?.accumulator.recordReconnect()
    }

    /// The numbers for the audit trail; forgets the session.
    mutating func sessionEnded(meeting: MeetingID, at: Date) -> QualitySummary? {
        guard let record = meetings[meeting]?.session else { return nil }
        meetings[meeting]?.session = nil
        let summary = record.accumulator.summary(at: at)
        let mins = summary.directions.compactMap(\.minMOS)
        let averages = summary.directions.compactMap(\.averageMOS)
        return QualitySummary(
            medianRoundTripMilliseconds: Self.median(record.roundTrips).map { Int($0.rounded()) },
            packetLossPermille: Self.median(record.lossSamples).map { Int(($0 * 1000).rounded()) },
            relayed: summary.path == .unknown ? nil : summary.path == .relayed,
            reconnects: summary.reconnects,
            minMOS: mins.min(),
            averageMOS: averages.isEmpty ? nil : averages.reduce(0, +) / Double(averages.count),
            percentTimePoor: summary.directions.map(\.percentPoorOrWorse).max())
    }

    mutating func forget(meeting: MeetingID) {
        meetings[meeting] = nil
    }

    static func report(_ assessment: QualityAssessment) -> QualityReport {
        QualityReport(class: assessment.class.rawValue, mos: (assessment.mos * 10).rounded() / 10, hint: assessment.hint?.rawValue)
    }

    /// Pushes follow changes of class or hint, not every decimal of the score.
    static func sameVerdict(_ a: QualityUpdate, _ b: QualityUpdate) -> Bool {
        a.receiving?.class == b.receiving?.class && a.receiving?.hint == b.receiving?.hint
            && a.sending?.class == b.sending?.class && a.sending?.hint == b.sending?.hint
    }

    static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        return sorted[sorted.count / 2]
    }
}

extension QualitySample {
    init(_ stats: CallStats) {
        self.init(rttMs: stats.rttMs, jitterMs: stats.jitterMs, packetLoss: stats.packetLossIn,
                  framesPerSecond: stats.framesPerSecondIn, freezeCount: stats.freezeCountIn,
                  freezeSeconds: stats.freezeSecondsIn, bitrateKbps: stats.bitrateInKbps)
    }
}
