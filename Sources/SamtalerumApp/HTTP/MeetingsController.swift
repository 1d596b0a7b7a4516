import Foundation
import Hummingbird
import Identity
import SamtalerumCore
import Signalling

struct CreateMeetingRequest: Decodable {
    var citizenRef: String
    /// ISO 8601 (with or without fractional seconds); absent for a meeting held straight away.
    var startsAt: String?
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
    var startsAt: Date?
}

/// The citizen's link, shown again or replaced.
struct CitizenLinkResponse: ResponseEncodable {
    var meetingId: MeetingID
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
    let calendar: any MeetingCalendar
    let registry: RoomRegistry
    let publicBaseURL: String
    let inviteTTL: TimeInterval
    let clock: WallClock

    static var maxBodyBytes: Int { 4096 }
    /// How far ahead a meeting may be planned.
    static var maxLeadTime: TimeInterval { 366 * 86_400 }
    /// A planned meeting's invite holds at least until this long after its start.
    static var inviteGraceAfterStart: TimeInterval { 12 * 3600 }

    var routes: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.post("meetings", use: create)
        routes.get("meetings", use: list)
        routes.delete("meetings/:meetingId", use: cancel)
        routes.get("meetings/:meetingId/invite", use: showLink)
        routes.post("meetings/:meetingId/invite", use: replaceLink)
        routes.get("meetings/:meetingId/calendar.ics", use: calendarFile)
        routes.post("meetings/:meetingId/guests", use: inviteGuest)
        routes.get("invite", use: inviteStatus)
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
        var startsAt: Date?
        if let text = body.startsAt {
            guard let parsed = MeetingSchedule.parseTimestamp(text) else {
                throw Problem(.invalidRequest, detail: "startsAt must be an ISO 8601 time such as 2026-12-01T09:00:00Z")
            }
            guard parsed > now.addingTimeInterval(-Self.inviteGraceAfterStart), parsed < now.addingTimeInterval(Self.maxLeadTime) else {
                throw Problem(.invalidRequest, detail: "startsAt must lie between 12 hours ago and a year from now")
            }
            startsAt = parsed
        }
        var expiresAt = now.addingTimeInterval(inviteTTL)
        if let startsAt { expiresAt = max(expiresAt, startsAt.addingTimeInterval(Self.inviteGraceAfterStart)) }
        let meeting = Meeting(id: .random(), workerRef: worker.subject, citizenRef: citizen,
                              createdAt: now, inviteExpiresAt: expiresAt, startsAt: startsAt,
                              citizenInviteId: UUID().uuidString)
        let invite = try await authority.issueInvite(meeting: meeting.id, expiresAt: meeting.inviteExpiresAt, id: meeting.citizenInviteId!)
        // The meeting exists for the caller only once both records are durable.
        try await recorder.record(.meetingCreated(meeting))
        try await recorder.record(.inviteIssued(meeting: meeting.id, by: worker.subject, expiresAt: meeting.inviteExpiresAt, at: now))
        let response = CreateMeetingResponse(
            meetingId: meeting.id,
            workerJoinUrl: workerURL(meeting.id),
            citizenInviteUrl: "\(publicBaseURL)/join#invite=\(invite)",
            inviteExpiresAt: meeting.inviteExpiresAt, startsAt: startsAt)
        return EditedResponse(status: .created, headers: [.cacheControl: "no-store"], response: response)
    }

    /// The worker's own meetings: today's (in the time zone `tz`, default Europe/Copenhagen),
    /// those after today, and the past `MeetingSchedule.pastDays` days; with who is in each room now.
    @Sendable func list(_ request: Request, context: Context) async throws -> EditedResponse<MeetingList> {
        let worker = try await authenticator.require([.worker], in: request)
        let zoneName = request.uri.queryParameters.get("tz") ?? MeetingSchedule.defaultTimeZone
        guard let zone = TimeZone(identifier: zoneName) else {
            throw Problem(.invalidRequest, detail: "tz must be an IANA time zone such as Europe/Copenhagen")
        }
        let now = clock.now()
        let schedule = MeetingSchedule(now: now, timeZone: zone)
        let meetings = try await calendar.meetings(of: worker.subject, from: schedule.pastFrom, limit: MeetingSchedule.maxListed)
        let rooms = Dictionary(await registry.snapshot.map { ($0.meetingId, $0) }, uniquingKeysWith: { first, _ in first })
        let list = schedule.list(meetings, rooms: rooms, workerURL: workerURL)
        return EditedResponse(headers: [.cacheControl: "no-store"], response: list)
    }

    /// Cancels the worker's meeting: recorded first, then everyone in its room is sent away and
    /// its invites are refused from then on.
    @Sendable func cancel(_ request: Request, context: Context) async throws -> Response {
        let (worker, meeting) = try await ownMeeting(request, context)
        if meeting.cancelledAt == nil {
            try await recorder.record(.meetingCancelled(meeting: meeting.id, by: worker.subject, at: clock.now()))
        }
        await registry.evict(meeting: meeting.id, code: .meetingCancelled, reason: .meetingCancelled)
        return Response(status: .noContent, headers: [.cacheControl: "no-store"])
    }

    /// The citizen's current link once more (same invite id, so the link sent earlier still works).
    @Sendable func showLink(_ request: Request, context: Context) async throws -> EditedResponse<CitizenLinkResponse> {
        let (worker, meeting) = try await ownOpenMeeting(request, context)
        guard let inviteId = meeting.citizenInviteId else {
            throw Problem(.invalidRequest, detail: "this meeting's link cannot be shown again; replace it instead (POST)")
        }
        let invite = try await authority.issueInvite(meeting: meeting.id, expiresAt: meeting.inviteExpiresAt, id: inviteId)
        try await recorder.record(.inviteShown(meeting: meeting.id, by: worker.subject, at: clock.now()))
        return EditedResponse(headers: [.cacheControl: "no-store"], response: CitizenLinkResponse(
            meetingId: meeting.id, citizenInviteUrl: "\(publicBaseURL)/join#invite=\(invite)", inviteExpiresAt: meeting.inviteExpiresAt))
    }

    /// A leaked link: a new one replaces it, and whoever came in with the old one is sent away.
    @Sendable func replaceLink(_ request: Request, context: Context) async throws -> EditedResponse<CitizenLinkResponse> {
        let (worker, meeting) = try await ownOpenMeeting(request, context)
        let now = clock.now()
        let inviteId = UUID().uuidString
        let invite = try await authority.issueInvite(meeting: meeting.id, expiresAt: meeting.inviteExpiresAt, id: inviteId)
        try await recorder.record(.inviteRevoked(meeting: meeting.id, replacement: inviteId, by: worker.subject, at: now))
        try await recorder.record(.inviteIssued(meeting: meeting.id, by: worker.subject, expiresAt: meeting.inviteExpiresAt, at: now))
        await registry.evict(meeting: meeting.id, peers: [.citizen], code: .inviteRevoked, reason: .inviteRevoked)
        return EditedResponse(status: .created, headers: [.cacheControl: "no-store"], response: CitizenLinkResponse(
            meetingId: meeting.id, citizenInviteUrl: "\(publicBaseURL)/join#invite=\(invite)", inviteExpiresAt: meeting.inviteExpiresAt))
    }

    /// An iCalendar file for the worker's own calendar: the case reference, the time, the worker's
    /// link to the call. Never the citizen's invite: calendars get shared and synced.
    @Sendable func calendarFile(_ request: Request, context: Context) async throws -> Response {
        let (_, meeting) = try await ownMeeting(request, context)
        let text = CalendarFile.event(for: meeting, workerURL: workerURL(meeting.id), now: clock.now())
        return Response(status: .ok, headers: [
            .contentType: "text/calendar; charset=utf-8", .cacheControl: "no-store",
            .contentDisposition: "attachment; filename=\"samtalerum-\(meeting.id).ics\"",
        ], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// What the citizen's page may know before joining: when the meeting is and whether the link
    /// still opens it. Authorised by the invite itself; no case reference, no names.
    @Sendable func inviteStatus(_ request: Request, context: Context) async throws -> EditedResponse<InviteStatus> {
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer "),
              case .invite(let invite) = try? await authority.verifyCredential(String(header.dropFirst(7)))
        else { throw Problem(.unauthorized, detail: "send the invite as Authorization: Bearer <invite>") }
        guard let meeting = try await directory.meeting(id: invite.meetingId) else { throw Problem(.meetingNotFound) }
        guard meeting.cancelledAt == nil else { throw Problem(.meetingCancelled) }
        if invite.peer == .citizen, let current = meeting.citizenInviteId, current != invite.inviteId {
            throw Problem(.inviteRevoked)
        }
        return EditedResponse(headers: [.cacheControl: "no-store"], response: InviteStatus(
            startsAt: meeting.startsAt, opensAt: meeting.startsAt.map { $0.addingTimeInterval(-MeetingSchedule.opensBefore) },
            expiresAt: invite.expiresAt))
    }

    private func workerURL(_ id: MeetingID) -> String { "\(publicBaseURL)/worker#meeting=\(id)" }

    private func ownMeeting(_ request: Request, _ context: Context) async throws -> (StaffIdentity, Meeting) {
        let worker = try await authenticator.require([.worker], in: request)
        guard let id = context.parameters.get("meetingId").flatMap(MeetingID.init(validating:)),
              let meeting = try await directory.meeting(id: id) else { throw Problem(.meetingNotFound) }
        guard meeting.workerRef == worker.subject else { throw Problem(.notYourMeeting) }
        return (worker, meeting)
    }

    /// The worker's meeting, neither cancelled nor past its invites' expiry.
    private func ownOpenMeeting(_ request: Request, _ context: Context) async throws -> (StaffIdentity, Meeting) {
        let (worker, meeting) = try await ownMeeting(request, context)
        guard meeting.cancelledAt == nil else { throw Problem(.meetingCancelled) }
        guard clock.now() < meeting.inviteExpiresAt else { throw Problem(.meetingEnded) }
        return (worker, meeting)
    }

    /// A further participant for the worker's own meeting, e.g. a job-centre caseworker. The room
    /// itself refuses a fifth participant, so two invites racing past the count here cannot crowd it.
    @Sendable func inviteGuest(_ request: Request, context: Context) async throws -> EditedResponse<InviteGuestResponse> {
        let (worker, meeting) = try await ownMeeting(request, context)
        guard meeting.cancelledAt == nil else { throw Problem(.meetingCancelled) }
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

struct InviteStatus: ResponseEncodable {
    var startsAt: Date?
    /// From when the page lets the citizen in: a few minutes before the start.
    var opensAt: Date?
    var expiresAt: Date
}

extension Problem.Kind {
    static let meetingCancelled = Problem.Kind(slug: "meeting-cancelled", title: "The meeting was cancelled", status: .gone)
    static let inviteRevoked = Problem.Kind(slug: "invite-revoked", title: "This link was replaced by a new one", status: .gone)
}
