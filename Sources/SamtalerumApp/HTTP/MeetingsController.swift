import Foundation
import Hummingbird
import Identity
import SamtalerumCore

struct CreateMeetingRequest: Decodable {
    var citizenRef: String
}

struct InviteGuestRequest: Decodable {
    var guestRef: String
}

struct InviteGuestResponse: ResponseEncodable {
    var meetingId: MeetingID
    var peer: PeerID
    var guestInviteUrl: String
    var inviteExpiresAt: Date
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

/// Workers create meetings; each meeting comes with one signed, expiring citizen invite, and the
/// worker may invite further participants (guests), each with an invite of their own.
struct MeetingsController<Context: RequestContext> {
    let authenticator: BearerAuthenticator
    let authority: TokenAuthority
    let recorder: any AuditRecorder
    let directory: any MeetingDirectory
    let publicBaseURL: String
    let inviteTTL: TimeInterval
    let clock: WallClock

    static var maxBodyBytes: Int { 4096 }

    var routes: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.post("meetings", use: create)
        routes.post("meetings/:meetingId/guests", use: inviteGuest)
        routes.get("whoami", use: whoami)
        return routes
    }

    @Sendable func whoami(_ request: Request, context: Context) async throws -> WhoAmI {
        let identity = try await authenticator.require(Set(Role.staff), in: request)
        return WhoAmI(subject: identity.subject, role: identity.role, expiresAt: identity.expiresAt)
    }

    @Sendable func create(_ request: Request, context: Context) async throws -> EditedResponse<CreateMeetingResponse> {
        let worker = try await authenticator.require([.worker], in: request)
        let body = try await Self.decode(CreateMeetingRequest.self, from: request, expected: "{\"citizenRef\": \"<case reference>\"}")
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

    /// A further participant for the worker's own meeting, e.g. a job-centre caseworker. The room
    /// itself refuses a fifth participant, so two invites racing past the count here cannot crowd it.
    @Sendable func inviteGuest(_ request: Request, context: Context) async throws -> EditedResponse<InviteGuestResponse> {
        let worker = try await authenticator.require([.worker], in: request)
        guard let id = context.parameters.get("meetingId").flatMap(MeetingID.init(validating:)),
              let meeting = try await directory.meeting(id: id) else { throw Problem(.meetingNotFound) }
        guard meeting.workerRef == worker.subject else { throw Problem(.notYourMeeting) }
        let body = try await Self.decode(InviteGuestRequest.self, from: request, expected: "{\"guestRef\": \"<reference>\"}")
        guard let guest = SubjectRef(validating: body.guestRef) else {
            throw Problem(.invalidRequest, detail: "guestRef must be 1–\(SubjectRef.maxLength) printable characters")
        }
        let now = clock.now()
        guard now < meeting.inviteExpiresAt else { throw Problem(.meetingEnded) }
        guard meeting.guests.count < Meeting.maxGuests else {
            throw Problem(.tooManyGuests, detail: "a meeting has the worker, the citizen and at most \(Meeting.maxGuests) guests")
        }
        let peer = PeerID.randomGuest()
        let invite = try await authority.issueInvite(meeting: meeting.id, expiresAt: meeting.inviteExpiresAt, guest: peer)
        try await recorder.record(.guestInvited(meeting: meeting.id, peer: peer, guest: guest, by: worker.subject,
                                                expiresAt: meeting.inviteExpiresAt, at: now))
        let response = InviteGuestResponse(meetingId: meeting.id, peer: peer,
                                           guestInviteUrl: "\(publicBaseURL)/join#invite=\(invite)",
                                           inviteExpiresAt: meeting.inviteExpiresAt)
        return EditedResponse(status: .created, headers: [.cacheControl: "no-store"], response: response)
    }

    private static func decode<Body: Decodable>(_ type: Body.Type, from request: Request, expected: String) async throws -> Body {
        do {
            let buffer = try await request.body.collect(upTo: maxBodyBytes)
            return try JSONDecoder().decode(Body.self, from: Data(buffer: buffer))
        } catch is DecodingError {
            throw Problem(.invalidRequest, detail: "expected JSON \(expected)")
        } catch {
            throw Problem(.payloadTooLarge, detail: "at most \(maxBodyBytes) bytes")
        }
    }
}
