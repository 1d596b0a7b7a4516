import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import SamtalerumCore

/// Drives N rooms × 2 real WSS endpoints against a running `samtalerum serve` on loopback.
@main
struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "samtalerum-load",
        abstract: "Signalling load: N rooms, each a worker and a citizen over real WSS (loopback only).")

    @Option(help: "Server address; must be loopback.") var host = "127.0.0.1"
    @Option(help: "Server HTTPS/WSS port.") var port: Int
    @Option(help: "Worker bearer token (or SAMTALERUM_LOAD_TOKEN).") var token: String?
    @Option(help: "Rooms to hold (2 endpoints each).") var rooms = 100
    @Option(help: "Seconds to hold every room once all are up.") var seconds = 30
    @Option(help: "Overall deadline in seconds; the run aborts past it.") var deadline = 900
    @Option(help: "Rooms started per ramp batch.") var batch = 100
    @Option(help: "Seconds to wait for one batch to be in call before moving on.") var batchTimeout = 30
    @Option(help: "Meetings created concurrently during setup.") var createConcurrency = 8
    @Option(help: "Seconds between stats of one endpoint (browsers: 2).") var interval = 2.0
    @Option(help: "Seconds between pings of one endpoint (browsers: the server's pingInterval, 15).") var pingInterval = 15.0
    @Option(help: "ICE candidates each endpoint sends.") var candidates = 8
    @Option(help: "NIO event loop threads of this client.") var threads = 1
    @Option(help: "Server process id: its resident memory is read before and after connecting, its CPU over the hold. Repeat it for several (the nodes and the load balancer of a topology): the figures are their sums.")
    var serverPid: [Int32] = []
    @Option(help: "Prefix of citizenRef values (several processes use distinct ones).") var label = "load"
    @Option(help: "Write the raw latency samples and counters as JSON here (for merging processes).") var samplesOut: String?

    func validate() throws {
        guard Self.isLoopback(host) else { throw ValidationError("refusing non-loopback host '\(host)': load tests run on loopback only") }
        guard (1...50_000).contains(rooms) else { throw ValidationError("--rooms must be 1…50000") }
        guard (1...3600).contains(seconds), (10...7200).contains(deadline) else { throw ValidationError("--seconds 1…3600, --deadline 10…7200") }
        guard batch > 0, threads > 0, createConcurrency > 0, interval >= 0.1, pingInterval >= interval, (0...8).contains(candidates) else {
            throw ValidationError("--batch, --threads, --create-concurrency must be positive; --interval ≥ 0.1; --ping-interval ≥ --interval; --candidates 0…8")
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" || host == "[::1]" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false).compactMap { UInt8($0) }
        return octets.count == 4 && octets[0] == 127
    }

    func run() async throws {
        guard let token = token ?? ProcessInfo.processInfo.environment["SAMTALERUM_LOAD_TOKEN"] else {
            throw ValidationError("give --token or SAMTALERUM_LOAD_TOKEN (a worker token)")
        }
        let deadlineSeconds = deadline
        let watchdog = Task.detached {
            try await Task.sleep(for: .seconds(deadlineSeconds))
            FileHandle.standardError.write(Data("samtalerum-load: deadline of \(deadlineSeconds) s exceeded, aborting\n".utf8))
            Foundation.exit(3)
        }
        defer { watchdog.cancel() }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none
        var logger = Logger(label: "samtalerum-load")
        logger.logLevel = .critical
        let recorder = Recorder()
        let urlHost = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        let context = LoadContext(url: "wss://\(urlHost):\(port)/ws", tls: tls, sniHostname: "localhost", group: group, recorder: recorder, stop: Flag(),
                                  interval: .milliseconds(Int(interval * 1000)),
                                  pingEvery: max(1, Int((pingInterval / interval).rounded())), candidates: candidates, logger: logger)

        let api = MeetingAPI(host: host, port: port, token: token, tls: try NIOSSLContext(configuration: tls), group: group)
        let setupStart = ContinuousClock.now
        let meetings = await createMeetings(api, recorder: recorder)
        say("setup: \(meetings.count)/\(rooms) meetings created in \(seconds(since: setupStart)) s")

        let rssBefore = serverTotal(residentKiB(pid:))
        let rampStart = ContinuousClock.now
        let report = await withTaskGroup(of: Void.self, returning: Report.self) { roomTasks in
            var started = 0
            for chunk in stride(from: 0, to: meetings.count, by: batch).map({ meetings[$0..<min($0 + batch, meetings.count)] }) {
                for (offset, meeting) in zip(chunk.indices, chunk) {
                    roomTasks.addTask { await Self.runRoom(meeting, index: offset, token: token, context) }
                }
                started += chunk.count
                await waitForCalls(target: 2 * started, recorder: recorder)
                let errors = recorder.snapshot.errors.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
                say("ramp: \(started) rooms started, \(recorder.inCall) endpoints in call, errors: \(errors.isEmpty ? "none" : errors)")
            }
            // In call is not yet quiet: the last batch's answers and candidates are still on the way.
            await waitForAnswers(target: meetings.count, recorder: recorder)
            let rampSeconds = seconds(since: rampStart)
            let rssAfter = serverTotal(residentKiB(pid:))
            let heldAtStart = recorder.inCall
            recorder.setSteady(true)
            let ownPid = getpid()
            let cpuAtHold = (server: serverTotal(cpuSeconds(pid:)), client: cpuSeconds(pid: ownPid), machine: machineCPUSeconds())
            var minHeld = heldAtStart
            let holdStart = ContinuousClock.now
            while ContinuousClock.now - holdStart < .seconds(seconds) {
                try? await Task.sleep(for: .milliseconds(500))
                minHeld = min(minHeld, recorder.inCall)
            }
            recorder.setSteady(false)
            let holdSeconds = seconds(since: holdStart)
            let serverCPU = zip2(cpuAtHold.server, serverTotal(cpuSeconds(pid:))).map { ($1 - $0) / holdSeconds * 100 }
            let clientCPU = zip2(cpuAtHold.client, cpuSeconds(pid: ownPid)).map { ($1 - $0) / holdSeconds * 100 }
            let machine = zip2(cpuAtHold.machine, machineCPUSeconds()).map { ($1.busy - $0.busy) / holdSeconds * 100 }
            let serverCPUSeconds = zip2(cpuAtHold.server, serverTotal(cpuSeconds(pid:))).map { $1 - $0 }
            let rssHeld = serverTotal(residentKiB(pid:))
            context.stop.set()
            await roomTasks.waitForAll()
            return Report(rooms: meetings.count, rampSeconds: rampSeconds, heldAtStart: heldAtStart, minHeld: minHeld,
                          rssBeforeKiB: rssBefore, rssAfterKiB: rssAfter, rssHeldKiB: rssHeld,
                          serverCPUPercentDuringHold: serverCPU, clientCPUPercentDuringHold: clientCPU,
                          machineBusyPercentDuringHold: machine, serverCPUSecondsDuringHold: serverCPUSeconds,
                          figures: recorder.snapshot)
        }
        try? await group.shutdownGracefully()
        report.print(label: label, holdSeconds: seconds)
        if let samplesOut {
            let data = try JSONEncoder().encode(report)
            try data.write(to: URL(fileURLWithPath: samplesOut))
        }
    }

    /// Summed over every `--server-pid`; nil without one, or when one of them cannot be read.
    private func serverTotal<Value: AdditiveArithmetic>(_ read: (Int32) -> Value?) -> Value? {
        guard !serverPid.isEmpty else { return nil }
        var total = Value.zero
        for pid in serverPid {
            guard let value = read(pid) else { return nil }
            total += value
        }
        return total
    }

    private func createMeetings(_ api: MeetingAPI, recorder: Recorder) async -> [MeetingAPI.Created] {
        await withTaskGroup(of: MeetingAPI.Created?.self, returning: [MeetingAPI.Created].self) { group in
            var created: [MeetingAPI.Created] = []
            var next = 0
            func launch() {
                let index = next
                next += 1
                group.addTask { [label] in
                    do { return try await api.createMeeting(citizenRef: "\(label)-citizen-\(index)") } catch {
                        recorder.error("create-meeting-\(Endpoint.kind(of: error))")
                        return nil
                    }
                }
            }
            while next < min(createConcurrency, rooms) { launch() }
            for await result in group {
                if let result { created.append(result) }
                if next < rooms { launch() }
            }
            return created
        }
    }

    /// Worker first; the citizen connects once the worker is in the room, as in real use.
    private static func runRoom(_ meeting: MeetingAPI.Created, index: Int, token: String, _ context: LoadContext) async {
        let (joined, signal) = AsyncStream.makeStream(of: Void.self)
        await withTaskGroup(of: Void.self) { endpoints in
            endpoints.addTask {
                await Endpoint.run(.init(role: .worker, token: token, meetingId: meeting.meetingId, route: meeting.meetingId, index: 2 * index), context) {
                    signal.yield()
                    signal.finish()
                }
                signal.finish()
            }
            var workerJoined = false
            for await _ in joined { workerJoined = true }
            guard workerJoined else {
                context.recorder.neverInCall()
                return
            }
            endpoints.addTask {
                await Endpoint.run(.init(role: .citizen, token: meeting.invite, meetingId: nil, route: meeting.meetingId, index: 2 * index + 1), context) {}
            }
        }
    }

    /// Endpoints that failed count as settled, so one bad room cannot stall the ramp.
    private func waitForCalls(target: Int, recorder: Recorder) async {
        await waitAtMostBatchTimeout { recorder.inCall + recorder.neverInCallCount >= target }
    }

    private func waitForAnswers(target: Int, recorder: Recorder) async {
        await waitAtMostBatchTimeout { recorder.answersRelayed >= target - recorder.neverInCallCount / 2 }
    }

    private func waitAtMostBatchTimeout(until done: () -> Bool) async {
        let start = ContinuousClock.now
        while !done(), ContinuousClock.now - start < .seconds(batchTimeout) {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    private func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18).rounded(toPlaces: 2)
    }
}

func zip2<A, B>(_ a: A?, _ b: B?) -> (A, B)? {
    guard let a, let b else { return nil }
    return (a, b)
}

func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

extension Double {
    func rounded(toPlaces places: Int) -> Double {
        let scale = pow(10, Double(places))
        return (self * scale).rounded() / scale
    }
}
