import ArgumentParser
import TapeLogging

/// `--log-format` and `--log-level` of the long-running commands (`tape live`, `ingest`, `work`, `serve`,
/// `feed-sim`; the live stack passes its config's `logging:` section as these): applied first thing in
/// `run`, before anything logs. docs/operations.md, "Logs".
struct LoggingOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Log lines on stderr: `text` (the human line) or `json` (one JSON object per line: "
                               + "ts, level, label, message, then the metadata; docs/operations.md).",
                               valueName: "text|json"))
    var logFormat: String = "text"

    @Option(help: ArgumentHelp("Lowest level logged: trace, debug, info, notice, warning, error, critical.",
                               valueName: "level"))
    var logLevel: String = "info"

    func validate() throws {
        guard LogFormat(rawValue: logFormat) != nil else {
            throw ValidationError("--log-format '\(logFormat)': expected text or json")
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level '\(logLevel)': expected "
                                  + Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))
        }
    }

    /// Sets the process's format and level (checked by `validate`).
    func apply() {
        TapeLogging.configure(format: LogFormat(rawValue: logFormat) ?? .text, level: Logger.Level(rawValue: logLevel) ?? .info)
    }
}

/// The `tape` executable's own events (start, stop, the fatal error of `fail`).
let tapeLogger = Logger(label: "tape")
