/// InfluxDB 1.x line protocol (https://docs.influxdata.com/influxdb/v1.6/write_protocols/line_protocol_reference/):
///
///     <measurement>[,<tag_key>=<tag_value>...] <field_key>=<field_value>[,...] [<timestamp ns>]
///
/// Escaping, with a backslash, as the reference says:
/// - measurement: commas and spaces;
/// - tag keys, tag values and field keys: commas, equals signs and spaces;
/// - string field values: double quotes and backslashes (and the value is quoted).
///
/// What the protocol cannot carry is changed, never sent broken (one bad line fails its whole batch):
/// - a line break (or carriage return) in a name or a value becomes a space (then escaped);
/// - a name or tag value ending in a backslash would escape the separator after it: that last
///   backslash becomes `_` (InfluxDB 1.x keeps other backslashes as they are, there is no `\\`);
/// - a tag with an empty key or value is left out (the reference: "omit the tag");
/// - a field with an empty key, or a float that is NaN or infinite, is left out;
/// - a point with an empty measurement, a measurement starting with `#` (a comment line), or no field
///   left is not written (`append` returns false).
///
/// Floats are written in Swift's shortest round-trip form without a trailing `.0` (`82`, `0.5`,
/// `1e-05`), integers with the `i` suffix, booleans `true`/`false`, the time in nanoseconds.
public enum LineProtocol {
    /// Appends the point's line, without the line break, to `buffer`. Returns false (and appends
    /// nothing) when the point cannot be written: empty or `#` measurement, or no writable field.
    @discardableResult
    public static func append(_ point: MetricPoint, to buffer: inout [UInt8]) -> Bool {
        guard !point.measurement.isEmpty, point.measurement.utf8.first != UInt8(ascii: "#"),
              point.fields.contains(where: { !$0.key.isEmpty && isWritable($0.value) }) else { return false }
        let start = buffer.count
        appendEscaped(point.measurement, escaping: measurementSpecials, to: &buffer)
        for tag in point.tags where !tag.key.isEmpty && !tag.value.isEmpty {
            buffer.append(UInt8(ascii: ","))
            appendEscaped(tag.key, escaping: keySpecials, to: &buffer)
            buffer.append(UInt8(ascii: "="))
            appendEscaped(tag.value, escaping: keySpecials, to: &buffer)
        }
        var separator = UInt8(ascii: " ")
        for field in point.fields where !field.key.isEmpty && isWritable(field.value) {
            buffer.append(separator)
            separator = UInt8(ascii: ",")
            appendEscaped(field.key, escaping: keySpecials, to: &buffer)
            buffer.append(UInt8(ascii: "="))
            appendValue(field.value, to: &buffer)
        }
        if let time = point.time {
            buffer.append(UInt8(ascii: " "))
            buffer.append(contentsOf: String(time).utf8)
        }
        assert(buffer.count > start && !buffer[start...].contains(0x0A), "one line, no line break")
        return true
    }

    /// The point's line (no line break), or nil when it cannot be written.
    public static func line(_ point: MetricPoint) -> String? {
        var buffer: [UInt8] = []
        guard append(point, to: &buffer) else { return nil }
        return String(decoding: buffer, as: UTF8.self)
    }

    /// A measurement name as written (commas and spaces escaped).
    public static func escapeMeasurement(_ text: String) -> String { escaped(text, measurementSpecials) }

    /// A tag key, tag value or field key as written (commas, equals signs and spaces escaped).
    public static func escapeKey(_ text: String) -> String { escaped(text, keySpecials) }

    /// A string field value as written, quotes included (`"` and `\` escaped).
    public static func quoteString(_ text: String) -> String {
        var buffer: [UInt8] = []
        appendValue(.string(text), to: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }

    // MARK: -

    private static let measurementSpecials: [UInt8] = [UInt8(ascii: ","), UInt8(ascii: " ")]
    private static let keySpecials: [UInt8] = [UInt8(ascii: ","), UInt8(ascii: "="), UInt8(ascii: " ")]
    private static let backslash = UInt8(ascii: "\\")

    private static func isWritable(_ value: MetricValue) -> Bool {
        if case .float(let number) = value { return number.isFinite }
        return true
    }

    private static func escaped(_ text: String, _ specials: [UInt8]) -> String {
        var buffer: [UInt8] = []
        appendEscaped(text, escaping: specials, to: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }

    private static func appendEscaped(_ text: String, escaping specials: [UInt8], to buffer: inout [UInt8]) {
        let bytes = text.utf8
        var index = bytes.startIndex
        while index != bytes.endIndex {
            var byte = bytes[index]
            index = bytes.index(after: index)
            if byte == 0x0A || byte == 0x0D { byte = UInt8(ascii: " ") }
            if byte == backslash && index == bytes.endIndex { byte = UInt8(ascii: "_") }
            if specials.contains(byte) { buffer.append(backslash) }
            buffer.append(byte)
        }
    }

    private static func appendValue(_ value: MetricValue, to buffer: inout [UInt8]) {
        switch value {
        case .float(let number):
            assert(number.isFinite, "non-finite floats are left out before this")
            // Shortest round-trip form, without a trailing `.0` (`82`, as the reference writes it: a
            // number without `i` is a float).
            let text = number.description
            buffer.append(contentsOf: (text.hasSuffix(".0") ? text.dropLast(2) : Substring(text)).utf8)
        case .integer(let number):
            buffer.append(contentsOf: String(number).utf8)
            buffer.append(UInt8(ascii: "i"))
        case .boolean(let flag):
            buffer.append(contentsOf: (flag ? "true" : "false").utf8)
        case .string(let text):
            buffer.append(UInt8(ascii: "\""))
            for var byte in text.utf8 {
                if byte == 0x0A || byte == 0x0D { byte = UInt8(ascii: " ") }
                if byte == UInt8(ascii: "\"") || byte == backslash { buffer.append(backslash) }
                buffer.append(byte)
            }
            buffer.append(UInt8(ascii: "\""))
        }
    }
}
