import Foundation
import Hummingbird
import SamtalerumCore
import Signalling
import SignallingProtocol
import TURN

/// What ops staff see of live sessions: states, durations, quality and relay use. No names, no
/// references, no addresses — a meeting id and roles are enough to help a worker on the phone.
struct OpsSnapshot: ResponseEncodable, Sendable {
    struct Server: Codable, Sendable {
        var connections: Int
        var rooms: Int
        var allocations: Int
        var residentMemoryBytes: Int?
    }

    struct Quality: Codable, Sendable {
        var `class`: String
        var mos: Double
    }

    struct ParticipantView: Codable, Sendable {
        var role: Role
        var peer: PeerID
        var present: Bool
        var waiting: Bool
        var quality: Quality?
        var rttMs: Double?
        var packetLossIn: Double?
        var relayed: Bool?
        var relayProtocol: String?
        var relayBytesIn: UInt64?
        var relayBytesOut: UInt64?
        /// The relay of `turn.relays` this participant was given (absent with an empty list).
        var relay: String?
    }

    struct SessionView: Codable, Sendable {
        var meetingId: MeetingID
        var sessionId: SessionID?
        /// `waiting`, `in-call` or `reconnecting`.
        var state: String
        var startedAt: Date?
        var durationSeconds: Int
        var interruptions: Int
        var participants: [ParticipantView]
    }

    var generatedAt: Date
    var server: Server
    var sessions: [SessionView]

    static func make(rooms: [RoomSnapshot], connections: Int, relay: [AllocationStatistics],
                     relayNames: [EndpointID: String] = [:], now: Date) -> OpsSnapshot {
        var relayByCredential: [String: [AllocationStatistics]] = [:]
        for allocation in relay { relayByCredential[allocation.credentialID, default: []].append(allocation) }
        let sessions = rooms.map { room -> SessionView in
            let participants = room.participants.map { participant -> ParticipantView in
                let allocations = participant.endpoint.flatMap { relayByCredential[$0.rawValue] } ?? []
                let stats = participant.stats
                let relayedByStats = stats?.localCandidateType.map { $0 == "relay" }
                return ParticipantView(
                    role: participant.role, peer: participant.peer, present: !participant.away, waiting: participant.waiting,
                    quality: participant.quality.map { Quality(class: $0.class, mos: $0.mos) },
                    rttMs: stats?.rttMs, packetLossIn: stats?.packetLossIn,
                    relayed: relayedByStats ?? (allocations.isEmpty ? nil : true),
                    relayProtocol: stats?.relayProtocol,
                    relayBytesIn: allocations.isEmpty ? nil : allocations.reduce(0) { $0 + $1.bytesFromPeer },
                    relayBytesOut: allocations.isEmpty ? nil : allocations.reduce(0) { $0 + $1.bytesToPeer },
                    relay: participant.endpoint.flatMap { relayNames[$0] })
            }
            return SessionView(
                meetingId: room.meetingId, sessionId: room.sessionId, state: room.state, startedAt: room.sessionStartedAt,
                durationSeconds: room.sessionStartedAt.map { max(0, Int(now.timeIntervalSince($0))) } ?? 0,
                interruptions: room.interruptions, participants: participants)
        }
        return OpsSnapshot(
            generatedAt: now,
            server: Server(connections: connections, rooms: rooms.count, allocations: relay.count,
                           residentMemoryBytes: ProcessMemory.residentBytes()),
            sessions: sessions.sorted { ($0.startedAt ?? .distantFuture) < ($1.startedAt ?? .distantFuture) })
    }
}

enum ProcessMemory {
    /// VmRSS from /proc/self/status (Linux); nil elsewhere.
    static func residentBytes() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return nil }
        return kilobytes * 1024
    }
}
