import Foundation
import Identity
import Logging
import SamtalerumCore
import SignallingProtocol
import Synchronization

/// A frame as the transport hands it over; the protocol only speaks text.
public enum InboundFrame: Sendable, Equatable {
    case text(String)
    case binary
}

/// The transport side of one connection (a WebSocket in production and in tests).
public protocol FrameWriter: Sendable {
    func send(_ text: String) async throws
    func close(_ code: CloseCode, reason: String) async throws
    /// Ends the connection now, ahead of anything still queued: writes `lastWords` (if any) and a
    /// close frame, and drops the transport once they are out or after a bounded wait, without
    /// waiting for the client's close reply (it may not be reading, or not there at all).
    func abort(lastWords: String?, _ code: CloseCode, reason: String) async
}

public struct EndpointSettings: Sendable {
    public var helloTimeout: Duration
    public var pingInterval: Int
    /// Messages queued for one client before it counts as a slow consumer.
    public var outboxLimit: Int
    /// Told to clients in `welcome`; the registry's `RoomPolicy` enforces it.
    public var resumeGraceSeconds: Int

    /// A client that sends nothing (not even `ping`) for this long is closed as silent.
    public var silenceLimit: Duration { .seconds(3 * pingInterval) }

    public init(helloTimeout: Duration = .seconds(5), pingInterval: Int = 15, outboxLimit: Int = 512, resumeGraceSeconds: Int = 60) {
        self.helloTimeout = helloTimeout
        self.pingInterval = pingInterval
        self.outboxLimit = outboxLimit
        self.resumeGraceSeconds = resumeGraceSeconds
    }
}

/// Runs the protocol for one connection: authentication, the room, relaying, and clean-up.
public struct SignallingEndpoint: Sendable {
    let registry: RoomRegistry
    let authority: TokenAuthority
    let settings: EndpointSettings
    let logger: Logger

    public init(registry: RoomRegistry, authority: TokenAuthority, settings: EndpointSettings,
                logger: Logger = Logger(label: "samtalerum.signalling")) {
        self.registry = registry
        self.authority = authority
        self.settings = settings
        self.logger = logger
    }

    /// Returns when the connection is over. Errors thrown by `inbound` are rethrown after the
    /// room was told, so the transport can close with its own code (e.g. 1009).
    public func run<Inbound: AsyncSequence>(
        inbound: Inbound, writer: some FrameWriter, classifyFailure: @escaping @Sendable (any Error) -> EndReason
    ) async throws where Inbound.Element == InboundFrame {
        let endpoint = EndpointID.random()
        let (queue, outbox) = AsyncStream.makeStream(of: Outgoing.self, bufferingPolicy: .bufferingOldest(settings.outboxLimit))
        let (overflows, overflowed) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        await registry.connect(endpoint, outbox: outbox, overflowed: { overflowed.yield() })
        let helloDeadline = Task { [settings] in
            try await Task.sleep(for: settings.helloTimeout)
            outbox.yield(.close(.policyViolation, reason: "hello-timeout"))
        }
        let lastHeard = LastHeard()
        let silenceWatch = Task { [settings] in
            try await lastHeard.waitForSilence(of: settings.silenceLimit)
            await writer.abort(lastWords: nil, .silent, reason: "silent")
        }
        defer {
            helloDeadline.cancel()
            silenceWatch.cancel()
        }

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await Self.drain(queue, into: writer) }
            group.addTask { [registry] in
                var overflow = overflows.makeAsyncIterator()
                guard await overflow.next() != nil else { return }
                // What is queued will not arrive: the room hears now that this client is gone
                // (its place is kept for the grace period, as for any lost connection).
                let slow = SignallingErrorCode.slowConsumer
                SignallingMetrics.error(slow)
                await registry.disconnect(endpoint, reason: .connectionLost)
                let error = ServerMessage.error(ErrorMessage(code: slow, message: "the client stopped reading; its queue overflowed"))
                await writer.abort(lastWords: error.encoded(), slow.closeCode, reason: slow.rawValue)
            }
            var session = EndpointState(endpoint: endpoint, outbox: outbox)
            do {
                for try await frame in inbound {
                    lastHeard.heard()
                    await handle(frame, state: &session)
                    if session.authenticated { helloDeadline.cancel() }
                    if session.closing { break }
                }
                await registry.disconnect(endpoint, reason: .connectionLost)
                outbox.finish()
                overflowed.finish()
            } catch {
                await registry.disconnect(endpoint, reason: classifyFailure(error))
                outbox.finish()
                overflowed.finish()
                throw error
            }
            try await group.waitForAll()
        }
    }

    /// The one writer of this connection: messages in order, then at most one close.
    static func drain(_ queue: AsyncStream<Outgoing>, into writer: some FrameWriter) async {
        for await item in queue {
            switch item {
            case .message(let message):
                do { try await writer.send(message.encoded()) } catch { return }
            case .close(let code, let reason):
                try? await writer.close(code, reason: reason)
                return
            }
        }
    }

    struct EndpointState {
        let endpoint: EndpointID
        let outbox: Outbox
        var credential: Credential?
        var closing = false

        var authenticated: Bool { credential != nil }

        mutating func fail(_ code: SignallingErrorCode, _ message: String, inReplyTo: MessageType?) {
            SignallingMetrics.error(code)
            outbox.yield(.message(.error(ErrorMessage(code: code, message: message, inReplyTo: inReplyTo))))
            if code.isFatal {
                outbox.yield(.close(code.closeCode, reason: code.rawValue))
                closing = true
            }
        }
    }

    /// The whole client protocol is this one switch.
    func handle(_ frame: InboundFrame, state: inout EndpointState) async {
        guard case .text(let text) = frame else {
            return state.fail(.unsupportedFrame, "binary frames are not part of the protocol", inReplyTo: nil)
        }
        let message: ClientMessage
        do {
            message = try ClientMessage.decode(text)
        } catch {
            let reply = error.errorMessage
            return state.fail(reply.code, reply.message, inReplyTo: reply.inReplyTo)
        }
        if case .hello = message {} else if !state.authenticated {
            return state.fail(.notAuthenticated, "send hello first", inReplyTo: message.type)
        }
        switch message {
        case .hello(let hello):
            await authenticate(hello, state: &state)
        case .join(let join):
            do {
                guard let credential = state.credential else { return }
                try await registry.join(state.endpoint, credential: credential, request: join)
            } catch {
                state.fail(error, Self.explanation(error), inReplyTo: .join)
            }
        case .offer, .answer, .candidate:
            do { try await registry.relay(from: state.endpoint, message) } catch {
                state.fail(error, Self.explanation(error), inReplyTo: message.type)
            }
        case .chat(let chat):
            guard Self.isValidText(chat.text, maxLength: Chat.maxLength) else {
                return state.fail(.invalidMessage, "chat text must be 1–\(Chat.maxLength) characters", inReplyTo: .chat)
            }
            do { try await registry.relay(from: state.endpoint, message) } catch {
                state.fail(error, Self.explanation(error), inReplyTo: .chat)
            }
        case .note(let note):
            guard Self.isValidText(note.text, maxLength: Note.maxLength) else {
                return state.fail(.invalidMessage, "note text must be 1–\(Note.maxLength) characters", inReplyTo: .note)
            }
            do { try await registry.note(from: state.endpoint, text: note.text) } catch {
                state.fail(error, Self.explanation(error), inReplyTo: .note)
            }
        case .admit(let admit):
            do { try await registry.admit(admit.peer, by: state.endpoint) } catch {
                state.fail(error, Self.explanation(error), inReplyTo: .admit)
            }
        case .stats(let stats):
            do { try await registry.stats(from: state.endpoint, stats.clamped) } catch {
                state.fail(error, Self.explanation(error), inReplyTo: .stats)
            }
        case .leave:
            await registry.disconnect(state.endpoint, reason: .hangup)
            state.outbox.yield(.close(.normal, reason: "bye"))
            state.closing = true
        case .ping(let ping):
            state.outbox.yield(.message(.pong(ping)))
        }
    }

    private func authenticate(_ hello: Hello, state: inout EndpointState) async {
        guard !state.authenticated else {
            return state.fail(.alreadyAuthenticated, "hello was already accepted", inReplyTo: .hello)
        }
        guard ProtocolVersion.supported.contains(hello.v) else {
            return state.fail(.unsupportedVersion, "this server speaks version \(ProtocolVersion.current)", inReplyTo: .hello)
        }
        let credential: Credential
        var expired = false
        do {
            credential = try await authority.verifyCredential(hello.token)
        } catch .expired {
            // An invite that expired during the call still takes its kept place back: the resume
            // ticket governs a resume, not the invite's expiry.
            if let token = hello.resumeToken,
               let past = try? await authority.verifyCredential(hello.token, acceptingExpiredInvite: true),
               await registry.canResume(credential: past, token: token) {
                credential = past
                expired = true
            } else {
                SignallingMetrics.authenticationFailed(.tokenExpired)
                return state.fail(.tokenExpired, "the token or invite has expired", inReplyTo: .hello)
            }
        } catch {
            SignallingMetrics.authenticationFailed(.tokenInvalid)
            return state.fail(.tokenInvalid, "the token is not valid here", inReplyTo: .hello)
        }
        let welcome: Welcome
        switch credential {
        case .invite(let invite):
            welcome = Welcome(role: invite.role, peer: invite.peer, meetingId: invite.meetingId, endpointId: state.endpoint,
                              pingInterval: settings.pingInterval, resumeGraceSeconds: settings.resumeGraceSeconds)
        case .staff(let staff):
            guard staff.role.isCallParticipant else {
                return state.fail(.roleNotAllowed, "role \(staff.role) does not take part in calls", inReplyTo: .hello)
            }
            welcome = Welcome(role: staff.role, peer: .worker, meetingId: nil, endpointId: state.endpoint,
                              pingInterval: settings.pingInterval, resumeGraceSeconds: settings.resumeGraceSeconds)
        }
        state.credential = credential
        state.outbox.yield(.message(.welcome(welcome)))
        if let token = hello.resumeToken {
            do { try await registry.resume(state.endpoint, credential: credential, token: token) } catch {
                // An expired invite was let in for this resume only: it may not `join` instead.
                if expired { return state.fail(.tokenExpired, "the invite has expired and its place is gone", inReplyTo: .hello) }
                state.fail(error, "that place is no longer kept; join again", inReplyTo: .hello)
            }
        }
    }

    /// When the client last sent anything; a watch closes the connection after a silence.
    final class LastHeard: Sendable {
        private let instant = Mutex(ContinuousClock.now)

        func heard() { instant.withLock { $0 = .now } }

        /// Returns once nothing was heard for `limit`; throws when cancelled.
        func waitForSilence(of limit: Duration) async throws {
            while true {
                let deadline = instant.withLock { $0 } + limit
                if deadline <= .now { return }
                try await Task.sleep(until: deadline, clock: .continuous)
            }
        }
    }

    static func isValidText(_ text: String, maxLength: Int) -> Bool {
        !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty && text.count <= maxLength
    }

    static func explanation(_ code: SignallingErrorCode) -> String {
        switch code {
        case .roomFull: "that place is already taken in this meeting"
        case .notInvited: "this token does not give access to that meeting"
        case .meetingNotFound: "no such meeting"
        case .meetingEnded: "the meeting's invite has expired"
        case .notJoined: "join a meeting first"
        case .alreadyJoined: "already in a meeting"
        case .noPeer: "nobody else is in the room yet"
        case .roleNotAllowed: "this role does not take part in calls"
        case .invalidMessage: "a field this needs is missing: join needs meetingId; in a call of three or more, offer/answer/candidate need to"
        case .notAllowed: "only the worker may do that"
        case .notWaiting: "nobody (or not that peer) is waiting to be admitted"
        case .resumeFailed: "that place is no longer kept; join again"
        default: "the request could not be served"
        }
    }
}
