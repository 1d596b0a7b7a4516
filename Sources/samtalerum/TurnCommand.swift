import ArgumentParser
import Foundation
import SamtalerumApp
import SamtalerumCore

struct TurnCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "turn", abstract: "The built-in TURN relay.", subcommands: [Credentials.self])

    struct Credentials: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print short-lived TURN credentials as JSON (for tests and administrators).")

        @OptionGroup var settings: ConfigurationOptions
        @Option(help: "Credential id (appears in relay statistics); a pseudonymous reference.") var subject: String

        struct Output: Encodable {
            var username: String
            var password: String
            var ttl: Int
            var uris: [String]
        }

        func run() async throws {
            guard SubjectRef(validating: subject) != nil, !subject.contains(":") else {
                throw ValidationError("--subject must be 1–128 printable characters without ':'")
            }
            let configuration = try settings.resolve()
            let relay = try RelayCredentials(configuration: configuration)
            let issued = relay.issue(id: subject, now: Date())
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let output = Output(username: issued.username, password: issued.password,
                                ttl: Int(relay.ttl.components.seconds), uris: relay.stunURIs + relay.turnURIs)
            print(String(decoding: try encoder.encode(output), as: UTF8.self))
        }
    }
}
