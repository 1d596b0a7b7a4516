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
    }

    /// Enough for a median over a long call without growing without bound.
    static let maxSamples = 2000

    /// By meeting first, so a room's end forgets its entries without scanning everyone's.
    private var estimators: [MeetingID: [PeerID: QualityEstimator]] = [:]
    private var sent: [MeetingID: [PeerID: QualityUpdate]] = [:]
    /// Reports come this often; a participant silent for longer may be turning `lost`.
    static let reportInterval = QualityEstimator.Settings().interval
    private var sessions: [MeetingID: SessionRecord] = [:]

    mutating func ingest(_ stats: CallStats, meeting: MeetingID, peer: PeerID, now: Date) {
        var estimator = estimators[meeting]?[peer] ?? QualityEstimator(startedAt: now)
        let assessment = estimator.ingest(QualitySample(stats), at: now)
        estimators[meeting, default: [:]][peer] = estimator
        guard var record = sessions[meeting] else { return }
        record.accumulator.record(assessment, receivedBy: peer, at: now)
        record.accumulator.recordCandidatePair(localCandidateType: stats.localCandidateType, remoteCandidateType: stats.remoteCandidateType)
        if let rtt = stats.rttMs, record.roundTrips.count < Self.maxSamples { record.roundTrips.append(rtt) }
        if let loss = stats.packetLossIn, record.lossSamples.count < Self.maxSamples { record.lossSamples.append(loss) }
        sessions[meeting] = record
    }

    /// The `quality` message each present member should get now, if it changed. What a member
    /// sends is judged by the others' reception; in a mesh the worst of them speaks for it.
    mutating func updates(for room: Room, now: Date) -> [RoomAction] {
        var actions: [RoomAction] = []
        let inCall = room.session?.peers ?? []
        for member in room.members.values {
            guard let endpoint = member.endpoint else { continue }
            let receiving = verdict(meeting: room.meeting.id, peer: member.peer, now: now)
            let sending = inCall.subtracting([member.peer])
                .compactMap { verdict(meeting: room.meeting.id, peer: $0, now: now) }
                .min { $0.mos < $1.mos }?.forSender
            guard receiving != nil || sending != nil else { continue }
            let update = QualityUpdate(receiving: receiving.map(Self.report), sending: sending.map(Self.report))
            if sent[room.meeting.id]?[member.peer].map({ !Self.sameVerdict($0, update) }) ?? true {
                sent[room.meeting.id, default: [:]][member.peer] = update
                actions.append(.send(endpoint, .quality(update)))
            }
        }
        return actions
    }

    /// Whether someone in the call has not reported for a whole interval: only then can a verdict
    /// change without a new report, so only then does the sweep need to look.
    func hasQuietParticipant(in room: Room, now: Date) -> Bool {
        guard let peers = room.session?.peers else { return false }
        let byPeer = estimators[room.meeting.id] ?? [:]
        return peers.contains { byPeer[$0].map { now.timeIntervalSince($0.lastHeardAt) >= Self.reportInterval } ?? true }
    }

    func report(meeting: MeetingID, peer: PeerID, now: Date) -> QualityReport? {
        verdict(meeting: meeting, peer: peer, now: now).map(Self.report)
    }

    /// Nothing is said before the first sample, unless the silence itself has become `lost`.
    private func verdict(meeting: MeetingID, peer: PeerID, now: Date) -> QualityAssessment? {
        guard let assessment = estimators[meeting]?[peer]?.assessment(at: now),
              assessment.measured || assessment.class == .lost else { return nil }
        return assessment
    }

    /// Estimators start with the session, so a side whose browser never reports turns `lost`.
    mutating func sessionStarted(meeting: MeetingID, peers: Set<PeerID>, at: Date) {
        sessions[meeting] = SessionRecord(accumulator: SessionQualityAccumulator(startedAt: at))
        for peer in peers { entered(meeting: meeting, peer: peer, at: at) }
    }

    /// A participant in the call from `at`: silence from here on counts.
    mutating func entered(meeting: MeetingID, peer: PeerID, at: Date) {
        if estimators[meeting]?[peer] == nil { estimators[meeting, default: [:]][peer] = QualityEstimator(startedAt: at) }
    }

    mutating func reconnected(meeting: MeetingID) {
        sessions[meeting]?.accumulator.recordReconnect()
    }

    /// The numbers for the audit trail; forgets the session.
    mutating func sessionEnded(meeting: MeetingID, at: Date) -> QualitySummary? {
        guard let record = sessions.removeValue(forKey: meeting) else { return nil }
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
        estimators[meeting] = nil
        sent[meeting] = nil
        sessions[meeting] = nil
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
                  freezeSeconds: stats.freezeSecondsIn, audioOnly: stats.audioOnly, bitrateKbps: stats.bitrateInKbps)
    }
}
