import CoreMetrics
import Foundation
import Logging

/// How the server writes its log: `text` for a person at a terminal, `json` (one object per
/// line) for journald, Loki or Elasticsearch. Configured as `logging.format` / `--log-format`.
public enum LogFormat: String, Sendable, CaseIterable {
    case text, json
}

public enum LogOutput {
    /// Installs the process-wide handler; call once, before anything logs.
    public static func bootstrap(format: LogFormat) {
        LoggingSystem.bootstrap { label in OperatorLogHandler(label: label, format: format) }
    }

    /// A start-up line scripts wait for, on stdout and unbuffered even into a pipe: as it is in
    /// text, as a log object in json.
    public static func announce(_ line: String, format: LogFormat) {
        let text = switch format {
        case .text: line
        case .json: OperatorLogHandler.jsonLine(level: .notice, label: "samtalerum", source: "samtalerum",
                                                message: line, metadata: [:])
        }
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }
}

/// The server's log handler. Besides the two formats it keeps a client's failed connection
/// setup (a TLS handshake from a port scanner or a plain-HTTP probe, reported by the WebSocket
/// upgrade layer as an error) out of the error level: it is counted in
/// `samtalerum_connection_failures_total` and logged at debug, so an error line means a fault.
struct OperatorLogHandler: LogHandler {
    let label: String
    let format: LogFormat
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, format: LogFormat) {
        self.label = label
        self.format = format
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var event = event
        if Self.isFailedConnectionSetup(event) {
            Counter(label: MetricsExporter.connectionFailures).increment()
            guard logLevel <= .debug else { return }
            event.level = .debug
        }
        switch format {
        case .text:
            var text = StreamLogHandler.standardError(label: label, metadataProvider: metadataProvider)
            text.logLevel = logLevel
            text.metadata = metadata
            text.log(event: event)
        case .json:
            var merged = metadata
            if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
            if let own = event.metadata { merged.merge(own) { $1 } }
            let line = Self.jsonLine(level: event.level, label: label, source: event.source,
                                     message: event.message.description, metadata: merged)
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }

    static func isFailedConnectionSetup(_ event: LogEvent) -> Bool {
        event.level >= .warning && event.source == "HummingbirdWebSocket"
            && event.message.description == "Error handling upgrade result"
    }

    /// `time`, `level`, `logger`, `source` and `message` first, then the metadata keys, sorted;
    /// a metadata key that would shadow one of the five gets a `meta.` prefix.
    static func jsonLine(level: Logger.Level, label: String, source: String, message: String, metadata: Logger.Metadata) -> String {
        let fixed = [("time", Date.now.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))),
                     ("level", level.rawValue), ("logger", label), ("source", source), ("message", message)]
        var fields = fixed.map { "\(quoted($0.0)):\(quoted($0.1))" }
        let reserved = Set(fixed.map(\.0))
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            fields.append("\(quoted(reserved.contains(key) ? "meta." + key : key)):\(json(value))")
        }
        return "{" + fields.joined(separator: ",") + "}"
    }

    static func json(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let string): quoted(string)
        case .stringConvertible(let convertible): quoted(convertible.description)
        case .array(let values): "[" + values.map(json).joined(separator: ",") + "]"
        case .dictionary(let values):
            "{" + values.sorted(by: { $0.key < $1.key }).map { "\(quoted($0.key)):\(json($0.value))" }.joined(separator: ",") + "}"
        }
    }

    static func quoted(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
