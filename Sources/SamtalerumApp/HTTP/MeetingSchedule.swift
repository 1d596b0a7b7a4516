import Foundation
import Hummingbird
import SamtalerumCore
import Signalling

/// One meeting in the worker's list. `caseRef` is the worker's own case reference: the title
/// their page shows instead of the meeting id.
struct MeetingSummary: Codable, Sendable, Equatable {
    var meetingId: MeetingID
    var caseRef: String
    var startsAt: Date?
    var createdAt: Date
    var inviteExpiresAt: Date
    var cancelled: Bool
    var workerJoinUrl: String
    /// Roles in the waiting room now (e.g. `["citizen"]`), and roles admitted and connected.
    var waiting: [Role]
    var present: [Role]
}

struct MeetingList: ResponseEncodable, Decodable, Sendable {
    var timeZone: String
    var today: [MeetingSummary]
    var upcoming: [MeetingSummary]
    var past: [MeetingSummary]
}

/// Sorts a worker's meetings into today, later and earlier, by the worker's calendar day.
struct MeetingSchedule {
    static let defaultTimeZone = "Europe/Copenhagen"
    /// The citizen's page lets them in this long before the planned start.
    static let opensBefore: TimeInterval = 10 * 60
    static let pastDays = 30
    static let maxListed = 500

    let startOfToday: Date
    let startOfTomorrow: Date
    let pastFrom: Date
    let timeZone: TimeZone

    init(now: Date, timeZone: TimeZone) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        self.timeZone = timeZone
        startOfToday = calendar.startOfDay(for: now)
        // Through the calendar, not +86 400 s: a day with a daylight-saving change is 23 or 25 hours.
        startOfTomorrow = calendar.date(byAdding: .day, value: 1, to: startOfToday) ?? startOfToday.addingTimeInterval(86_400)
        pastFrom = calendar.date(byAdding: .day, value: -Self.pastDays, to: startOfToday) ?? startOfToday
    }

    /// `meetings` come earliest first; the past is listed latest first.
    func list(_ meetings: [Meeting], rooms: [MeetingID: RoomSnapshot], workerURL: (MeetingID) -> String) -> MeetingList {
        var list = MeetingList(timeZone: timeZone.identifier, today: [], upcoming: [], past: [])
        for meeting in meetings {
            let participants = rooms[meeting.id]?.participants ?? []
            let summary = MeetingSummary(
                meetingId: meeting.id, caseRef: meeting.citizenRef.rawValue, startsAt: meeting.startsAt,
                createdAt: meeting.createdAt, inviteExpiresAt: meeting.inviteExpiresAt, cancelled: meeting.cancelledAt != nil,
                workerJoinUrl: workerURL(meeting.id),
                waiting: participants.filter(\.waiting).map(\.role),
                present: participants.filter { !$0.waiting && !$0.away }.map(\.role))
            let time = meeting.startsAt ?? meeting.createdAt
            if time < startOfToday {
                list.past.insert(summary, at: 0)
            } else if time < startOfTomorrow {
                list.today.append(summary)
            } else {
                list.upcoming.append(summary)
            }
        }
        return list
    }

    /// Browsers send `toISOString()` (with milliseconds); people and scripts often send without.
    static func parseTimestamp(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}

/// An iCalendar (RFC 5545) event for the worker's calendar.
enum CalendarFile {
    /// Planned meetings are booked for this long; the call itself has no end time.
    static let bookedDuration = "PT45M"

    static func event(for meeting: Meeting, workerURL: String, now: Date) -> String {
        var lines = [
            "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Samtalerum//Samtalerum//DA", "METHOD:PUBLISH",
            "BEGIN:VEVENT",
            "UID:\(meeting.id.rawValue)@samtalerum",
            "DTSTAMP:\(utc(now))",
            "DTSTART:\(utc(meeting.startsAt ?? meeting.createdAt))",
            "DURATION:\(bookedDuration)",
            "SUMMARY:\(text("Videomøde – \(meeting.citizenRef.rawValue)"))",
            "DESCRIPTION:\(text("Åbn mødet i Samtalerum: \(workerURL)"))",
            "URL:\(workerURL)",
        ]
        if meeting.cancelledAt != nil { lines.append("STATUS:CANCELLED") }
        lines += ["END:VEVENT", "END:VCALENDAR"]
        return lines.map(fold).joined(separator: "\r\n") + "\r\n"
    }

    private static func utc(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.string(from: date)
    }

    /// TEXT values escape backslash, semicolon, comma and line breaks (RFC 5545 §3.3.11).
    private static func text(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: ";", with: "\\;")
            .replacingOccurrences(of: ",", with: "\\,").replacingOccurrences(of: "\r\n", with: "\\n")
            .replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\r", with: "\\n")
    }

    /// Lines longer than 75 octets continue on the next line after a space, split between characters.
    private static func fold(_ line: String) -> String {
        var out = ""
        var octets = 0
        for character in line {
            let size = String(character).utf8.count
            if octets + size > 75 {
                out += "\r\n "
                octets = 1
            }
            out.append(character)
            octets += size
        }
        return out
    }
}
