import SignallingProtocol

/// Browser-sized signalling payloads: the server relays them unchanged, so their size is what
/// matters, not their meaning.
enum Synthetic {
    /// An SDP of about 3 KB (audio + video, as Chromium offers) whose session id carries the
    /// send time, so the receiver can measure relay latency.
    static func sdp(kind: String, sentAtMicros: Int) -> String {
        var lines = [
            "v=0", "o=- \(sentAtMicros) 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1",
            "a=extmap-allow-mixed", "a=msid-semantic: WMS load",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126", "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0",
            "a=ice-ufrag:Ld3x", "a=ice-pwd:q8Xk2zVb7pLm4sNc9wRt1yHe", "a=ice-options:trickle",
            "a=fingerprint:sha-256 4F:1A:9C:22:7B:E0:5D:88:13:AF:62:C4:0E:97:3B:D5:71:2C:E8:46:9A:0F:B3:5E:21:7D:C6:84:19:EA:30:5B",
            "a=setup:\(kind == "offer" ? "actpass" : "active")", "a=mid:0", "a=sendrecv", "a=msid:load audio0", "a=rtcp-mux",
            "a=rtpmap:111 opus/48000/2", "a=rtcp-fb:111 transport-cc", "a=fmtp:111 minptime=10;useinbandfec=1",
            "a=rtpmap:63 red/48000/2", "a=fmtp:63 111/111", "a=rtpmap:9 G722/8000", "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000", "a=rtpmap:13 CN/8000", "a=rtpmap:110 telephone-event/48000",
            "a=rtpmap:126 telephone-event/8000", "a=ssrc:1001 cname:loadcname0000001",
            "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 100 101 45 46 102 103", "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0",
            "a=ice-ufrag:Ld3x", "a=ice-pwd:q8Xk2zVb7pLm4sNc9wRt1yHe", "a=ice-options:trickle", "a=mid:1", "a=sendrecv",
            "a=msid:load video0", "a=rtcp-mux", "a=rtcp-rsize",
        ]
        for (pt, codec) in [(96, "VP8"), (98, "VP9"), (100, "H264"), (45, "AV1"), (102, "H264")] {
            lines += [
                "a=rtpmap:\(pt) \(codec)/90000", "a=rtcp-fb:\(pt) goog-remb", "a=rtcp-fb:\(pt) transport-cc",
                "a=rtcp-fb:\(pt) ccm fir", "a=rtcp-fb:\(pt) nack", "a=rtcp-fb:\(pt) nack pli",
                "a=rtpmap:\(pt + 1) rtx/90000", "a=fmtp:\(pt + 1) apt=\(pt)",
            ]
        }
        lines += [
            "a=fmtp:100 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
            "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f",
            "a=ssrc-group:FID 2001 2002", "a=ssrc:2001 cname:loadcname0000001", "a=ssrc:2002 cname:loadcname0000001",
        ]
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    /// Reads the send time back out of `sdp(kind:sentAtMicros:)`.
    static func sentAtMicros(in sdp: String) -> Int? {
        guard let origin = sdp.split(separator: "\r\n").first(where: { $0.hasPrefix("o=- ") }) else { return nil }
        return origin.split(separator: " ").dropFirst().first.flatMap { Int($0) }
    }

    static func candidates(port base: Int) -> [ClientMessage] {
        var list: [IceCandidate] = []
        for (index, (type, address)) in [("host", "192.0.2.10"), ("host", "198.51.100.7"), ("srflx", "203.0.113.5"),
                                         ("relay", "203.0.113.9")].enumerated() {
            for mid in 0...1 {
                let priority = 2_122_260_223 - index * 16_777_216 - mid
                let related = type == "host" ? "" : " raddr 192.0.2.10 rport \(base + mid)"
                list.append(IceCandidate(
                    candidate: "candidate:\(1_000 + index) 1 udp \(priority) \(address) \(base + 10 * index + mid) typ \(type)\(related) generation 0 ufrag Ld3x network-id 1",
                    sdpMid: String(mid), sdpMLineIndex: mid, usernameFragment: "Ld3x"))
            }
        }
        return list.map { .candidate(CandidateMessage(candidate: $0)) }
    }

    /// A late candidate whose last field carries the send time: what an ICE restart trickles
    /// through the room mid-call.
    static func probeCandidate(sentAtMicros: Int) -> ClientMessage {
        .candidate(CandidateMessage(candidate: IceCandidate(
            candidate: "candidate:3001 1 udp 1677729535 203.0.113.5 52000 typ srflx raddr 192.0.2.10 rport 52000 generation 1 ufrag Ld3y network-id 1 sent-at \(sentAtMicros)",
            sdpMid: "0", sdpMLineIndex: 0, usernameFragment: "Ld3y")))
    }

    static func sentAtMicros(inCandidate candidate: String) -> Int? {
        guard let range = candidate.range(of: " sent-at ") else { return nil }
        return Int(candidate[range.upperBound...])
    }

    /// A full `stats` message, encoded. The five variants are encoded once: JSON encoding was a
    /// tenth of the load client's CPU, which the server on the same cores then lacked.
    static func statsText(sequence: Int) -> String { encodedStats[sequence % encodedStats.count] }

    private static let encodedStats: [String] = (0..<5).map { variant in
        ClientMessage.stats(CallStats(
            rttMs: 18 + Double(variant), jitterMs: 3, packetLossIn: 0.002, packetLossOut: 0.001,
            bitrateInKbps: 1450, bitrateOutKbps: 1380, framesPerSecondIn: 29.8, freezeCountIn: 0, freezeSecondsIn: 0,
            audioOnly: false, localCandidateType: "host", remoteCandidateType: "srflx", relayProtocol: nil)).encoded()
    }
}
