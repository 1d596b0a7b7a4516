import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// Just enough HTTPS/1.1 to create a meeting: one request per connection, `Connection: close`.
struct MeetingAPI: Sendable {
    struct Created: Sendable {
        var meetingId: String
        var invite: String
    }

    enum Failure: Error, CustomStringConvertible {
        case status(Int, String)
        case malformed(String)
        var description: String {
            switch self {
            case .status(let code, let body): "HTTP \(code): \(body.prefix(200))"
            case .malformed(let what): "malformed response: \(what)"
            }
        }
    }

    private struct Response: Decodable {
        var meetingId: String
        var citizenInviteUrl: String
    }

    let host: String
    let port: Int
    let token: String
    let tls: NIOSSLContext
    let group: any EventLoopGroup

    func createMeeting(citizenRef: String) async throws -> Created {
        let body = try JSONSerialization.data(withJSONObject: ["citizenRef": citizenRef])
        let head = "POST /api/meetings HTTP/1.1\r\nHost: \(host):\(port)\r\nAuthorization: Bearer \(token)\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        var request = ByteBuffer(string: head)
        request.writeBytes(body)
        let (status, payload) = try await exchange(request)
        guard status == 201 else { throw Failure.status(status, String(decoding: payload, as: UTF8.self)) }
        let response = try JSONDecoder().decode(Response.self, from: payload)
        guard let invite = response.citizenInviteUrl.split(separator: "#invite=").last, !invite.isEmpty else {
            throw Failure.malformed("no invite in \(response.citizenInviteUrl)")
        }
        return Created(meetingId: response.meetingId, invite: String(invite))
    }

    private func exchange(_ request: ByteBuffer) async throws -> (Int, Data) {
        let tls = tls
        let sni = host.first?.isNumber == true || host.contains(":") ? nil : host
        let channel = try await ClientBootstrap(group: group).connect(host: host, port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: sni))
                return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(request)
            var received = ByteBuffer()
            do {
                for try await var chunk in inbound {
                    received.writeBuffer(&chunk)
                    if let complete = try Self.parse(received) { return complete }
                }
            } catch let error as NIOSSLError where error == .uncleanShutdown {
                // Servers may drop the TCP connection without close_notify after `Connection: close`.
            }
            if let complete = try Self.parse(received) { return complete }
            throw Failure.malformed("connection closed after \(received.readableBytes) bytes")
        }
    }

    /// The status and body once `Content-Length` bytes of body have arrived, else nil.
    private static func parse(_ buffer: ByteBuffer) throws -> (Int, Data)? {
        let bytes = Data(buffer.readableBytesView)
        guard let split = bytes.range(of: Data("\r\n\r\n".utf8)) else { return nil }
        let head = String(decoding: bytes[..<split.lowerBound], as: UTF8.self).split(separator: "\r\n")
        guard let statusLine = head.first, let status = statusLine.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else {
            throw Failure.malformed("status line")
        }
        let length = head.dropFirst().compactMap { line -> Int? in
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "content-length" else { return nil }
            return Int(parts[1].trimmingCharacters(in: .whitespaces))
        }.first
        let body = bytes[split.upperBound...]
        guard let length else { return nil }
        return body.count >= length ? (status, Data(body.prefix(length))) : nil
    }
}
