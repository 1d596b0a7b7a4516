import Foundation
import Hummingbird
import Identity
import SamtalerumCore

struct CreateMeetingRequest: Decodable {
    var citizenRef: String
}

struct CreateMeetingResponse: ResponseEncodable {
    var meetingId: MeetingID
    var workerJoinUrl: String
    var citizenInviteUrl: String
    var inviteExpiresAt: Date
}

struct WhoAmI: ResponseEncodable {
    var subject: SubjectRef
    var role: Role
    var expiresAt: Date
}

/// Workers create meetings; each meeting comes with one signed, expiring citizen invite.
struct MeetingsController<Context: RequestContext> {
    let authenticator: BearerAuthenticator
    let authority: TokenAuthority
    let recorder: any AuditRecorder
    let publicBaseURL: String
    let inviteTTL: TimeInterval
    let clock: WallClock

    static var maxBodyBytes: Int { 4096 }

    var routes: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.post("meetings", use: create)
        routes.get("whoami", use: whoami)
        return routes
    }

    @Sendable func whoami(_ request: Request, context: Context) async throws -> WhoAmI {
        let identity = try await authenticator.require(Set(Role.staff), in: request)
        return WhoAmI(subject: identity.subject, role: identity.role, expiresAt: identity.expiresAt)
    }

    @Sendable func create(_ request: Request, context: Context) async throws -> EditedResponse<CreateMeetingResponse> {
        let worker = try await authenticator.require([.worker], in: request)
        let body: CreateMeetingRequest
        do {
            let buffer = try await request.body.collect(upTo: Self.maxBodyBytes)
            body = try JSONDecoder().decode(CreateMeetingRequest.self, from: Data(buffer: buffer))
        } catch is DecodingError {
            throw Problem(.invalidRequest, detail: "expected JSON {\"citizenRef\": \"<case reference>\"}")
        } catch {
            throw Problem(.payloadTooLarge, detail: "at most \(Self.maxBodyBytes) bytes")
        }
        guard let citizen = SubjectRef(validating: body.citizenRef) else {
            throw Problem(.invalidRequest, detail: "citizenRef must be 1–\(SubjectRef.maxLength) printable characters")
        }
        let now = clock.now()
        let meeting = Meeting(id: .random(), workerRef: worker.subject, citizenRef: citizen,
                              createdAt: now, inviteExpiresAt: now.addingTimeInterval(inviteTTL))
        let invite = try await authority.issueInvite(meeting: meeting.id, expiresAt: meeting.inviteExpiresAt)
        // The meeting exists for the caller only once both records are durable.
        try await recorder.record(.meetingCreated(meeting))
        try await recorder.record(.inviteIssued(meeting: meeting.id, by: worker.subject, expiresAt: meeting.inviteExpiresAt, at: now))
        let response = CreateMeetingResponse(
            meetingId: meeting.id,
            workerJoinUrl: "\(publicBaseURL)/worker#meeting=\(meeting.id)",
            citizenInviteUrl: "\(publicBaseURL)/join#invite=\(invite)",
            inviteExpiresAt: meeting.inviteExpiresAt)
        return EditedResponse(status: .created, headers: [.cacheControl: "no-store"], response: response)
    }
}
