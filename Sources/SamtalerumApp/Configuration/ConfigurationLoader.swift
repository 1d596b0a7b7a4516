import Foundation
import Yams

public enum ConfigurationError: Error, CustomStringConvertible, Equatable {
    case unknownKey(String)
    case notAMapping(String)
    case unreadable(String, String)
    case invalid(String)
    case invalidValue(key: String, value: String, expected: String)
    case unknownEnvironmentVariable(String)
    /// A file a key names (certificate, key, JWKS) is missing or unusable.
    case file(key: String, path: String, problem: String)
    case listen(key: String, address: String, problem: String)

    public var description: String {
        switch self {
        case .unknownKey(let key): "unknown configuration key '\(key)' (see Config/samtalerum.yaml)"
        case .notAMapping(let key): "configuration key '\(key)' must be a section of keys"
        case .unreadable(let path, let why): "cannot read configuration \(path): \(why)"
        case .invalid(let why): "invalid configuration: \(why)"
        case .invalidValue(let key, let value, let expected): "invalid configuration: \(key) is '\(value)'; it must be \(expected)"
        case .file(let key, let path, let problem): "\(key): \(path) \(problem)"
        case .listen(let key, let address, let problem): "\(key): cannot listen on \(address): \(problem)"
        case .unknownEnvironmentVariable(let name):
            "unknown environment variable \(name): no configuration key has that name (see Config/samtalerum.yaml)"
        }
    }
}

/// Layers defaults, a YAML file and `SAMTALERUM_SECTION_KEY` environment variables. Works on the
/// YAML tree so a typo in a key is an error instead of a silently ignored setting.
public enum ConfigurationLoader {
    public static let environmentPrefix = "SAMTALERUM_"
    /// Names the config file when `--config` is not given.
    public static let configFileVariable = "SAMTALERUM_CONFIG"
    /// Read by the project's own scripts and tools, not the server; allowed beside the keys.
    static let toolVariables: Set<String> = [configFileVariable, "SAMTALERUM_BIN", "SAMTALERUM_WEB", "SAMTALERUM_LOAD_TOKEN",
                                             "SAMTALERUM_TEST_POSTGRES_URL", "SAMTALERUM_TEST_POSTGRES_DIR"]

    /// Defaults, then the file, then the environment, then `flags` (command-line options), and
    /// only then the bounds: what is returned is what runs.
    public static func load(
        file: URL?, environment: [String: String], flags: (inout AppConfiguration) -> Void = { _ in }
    ) throws -> AppConfiguration {
        var tree = try defaultsTree()
        if let file {
            let text: String
            do { text = try String(contentsOf: file, encoding: .utf8) } catch {
                throw ConfigurationError.unreadable(file.path, error.localizedDescription)
            }
            let overlay: Node?
            do { overlay = try Yams.compose(yaml: text) } catch {
                throw ConfigurationError.unreadable(file.path, "\(error)")
            }
            if let overlay { tree = try merge(overlay, onto: tree, path: "") }
        }
        tree = try applyEnvironment(environment, to: tree)
        var configuration: AppConfiguration
        do {
            configuration = try YAMLDecoder().decode(AppConfiguration.self, from: tree)
        } catch let error as DecodingError {
            throw ConfigurationError.invalid(describe(error))
        }
        flags(&configuration)
        try configuration.validate()
        return configuration
    }

    /// `server.dataDir` ↔ `SAMTALERUM_SERVER_DATA_DIR`; an acronym stays one word:
    /// `server.publicURL` ↔ `SAMTALERUM_SERVER_PUBLIC_URL`, `externalJWKSFile` ↔ `…_EXTERNAL_JWKS_FILE`.
    public static func environmentName(section: String, key: String) -> String {
        let characters = Array(key)
        var snake = ""
        for (index, character) in characters.enumerated() {
            if index > 0, character.isUppercase {
                let previous = characters[index - 1]
                let next = index + 1 < characters.count ? characters[index + 1] : nil
                // A word starts at lower→Upper, or at the last capital of an acronym (TTLSeconds).
                if !previous.isUppercase || next?.isLowercase == true { snake.append("_") }
            }
            snake.append(contentsOf: character.uppercased())
        }
        return environmentPrefix + section.uppercased() + "_" + snake
    }

    static func defaultsTree() throws -> Node {
        let yaml = try YAMLEncoder().encode(AppConfiguration())
        guard let node = try Yams.compose(yaml: yaml) else { throw ConfigurationError.invalid("no defaults") }
        return node
    }

    static func merge(_ overlay: Node, onto base: Node, path: String) throws -> Node {
        guard let overlayMapping = overlay.mapping else { return overlay }
        guard var merged = base.mapping else { throw ConfigurationError.notAMapping(path) }
        let isFreeForm = base.mapping?.isEmpty == true && !path.isEmpty
        for (key, value) in overlayMapping {
            guard let name = key.string else { throw ConfigurationError.unknownKey(path + "?") }
            let keyPath = path.isEmpty ? name : path + "." + name
            if let existing = merged[name] {
                merged[name] = try existing.mapping != nil && existing.mapping?.isEmpty == false
                    ? merge(value, onto: existing, path: keyPath) : value
            } else if isFreeForm {
                merged[name] = value
            } else {
                throw ConfigurationError.unknownKey(keyPath)
            }
        }
        return .mapping(merged)
    }

    static func applyEnvironment(_ environment: [String: String], to tree: Node) throws -> Node {
        var tree = tree
        guard let sections = tree.mapping else { return tree }
        var known = toolVariables
        for (sectionKey, section) in sections {
            guard let sectionName = sectionKey.string, var keys = section.mapping else { continue }
            for (key, current) in keys {
                guard let name = key.string else { continue }
                let variable = environmentName(section: sectionName, key: name)
                known.insert(variable)
                guard let value = environment[variable] else { continue }
                // Mappings (e.g. a role mapping) and lists (turn.relays) are given as YAML flow
                // syntax: {"A": worker}, [{name: a, host: turn-a}].
                if current.sequence != nil {
                    guard let parsed = try? Yams.compose(yaml: value), parsed.sequence != nil else {
                        throw ConfigurationError.invalidValue(key: sectionName + "." + name, value: value,
                                                              expected: "a list in YAML flow syntax, e.g. [{name: a, host: turn-a}]")
                    }
                    keys[name] = parsed
                } else if current.mapping != nil {
                    guard let parsed = try Yams.compose(yaml: value), parsed.mapping != nil else {
                        throw ConfigurationError.notAMapping(sectionName + "." + name)
                    }
                    keys[name] = parsed
                } else {
                    keys[name] = Node(value)
                }
            }
            tree[sectionName] = .mapping(keys)
        }
        // A misspelt variable would otherwise be a setting that silently does nothing.
        if let unknown = environment.keys.filter({ $0.hasPrefix(environmentPrefix) && !known.contains($0) }).sorted().first {
            throw ConfigurationError.unknownEnvironmentVariable(unknown)
        }
        return tree
    }

    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            "'\(context.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type"
        case .keyNotFound(let key, _):
            "missing '\(key.stringValue)'"
        @unknown default:
            "\(error)"
        }
    }
}
