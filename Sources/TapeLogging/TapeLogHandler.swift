#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Logging
import TapeCore

/// How a log line is written: `text`, the human line as Tape always printed it (the message alone: it names
/// its subject, peer and error in words), or `json`, one JSON object per line (`JSONLogLine`).
public enum LogFormat: String, Sendable, CaseIterable {
    case text
    case json
}

/// Tape's one `LogHandler`: every `Logger` of the `tape` executable writes through it (bootstrapped once by
/// `TapeLogging.bootstrap()`), in the process's format and at the process's level (`TapeLogging.configure`).
///
/// ```swift
/// TapeLogging.bootstrap()                                     // once, in `tape`'s entry
/// TapeLogging.configure(format: .json, level: .info)          // from --log-format / --log-level
/// Logger(label: "tape.work").info("tape work: w1 took tick_data[0] at offset 42",
///                                 metadata: ["partition": "0", "offset": "42"])
/// ```
///
/// A line is rendered whole, then written with one `write(2)` (looping only on a short write) under a
/// process-wide lock: lines from different threads never interleave. The handler reads no clock but the
/// wall clock of its own timestamp (`ts`, JSON only): nothing of it reaches the graph.
public struct TapeLogHandler: LogHandler {
    public let label: String
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let output: LogOutput
    /// A logger's own level (a library quietening its chatter, e.g. Hummingbird's at `warning`): the
    /// effective level is the stricter of it and the process's.
    private var ownLevel: Logger.Level?

    public init(label: String, output: LogOutput = .standardError, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.output = output
        self.metadataProvider = metadataProvider
    }

    public var logLevel: Logger.Level {
        get {
            let process = output.settings.level
            guard let ownLevel else { return process }
            return max(ownLevel, process)
        }
        set { ownLevel = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let own = event.metadata { merged.merge(own) { _, new in new } }
        if let error = event.error, merged["error"] == nil { merged["error"] = .string("\(error)") }
        let line: String
        switch output.settings.format {
        case .text:
            line = event.message.description
        case .json:
            line = JSONLogLine.render(time: WallTime.now(), level: event.level, label: label,
                                      message: event.message.description, metadata: merged)
        }
        output.write(line)
    }
}

/// Where the handler's lines go and in which format and level: the process's standard error (settings
/// from `TapeLogging.configure`), or a closure with settings of its own (a test, a component's seam).
public struct LogOutput: Sendable {
    let settings: LogSettings
    private let sink: @Sendable (String) -> Void

    /// Standard error, in the process's format and level.
    public static let standardError = LogOutput(settings: .process, sink: { StandardError.writeLine($0) })

    /// `lines` gets every rendered line (without its newline), in `format`, at `level` and above.
    public static func lines(format: LogFormat = .text, level: Logger.Level = .trace,
                             _ lines: @escaping @Sendable (String) -> Void) -> LogOutput {
        LogOutput(settings: LogSettings(format: format, level: level), sink: lines)
    }

    func write(_ line: String) { sink(line) }
}

/// A format and a level, changeable while loggers exist (the process's are set once the command line is
/// read, after the first loggers were made).
final class LogSettings: @unchecked Sendable {
    static let process = LogSettings(format: .text, level: .info)
    private let lock = NSLock()
    private var storedFormat: LogFormat
    private var storedLevel: Logger.Level

    init(format: LogFormat, level: Logger.Level) {
        storedFormat = format
        storedLevel = level
    }

    var format: LogFormat { lock.withLock { storedFormat } }
    var level: Logger.Level { lock.withLock { storedLevel } }

    func set(format: LogFormat, level: Logger.Level) {
        lock.withLock {
            storedFormat = format
            storedLevel = level
        }
    }
}

/// The process's standard error, one whole line per `write(2)`, under one lock.
enum StandardError {
    private static let lock = NSLock()

    static func writeLine(_ line: String) {
        var bytes = Array(line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        lock.withLock {
            bytes.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = Foundation.write(2, buffer.baseAddress!.advanced(by: offset), buffer.count - offset)
                    if written > 0 {
                        offset += written
                    } else if written < 0 && errno == EINTR {
                        continue
                    } else {
                        return // stderr closed or full: a log line is not worth a crash
                    }
                }
            }
        }
    }
}

/// The wall clock of a log line's timestamp (the handler's, outside the graph).
enum WallTime {
    /// Nanoseconds since the Unix epoch.
    static func now() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
    }
}
