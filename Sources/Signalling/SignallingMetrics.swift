import CoreMetrics
import SignallingProtocol

/// Event counters of signalling, through swift-metrics (the app exports them for Prometheus).
/// Handles are made at use: one made before the metrics system is bootstrapped would stay a no-op.
enum SignallingMetrics {
    static func error(_ code: SignallingErrorCode) {
        Counter(label: "samtalerum_signalling_errors_total", dimensions: [("code", code.rawValue)]).increment()
    }

    static func authenticationFailed(_ code: SignallingErrorCode) {
        Counter(label: "samtalerum_auth_failures_total", dimensions: [("via", "websocket"), ("code", code.rawValue)]).increment()
    }

    static var sessionDuration: CoreMetrics.Timer {
        CoreMetrics.Timer(label: "samtalerum_session_duration_seconds", preferredDisplayUnit: .seconds)
    }
}
