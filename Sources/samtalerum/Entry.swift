import ArgumentParser
import SamtalerumApp

@main
struct SamtalerumCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "samtalerum",
        abstract: "Secure video meetings between support workers and the citizens they support.",
        version: BuildInfo.version,
        subcommands: [ServeCommand.self, RelayCommand.self, TokenCommand.self, AuditCommand.self, TurnCommand.self])
}
