import ArgumentParser
import Foundation
import Identity
import SamtalerumApp
import SamtalerumCore

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Bearer tokens for staff.", subcommands: [Issue.self])

    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a bearer token signed with this data directory's key.")

        @OptionGroup var settings: ConfigurationOptions
        @Option(help: "worker, ops or auditor.") var role: String
        @Option(help: "Pseudonymous id of the person (e.g. employee number); never a name.") var subject: String
        @Option(help: "Lifetime in seconds.") var ttl: Int = 8 * 3600

        func validate() throws {
            guard Role.staff.contains(Role(rawValue: role)) else {
                throw ValidationError("--role must be one of: \(Role.staff.map(\.rawValue).joined(separator: ", "))")
            }
            guard SubjectRef(validating: subject) != nil else { throw ValidationError("--subject must be 1–128 printable characters") }
            guard ttl > 0, ttl <= 90 * 24 * 3600 else { throw ValidationError("--ttl must be between 1 second and 90 days") }
        }

        func run() async throws {
            let authority = try await TokenAuthority(dataDirectory: try settings.resolve().dataDirectory)
            guard let subjectRef = SubjectRef(validating: subject) else { return }
            print(try await authority.issueStaffToken(subject: subjectRef, role: Role(rawValue: role), ttl: TimeInterval(ttl)))
        }
    }
}
