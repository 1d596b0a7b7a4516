import AsyncHTTPClient
import CoreMetrics
import Foundation
import Logging
import NIOCore
import SamtalerumCore
import ServiceLifecycle
import SignallingProtocol
import Synchronization
import TURN

/// What signalling knows of one relay's load, from its status endpoint.
enum RelayStatus: Sendable, Equatable {
    /// No status endpoint (coturn), or not asked yet: taken as reachable.
    case unknown
    /// The status endpoint did not answer 200 in time: skipped.
    case unreachable
    case load(allocations: Int, capacity: Int?)
}

/// The selection policy, pure: which relay of the list a client gets.
enum RelayChoice {
    static func pick(_ relays: [RelayNode], status: [RelayStatus], client: IPAddress?, policy: RelayPolicy) -> Int {
        let usable = relays.indices.filter { index in
            switch status[index] {
            case .unknown: true
            case .unreachable: false
            case .load(let allocations, let capacity): capacity.map { allocations < $0 } ?? true
            }
        }
        var candidates = usable
        if policy == .nearest, let client {
            let near = usable.filter { relays[$0].ranges.contains { $0.contains(client) } }
            if !near.isEmpty { candidates = near }
        }
        // A known load ranks before an unknown one; ties go to the earlier relay of the list.
        func rank(_ index: Int) -> (Int, Int, Int) {
            if case .load(let allocations, _) = status[index] { return (0, allocations, index) }
            return (1, 0, index)
        }
        return candidates.min { rank($0) < rank($1) } ?? 0
    }
}

/// The client address of the signalling connection being served. Set by the WebSocket route
/// around the connection's task and read where its ICE servers are made, so the signalling
/// module, which knows no addresses, need not carry it through every call.
public enum RelayClientAddress {
    @TaskLocal public static var current: IPAddress?
}

/// The relays signalling hands out, their last known load and which participant got which.
/// With an empty `turn.relays` every participant gets this node's own relay, as before.
public final class RelayDirectory: Sendable {
    public let nodes: [RelayNode]
    let policy: RelayPolicy
    let credentials: RelayCredentials

    private struct Given {
        var relay: String
        var at: Date
    }

    private struct State {
        var status: [RelayStatus]
        var given: [String: Given] = [:]
    }

    private let state: Mutex<State>
    /// Assignments are forgotten when their participant leaves, and in any case once the
    /// credentials they came with expired; above this many, expired ones are pruned.
    private static let pruneAbove = 4096

    public init(configuration: AppConfiguration, credentials: RelayCredentials) {
        nodes = configuration.turn.relays
        policy = RelayPolicy(rawValue: configuration.turn.relayPolicy) ?? .nearest
        self.credentials = credentials
        state = Mutex(State(status: Array(repeating: .unknown, count: configuration.turn.relays.count)))
    }

    /// STUN and TURN servers for `id` (an endpoint, or a network check's `check-…` id): one
    /// relay of the list, chosen for `client`, or the node's own relay when the list is empty.
    public func iceServers(id: String, client: IPAddress?, ttl: Duration? = nil, now: Date) -> [IceServer] {
        guard !nodes.isEmpty else { return credentials.iceServers(id: id, ttl: ttl, now: now) }
        let ttlSeconds = Double((ttl ?? credentials.ttl).components.seconds)
        let node: RelayNode = state.withLock { state in
            let index = RelayChoice.pick(nodes, status: state.status, client: client, policy: policy)
            // Until the next poll, this participant counts as one more allocation there, so a
            // burst of joins is spread instead of all landing on the relay that was least loaded.
            if case .load(let allocations, let capacity) = state.status[index] {
                state.status[index] = .load(allocations: allocations + 1, capacity: capacity)
            }
            if !id.hasPrefix(TURNConfiguration.checkCredentialPrefix) {
                if state.given.count > Self.pruneAbove {
                    state.given = state.given.filter { now.timeIntervalSince($0.value.at) < ttlSeconds }
                }
                state.given[id] = Given(relay: nodes[index].name, at: now)
            }
            return nodes[index]
        }
        Counter(label: "samtalerum_relay_assignments_total", dimensions: [("relay", node.name)]).increment()
        let issued = credentials.issue(id: id, ttl: ttl, now: now)
        let uris = node.uris
        return (uris.stun.isEmpty ? [] : [IceServer(urls: uris.stun)])
            + [IceServer(urls: uris.turn, username: issued.username, credential: issued.password)]
    }

    /// The relay each of these endpoints was given (absent: none of the list, or not known here).
    public func relays(of endpoints: [EndpointID]) -> [EndpointID: String] {
        state.withLock { state in
            var found: [EndpointID: String] = [:]
            for endpoint in endpoints { found[endpoint] = state.given[endpoint.rawValue]?.relay }
            return found
        }
    }

    /// The participants left: their assignments are no longer shown.
    public func forget(_ endpoints: [EndpointID]) {
        guard !nodes.isEmpty else { return }
        state.withLock { state in
            for endpoint in endpoints { state.given[endpoint.rawValue] = nil }
        }
    }

    func status() -> [RelayStatus] { state.withLock { $0.status } }

    func update(_ index: Int, _ status: RelayStatus) {
        state.withLock { $0.status[index] = status }
        let name = nodes[index].name
        Gauge(label: "samtalerum_relay_up", dimensions: [("relay", name)]).record(status == .unreachable ? 0 : 1)
        if case .load(let allocations, _) = status {
            Gauge(label: "samtalerum_relay_reported_allocations", dimensions: [("relay", name)]).record(allocations)
        }
    }
}

/// Asks every relay with a `statusURL` for its load, each `relayStatusIntervalSeconds`, all at
/// once, each answer within `relayStatusTimeoutSeconds`; a relay that does not answer 200 in
/// time is unreachable until its next answer.
struct RelayStatusMonitor: Service {
    let directory: RelayDirectory
    let interval: Duration
    let timeout: Duration
    let logger: Logger
    var http: HTTPClient = .shared

    /// What a `samtalerum relay` answers on /health/ready; only these fields are read.
    struct Report: Decodable {
        var allocations: Int
        var maxAllocations: Int?
    }

    func run() async throws {
        let polled = directory.nodes.indices.filter { !directory.nodes[$0].statusURL.isEmpty }
        guard !polled.isEmpty else { return }
        while !Task.isShuttingDownGracefully {
            let previous = directory.status()
            await withTaskGroup(of: Void.self) { group in
                for index in polled {
                    group.addTask {
                        let status = await poll(directory.nodes[index].statusURL)
                        if (status == .unreachable) != (previous[index] == .unreachable) {
                            let name = directory.nodes[index].name
                            if status == .unreachable {
                                logger.warning("relay status unreachable; the relay is skipped until it answers", metadata: ["relay": "\(name)"])
                            } else {
                                logger.notice("relay status answers again", metadata: ["relay": "\(name)"])
                            }
                        }
                        directory.update(index, status)
                    }
                }
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    func poll(_ url: String) async -> RelayStatus {
        do {
            let response = try await http.execute(HTTPClientRequest(url: url), timeout: .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000))
            guard response.status == .ok else { return .unreachable }
            let body = try await response.body.collect(upTo: 64 * 1024)
            let report = try JSONDecoder().decode(Report.self, from: Data(buffer: body))
            return .load(allocations: report.allocations, capacity: report.maxAllocations)
        } catch {
            return .unreachable
        }
    }
}
