import Foundation
import NIOCore
import NIOPosix

/// Before anything is written to disk, every configured port is bound once and let go, so
/// "port in use" is reported naming the key and address, and a failed start leaves no data
/// directory or keys behind. (A port taken in the instant between is still caught at bind.)
enum ListenerPreflight {
    enum Transport: String { case tcp, udp }

    static func check(_ configuration: AppConfiguration) async throws(ConfigurationError) {
        var listeners: [(key: String, host: String, port: Int, transport: Transport)] = [
            ("server.port", configuration.server.host, configuration.server.port, .tcp),
            ("server.httpRedirectPort", configuration.server.host, configuration.server.httpRedirectPort, .tcp),
            ("server.plainHTTPPort", configuration.server.plainHTTPHost, configuration.server.plainHTTPPort, .tcp),
        ]
        if configuration.turn.enabled {
            let host = configuration.turnListenHost
            listeners += [("turn.port", host, configuration.turn.port, .udp), ("turn.port", host, configuration.turn.port, .tcp),
                          ("turn.tlsPort", host, configuration.turn.tlsPort, .tcp)]
        }
        // Port 0 means "any free port": nothing to check.
        for listener in listeners where listener.port != 0 {
            do {
                try await bindOnce(host: listener.host, port: listener.port, transport: listener.transport)
            } catch {
                let host = listener.host.contains(":") ? "[\(listener.host)]" : listener.host
                throw .listen(key: listener.key, address: "\(host):\(listener.port)/\(listener.transport.rawValue)",
                              problem: describe(error))
            }
        }
    }

    private static func bindOnce(host: String, port: Int, transport: Transport) async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let channel: any Channel
        switch transport {
        case .tcp:
            // The same option the real listeners use, so a socket in TIME_WAIT is no conflict.
            channel = try await ServerBootstrap(group: group).serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: host, port: port).get()
        case .udp:
            channel = try await DatagramBootstrap(group: group).bind(host: host, port: port).get()
        }
        try await channel.close()
    }

    private static func describe(_ error: any Error) -> String {
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
        return "\(error)"
    }
}
