import Logging
import TapeCore

/// One log event as one JSON object on one line (`--log-format json`), keys in a stable order:
///
/// ```
/// {"ts":"2026-11-26T07:10:00.123Z","level":"warning","label":"tape.store.postgres","message":"tape: postgres 127.0.0.1:55432/tape: down (…)","error":"…","peer":"127.0.0.1:55432/tape"}
/// ```
///
/// - `ts`: the handler's wall time, ISO-8601 UTC with milliseconds; `level`: swift-log's level name (`trace` …
///   `critical`); `label`: the logger's label (`tape.work`, `tape.feed`, …); `message`: the line the text format
///   writes, word for word.
/// - then the metadata, **flattened**, keys sorted: a nested dictionary becomes dotted keys (`a.b`); an
///   integer, a floating-point number or a Boolean given as such (`"\(offset)"` is a string, `.stringConvertible(offset)`
///   a number) stays a JSON number or Boolean; an array becomes an array of its elements' values; anything
///   else is its description as a string. A metadata key equal to one of the four above is written
///   `metadata.<key>` so that it never replaces them.
public enum JSONLogLine {
    public static let reservedKeys: Set<String> = ["ts", "level", "label", "message"]

    /// The line, without its newline. `time` is nanoseconds since the Unix epoch.
    public static func render(time: Int64, level: Logger.Level, label: String, message: String,
                              metadata: Logger.Metadata) -> String {
        var members: [(String, JSONValue)] = [
            ("ts", .string(timestamp(time))), ("level", .string(level.rawValue)), ("label", .string(label)),
            ("message", .string(message)),
        ]
        var flat: [(String, JSONValue)] = []
        for (key, value) in metadata { flatten(reservedKeys.contains(key) ? "metadata." + key : key, value, into: &flat) }
        flat.sort { $0.0 < $1.0 }
        members.append(contentsOf: flat)
        return JSONValue.object(members).renderCompact()
    }

    /// `2026-11-26T07:10:00.123Z`: milliseconds, UTC.
    public static func timestamp(_ nanoseconds: Int64) -> String {
        let milliseconds = nanoseconds - ((nanoseconds % 1_000_000) + 1_000_000) % 1_000_000
        let full = TimeUtil.iso(milliseconds)   // …:SS.123000000Z
        return String(full.dropLast(7)) + "Z"
    }

    private static func flatten(_ key: String, _ value: Logger.Metadata.Value, into members: inout [(String, JSONValue)]) {
        switch value {
        case .dictionary(let dictionary):
            for (inner, innerValue) in dictionary { flatten(key + "." + inner, innerValue, into: &members) }
        default:
            members.append((key, json(value)))
        }
    }

    private static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let text):
            return .string(text)
        case .stringConvertible(let convertible):
            switch convertible {
            case let number as Int: return .int(Int64(number))
            case let number as Int64: return .int(number)
            case let number as Int32: return .int(Int64(number))
            case let number as UInt32: return .int(Int64(number))
            case let number as Double: return number.isFinite ? .number(number) : .string("\(number)")
            case let flag as Bool: return .bool(flag)
            default: return .string(convertible.description)
            }
        case .array(let elements):
            return .array(elements.map(json))
        case .dictionary(let dictionary):
            return .object(dictionary.keys.sorted().map { ($0, json(dictionary[$0]!)) })
        }
    }
}
