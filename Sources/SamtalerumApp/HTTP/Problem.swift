import Foundation
import Hummingbird

/// RFC 9457 problem details. `type` is stable so clients can branch on it; `detail` is for people.
public struct Problem: HTTPResponseError, Codable, Sendable, Equatable {
    public static let typePrefix = "https://samtalerum.dk/problems/"

    public var type: String
    public var title: String
    public var statusCode: Int
    public var detail: String?

    public init(_ kind: Kind, detail: String? = nil) {
        self.type = Self.typePrefix + kind.slug
        self.title = kind.title
        self.statusCode = kind.status.code
        self.detail = detail
    }

    enum CodingKeys: String, CodingKey {
        case type, title, detail
        case statusCode = "status"
    }

    public var status: HTTPResponse.Status { HTTPResponse.Status(code: statusCode) }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = try encoder.encode(self)
        var headers: HTTPFields = [.contentType: "application/problem+json"]
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    public struct Kind: Sendable {
        public var slug: String
        public var title: String
        public var status: HTTPResponse.Status

        public static let unauthorized = Kind(slug: "unauthorized", title: "A valid bearer token is required", status: .unauthorized)
        public static let tokenExpired = Kind(slug: "token-expired", title: "The bearer token has expired", status: .unauthorized)
        public static let forbidden = Kind(slug: "forbidden", title: "This role may not do that", status: .forbidden)
        public static let invalidRequest = Kind(slug: "invalid-request", title: "The request is not valid", status: .badRequest)
        public static let notFound = Kind(slug: "not-found", title: "Not found", status: .notFound)
        public static let meetingNotFound = Kind(slug: "meeting-not-found", title: "No such meeting", status: .notFound)
        public static let notYourMeeting = Kind(slug: "not-your-meeting", title: "Another worker's meeting", status: .forbidden)
        public static let meetingEnded = Kind(slug: "meeting-ended", title: "The meeting's invites have expired", status: .conflict)
        public static let tooManyGuests = Kind(slug: "too-many-guests", title: "The meeting has no free place", status: .conflict)
        public static let payloadTooLarge = Kind(slug: "payload-too-large", title: "The request body is too large", status: .contentTooLarge)
        public static let unavailable = Kind(slug: "unavailable", title: "The service is not ready", status: .serviceUnavailable)
        public static let `internal` = Kind(slug: "internal", title: "The request could not be completed", status: .internalServerError)
    }
}
