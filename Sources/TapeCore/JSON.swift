/// Tape's one JSON writer: a small ordered JSON value for the files Tape writes (`summary.json`,
/// `model.meta.json`, `training.json`). Objects keep their keys in insertion order and numbers are
/// printed by `Numbers.format` (shortest round-trip; non-finite → `null`), so the text is a pure
/// function of the value.
///
///     let meta: JSONValue = .object([("format", .string("tape-model-meta/1")), ("rows", .int(45_031))])
///     try FS.writeText(path, meta.render() + "\n")
///     let embedded = try JSONEncoder().encode(meta)   // also Encodable, keys in the same order
public indirect enum JSONValue: Sendable, Equatable {
    case string(String)
    case int(Int64)
    case number(Double)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([(String, JSONValue)])

    public func render(indent: Int = 0) -> String {
        let pad = String(repeating: "  ", count: indent + 1)
        let close = String(repeating: "  ", count: indent)
        switch self {
        case .string(let s): return JSONValue.quote(s)
        case .int(let i): return String(i)
        case .number(let d): return d.isFinite ? Numbers.format(d) : "null"
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        case .array(let a):
            if a.isEmpty { return "[]" }
            return "[\n" + a.map { pad + $0.render(indent: indent + 1) }.joined(separator: ",\n") + "\n" + close + "]"
        case .object(let o):
            if o.isEmpty { return "{}" }
            let members = o.map { pad + JSONValue.quote($0.0) + ": " + $0.1.render(indent: indent + 1) }
            return "{\n" + members.joined(separator: ",\n") + "\n" + close + "}"
        }
    }

    /// The same value on one line without spaces (`{"a":1,"b":[true,null]}`), for values that travel in
    /// messages (Redis members, pub/sub payloads). Scalars print exactly as in `render`.
    public func renderCompact() -> String {
        switch self {
        case .array(let elements):
            return "[" + elements.map { $0.renderCompact() }.joined(separator: ",") + "]"
        case .object(let members):
            return "{" + members.map { JSONValue.quote($0.0) + ":" + $0.1.renderCompact() }.joined(separator: ",") + "}"
        default:
            return render()
        }
    }

    public static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let h = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }

    /// `{"a": 1, ...}` from a dictionary, keys sorted (deterministic).
    public static func sortedObject(_ d: [String: Int]) -> JSONValue {
        .object(d.keys.sorted().map { ($0, .int(Int64(d[$0]!))) })
    }

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.string(let x), .string(let y)): return x == y
        case (.int(let x), .int(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y || (x.isNaN && y.isNaN)
        case (.bool(let x), .bool(let y)): return x == y
        case (.null, .null): return true
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }
}

extension JSONValue: Encodable {
    /// A key of an object, in the object's order.
    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Scalars as single values (a non-finite number as `null`, as `render` writes it), arrays as
    /// unkeyed containers, objects as keyed containers filled in the object's order.
    public func encode(to encoder: Encoder) throws {
        switch self {
        case .string(let s):
            var container = encoder.singleValueContainer()
            try container.encode(s)
        case .int(let i):
            var container = encoder.singleValueContainer()
            try container.encode(i)
        case .number(let d):
            var container = encoder.singleValueContainer()
            if d.isFinite { try container.encode(d) } else { try container.encodeNil() }
        case .bool(let b):
            var container = encoder.singleValueContainer()
            try container.encode(b)
        case .null:
            var container = encoder.singleValueContainer()
            try container.encodeNil()
        case .array(let elements):
            var container = encoder.unkeyedContainer()
            for element in elements { try container.encode(element) }
        case .object(let members):
            var container = encoder.container(keyedBy: Key.self)
            for (key, value) in members { try container.encode(value, forKey: Key(stringValue: key)) }
        }
    }
}

extension JSONValue: Decodable {
    /// Reads any JSON value. Objects come back with their keys sorted (JSON objects are unordered).
    public init(from decoder: Decoder) throws {
        if let container = try? decoder.container(keyedBy: Key.self) {
            var pairs: [(String, JSONValue)] = []
            for key in container.allKeys.sorted(by: { $0.stringValue < $1.stringValue }) {
                pairs.append((key.stringValue, try container.decode(JSONValue.self, forKey: key)))
            }
            self = .object(pairs)
            return
        }
        if var container = try? decoder.unkeyedContainer() {
            var values: [JSONValue] = []
            while !container.isAtEnd { values.append(try container.decode(JSONValue.self)) }
            self = .array(values)
            return
        }
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let flag = try? container.decode(Bool.self) { self = .bool(flag) }
        else if let integer = try? container.decode(Int64.self) { self = .int(integer) }
        else if let number = try? container.decode(Double.self) { self = .number(number) }
        else { self = .string(try container.decode(String.self)) }
    }
}
