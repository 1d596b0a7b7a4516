import Foundation

/// The outcome of one process's run; `Scripts/load-signalling` merges several.
struct Report: Codable, Sendable {
    var rooms: Int
    var rampSeconds: Double
    /// Endpoints in call when the hold began, and the fewest seen during the hold.
    var heldAtStart: Int
    var minHeld: Int
    var rssBeforeKiB: Int?
    var rssAfterKiB: Int?
    var rssHeldKiB: Int?
    /// CPU use during the hold, in percent of one core (200 = both cores of the test machine).
    var serverCPUPercentDuringHold: Double?
    var clientCPUPercentDuringHold: Double?
    /// Everything that ran on the machine, this run included (200 = both cores busy).
    var machineBusyPercentDuringHold: Double?
    var serverCPUSecondsDuringHold: Double?
    var figures: Figures

    func print(label: String, holdSeconds: Int) {
        func line(_ name: String, _ samples: [Double]) -> String {
            let sorted = samples.sorted()
            let p = { (q: Double) in percentile(sorted, q).map { String(format: "%.2f", $0) } ?? "-" }
            return "\(name): n=\(sorted.count) p50=\(p(50)) p90=\(p(90)) p99=\(p(99)) max=\(p(100)) ms"
        }
        say("== samtalerum-load [\(label)] ==")
        say("rooms \(rooms), endpoints in call at hold start \(heldAtStart), fewest during the \(holdSeconds) s hold \(minHeld), peak \(figures.peakInCall)")
        say("ramp \(String(format: "%.1f", rampSeconds)) s; left cleanly \(figures.leftCleanly)")
        say(line("ping→pong (steady)", figures.steadyPingMs))
        say(line("candidate relay (steady)", figures.steadyRelayMs))
        say(line("ping→pong (all)", figures.pingMs))
        say(line("offer relay", figures.offerRelayMs))
        say(line("answer relay", figures.answerRelayMs))
        say(line("connect→welcome", figures.connectMs))
        if let before = rssBeforeKiB, let after = rssAfterKiB, heldAtStart > 0 {
            let perEndpoint = Double(after - before) / Double(heldAtStart)
            say(String(format: "server RSS %.1f MB before, %.1f MB with %d endpoints, %.1f MB at end of hold: %.1f KiB per endpoint",
                       Double(before) / 1024, Double(after) / 1024, heldAtStart, Double(rssHeldKiB ?? after) / 1024, perEndpoint))
        }
        let cpu = { (value: Double?) in value.map { String(format: "%.0f %%", $0) } ?? "-" }
        say("CPU during hold (100 % = one core): server \(cpu(serverCPUPercentDuringHold)), this client \(cpu(clientCPUPercentDuringHold)), "
            + "whole machine \(cpu(machineBusyPercentDuringHold))")
        if let seconds = serverCPUSecondsDuringHold, figures.steadyMessagesSent > 0 {
            say(String(format: "server CPU per inbound message (stats, ping or candidate; replies included): %.0f µs",
                       seconds / Double(figures.steadyMessagesSent) * 1e6))
        }
        let errors = figures.errors.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        say("errors: \(errors.isEmpty ? "none" : errors)")
    }
}
