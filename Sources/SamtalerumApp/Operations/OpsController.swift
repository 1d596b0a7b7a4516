import Foundation
import Hummingbird
import NIOCore
import SamtalerumCore
import ServiceLifecycle
import Signalling
import SignallingProtocol
import TURN

/// Live operations: session health for role `ops`, Prometheus metrics, and ICE servers for
/// the pre-call network check.
struct OpsController<Context: ClientAddressRequestContext> {
    let authenticator: BearerAuthenticator
    let registry: RoomRegistry
    let relay: TURNRelayService?
    let relays: RelayDirectory?
    let clock: WallClock
    let iceCheckGate: IceCheckGate

    /// How often the live stream sends a snapshot.
    static var streamInterval: Duration { .seconds(2) }
    /// A stream ends after this long; the page reconnects. Bounds every connection's lifetime.
    static var streamLifetime: Duration { .seconds(600) }
    /// A throwaway TURN credential for the network check: long enough to gather candidates.
    static var checkCredentialTTL: Duration { .seconds(120) }

    func snapshot() async -> OpsSnapshot {
        let rooms = await registry.snapshot
        let given = relays?.relays(of: rooms.flatMap { $0.participants.compactMap(\.endpoint) }) ?? [:]
        return OpsSnapshot.make(rooms: rooms, connections: await registry.connectionCount,
                                relay: relay?.statistics() ?? [], relayNames: given, now: clock.now())
    }

    func addRoutes(api: RouterGroup<Context>, root: Router<Context>) {
        api.get("ops/sessions") { request, _ -> OpsSnapshot in
            _ = try await authenticator.require([.ops], in: request)
            return await snapshot()
        }
        api.get("ops/stream") { request, _ -> Response in
            _ = try await authenticator.require([.ops], in: request)
            return Response(
                status: .ok,
                headers: [.contentType: "text/event-stream", .cacheControl: "no-store"],
                body: ResponseBody { writer in
                    let encoder = JSONEncoder()
                    encoder.dateEncodingStrategy = .iso8601
                    let deadline = ContinuousClock.now + Self.streamLifetime
                    // A stream open at SIGTERM ends at once: the server waits for open responses,
                    // and an endless one would hold the stop until the shutdown limit.
                    while ContinuousClock.now < deadline, !Task.isCancelled, !Task.isShuttingDownGracefully {
                        let json = try encoder.encode(await snapshot())
                        try await writer.write(ByteBuffer(string: "data: " + String(decoding: json, as: UTF8.self) + "\n\n"))
                        do {
                            try await cancelWhenGracefulShutdown { try await Task.sleep(for: Self.streamInterval) }
                        } catch { break }
                    }
                    try await writer.finish(nil)
                })
        }
        api.get("ice-check") { request, context -> IceCheck in
            try await iceCheckGate.admit(request, clientAddress: context.clientAddress?.ipAddress ?? "unknown", now: .now)
            guard let relays else { return IceCheck(iceServers: []) }
            return IceCheck(iceServers: relays.iceServers(
                id: TURNConfiguration.checkCredentialPrefix + EndpointID.random().rawValue,
                client: context.clientAddress.flatMap(TransportAddress.init)?.ip, ttl: Self.checkCredentialTTL, now: clock.now()))
        }
        root.get("metrics") { _, _ -> Response in
            let rooms = await registry.snapshot
            MetricsExporter.refreshGauges(rooms: rooms, connections: await registry.connectionCount, relay: relay?.statistics() ?? [])
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: MetricsExporter.exposition())))
        }
    }
}

struct IceCheck: ResponseEncodable {
    var iceServers: [IceServer]
}
