import Foundation
// Every module that logs imports TapeLogging, and gets swift-log's `Logger` with it.
@_exported import Logging

/// The process's logging: one bootstrap, then the format and the level the command line (or the live
/// stack's `logging:` section, through it) asks for. docs/operations.md, "Logs".
///
/// ```swift
/// TapeLogging.bootstrap()                                   // `tape`'s entry, before any command runs
/// TapeLogging.configure(format: .json, level: .info)       // a long-running command's --log-format/--log-level
/// ```
public enum TapeLogging {
    /// Makes `TapeLogHandler` on standard error the handler of every `Logger` made from now on. Once per
    /// process (later calls do nothing); the format and level stay changeable (`configure`).
    public static func bootstrap() {
        Bootstrap.once.run {
            LoggingSystem.bootstrap { label in TapeLogHandler(label: label, output: .standardError) }
        }
    }

    /// The format and level of every logger writing to standard error, those made already included.
    public static func configure(format: LogFormat, level: Logger.Level) {
        LogSettings.process.set(format: format, level: level)
    }

    /// The process's format and level now.
    public static var format: LogFormat { LogSettings.process.format }
    public static var level: Logger.Level { LogSettings.process.level }

    /// A logger that writes each rendered line to `lines` (a test's capture), in `format`, every level.
    public static func logger(label: String, format: LogFormat = .text,
                              _ lines: @escaping @Sendable (String) -> Void) -> Logger {
        Logger(label: label) { label in TapeLogHandler(label: label, output: .lines(format: format, lines)) }
    }

    /// A line seam (`(String) -> Void`, e.g. a REST poller's) into `logger`: each line one event at `level`
    /// with `metadata` (what the wiring knows: the feed, the peer).
    public static func lines(_ logger: Logger, level: Logger.Level = .info,
                             metadata: Logger.Metadata = [:]) -> @Sendable (String) -> Void {
        { line in logger.log(level: level, "\(line)", metadata: metadata) }
    }
}

/// Runs a closure once per process.
private final class Bootstrap: @unchecked Sendable {
    static let once = Bootstrap()
    private let lock = NSLock()
    private var done = false

    func run(_ body: () -> Void) {
        lock.withLock {
            guard !done else { return }
            done = true
            body()
        }
    }
}

extension Logger.Message {
    /// A message made of pieces at run time (`"a " + b`): swift-log's `Message` is written as a literal or an
    /// interpolation, which a concatenation is not.
    public static func text(_ text: String) -> Logger.Message { Logger.Message(stringLiteral: text) }
}
