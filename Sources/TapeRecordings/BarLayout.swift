import TapeCore
import TapeSources

// Bar files as vendors and platforms write them: which column is what, the separator, the time
// format, whether a row's time is its bar's open or close, and the bar length. `BarLayoutDetector`
// decides all of it once per input from the first line and a sample of rows (pure: bytes in, layout
// out); `BarRowDecoder` then reads every row with that layout, without allocating. See docs/formats.md.

/// Which edge of its bar a row's time marks (`--bar-time`).
public enum BarTimeAnchor: String, Sendable, CaseIterable {
    /// The bar's open (start): the event time is the row time plus the bar length. The default.
    case open
    /// The bar's close (end): the event time is the row time.
    case close
}

/// What a column of a bar file holds (the keys of `--columns`).
public enum BarColumnRole: String, Sendable, CaseIterable {
    /// The date and time in one column, or the time of day when `date` is a column of its own.
    case time
    /// The date, when the time of day is in a `time` column of its own (or alone: daily bars).
    case date
    case open, high, low, close, volume
    /// The instrument of each row (several symbols in one file).
    case symbol
}

/// A column named in `--columns`: by its header name (any case) or by its number, counted from 1.
public enum BarColumnReference: Equatable, Sendable, CustomStringConvertible {
    case name(String)
    case number(Int)

    public var description: String {
        switch self {
        case .name(let name): return name
        case .number(let number): return String(number)
        }
    }
}

/// A bar option that cannot be used (a usage error: exit 64).
public struct BarOptionError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The bar-file choices of a run: `--bar-time`, `--bar-length`, `--columns`. Whatever is not given is
/// detected (or defaulted) per input, and stated.
public struct BarOptions: Equatable, Sendable {
    /// nil: `open`, the default.
    public var anchor: BarTimeAnchor?
    /// nil: detected from the spacing of the rows.
    public var lengthNanos: Nanos?
    /// Columns named by the user; the others are found by their usual names.
    public var columns: [BarColumnRole: BarColumnReference]

    public init(anchor: BarTimeAnchor? = nil, lengthNanos: Nanos? = nil,
                columns: [BarColumnRole: BarColumnReference] = [:]) {
        self.anchor = anchor
        self.lengthNanos = lengthNanos
        self.columns = columns
    }

    /// The largest column number `--columns` takes.
    public static let columnNumberMax = 4096

    /// `open` or `close`.
    public static func parseAnchor(_ text: String) throws -> BarTimeAnchor {
        guard let anchor = BarTimeAnchor(rawValue: text.lowercased()) else {
            throw BarOptionError("--bar-time '\(text)': expected open or close")
        }
        return anchor
    }

    /// `30s`, `1m`, `5m`, `1h`, `4h`, `1d`, `1w`: a positive whole number and a unit, up to 366 days.
    public static func parseLength(_ text: String) throws -> Nanos {
        let units: [(String, Int64)] = [("s", 1), ("m", 60), ("h", 3_600), ("d", 86_400), ("w", 604_800)]
        let expected = "expected a positive number and a unit s, m, h, d or w (30s, 1m, 5m, 1h, 1d), "
            + "at most 366 days"
        guard let unit = units.first(where: { text.hasSuffix($0.0) }),
              let value = Int64(text.dropLast(unit.0.count)), value > 0,
              value <= TimeUtil.durationNanosMax / TimeUtil.nsPerSecond / unit.1 else {
            throw BarOptionError("--bar-length '\(text)': \(expected)")
        }
        return value * unit.1 * TimeUtil.nsPerSecond
    }

    /// `time=Date,open=Open,…`: roles (time, date, open, high, low, close, volume, symbol) = a header
    /// name or a column number counted from 1.
    public static func parseColumns(_ text: String) throws -> [BarColumnRole: BarColumnReference] {
        let roles = BarColumnRole.allCases.map(\.rawValue).joined(separator: ", ")
        var columns: [BarColumnRole: BarColumnReference] = [:]
        for item in text.split(separator: ",", omittingEmptySubsequences: true) {
            let parts = item.split(separator: "=", maxSplits: 1).map {
                String($0).trimmingCharacters(in: " ")
            }
            guard parts.count == 2, !parts[1].isEmpty else {
                throw BarOptionError("--columns '\(text)': '\(item)' is not ROLE=COLUMN (roles: \(roles))")
            }
            guard let role = BarColumnRole(rawValue: parts[0].lowercased()) else {
                throw BarOptionError("--columns '\(text)': unknown role '\(parts[0])' (roles: \(roles))")
            }
            guard columns[role] == nil else { throw BarOptionError("--columns '\(text)': \(role) given twice") }
            if parts[1].allSatisfy(\.isNumber) {
                guard let number = Int(parts[1]), number >= 1, number <= columnNumberMax else {
                    throw BarOptionError("--columns '\(text)': \(role)=\(parts[1]): columns are counted from 1")
                }
                columns[role] = .number(number)
            } else {
                columns[role] = .name(parts[1])
            }
        }
        guard !columns.isEmpty else {
            throw BarOptionError("--columns '\(text)': give ROLE=COLUMN pairs (roles: \(roles))")
        }
        return columns
    }

    /// `1d`, `4h`, `5m`, `30s`, `250ms`: the largest unit that divides the length.
    public static func lengthText(_ nanos: Nanos) -> String {
        let units: [(String, Int64)] = [("d", 86_400_000_000_000), ("h", 3_600_000_000_000), ("m", 60_000_000_000),
                                        ("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000)]
        for (name, size) in units where nanos % size == 0 { return "\(nanos / size)\(name)" }
        return "\(nanos)ns"
    }
}

/// A bar file's layout: everything `BarRowDecoder` needs to read its rows, decided once per input.
public struct BarLayout: Equatable, Sendable {
    /// How the times are written.
    public enum TimeFormat: Equatable, Sendable {
        /// Integer time since the epoch; `unitNanos` ns per unit (s, ms, µs or ns, from the magnitude).
        case epoch(unitNanos: Int64)
        /// Calendar text; `shape` as the first row writes it (`YYYY-MM-DD HH:MM:SS.ffffff`); `isoDate`
        /// when the date is `YYYY-MM-DD` (read by `TimeUtil.parseDateTime` first, as Tape always has).
        case calendar(shape: String, isoDate: Bool)
        /// No row to tell (a file with a header and no rows).
        case unknown
    }

    /// Where the bar length comes from.
    public enum LengthSource: String, Sendable {
        /// `--bar-length`.
        case option
        /// The most frequent gap between consecutive rows of a symbol in the sample.
        case detected
        /// One minute: too few rows agreed to tell.
        case `default`
    }

    /// `,`, `;` or tab.
    public var separator: UInt8
    /// False when the first line is already a row (MetaTrader and HistData exports have no header).
    public var hasHeader: Bool
    /// Fields in every row (the header's count, or the first row's).
    public var fieldCount: Int
    /// Each column's name as the header writes it, or `column N` (from 1) without a header.
    public var names: [String]
    /// The column of the date and time (or of the date when `timeOfDay` is set).
    public var time: Int
    /// The column of the time of day when the date has a column of its own.
    public var timeOfDay: Int?
    public var open: Int
    public var high: Int
    public var low: Int
    public var close: Int
    public var volume: Int?
    public var symbol: Int?
    /// The roles the user named in `--columns` (the others were found by name or position).
    public var givenRoles: Set<BarColumnRole> = []
    public var timeFormat: TimeFormat
    public var anchor: BarTimeAnchor
    public var anchorGiven: Bool
    public var lengthNanos: Nanos
    public var lengthSource: LengthSource
    /// How the length was decided: `60 of 61 gaps in 62 rows` (detected), or why not (default).
    public var lengthEvidence: String

    /// The columns used, by role, in role order.
    public var columnsByRole: [(BarColumnRole, Int)] {
        var columns: [(BarColumnRole, Int)] = []
        if let timeOfDay { columns += [(.date, time), (.time, timeOfDay)] } else { columns.append((.time, time)) }
        columns += [(.open, open), (.high, high), (.low, low), (.close, close)]
        if let volume { columns.append((.volume, volume)) }
        if let symbol { columns.append((.symbol, symbol)) }
        return columns
    }

    var separatorName: String { BarLayout.name(ofSeparator: separator) }

    /// `,`, `;` or `tab`.
    static func name(ofSeparator separator: UInt8) -> String {
        separator == 0x09 ? "tab" : String(UnicodeScalar(separator))
    }

    /// The time format as stated: the shape, or `epoch ms`.
    var timeFormatText: String {
        switch timeFormat {
        case .epoch(let unit): return "epoch " + BarLayout.epochUnitName(unit)
        case .calendar(let shape, _): return shape
        case .unknown: return "unknown (no rows)"
        }
    }

    /// `UTC` unless the times carry their own offset.
    var timeZoneText: String {
        guard case .calendar(let shape, _) = timeFormat else { return "UTC" }
        // The zone follows the time: `…SSZ`, `…SS+HH:MM`, `…SS-HHMM`, `… UTC`.
        let time = shape.split(separator: " ").last ?? ""
        let zoned = time.hasSuffix("Z") || time == "UTC" || time == "GMT" || time.contains("+") || time.contains("-HH")
        return zoned ? "as written in each time" : "UTC"
    }

    static func epochUnitName(_ unitNanos: Int64) -> String {
        switch unitNanos {
        case 1_000_000_000: return "s"
        case 1_000_000: return "ms"
        case 1_000: return "us"
        default: return "ns"
        }
    }

    /// The decisions as summary.json states them (`inputs[].layout`); `symbol` names the instrument
    /// when no column does, and `symbolSource` where it came from.
    public func statement(symbol fixedSymbol: String?, symbolSource: String) -> InputLayout {
        var columns: [(String, JSONValue)] = []
        for (role, index) in columnsByRole { columns.append((role.rawValue, .string(names[index]))) }
        let given = BarColumnRole.allCases.filter { givenRoles.contains($0) }
        var fields: [(String, JSONValue)] = [
            ("header", .bool(hasHeader)),
            ("separator", .string(separatorName)),
            ("columns", .object(columns)),
            ("columns_given", .array(given.map { .string($0.rawValue) })),
            ("time_format", .string(timeFormatText)),
        ]
        if case .epoch(let unit) = timeFormat { fields.append(("epoch_unit", .string(BarLayout.epochUnitName(unit)))) }
        fields += [
            ("time_zone", .string(timeZoneText)),
            ("bar_time", .string(anchor.rawValue)),
            ("bar_time_source", .string(anchorGiven ? "option" : "default")),
            ("bar_length", .string(BarOptions.lengthText(lengthNanos))),
            ("bar_length_source", .string(lengthSource.rawValue)),
        ]
        if lengthSource != .option { fields.append(("bar_length_evidence", .string(lengthEvidence))) }
        fields.append(("symbol", fixedSymbol.map { .string($0) } ?? .null))
        fields.append(("symbol_source", .string(symbolSource)))

        var text = "bars: " + (hasHeader ? "header" : "no header") + ", separator '\(separatorName)', columns "
        text += columnsByRole.map { "\($0.0.rawValue)=\(names[$0.1])" }.joined(separator: " ")
        if !given.isEmpty { text += " (--columns: " + given.map(\.rawValue).joined(separator: ",") + ")" }
        text += "; time \(timeFormatText) (\(timeZoneText))"
        text += "; bar time \(anchor.rawValue) (\(anchorGiven ? "--bar-time" : "default"))"
        text += "; bar length \(BarOptions.lengthText(lengthNanos)) ("
            + (lengthSource == .option ? "--bar-length" : "\(lengthSource.rawValue): \(lengthEvidence)") + ")"
        text += "; symbol " + (fixedSymbol.map { "\($0) (\(symbolSource))" } ?? "from column \(symbolSource)")
        return InputLayout(summary: .object(fields), text: text, barLengthNanos: lengthNanos)
    }
}

/// A bar file whose layout cannot be told: the header (or first line) seen and what was expected.
public struct BarLayoutError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Decides a bar file's layout from its first non-empty line and the lines after it. Pure: the same
/// bytes and options give the same layout.
///
///     let layout = try BarLayoutDetector.detect(firstLine: Array("time;o;h;l;c\n".utf8.dropLast()),
///                                               sample: rows, options: BarOptions())
///     // layout.separator == ";", layout.open == 1, layout.lengthSource == .detected …
public enum BarLayoutDetector {
    /// Rows read before the first event to decide the time format and the bar length.
    public static let sampleLinesMax = 1024
    /// Gaps that must agree before a bar length counts as detected.
    public static let agreeingGapsMin = 2

    /// Names of each role, normalized (lower case, `_` for spaces and dashes, `<>` dropped), in order of
    /// preference. `date` and `time` together are a date column and a time-of-day column.
    static let timeNames = ["timestamp", "timestamp_utc", "datetime", "date_time", "ts_event", "open_time"]
    static let lateTimeNames = ["ts", "t"]
    static let roleNames: [BarColumnRole: [String]] = [
        .open: ["open", "o"], .high: ["high", "h"], .low: ["low", "l"], .close: ["close", "c"],
        .volume: ["volume", "vol", "v", "tick_volume", "tickvol"], .symbol: ["symbol", "ticker"],
    ]

    /// What a bar file needs, for messages.
    public static let expected = "a time column (timestamp, timestamp_utc, time, datetime, date [+ time], "
        + "ts_event, open_time) and open, high, low, close (or o, h, l, c), optionally volume (v) and symbol "
        + "(ticker); any case and order, separated by ',', ';' or tab; or name them with "
        + "--columns time=…,open=…,high=…,low=…,close=…"

    /// The layout of a bar file whose first non-empty line is `firstLine` (BOM and line end removed),
    /// followed by `sample` (the next lines, empty ones included).
    public static func detect(firstLine: [UInt8], sample: [[UInt8]], options: BarOptions) throws -> BarLayout {
        let separator = self.separator(of: firstLine)
        guard let first = fields(firstLine, separator: separator) else {
            throw BarLayoutError("unterminated quote in the first line \(quoted(firstLine))")
        }
        var rows: [[String]] = []
        for line in sample where !line.isEmpty {
            if let row = fields(line, separator: separator) { rows.append(row) }
        }
        let headerless = looksLikeRow(first) || isRow(first, byColumns: options.columns)
        var layout: BarLayout
        if headerless {
            layout = try positionalLayout(first, separator: separator, options: options)
            rows.insert(first, at: 0)
        } else {
            layout = try namedLayout(first, separator: separator, options: options)
        }
        rows = rows.filter { $0.count == layout.fieldCount }
        layout.timeFormat = try timeFormat(of: rows, layout: layout)
        layout.anchor = options.anchor ?? .open
        layout.anchorGiven = options.anchor != nil
        if let length = options.lengthNanos {
            layout.lengthNanos = length
            layout.lengthSource = .option
            layout.lengthEvidence = ""
        } else {
            let (length, evidence) = detectLength(rows, layout: layout)
            layout.lengthNanos = length ?? TimeUtil.nsPerMinute
            layout.lengthSource = length == nil ? .default : .detected
            layout.lengthEvidence = evidence
        }
        return layout
    }

    /// Whether a first line belongs to a bar file: a header naming open, high, low and close (by any
    /// usual name), or a row without a header (a time, then four numbers). For `FormatDetector`.
    public static func looksLikeBarFile(firstLine: [UInt8]) -> Bool {
        guard let first = fields(firstLine, separator: separator(of: firstLine)) else { return false }
        if looksLikeRow(first) { return true }
        let names = first.map(normalizedName)
        return [BarColumnRole.open, .high, .low, .close].allSatisfy { role in
            roleNames[role]!.contains { names.contains($0) }
        }
    }

    /// The separator of a first line: whichever of `,` `;` tab occurs most outside quotes (a comma on a tie).
    public static func separator(of line: [UInt8]) -> UInt8 {
        var counts: [UInt8: Int] = [UInt8(ascii: ","): 0, UInt8(ascii: ";"): 0, 0x09: 0]
        var quoted = false
        for byte in line {
            if byte == UInt8(ascii: "\"") {
                quoted.toggle()
            } else if !quoted, counts[byte] != nil {
                counts[byte]! += 1
            }
        }
        var best = UInt8(ascii: ",")
        for candidate in [UInt8(ascii: ";"), 0x09] where counts[candidate]! > counts[best]! { best = candidate }
        return best
    }

    /// A header name as matched: trimmed, without `<…>` (MetaTrader), lower case, `_` for spaces,
    /// dashes and dots.
    public static func normalizedName(_ name: String) -> String {
        var text = name.trimmingCharacters(in: " \"\u{FEFF}")
        if text.hasPrefix("<") && text.hasSuffix(">") && text.count >= 2 { text = String(text.dropFirst().dropLast()) }
        return String(text.lowercased().map { $0 == " " || $0 == "-" || $0 == "." ? "_" : $0 })
    }

    // MARK: columns

    /// A header: every role by `--columns` or by its usual names.
    static func namedLayout(_ header: [String], separator: UInt8, options: BarOptions) throws -> BarLayout {
        let names = header.map { $0.trimmingCharacters(in: " \u{FEFF}") }
        let normalized = header.map(normalizedName)
        let seen = "header seen: \(quoted(names.joined(separator: String(UnicodeScalar(separator)))))"
            + " (separator '\(BarLayout.name(ofSeparator: separator))')"
        var index: [BarColumnRole: Int] = [:]
        for (role, reference) in options.columns {
            switch reference {
            case .number(let number):
                guard number <= header.count else {
                    throw BarLayoutError("--columns \(role)=\(number): the header has \(header.count) columns; \(seen)")
                }
                index[role] = number - 1
            case .name(let name):
                guard let found = normalized.firstIndex(of: normalizedName(name)) else {
                    throw BarLayoutError("--columns \(role)=\(name): no such column; \(seen)")
                }
                index[role] = found
            }
        }
        func find(_ candidates: [String]) -> Int? {
            for candidate in candidates { if let found = normalized.firstIndex(of: candidate) { return found } }
            return nil
        }
        if index[.time] == nil && index[.date] == nil {
            if let found = find(timeNames) {
                index[.time] = found
            } else if let date = find(["date"]), let time = find(["time"]) {
                index[.date] = date
                index[.time] = time
            } else if let found = find(["time", "date"] + lateTimeNames) {
                index[.time] = found
            }
        }
        for role in [BarColumnRole.open, .high, .low, .close, .volume, .symbol] where index[role] == nil {
            let taken = Set(index.values)
            if let found = roleNames[role]!.lazy.compactMap({ normalized.firstIndex(of: $0) })
                .first(where: { !taken.contains($0) }) {
                index[role] = found
            }
        }
        var missing: [String] = []
        if index[.time] == nil && index[.date] == nil { missing.append("a time column") }
        for role in [BarColumnRole.open, .high, .low, .close] where index[role] == nil { missing.append(role.rawValue) }
        guard missing.isEmpty else {
            throw BarLayoutError("\(seen); missing \(missing.joined(separator: ", ")); expected \(expected)")
        }
        return try layout(index, names: names, separator: separator, hasHeader: true, given: options)
    }

    /// No header: MetaTrader (`date,time,open,high,low,close,volume`), HistData and Binance klines
    /// (`time,open,high,low,close[,volume,…]`), by position; `--columns` numbers win.
    static func positionalLayout(_ row: [String], separator: UInt8, options: BarOptions) throws -> BarLayout {
        var index: [BarColumnRole: Int] = [:]
        for (role, reference) in options.columns {
            guard case .number(let number) = reference else {
                let firstLine = quoted(row.joined(separator: ","))
                throw BarLayoutError("--columns \(role)=\(reference): this file has no header (its first line "
                                     + "\(firstLine) is a row): name columns by number, from 1")
            }
            guard number <= row.count else {
                throw BarLayoutError("--columns \(role)=\(number): the rows have \(row.count) columns")
            }
            index[role] = number - 1
        }
        let dateAndTime = row.count >= 6 && isDate(row[0]) && isTimeOfDay(row[1])
        var defaults: [(BarColumnRole, Int)] = dateAndTime ? [(.date, 0), (.time, 1)] : [(.time, 0)]
        let firstPrice = dateAndTime ? 2 : 1
        defaults += [(.open, firstPrice), (.high, firstPrice + 1), (.low, firstPrice + 2), (.close, firstPrice + 3)]
        if row.count > firstPrice + 4 { defaults.append((.volume, firstPrice + 4)) }
        let timeGiven = index[.time] != nil || index[.date] != nil
        for (role, position) in defaults where index[role] == nil && !Set(index.values).contains(position) {
            if (role == .time || role == .date) && timeGiven { continue }
            index[role] = position
        }
        let names = (1...row.count).map { "column \($0)" }
        return try layout(index, names: names, separator: separator, hasHeader: false, given: options)
    }

    /// The layout from the columns found (times and length still to decide).
    static func layout(_ index: [BarColumnRole: Int], names: [String], separator: UInt8, hasHeader: Bool,
                       given options: BarOptions) throws -> BarLayout {
        var byColumn: [Int: BarColumnRole] = [:]
        for role in BarColumnRole.allCases {
            guard let column = index[role] else { continue }
            if let other = byColumn[column] {
                throw BarLayoutError("\(other) and \(role) are both column \(column + 1) ('\(names[column])')")
            }
            byColumn[column] = role
        }
        guard let timeColumn = index[.date] ?? index[.time], let open = index[.open], let high = index[.high],
              let low = index[.low], let close = index[.close] else {
            let missing = [BarColumnRole.time, .open, .high, .low, .close].filter {
                $0 == .time ? index[.time] == nil && index[.date] == nil : index[$0] == nil
            }
            throw BarLayoutError("missing \(missing.map(\.rawValue).joined(separator: ", ")); expected \(expected)")
        }
        return BarLayout(separator: separator, hasHeader: hasHeader, fieldCount: names.count, names: names,
                         time: timeColumn, timeOfDay: index[.date] != nil ? index[.time] : nil,
                         open: open, high: high, low: low, close: close, volume: index[.volume],
                         symbol: index[.symbol], givenRoles: Set(options.columns.keys), timeFormat: .unknown,
                         anchor: .open, anchorGiven: false, lengthNanos: TimeUtil.nsPerMinute,
                         lengthSource: .default, lengthEvidence: "")
    }

    // MARK: times

    /// The time format of the first sampled row whose time reads; a sample whose rows all fail is an
    /// error naming the first value (a format Tape does not read), an empty sample is `.unknown`.
    static func timeFormat(of rows: [[String]], layout: BarLayout) throws -> BarLayout.TimeFormat {
        for row in rows {
            if let format = timeFormat(of: row, layout: layout) { return format }
        }
        guard let first = rows.first else { return .unknown }
        let value = layout.timeOfDay.map { "\(first[layout.time])' + '\(first[$0])" } ?? first[layout.time]
        let column = layout.timeOfDay.map { "columns '\(layout.names[layout.time])' + '\(layout.names[$0])'" }
            ?? "column '\(layout.names[layout.time])'"
        throw BarLayoutError("no time in the first \(rows.count) rows reads: \(column) holds '\(value)'; expected "
                             + "YYYY-MM-DD[ T]HH:MM[:SS[.f]][zone], YYYYMMDD HHMMSS, YYYY.MM.DD[ HH:MM], a date and a "
                             + "time column, or integer epoch s/ms/us/ns")
    }

    static func timeFormat(of row: [String], layout: BarLayout) -> BarLayout.TimeFormat? {
        let text = row[layout.time].trimmingCharacters(in: " ")
        if let timeOfDay = layout.timeOfDay {
            guard let shape = BarTimeText.shape(date: text, time: row[timeOfDay].trimmingCharacters(in: " ")) else {
                return nil
            }
            return .calendar(shape: shape, isoDate: false)
        }
        if let integer = Numbers.parseInt(text) {
            let digits = text.filter(\.isNumber).count
            if (digits == 8 || digits == 14), let shape = BarTimeText.shape(text) {
                return .calendar(shape: shape, isoDate: false)
            }
            return .epoch(unitNanos: BarRowDecoder.epochUnitNanos(integer))
        }
        guard let shape = BarTimeText.shape(text) else { return nil }
        let isoDate = text.utf8.count >= 5 && Array(text.utf8)[4] == UInt8(ascii: "-")
        return .calendar(shape: shape, isoDate: isoDate)
    }

    /// The time of a sampled row in ns (nil when it does not read or is outside the accepted range).
    static func time(of row: [String], layout: BarLayout) -> Nanos? {
        let text = row[layout.time].trimmingCharacters(in: " ")
        var bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return nil }
        if let timeOfDay = layout.timeOfDay {
            var timeBytes = Array(row[timeOfDay].trimmingCharacters(in: " ").utf8)
            guard !timeBytes.isEmpty else { return nil }
            let instant = bytes.withUnsafeMutableBufferPointer { date in
                timeBytes.withUnsafeMutableBufferPointer { time in
                    BarTimeText.parse(date: date.baseAddress!, date.count, time: time.baseAddress!, time.count)
                }
            }
            return instant.flatMap(BarTimeText.accepted)
        }
        if case .epoch(let unit) = layout.timeFormat {
            return Numbers.parseInt(text).flatMap { TimeUtil.acceptedNanos($0, unitNanos: unit) }
        }
        return bytes.withUnsafeMutableBufferPointer { BarTimeText.parse($0.baseAddress!, $0.count) }
            .flatMap(BarTimeText.accepted)
    }

    /// The bar length: the most frequent positive gap between consecutive rows of one symbol (the
    /// shorter on a tie), when at least `agreeingGapsMin` gaps agree; nil otherwise. With the evidence.
    /// Gaps longer than `TimeUtil.durationNanosMax` (366 days) are no bar length and are not counted.
    static func detectLength(_ rows: [[String]], layout: BarLayout) -> (Nanos?, String) {
        var last: [String: Nanos] = [:]
        var gaps: [Nanos: Int] = [:]
        var gapCount = 0
        for row in rows {
            guard let time = time(of: row, layout: layout) else { continue }
            let key = layout.symbol.map { row[$0] } ?? ""
            if let previous = last[key], time > previous, time - previous <= TimeUtil.durationNanosMax {
                gaps[time - previous, default: 0] += 1
                gapCount += 1
            }
            last[key] = time
        }
        let rowsText = "\(rows.count) row\(rows.count == 1 ? "" : "s")"
        guard let (gap, count) = gaps.max(by: { $0.value != $1.value ? $0.value < $1.value : $0.key > $1.key }),
              count >= agreeingGapsMin else {
            return (nil, "fewer than \(agreeingGapsMin) equal gaps between times in the first \(rowsText); "
                    + "1m assumed, give --bar-length")
        }
        return (gap, "\(count) of \(gapCount) gaps in the first \(rowsText)")
    }

    // MARK: helpers

    /// Whether a first line is a row rather than a header: a time (or a date and a time of day), then
    /// four numbers.
    static func looksLikeRow(_ fields: [String]) -> Bool {
        guard fields.count >= 5 else { return false }
        let values = fields.map { $0.trimmingCharacters(in: " ") }
        func numbers(from start: Int) -> Bool {
            values.count >= start + 4 && values[start..<(start + 4)].allSatisfy { Numbers.parseDouble($0) != nil }
        }
        if values.count >= 6 && isDate(values[0]) && isTimeOfDay(values[1]) && numbers(from: 2) { return true }
        return isTime(values[0]) && numbers(from: 1)
    }

    /// Whether a first line is a row by the column numbers of `--columns`: a time where it names the
    /// time (or a date and a time of day), numbers where it names the prices.
    static func isRow(_ fields: [String], byColumns columns: [BarColumnRole: BarColumnReference]) -> Bool {
        func value(_ role: BarColumnRole) -> String? {
            guard case .number(let number)? = columns[role], number <= fields.count else { return nil }
            return fields[number - 1].trimmingCharacters(in: " ")
        }
        let prices = [BarColumnRole.open, .high, .low, .close].map(value)
        guard prices.allSatisfy({ $0.map { Numbers.parseDouble($0) != nil } ?? false }) else { return false }
        if let date = value(.date) {
            if let time = value(.time) { return BarTimeText.shape(date: date, time: time) != nil }
            return isTime(date)
        }
        return value(.time).map(isTime) ?? false
    }

    /// A date alone (`2012.02.01`, `20120201`).
    static func isDate(_ text: String) -> Bool {
        var bytes = Array(text.utf8)
        guard bytes.count >= 8 else { return false }
        return bytes.withUnsafeMutableBufferPointer { buffer in
            BarTimeText.date(buffer.baseAddress!, buffer.count).map { $0.end == buffer.count } ?? false
        }
    }

    /// A time of day alone (`00:00`, `000000`).
    static func isTimeOfDay(_ text: String) -> Bool {
        var bytes = Array(text.utf8)
        guard bytes.count >= 4 else { return false }
        return bytes.withUnsafeMutableBufferPointer { BarTimeText.timeOfDay($0.baseAddress!, $0.count) != nil }
    }

    /// A time in one field: calendar text, or an integer epoch time from 1973-03 (≥ 1e8 s) inside the range.
    static func isTime(_ text: String) -> Bool {
        if let integer = Numbers.parseInt(text) {
            return integer >= 100_000_000
                && TimeUtil.acceptedNanos(integer, unitNanos: BarRowDecoder.epochUnitNanos(integer)) != nil
        }
        return BarTimeText.shape(text) != nil
    }

    static func fields(_ line: [UInt8], separator: UInt8) -> [String]? {
        var row = CSVRow()
        return line.withUnsafeBytes { bytes -> [String]? in
            guard row.split(bytes, separator: separator) else { return nil }
            return (0..<row.count).map { row.string($0) }
        }
    }

    static func quoted(_ line: [UInt8]) -> String { quoted(String(decoding: line.prefix(200), as: UTF8.self)) }

    static func quoted(_ text: String) -> String {
        "'" + (text.count > 200 ? String(text.prefix(200)) + "…" : text) + "'"
    }
}
