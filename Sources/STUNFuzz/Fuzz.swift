import STUN

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// libFuzzer entry point. Decoders must only return values or typed errors; the invariants below trap so
/// the fuzzer reports any input that breaks them.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let buffer = UnsafeBufferPointer(start: data, count: size)
    let bytes = Array(buffer)
    exerciseDatagram(bytes)
    _ = try? STUNMessage.parse(buffer)
    _ = try? ChannelData.header(of: UnsafeRawBufferPointer(buffer))
    exerciseStream(bytes)
    return 0
}

private let key = STUNKey.longTerm(username: "fuzz", realm: "samtalerum", password: "fuzz")

/// One UDP datagram: demultiplex, then decode as STUN or ChannelData.
func exerciseDatagram(_ bytes: [UInt8]) {
    switch bytes.first.map(PacketKind.init(firstByte:)) {
    case .channelData:
        if let frame = try? ChannelData(bytes: bytes) {
            precondition(frame.payload.count <= bytes.count - ChannelData.headerLength)
        }
    default:
        guard let message = try? STUNMessage(bytes: bytes) else { return }
        precondition(STUNMessage.isSTUN(bytes))
        precondition(message.serialize() == bytes, "a parsed message must re-encode to its input")
        exerciseAccessors(message)
    }
}

func exerciseAccessors(_ message: STUNMessage) {
    _ = message.checkIntegrity(key: key)
    _ = message.verifyMessageIntegrity(key: key)
    _ = message.verifyFingerprint()
    _ = message.unknownComprehensionRequiredAttributes()
    for attribute in message.attributes {
        _ = try? message.xorAddresses(attribute.type)
        _ = try? message.address(attribute.type)
        _ = try? message.string(attribute.type)
        _ = try? message.addressFamily(attribute.type)
    }
    _ = try? message.lifetime
    _ = try? message.channelNumber
    _ = try? message.requestedTransport
    _ = try? message.evenPort
    _ = try? message.reservationToken
    _ = try? message.errorCode
    _ = try? message.unknownAttributes
    _ = try? message.passwordAlgorithms
    _ = try? message.passwordAlgorithm
    if let peer = try? message.xorAddress(.xorPeerAddress) {
        precondition(STUNAddress(ip: peer.ipString, port: peer.port) == peer, "address text round trip")
        // Relaying a Send indication's payload as a Data indication must always fit and decode back.
        if let payload = message.data {
            let indication = STUNMessage.dataIndication(peer: peer, payload: payload, transactionID: message.transactionID)
            let decoded = indication.flatMap { try? STUNMessage(bytes: $0) }
            precondition(decoded?.data == payload && (try? decoded?.xorAddress(.xorPeerAddress)) == peer)
        }
    }

    // Re-encoding after a change must parse back to an equal message that verifies.
    guard message.encodedLength + 24 + 8 - STUNMessage.headerLength <= STUNMessage.maxBodyLength,
          !message.contains(.messageIntegrity), !message.contains(.messageIntegritySHA256),
          !message.contains(.fingerprint) else { return }
    var signed = message
    signed.appendMessageIntegrity(key: key)
    signed.appendFingerprint()
    guard let reparsed = try? STUNMessage(bytes: signed.serialize()) else {
        preconditionFailure("a re-encoded message must parse")
    }
    precondition(reparsed == signed)
    precondition(reparsed.checkIntegrity(key: key) == .valid && reparsed.verifyFingerprint())
}

/// A TCP/TLS byte stream: frame, then decode each frame, as the relay's stream reader does.
func exerciseStream(_ bytes: [UInt8]) {
    var rest = bytes[...]
    while true {
        let length: Int?
        do {
            length = try StreamFraming.frameLength(of: rest)
        } catch {
            return
        }
        guard let length, rest.count >= length else { return }
        precondition(length >= ChannelData.headerLength)
        let frame = rest.prefix(length)
        if PacketKind(firstByte: frame[frame.startIndex]) == .channelData {
            precondition((try? ChannelData(bytes: frame)) != nil, "a framed ChannelData frame must decode")
        } else if let message = try? STUNMessage(bytes: frame) {
            precondition(message.encodedLength == length)
        }
        rest = rest.dropFirst(length)
    }
}

/// SwiftPM links every Swift executable with `main` aliased to this module's entry point, so the entry point
/// exists in both builds: under FUZZING (Scripts/fuzz-stun) it hands the command line to libFuzzer's driver;
/// in the ordinary `swift build` it replays corpus files given as arguments, e.g. a crash input after a fix.
@main
enum FuzzEntry {
    static func main() throws {
        #if FUZZING
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, fuzz))
        #else
        var empty: UInt8 = 0
        for path in CommandLine.arguments.dropFirst() {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            _ = bytes.withUnsafeBufferPointer { buffer in
                if let base = buffer.baseAddress { fuzz(base, buffer.count) } else { fuzz(&empty, 0) }
            }
        }
        print("replayed \(CommandLine.arguments.count - 1) inputs")
        #endif
    }
}

#if FUZZING
/// libFuzzer's documented driver entry (FuzzerInterface.h); only pointer and integer arguments, so the Swift
/// and C calling conventions agree.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt
#endif
