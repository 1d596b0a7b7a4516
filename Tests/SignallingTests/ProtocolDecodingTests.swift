import SamtalerumCore
import SignallingProtocol
import Testing

@Suite struct ProtocolDecodingTests {
    @Test(arguments: [
        (#"{"type":"hello","v":1,"token":"abc"}"#, ClientMessage.hello(Hello(v: 1, token: "abc"))),
        (#"{"type":"join","meetingId":"m-abcdefgh"}"#, .join(Join(meetingId: MeetingID(rawValue: "m-abcdefgh")))),
        (#"{"type":"join"}"#, .join(Join(meetingId: nil))),
        (#"{"type":"offer","sdp":"v=0\r\n"}"#, .offer(SessionDescription(sdp: "v=0\r\n"))),
        (#"{"type":"answer","sdp":"v=0"}"#, .answer(SessionDescription(sdp: "v=0"))),
        (#"{"type":"candidate","candidate":null}"#, .candidate(CandidateMessage(candidate: nil))),
        (#"{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 192.0.2.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}"#,
         .candidate(CandidateMessage(candidate: IceCandidate(candidate: "candidate:1 1 udp 1 192.0.2.1 5000 typ host", sdpMid: "0", sdpMLineIndex: 0)))),
        (#"{"type":"leave"}"#, .leave),
        (#"{"type":"ping","id":7}"#, .ping(Ping(id: 7))),
        // Unknown fields are ignored so later clients can add them within version 1.
        (#"{"type":"ping","id":8,"sentAt":123}"#, .ping(Ping(id: 8))),
    ])
    func decodesEveryClientMessage(text: String, expected: ClientMessage) throws {
        #expect(try ClientMessage.decode(text) == expected)
    }

    @Test(arguments: [
        ("", DecodeFailure.invalidJSON),
        ("not json", .invalidJSON),
        ("[1,2]", .invalidJSON),
        ("\"hello\"", .invalidJSON),
        ("{\"type\":\"hello\"", .invalidJSON),
        ("{}", .unknownType(nil)),
        (#"{"type":42}"#, .unknownType(nil)),
        (#"{"type":"dance"}"#, .unknownType("dance")),
        (#"{"type":"welcome","v":1}"#, .unknownType("welcome")),
        (#"{"type":"hello","v":1}"#, .invalidMessage(.hello, detail: "missing field 'token'")),
        (#"{"type":"hello","v":"1","token":"x"}"#, .invalidMessage(.hello, detail: "field 'v' has the wrong type")),
        (#"{"type":"offer"}"#, .invalidMessage(.offer, detail: "missing field 'sdp'")),
        (#"{"type":"candidate"}"#, .invalidMessage(.candidate, detail: "missing field 'candidate'")),
        (#"{"type":"candidate","candidate":{"sdpMid":"0"}}"#, .invalidMessage(.candidate, detail: "missing field 'candidate.candidate'")),
        (#"{"type":"join","meetingId":"../../etc"}"#, .invalidMessage(.join, detail: "field 'meetingId' is malformed")),
        (#"{"type":"ping"}"#, .invalidMessage(.ping, detail: "missing field 'id'")),
        (#"{"type":"ping","id":1.5}"#, .invalidMessage(.ping, detail: "a number does not fit its field")),
        (#"{"type":"ping","id":1e300}"#, .invalidMessage(.ping, detail: "a number does not fit its field")),
        (#"{"type":"ping","id":null}"#, .invalidMessage(.ping, detail: "field 'id' has the wrong type")),
        (#"{"type":"ping","id":"7"}"#, .invalidMessage(.ping, detail: "field 'id' has the wrong type")),
        (#"{"type":"offer","sdp":"v=0","to":"mallory"}"#, .invalidMessage(.offer, detail: "field 'to' is malformed")),
        (#"{"type":"admit","peer":"guest-<script>"}"#, .invalidMessage(.admit, detail: "field 'peer' is malformed")),
    ])
    func rejectsBadInputWithATypedError(text: String, expected: DecodeFailure) {
        #expect(throws: expected) { try ClientMessage.decode(text) }
    }

    @Test func decodeFailuresAreNeverFatal() {
        let failures: [DecodeFailure] = [.invalidJSON, .unknownType("x"), .invalidMessage(.join, detail: "d")]
        for failure in failures {
            #expect(failure.errorMessage.fatal == false)
        }
    }

    @Test func clientMessagesRoundTrip() throws {
        let messages: [ClientMessage] = [
            .hello(Hello(token: "t")), .join(Join(meetingId: .random())), .offer(SessionDescription(sdp: "s")),
            .candidate(CandidateMessage(candidate: nil)), .leave, .ping(Ping(id: 1)),
            .offer(SessionDescription(sdp: "s", to: .randomGuest())), .candidate(CandidateMessage(candidate: nil, to: .citizen)),
            .admit(Admit()), .admit(Admit(peer: .citizen)),
        ]
        for message in messages {
            #expect(try ClientMessage.decode(message.encoded()) == message)
        }
    }

    @Test func serverMessagesRoundTripAndKeepNullCandidates() throws {
        let messages: [ServerMessage] = [
            .welcome(Welcome(role: .citizen, peer: .citizen, meetingId: .random(), endpointId: .random(), pingInterval: 15)),
            .joined(Joined(meetingId: .random(), role: .worker, peer: .worker, peers: [PeerInfo(role: .citizen, peer: .citizen)],
                           iceServers: [IceServer(urls: ["stun:127.0.0.1:3478"])])),
            .peerJoined(PeerJoined(role: .worker, peer: .worker, initiator: false, sessionId: .random())),
            .peerLeft(PeerLeft(role: .citizen, peer: .citizen, reason: .hangup)),
            .candidate(RelayedCandidate(candidate: nil, from: .worker, peer: .worker)),
            .error(ErrorMessage(code: .roomFull, message: "full", inReplyTo: .join)),
        ]
        for message in messages {
            #expect(try ServerMessage.decode(message.encoded()) == message)
        }
        #expect(ServerMessage.candidate(RelayedCandidate(candidate: nil, from: .worker, peer: .worker)).encoded().contains(#""candidate":null"#))
    }

    @Test(arguments: [
        (SignallingErrorCode.roomFull, true, CloseCode.policyViolation),
        (.replaced, true, .policyViolation),
        (.slowConsumer, true, .policyViolation),
        (.tokenInvalid, true, .policyViolation),
        (.internal, true, .internalError),
        (.noPeer, false, .policyViolation),
        (.invalidJSON, false, .policyViolation),
    ])
    func fatalityAndCloseCodes(code: SignallingErrorCode, fatal: Bool, close: CloseCode) {
        #expect(code.isFatal == fatal)
        #expect(code.closeCode == close)
    }

    @Test func statsOutsideTheirRangeAreClampedNotRefused() {
        let wild = CallStats(rttMs: -5, jitterMs: 1e9, packetLossIn: 1.7, packetLossOut: -0.2, bitrateInKbps: .infinity,
                             framesPerSecondIn: 30, freezeCountIn: -1, freezeSecondsIn: 7200, localCandidateType: "relay",
                             remoteCandidateType: String(repeating: "x", count: 40))
        #expect(wild.clamped == CallStats(rttMs: 0, jitterMs: 60_000, packetLossIn: 1, packetLossOut: 0, bitrateInKbps: nil,
                                          framesPerSecondIn: 30, freezeCountIn: 0, freezeSecondsIn: 3600, localCandidateType: "relay"))
        let sane = CallStats(rttMs: 42, jitterMs: 3, packetLossIn: 0.01, audioOnly: true)
        #expect(sane.clamped == sane)
    }
}
