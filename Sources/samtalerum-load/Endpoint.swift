import EventLoopExecutor
import HummingbirdWSClient
import Logging
import NIOCore
import NIOSSL
import SamtalerumCore
import SignallingProtocol
import Synchronization
import Foundation

/// A flag set once; e.g. the end of the hold period, after which every endpoint says `leave`.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    /// Sets the flag; true if this call was the one that set it.
    @discardableResult func set() -> Bool { !value.exchange(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}

/// What every endpoint shares.
struct LoadContext: Sendable {
    var url: String
    var tls: TLSConfiguration
    /// The client would send the IP address as SNI, which TLS forbids; the server's name instead.
    var sniHostname: String
    var group: any EventLoopGroup
    var recorder: Recorder
    var stop: Flag
    var interval: Duration
    /// Pings go out on every `pingEvery`-th stats tick: browsers ping every `pingInterval` (15 s),
    /// far less often than they report stats.
    var pingEvery: Int
    var candidates: Int
    var logger: Logger
}

/// One scripted browser: hello, join, the offer/answer exchange, then stats and ping every
/// interval until told to stop, then `leave`.
enum Endpoint {
    struct Plan: Sendable {
        var role: Role
        var token: String
        var meetingId: String?
        /// The meeting in the WebSocket URL (`/ws?meeting=`), as the pages send it: a load
        /// balancer routes every connection of a meeting to the same node by it.
        var route: String
        /// Seeds the first ping's offset so endpoints don't all ping in the same instant.
        var index: Int
    }

    static func run(_ plan: Plan, _ context: LoadContext, onJoined: @escaping @Sendable () -> Void) async {
        let recorder = context.recorder
        let startedAt = microsSinceEpoch()
        let inCall = Flag()
        // The connection's loop runs its tasks too, as in the server: a browser does not hand
        // every message to another thread, so neither should the tool that stands in for one.
        let loop = context.group.next()
        do {
            try await withTaskExecutorPreference(EventLoopTaskExecutor(loop)) {
                _ = try await WebSocketClient.connect(
                    url: context.url + "?meeting=" + plan.route, configuration: .init(maxFrameSize: 1 << 16, sniHostname: context.sniHostname), tlsConfiguration: context.tls,
                    eventLoopGroup: loop, logger: context.logger
                ) { inbound, outbound, _ in
                    @Sendable func sendText(_ text: String) async throws { try await outbound.write(.text(text)) }
                    @Sendable func send(_ message: ClientMessage) async throws { try await sendText(message.encoded()) }
                    try await send(.hello(Hello(token: plan.token)))
                    try await withThrowingTaskGroup(of: Void.self) { tasks in
                        for try await frame in inbound.messages(maxSize: 1 << 16) {
                            guard case .text(let text) = frame else { continue }
                            guard let message = try? ServerMessage.decode(text) else {
                                recorder.error("undecodable-server-message")
                                continue
                            }
                            switch message {
                            case .welcome:
                                recorder.connected(afterMs: millisSince(micros: startedAt))
                                try await send(.join(Join(meetingId: plan.meetingId.map { MeetingID(rawValue: $0) })))
                            case .joined:
                                onJoined()
                            case .peerWaiting:
                                if plan.role == .worker { try await send(.admit(Admit())) }
                            case .peerJoined(let joined):
                                if inCall.set() {
                                    recorder.enteredCall()
                                    tasks.addTask { try await keepAlive(plan, context, on: loop, sendText: sendText) }
                                }
                                if joined.initiator {
                                    try await send(.offer(SessionDescription(sdp: Synthetic.sdp(kind: "offer", sentAtMicros: microsSinceEpoch()))))
                                    for candidate in Synthetic.candidates(port: 50_000).prefix(context.candidates) { try await send(candidate) }
                                }
                            case .offer(let offer):
                                if let sent = Synthetic.sentAtMicros(in: offer.sdp) { recorder.relay(offer: true, latencyMs: millisSince(micros: sent)) }
                                try await send(.answer(SessionDescription(sdp: Synthetic.sdp(kind: "answer", sentAtMicros: microsSinceEpoch()))))
                                for candidate in Synthetic.candidates(port: 51_000).prefix(context.candidates) { try await send(candidate) }
                            case .answer(let answer):
                                if let sent = Synthetic.sentAtMicros(in: answer.sdp) { recorder.relay(offer: false, latencyMs: millisSince(micros: sent)) }
                            case .candidate(let relayed):
                                if let text = relayed.candidate?.candidate, let sent = Synthetic.sentAtMicros(inCandidate: text) {
                                    recorder.probeRelayed(sentAtMicros: sent)
                                }
                            case .pong(let pong):
                                recorder.pong(sentAtMicros: pong.id)
                            case .error(let error):
                                recorder.error("server-error-\(error.code)" + (error.inReplyTo.map { "-on-\($0)" } ?? ""))
                            default:
                                break
                            }
                        }
                        tasks.cancelAll()
                    }
                }
            }
        } catch {
            recorder.error(context.stop.isSet ? "error-after-stop" : "connection-\(Self.kind(of: error))")
            if ProcessInfo.processInfo.environment["LOAD_DEBUG"] != nil { print("endpoint \(plan.role): \(error)") }
        }
        if inCall.isSet {
            recorder.leftCall(cleanly: context.stop.isSet)
            if !context.stop.isSet { recorder.error("dropped-during-call") }
        } else {
            recorder.neverInCall()
        }
    }

    /// Stats every interval and a ping every `pingEvery` intervals (first ones at per-endpoint
    /// offsets), `leave` once stopped.
    private static func keepAlive(_ plan: Plan, _ context: LoadContext, on loop: any EventLoop,
                                  sendText: @Sendable (String) async throws -> Void) async throws {
        let interval = context.interval
        // Browsers report on their own clocks, i.e. spread evenly over the interval, not in
        // groups: the golden-ratio sequence spreads any number of endpoints evenly.
        let offset = interval * (Double(plan.index) * 0.618_033_988_75).truncatingRemainder(dividingBy: 1)
        var next = NIODeadline.now() + TimeAmount(offset)
        var sequence = 0
        // One exact timer per interval per endpoint, on absolute deadlines so each endpoint keeps
        // its phase; `leave` then follows the stop within one interval. Not `Task.sleep`: it may
        // fire a tenth of the interval late, and libdispatch uses that leeway to fire thousands
        // of endpoints' timers together — a burst no set of real browsers would produce.
        try await sleep(until: next, on: loop)
        while !context.stop.isSet {
            try await sendText(Synthetic.statsText(sequence: sequence))
            let pings = (sequence + plan.index) % context.pingEvery == 0
            // The worker's ping tick also trickles a candidate to the citizen, through the room.
            let probes = pings && plan.role == .worker
            if pings { try await sendText(ClientMessage.ping(Ping(id: microsSinceEpoch())).encoded()) }
            if probes { try await sendText(Synthetic.probeCandidate(sentAtMicros: microsSinceEpoch()).encoded()) }
            context.recorder.sent(1 + (pings ? 1 : 0) + (probes ? 1 : 0))
            sequence += 1
            next = next + TimeAmount(interval)
            try await sleep(until: next, on: loop)
        }
        try await sendText(ClientMessage.leave.encoded())
    }

    private static func sleep(until deadline: NIODeadline, on loop: any EventLoop) async throws {
        let timer = loop.scheduleTask(deadline: deadline) {}
        try await withTaskCancellationHandler {
            try await timer.futureResult.get()
        } onCancel: {
            timer.cancel()
        }
    }

    static func kind(of error: any Error) -> String {
        let text = String(describing: error)
        return String(text.prefix { $0 != "(" && $0 != ":" }).replacingOccurrences(of: " ", with: "-").prefix(60).description
    }
}
