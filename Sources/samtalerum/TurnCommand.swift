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

        @OptionGroup var data: DataDirectoryOption
        @Option(help: "Credential id (appears in relay statistics); a pseudonymous reference.") var subject: String
        @Option(help: "YAML configuration file, for the relay's ports and host.") var config: String?

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
            let environment = ProcessInfo.processInfo.environment
            var configuration = try ConfigurationLoader.load(
                file: (config ?? environment[ConfigurationLoader.configFileVariable]).map { URL(fileURLWithPath: $0) },
                environment: environment)
            configuration.server.dataDir = data.directory.path
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
