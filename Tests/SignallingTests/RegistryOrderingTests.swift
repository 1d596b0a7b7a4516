import Crypto
import Foundation
import Identity
import SamtalerumCore
@testable import Signalling
import SignallingProtocol
import Synchronization
import Testing

/// Holds the worker's join record until the test lets it through, like a slow disk would.
final class GatedRecorder: AuditRecorder {
    private let gate = Mutex<CheckedContinuation<Void, Never>?>(nil)
    private let held = Atomic<Bool>(false)

    var isHolding: Bool { held.load(ordering: .acquiring) }

    func record(_ event: AuditEvent) async throws {
        guard case .participantJoined(_, let participant, _) = event, participant.role == .worker else { return }
        await withCheckedContinuation { continuation in
            gate.withLock { $0 = continuation }
            held.store(true, ordering: .releasing)
        }
    }

    func release() { gate.withLock { $0?.resume(); $0 = nil } }
}

struct FixedDirectory: MeetingDirectory {
    let meeting: Meeting
    func meeting(id: MeetingID) async throws -> Meeting? { id == meeting.id ? meeting : nil }
}

@Suite(.timeLimit(.minutes(1))) struct RegistryOrderingTests {
    @Test func aLaterJoinsMessagesNeverOvertakeAnEarlierJoinsReply() async throws {
        let now = Date()
        let meeting = Meeting(id: MeetingID(rawValue: "m-ordering"), workerRef: SubjectRef(rawValue: "w-1"),
                              citizenRef: SubjectRef(rawValue: "case-1"), createdAt: now, inviteExpiresAt: now.addingTimeInterval(600))
        let recorder = GatedRecorder()
        let registry = RoomRegistry(directory: FixedDirectory(meeting: meeting), recorder: recorder, iceServers: { _, _ in [] },
                                    tokens: try await TokenAuthority(signingKey: SymmetricKey(size: .bits256)))
        let worker = EndpointID(rawValue: "e-worker")
        let citizen = EndpointID(rawValue: "e-citizen")
        let (toWorker, workerOutbox) = AsyncStream.makeStream(of: Outgoing.self)
        let (_, citizenOutbox) = AsyncStream.makeStream(of: Outgoing.self)
        await registry.connect(worker, outbox: workerOutbox)
        await registry.connect(citizen, outbox: citizenOutbox)

        let workerJoin = Task {
            try await registry.join(worker, credential: .staff(StaffIdentity(subject: meeting.workerRef, role: .worker, expiresAt: meeting.inviteExpiresAt)),
                                    request: Join(meetingId: meeting.id))
        }
        while !recorder.isHolding { await Task.yield() }
        let citizenJoin = Task {
            try await registry.join(citizen, credential: .invite(Invite(meetingId: meeting.id, inviteId: "i", expiresAt: meeting.inviteExpiresAt)),
                                    request: Join(meetingId: nil))
        }
        // The citizen is in the room (its change is made) while the worker's record is still on its way.
        while await registry.snapshot.first?.participants.count != 2 { await Task.yield() }
        recorder.release()
        try await workerJoin.value
        try await citizenJoin.value

        var received: [MessageType] = []
        for await item in toWorker {
            if case .message(let message) = item { received.append(message.type) }
            if received.count == 2 { break }
        }
        #expect(received == [.joined, .peerWaiting])
    }
}

/// A directory whose first lookup waits until the test lets it through; the meeting can change meanwhile.
final class SlowDirectory: MeetingDirectory {
    private let current: Mutex<Meeting>
    private let gate = Mutex<CheckedContinuation<Void, Never>?>(nil)
    private let held = Atomic<Bool>(false)
    private let first = Atomic<Bool>(true)

    init(_ meeting: Meeting) { current = Mutex(meeting) }
    var isHolding: Bool { held.load(ordering: .acquiring) }
    func change(_ body: (inout Meeting) -> Void) { current.withLock { body(&$0) } }
    func release() { gate.withLock { $0?.resume(); $0 = nil } }

    func meeting(id: MeetingID) async throws -> Meeting? {
        let read = current.withLock { $0 }
        if first.exchange(false, ordering: .acquiringAndReleasing) {
            await withCheckedContinuation { continuation in
                gate.withLock { $0 = continuation }
                held.store(true, ordering: .releasing)
            }
        }
        return read.id == id ? read : nil
    }
}

@Suite(.timeLimit(.minutes(1))) struct EvictionRaceTests {
    /// The citizen's lookup read the meeting before it was cancelled; the cancel lands while the
    /// lookup is on its way. The join must not slip into the room with the stale read.
    @Test func aJoinWhoseLookupWasInFlightDuringACancelIsRefused() async throws {
        let now = Date()
        let directory = SlowDirectory(Meeting(id: MeetingID(rawValue: "m-race"), workerRef: SubjectRef(rawValue: "w-1"),
                                              citizenRef: SubjectRef(rawValue: "case-1"), createdAt: now,
                                              inviteExpiresAt: now.addingTimeInterval(600)))
        let registry = RoomRegistry(directory: directory, recorder: GatedRecorder(), iceServers: { _, _ in [] },
                                    tokens: try await TokenAuthority(signingKey: SymmetricKey(size: .bits256)))
        let citizen = EndpointID(rawValue: "e-citizen")
        let (_, outbox) = AsyncStream.makeStream(of: Outgoing.self)
        await registry.connect(citizen, outbox: outbox)
        let join = Task {
            try await registry.join(citizen, credential: .invite(Invite(meetingId: MeetingID(rawValue: "m-race"), inviteId: "i",
                                                                        expiresAt: now.addingTimeInterval(600))),
                                    request: Join(meetingId: nil))
        }
        while !directory.isHolding { await Task.yield() }
        directory.change { $0.cancelledAt = now }
        await registry.evict(meeting: MeetingID(rawValue: "m-race"), code: .meetingCancelled, reason: .meetingCancelled)
        directory.release()
        await #expect(throws: SignallingErrorCode.meetingCancelled) { try await join.value }
        #expect(await registry.snapshot.isEmpty)
    }
}
