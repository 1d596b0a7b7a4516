import Foundation
import Synchronization

/// One clock for the whole process: ping ids and SDP session ids carry microseconds since
/// `epoch`, so a reply's latency needs no per-endpoint bookkeeping.
let epoch = ContinuousClock.now

func microsSinceEpoch() -> Int {
    let elapsed = ContinuousClock.now - epoch
    return Int(elapsed.components.seconds) * 1_000_000 + Int(elapsed.components.attoseconds / 1_000_000_000_000)
}

func millisSince(micros: Int) -> Double { Double(microsSinceEpoch() - micros) / 1000 }

/// Everything measured, shared by all endpoints of this process.
struct Figures: Sendable, Codable {
    var pingMs: [Double] = []
    /// Pings sent during the hold, when every room was up and nothing was connecting: the
    /// steady state. Judged by send time, so a ping stuck behind the ramp's backlog is not one.
    var steadyPingMs: [Double] = []
    /// A candidate relayed through the room during the hold (an ICE restart's trickle): the
    /// steady latency of the room's path, where a ping is answered without the room.
    var steadyRelayMs: [Double] = []
    var offerRelayMs: [Double] = []
    var answerRelayMs: [Double] = []
    var connectMs: [Double] = []
    var errors: [String: Int] = [:]
    /// Stats and pings sent while steady: the server's inbound message count in the hold.
    var steadyMessagesSent = 0
    var inCall = 0
    var peakInCall = 0
    var leftCleanly = 0
    /// Endpoints that ended without ever being in a call (connect, hello or join failed).
    var neverInCall = 0
}

final class Recorder: Sendable {
    private let figures = Mutex(Figures())
    private let steady = Atomic<Bool>(false)
    /// `microsSinceEpoch()` when the hold began; pings sent from then on are steady.
    private let steadySince = Atomic<Int>(.max)

    func setSteady(_ value: Bool) {
        if value { steadySince.store(microsSinceEpoch(), ordering: .relaxed) }
        steady.store(value, ordering: .relaxed)
    }

    private func isSteady(sentAtMicros: Int) -> Bool { sentAtMicros >= steadySince.load(ordering: .relaxed) }

    func pong(sentAtMicros: Int) {
        let latencyMs = millisSince(micros: sentAtMicros)
        let isSteady = isSteady(sentAtMicros: sentAtMicros)
        figures.withLock {
            $0.pingMs.append(latencyMs)
            if isSteady { $0.steadyPingMs.append(latencyMs) }
        }
    }

    func probeRelayed(sentAtMicros: Int) {
        guard isSteady(sentAtMicros: sentAtMicros) else { return }
        let latencyMs = millisSince(micros: sentAtMicros)
        figures.withLock { $0.steadyRelayMs.append(latencyMs) }
    }

    func sent(_ messages: Int) {
        guard steady.load(ordering: .relaxed) else { return }
        figures.withLock { $0.steadyMessagesSent += messages }
    }

    func relay(offer: Bool, latencyMs: Double) {
        figures.withLock { if offer { $0.offerRelayMs.append(latencyMs) } else { $0.answerRelayMs.append(latencyMs) } }
    }

    func connected(afterMs: Double) { figures.withLock { $0.connectMs.append(afterMs) } }

    func error(_ kind: String) { figures.withLock { $0.errors[kind, default: 0] += 1 } }

    func enteredCall() {
        figures.withLock {
            $0.inCall += 1
            $0.peakInCall = max($0.peakInCall, $0.inCall)
        }
    }

    func leftCall(cleanly: Bool) {
        figures.withLock {
            $0.inCall -= 1
            if cleanly { $0.leftCleanly += 1 }
        }
    }

    func neverInCall() {
        figures.withLock {
            $0.neverInCall += 1
            $0.errors["never-in-call", default: 0] += 1
        }
    }

    var inCall: Int { figures.withLock { $0.inCall } }
    var answersRelayed: Int { figures.withLock { $0.answerRelayMs.count } }
    var neverInCallCount: Int { figures.withLock { $0.neverInCall } }
    var errorCount: Int { figures.withLock { $0.errors.values.reduce(0, +) } }
    var snapshot: Figures { figures.withLock { $0 } }
}

/// Nearest-rank percentile; nil for no samples.
func percentile(_ sorted: [Double], _ p: Double) -> Double? {
    guard !sorted.isEmpty else { return nil }
    let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
    return sorted[min(max(rank, 1), sorted.count) - 1]
}

/// Resident memory of a process in KiB, from /proc (Linux only).
func residentKiB(pid: Int32) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
    }
    return nil
}

/// User + system CPU seconds of a process (all threads), from /proc/PID/stat (Linux only).
func cpuSeconds(pid: Int32) -> Double? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let afterName = stat.range(of: ") ", options: .backwards) else { return nil }
    // After the command name: field 3 is the state, so utime and stime (fields 14, 15) are at 11, 12.
    let fields = stat[afterName.upperBound...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// Busy and total CPU seconds of the whole machine (all cores), from /proc/stat: how much of
/// the box other work took while we measured.
func machineCPUSeconds() -> (busy: Double, total: Double)? {
    guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
          let line = stat.split(separator: "\n").first, line.hasPrefix("cpu ") else { return nil }
    let ticks = line.split(separator: " ").dropFirst().compactMap { Double($0) }
    guard ticks.count >= 5 else { return nil }
    let idle = ticks[3] + ticks[4]  // idle + iowait
    let total = ticks.prefix(8).reduce(0, +)
    let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
    return ((total - idle) / hz, total / hz)
}
