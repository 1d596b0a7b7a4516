// Open wire-code structs: unknown values from the wire round-trip unchanged instead of failing to decode.

/// The two class bits of a STUN message type.
public struct STUNClass: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// Only the low two bits are meaningful; the initializer masks the rest so encoding can never overflow.
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue & 0b11 }

    public static let request = STUNClass(rawValue: 0b00)
    public static let indication = STUNClass(rawValue: 0b01)
    public static let successResponse = STUNClass(rawValue: 0b10)
    public static let errorResponse = STUNClass(rawValue: 0b11)

    public var isResponse: Bool { rawValue & 0b10 != 0 }

    public var description: String {
        switch self {
        case .request: "request"
        case .indication: "indication"
        case .successResponse: "success"
        default: "error"
        }
    }
}

/// The 12-bit STUN method.
public struct STUNMethod: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue & 0x0FFF }

    public static let binding = STUNMethod(rawValue: 0x001)
    public static let allocate = STUNMethod(rawValue: 0x003)
    public static let refresh = STUNMethod(rawValue: 0x004)
    public static let send = STUNMethod(rawValue: 0x006)
    public static let data = STUNMethod(rawValue: 0x007)
    public static let createPermission = STUNMethod(rawValue: 0x008)
    public static let channelBind = STUNMethod(rawValue: 0x009)
    // RFC 6062 (TURN TCP relaying).
    public static let connect = STUNMethod(rawValue: 0x00A)
    public static let connectionBind = STUNMethod(rawValue: 0x00B)
    public static let connectionAttempt = STUNMethod(rawValue: 0x00C)

    public var description: String {
        switch self {
        case .binding: "Binding"
        case .allocate: "Allocate"
        case .refresh: "Refresh"
        case .send: "Send"
        case .data: "Data"
        case .createPermission: "CreatePermission"
        case .channelBind: "ChannelBind"
        case .connect: "Connect"
        case .connectionBind: "ConnectionBind"
        case .connectionAttempt: "ConnectionAttempt"
        default: "Method(0x\(String(rawValue, radix: 16)))"
        }
    }
}

/// Method and class, packed into the 14-bit type field with the class bits interleaved at bits 4 and 8.
public struct STUNMessageType: Hashable, Sendable, CustomStringConvertible {
    public var method: STUNMethod
    public var `class`: STUNClass

    public init(method: STUNMethod, class: STUNClass) {
        self.method = method
        self.class = `class`
    }

    /// Decodes the first 16 bits of a header; the two leading zero bits are ignored.
    public init(rawValue: UInt16) {
        let m = rawValue & 0x000F | (rawValue & 0x00E0) >> 1 | (rawValue & 0x3E00) >> 2
        let c = (rawValue & 0x0010) >> 4 | (rawValue & 0x0100) >> 7
        self.method = STUNMethod(rawValue: m)
        self.class = STUNClass(rawValue: UInt8(c))
    }

    public var rawValue: UInt16 {
        let m = method.rawValue
        let c = UInt16(self.class.rawValue)
        return m & 0x000F | (m & 0x0070) << 1 | (m & 0x0F80) << 2 | (c & 0b01) << 4 | (c & 0b10) << 7
    }

    public var description: String { "\(method) \(self.class)" }
}

/// A STUN/TURN attribute type.
public struct AttributeType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    // Comprehension-required (0x0000-0x7FFF).
    public static let mappedAddress = AttributeType(rawValue: 0x0001)
    public static let username = AttributeType(rawValue: 0x0006)
    public static let messageIntegrity = AttributeType(rawValue: 0x0008)
    public static let errorCode = AttributeType(rawValue: 0x0009)
    public static let unknownAttributes = AttributeType(rawValue: 0x000A)
    public static let channelNumber = AttributeType(rawValue: 0x000C)
    public static let lifetime = AttributeType(rawValue: 0x000D)
    public static let xorPeerAddress = AttributeType(rawValue: 0x0012)
    public static let data = AttributeType(rawValue: 0x0013)
    public static let realm = AttributeType(rawValue: 0x0014)
    public static let nonce = AttributeType(rawValue: 0x0015)
    public static let xorRelayedAddress = AttributeType(rawValue: 0x0016)
    public static let requestedAddressFamily = AttributeType(rawValue: 0x0017)
    public static let evenPort = AttributeType(rawValue: 0x0018)
    public static let requestedTransport = AttributeType(rawValue: 0x0019)
    public static let dontFragment = AttributeType(rawValue: 0x001A)
    public static let accessToken = AttributeType(rawValue: 0x001B)
    public static let messageIntegritySHA256 = AttributeType(rawValue: 0x001C)
    public static let passwordAlgorithm = AttributeType(rawValue: 0x001D)
    public static let userhash = AttributeType(rawValue: 0x001E)
    public static let xorMappedAddress = AttributeType(rawValue: 0x0020)
    public static let reservationToken = AttributeType(rawValue: 0x0022)
    public static let priority = AttributeType(rawValue: 0x0024)
    public static let useCandidate = AttributeType(rawValue: 0x0025)
    public static let connectionID = AttributeType(rawValue: 0x002A)
    // Comprehension-optional (0x8000-0xFFFF).
    public static let additionalAddressFamily = AttributeType(rawValue: 0x8000)
    public static let addressErrorCode = AttributeType(rawValue: 0x8001)
    public static let passwordAlgorithms = AttributeType(rawValue: 0x8002)
    public static let alternateDomain = AttributeType(rawValue: 0x8003)
    public static let icmp = AttributeType(rawValue: 0x8004)
    public static let software = AttributeType(rawValue: 0x8022)
    public static let alternateServer = AttributeType(rawValue: 0x8023)
    public static let fingerprint = AttributeType(rawValue: 0x8028)
    public static let iceControlled = AttributeType(rawValue: 0x8029)
    public static let iceControlling = AttributeType(rawValue: 0x802A)
    public static let responseOrigin = AttributeType(rawValue: 0x802B)
    public static let otherAddress = AttributeType(rawValue: 0x802C)

    /// An agent must reject a message carrying a comprehension-required attribute it does not understand.
    public var isComprehensionRequired: Bool { rawValue < 0x8000 }

    private static let names: [AttributeType: String] = [
        .mappedAddress: "MAPPED-ADDRESS", .username: "USERNAME", .messageIntegrity: "MESSAGE-INTEGRITY",
        .errorCode: "ERROR-CODE", .unknownAttributes: "UNKNOWN-ATTRIBUTES", .channelNumber: "CHANNEL-NUMBER",
        .lifetime: "LIFETIME", .xorPeerAddress: "XOR-PEER-ADDRESS", .data: "DATA", .realm: "REALM",
        .nonce: "NONCE", .xorRelayedAddress: "XOR-RELAYED-ADDRESS",
        .requestedAddressFamily: "REQUESTED-ADDRESS-FAMILY", .evenPort: "EVEN-PORT",
        .requestedTransport: "REQUESTED-TRANSPORT", .dontFragment: "DONT-FRAGMENT",
        .accessToken: "ACCESS-TOKEN", .messageIntegritySHA256: "MESSAGE-INTEGRITY-SHA256",
        .passwordAlgorithm: "PASSWORD-ALGORITHM", .userhash: "USERHASH",
        .xorMappedAddress: "XOR-MAPPED-ADDRESS", .reservationToken: "RESERVATION-TOKEN",
        .priority: "PRIORITY", .useCandidate: "USE-CANDIDATE", .connectionID: "CONNECTION-ID",
        .additionalAddressFamily: "ADDITIONAL-ADDRESS-FAMILY", .addressErrorCode: "ADDRESS-ERROR-CODE",
        .passwordAlgorithms: "PASSWORD-ALGORITHMS", .alternateDomain: "ALTERNATE-DOMAIN", .icmp: "ICMP",
        .software: "SOFTWARE", .alternateServer: "ALTERNATE-SERVER", .fingerprint: "FINGERPRINT",
        .iceControlled: "ICE-CONTROLLED", .iceControlling: "ICE-CONTROLLING",
        .responseOrigin: "RESPONSE-ORIGIN", .otherAddress: "OTHER-ADDRESS",
    ]

    /// True for the attribute types this module names (the STUN, TURN and ICE registrations above).
    public var isKnown: Bool { Self.names[self] != nil }

    public var description: String {
        Self.names[self] ?? "0x" + String(rawValue, radix: 16, uppercase: true)
    }
}

/// STUN error codes (class * 100 + number), with the registered reason phrases.
public struct ErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let tryAlternate = ErrorCode(rawValue: 300)
    public static let badRequest = ErrorCode(rawValue: 400)
    public static let unauthenticated = ErrorCode(rawValue: 401)
    public static let forbidden = ErrorCode(rawValue: 403)
    public static let mobilityForbidden = ErrorCode(rawValue: 405)
    public static let unknownAttribute = ErrorCode(rawValue: 420)
    public static let allocationMismatch = ErrorCode(rawValue: 437)
    public static let staleNonce = ErrorCode(rawValue: 438)
    public static let addressFamilyNotSupported = ErrorCode(rawValue: 440)
    public static let wrongCredentials = ErrorCode(rawValue: 441)
    public static let unsupportedTransportProtocol = ErrorCode(rawValue: 442)
    public static let peerAddressFamilyMismatch = ErrorCode(rawValue: 443)
    public static let connectionAlreadyExists = ErrorCode(rawValue: 446)
    public static let connectionTimeoutOrFailure = ErrorCode(rawValue: 447)
    public static let allocationQuotaReached = ErrorCode(rawValue: 486)
    public static let roleConflict = ErrorCode(rawValue: 487)
    public static let serverError = ErrorCode(rawValue: 500)
    public static let insufficientCapacity = ErrorCode(rawValue: 508)

    /// The registered reason phrase; empty for codes this module does not name.
    public var reasonPhrase: String {
        switch rawValue {
        case 300: "Try Alternate"
        case 400: "Bad Request"
        case 401: "Unauthenticated"
        case 403: "Forbidden"
        case 405: "Mobility Forbidden"
        case 420: "Unknown Attribute"
        case 437: "Allocation Mismatch"
        case 438: "Stale Nonce"
        case 440: "Address Family not Supported"
        case 441: "Wrong Credentials"
        case 442: "Unsupported Transport Protocol"
        case 443: "Peer Address Family Mismatch"
        case 446: "Connection Already Exists"
        case 447: "Connection Timeout or Failure"
        case 486: "Allocation Quota Reached"
        case 487: "Role Conflict"
        case 500: "Server Error"
        case 508: "Insufficient Capacity"
        default: ""
        }
    }

    public var description: String { "\(rawValue) \(reasonPhrase)" }
}

/// Address family byte used by the address attributes and REQUESTED-/ADDITIONAL-ADDRESS-FAMILY.
public struct AddressFamily: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let ipv4 = AddressFamily(rawValue: 0x01)
    public static let ipv6 = AddressFamily(rawValue: 0x02)

    public var description: String {
        switch self {
        case .ipv4: "IPv4"
        case .ipv6: "IPv6"
        default: "family(\(rawValue))"
        }
    }
}

/// IANA protocol number carried by REQUESTED-TRANSPORT.
public struct TransportProtocol: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let tcp = TransportProtocol(rawValue: 6)
    public static let udp = TransportProtocol(rawValue: 17)
}

/// A TURN channel number; only 0x4000-0x4FFF may be bound (RFC 8656 §12).
public struct ChannelNumber: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let validRange: ClosedRange<UInt16> = 0x4000...0x4FFF

    public var isValid: Bool { Self.validRange.contains(rawValue) }

    public var description: String { "0x" + String(rawValue, radix: 16, uppercase: true) }
}

/// Algorithm named by PASSWORD-ALGORITHM(S) (RFC 8489 §18.5).
public struct PasswordAlgorithm: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let md5 = PasswordAlgorithm(rawValue: 0x0001)
    public static let sha256 = PasswordAlgorithm(rawValue: 0x0002)
}
