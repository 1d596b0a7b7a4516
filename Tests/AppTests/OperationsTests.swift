import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
@testable import SamtalerumApp
import SamtalerumCore
import SignallingProtocol
import Testing

@Suite(.timeLimit(.minutes(2))) struct OperationsTests {
    struct Snapshot: Decodable {
        struct Participant: Decodable {
            struct Quality: Decodable { var `class`: String; var mos: Double }
            var role: String
            var present: Bool
            var quality: Quality?
            var rttMs: Double?
        }
        struct Session: Decodable {
            var meetingId: String
            var state: String
            var participants: [Participant]
        }
        struct Server: Decodable { var connections: Int }
        var server: Server
        var sessions: [Session]
    }

    @Test func opsSeeLiveQualityAndMetricsMoveWhileACallRuns() async throws {
        let (_, directory) = try await TestServer.run { server in
            let call = try await SignallingIntegrationTests.startCall(server)
            let good = CallStats(rttMs: 40, jitterMs: 3, packetLossIn: 0, bitrateInKbps: 900, framesPerSecondIn: 30,
                                 localCandidateType: "host", remoteCandidateType: "host")
            call.citizen.send(.stats(good))
            let pushed = try await Self.quality(at: call.citizen) { $0.receiving != nil }
            #expect(pushed.receiving?.class == "excellent")
            call.worker.send(.stats(good))
            _ = try await Self.quality(at: call.worker) { $0.receiving != nil && $0.sending != nil }
            _ = try await Self.quality(at: call.citizen) { $0.sending != nil }

            let ops = try await server.token(.ops, subject: "ops-1")
            let response = try await server.client.execute(uri: "/api/ops/sessions", method: .get, headers: [.authorization: "Bearer \(ops)"])
            #expect(response.status == .ok)
            let snapshot = try JSONDecoder().decode(Snapshot.self, from: Data(buffer: response.body))
            let session = try #require(snapshot.sessions.first)
            #expect(session.meetingId == call.meeting.meetingId)
            #expect(session.state == "in-call")
            #expect(Set(session.participants.map(\.role)) == ["worker", "citizen"])
            #expect(session.participants.allSatisfy { $0.quality?.class == "excellent" && $0.rttMs == 40 })
            #expect(snapshot.server.connections == 2)
            let body = String(buffer: response.body)
            #expect(!body.contains("sag-2024-0042") && !body.contains("w-1\""), "no references in the ops view")

            for forbidden in [Role.worker, .auditor] {
                let denied = try await server.client.execute(
                    uri: "/api/ops/sessions", method: .get, headers: [.authorization: "Bearer \(try await server.token(forbidden, subject: "x"))"])
                #expect(denied.status == .forbidden)
            }

            let metrics = String(buffer: try await server.client.execute(uri: "/metrics", method: .get).body)
            #expect(metrics.contains(#"samtalerum_sessions{state="in-call"} 1"#))
            #expect(metrics.contains("samtalerum_connections 2"))
            #expect(metrics.contains(#"samtalerum_quality_participants{class="excellent"} 2"#))

            // A bad connection is pushed to the worker as a hint to the citizen's side.
            let bad = CallStats(rttMs: 900, jitterMs: 80, packetLossIn: 0.3, framesPerSecondIn: 3)
            call.citizen.send(.stats(bad))
            let toCitizen = try await Self.quality(at: call.citizen) { $0.receiving?.class != "excellent" }
            let toWorker = try await Self.quality(at: call.worker) { $0.sending?.class != "excellent" }
            #expect(["poor", "lost"].contains(toCitizen.receiving?.class))
            #expect(toCitizen.receiving?.hint != nil)
            #expect(toWorker.sending?.class == toCitizen.receiving?.class)

            // Out-of-range figures are clamped (Docs/QUALITY.md), not refused.
            call.citizen.send(.stats(CallStats(rttMs: -5)))
            call.citizen.send(.ping(Ping(id: 12)))
            var reply = try await call.citizen.next()
            while case .quality = reply { reply = try await call.citizen.next() }
            #expect(reply == .pong(Ping(id: 12)), "a stats report with a negative RTT was refused")

            call.citizen.send(.leave)
            _ = try await call.worker.next()
            let after = String(buffer: try await server.client.execute(uri: "/metrics", method: .get).body)
            #expect(after.contains(#"samtalerum_sessions{state="in-call"} 0"#))
            #expect(after.contains("samtalerum_session_duration_seconds_count"))
        }
        withTemporaryDirectoryRemoved(directory)
    }

    /// The next `quality` push that satisfies `condition` (pushes race across the two sockets).
    static func quality(at peer: WebSocketPeer, _ condition: (QualityUpdate) -> Bool) async throws -> QualityUpdate {
        for _ in 0..<10 {
            if case .quality(let update) = try await peer.next(), condition(update) { return update }
        }
        throw TestFailure("no matching quality push")
    }

    @Test func thePreCallCheckGetsAShortLivedRelayCredential() async throws {
        let (_, directory) = try await TestServer.run(adjust: {
            $0.turn.enabled = true
            $0.turn.port = 0
            $0.turn.tlsPort = 0
        }) { server in
            struct Check: Decodable {
                struct Server: Decodable { var urls: [String]; var username: String?; var credential: String? }
                var iceServers: [Server]
            }
            let anonymous = try await server.client.execute(uri: "/api/ice-check", method: .get)
            #expect(anonymous.status == .unauthorized)
            let response = try await server.client.execute(
                uri: "/api/ice-check", method: .get,
                headers: [.authorization: "Bearer \(try await server.token(.worker, subject: "w-check"))"])
            let check = try JSONDecoder().decode(Check.self, from: Data(buffer: response.body))
            let turn = try #require(check.iceServers.first { $0.username != nil })
            #expect(turn.urls.contains { $0.hasPrefix("turns:") })
            let expiry = try #require(turn.username?.split(separator: ":").first.flatMap { TimeInterval($0) })
            #expect(expiry - Date().timeIntervalSince1970 <= 121)
        }
        withTemporaryDirectoryRemoved(directory)
    }

    @Test func everyExportedFamilyHasHelpTextAndEveryMetricIsDocumented() async throws {
        let (_, directory) = try await TestServer.run { server in
            _ = try await SignallingIntegrationTests.startCall(server)
            let text = String(buffer: try await server.client.execute(uri: "/metrics", method: .get).body)
            let lines = text.split(separator: "\n").map(String.init)
            for (index, line) in lines.enumerated() where line.hasPrefix("# TYPE ") {
                let name = line.split(separator: " ")[2]
                #expect(index > 0 && lines[index - 1].hasPrefix("# HELP \(name) "), "no HELP line above \(line)")
            }
            #expect(text.contains(#"samtalerum_build_info{version="\#(BuildInfo.version)"} 1"#))
            // Present, not exact: suites run in parallel in one process and share the registry.
            #expect(text.contains(#"samtalerum_participants{role="worker"} "#))
            #expect(text.contains("samtalerum_audit_write_duration_seconds_count "))
            #expect(text.contains("samtalerum_audit_write_failures_total "))
        }
        withTemporaryDirectoryRemoved(directory)
        let docs = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Docs/METRICS.md").standardizedFileURL, encoding: .utf8)
        for name in MetricsExporter.help.keys.sorted() {
            #expect(docs.contains("`\(name)`"), "\(name) is not in Docs/METRICS.md")
        }
    }

    @Test func aJSONLogLineIsOneEscapedObjectWithTheFixedFieldsFirst() throws {
        let line = OperatorLogHandler.jsonLine(
            level: .info, label: "samtalerum", source: "SamtalerumApp", message: "quote \" slash \\ newline \n bell \u{07}",
            metadata: ["meeting": "m-1", "message": "shadowed", "roles": .array(["worker", "citizen"]),
                       "nested": .dictionary(["b": "2", "a": .stringConvertible(1)])])
        #expect(!line.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["message"] as? String == "quote \" slash \\ newline \n bell \u{07}")
        #expect(object["meta.message"] as? String == "shadowed")
        #expect(object["roles"] as? [String] == ["worker", "citizen"])
        #expect((object["nested"] as? [String: String]) == ["a": "1", "b": "2"])
        #expect(line.hasPrefix(#"{"time":""#))
        #expect(line.range(of: #""level":"info","logger":"samtalerum","source":"SamtalerumApp","message":"#) != nil)
    }

    @Test func aClientsFailedConnectionSetupIsNotAnError() {
        func event(_ level: Logger.Level, _ message: Logger.Message, source: String) -> LogEvent {
            LogEvent(level: level, message: message, metadata: nil, source: source, file: "", function: "", line: 0)
        }
        #expect(OperatorLogHandler.isFailedConnectionSetup(event(.error, "Error handling upgrade result", source: "HummingbirdWebSocket")))
        #expect(!OperatorLogHandler.isFailedConnectionSetup(event(.error, "audit record failed", source: "SamtalerumApp")))
        #expect(!OperatorLogHandler.isFailedConnectionSetup(event(.debug, "Error handling upgrade result", source: "HummingbirdWebSocket")))
    }
}
