import TapeCore

extension PipelineConfig {
    /// `sessions:` in the pipeline config: which trading calendar each symbol follows (docs/graph.md,
    /// "Trading sessions"). The default (every symbol on `crypto`, open every instant) changes nothing.
    ///
    ///     sessions:
    ///       default: crypto
    ///       symbols: {"fxcm:*": fx, "FXCM-GBPUSD": fx, "cme:ES*": cme}
    ///       holidays: {us_equities: [2024-12-25, 2025-01-01]}
    public struct Sessions: Sendable, Equatable {
        /// The calendar of a symbol that no entry of `symbols` matches.
        public var defaultCalendar: TradingCalendar.Kind = .crypto
        /// Symbol name patterns and their calendars, in file order (see `calendar(forSymbol:)`).
        public var symbols: [SymbolCalendar] = []
        /// Closed trading dates per calendar, as local days since 1970-01-01, ascending.
        public var holidays: [TradingCalendar.Kind: [Int]] = [:]

        public init() {}

        /// A symbol name (`fxcm:GBPUSD`) or a pattern where `*` stands for any run of characters
        /// (`fxcm:*`, `*GBPUSD`), and the calendar of the symbols it names.
        public struct SymbolCalendar: Sendable, Equatable {
            public var pattern: String
            public var calendar: TradingCalendar.Kind
            public init(pattern: String, calendar: TradingCalendar.Kind) {
                self.pattern = pattern
                self.calendar = calendar
            }
        }

        /// The most entries `symbols` may have, and the most holidays per calendar (limits on config size).
        public static let symbolPatternsMax = 10_000
        public static let holidaysMax = 10_000

        /// True when nothing differs from the defaults: every symbol on `crypto`.
        public var isDefault: Bool { self == Sessions() }

        /// The calendar of a symbol: an entry naming it exactly wins; else the first pattern (in file
        /// order) that matches it; else `defaultCalendar`.
        public func calendar(forSymbol name: String) -> TradingCalendar.Kind {
            if let exact = symbols.first(where: { $0.pattern == name }) { return exact.calendar }
            let nameBytes = Array(name.utf8)
            for entry in symbols where entry.pattern.contains("*") {
                if Self.matches(pattern: Array(entry.pattern.utf8), nameBytes) { return entry.calendar }
            }
            return defaultCalendar
        }

        /// Glob match with `*` only (any run of bytes, also none); every other byte matches itself.
        public static func matches(pattern: [UInt8], _ name: [UInt8]) -> Bool {
            let star = UInt8(ascii: "*")
            var patternIndex = 0
            var nameIndex = 0
            // The last `*` seen and the name position it was tried at (backtracking point).
            var starIndex = -1
            var starName = 0
            while nameIndex < name.count {
                if patternIndex < pattern.count && pattern[patternIndex] == star {
                    starIndex = patternIndex
                    starName = nameIndex
                    patternIndex += 1
                } else if patternIndex < pattern.count && pattern[patternIndex] == name[nameIndex] {
                    patternIndex += 1
                    nameIndex += 1
                } else if starIndex >= 0 {
                    starName += 1
                    nameIndex = starName
                    patternIndex = starIndex + 1
                } else {
                    return false
                }
            }
            while patternIndex < pattern.count && pattern[patternIndex] == star { patternIndex += 1 }
            return patternIndex == pattern.count
        }

        /// Every calendar kind the config can give a symbol.
        var kindsInUse: [TradingCalendar.Kind] {
            Array(Set([defaultCalendar] + symbols.map(\.calendar))).sorted()
        }

        /// Lines for `PipelineConfig.canonicalText`: none when the sessions are the defaults (so the
        /// config hash of every config without `sessions:` is what it was before sessions existed).
        var canonicalLines: String {
            if isDefault { return "" }
            var text = "sessions.default=\(defaultCalendar.rawValue)\n"
            // The pattern comes last on its line: it may hold any character but a control byte.
            for entry in symbols { text += "sessions.symbol=\(entry.calendar.rawValue) \(entry.pattern)\n" }
            for kind in holidays.keys.sorted() {
                let dates = holidays[kind]!.map(Self.dateText).joined(separator: ",")
                text += "sessions.holidays.\(kind.rawValue)=\(dates)\n"
            }
            return text
        }

        /// `2024-12-25` for local days since 1970-01-01.
        static func dateText(_ day: Int) -> String {
            let (year, month, dayOfMonth) = TimeUtil.civilFromDays(day)
            func twoDigits(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
            return "\(year)-\(twoDigits(month))-\(twoDigits(dayOfMonth))"
        }

        /// The calendar of `kind` with this config's holidays for it; nil when the tz database lacks its zone.
        public func makeCalendar(_ kind: TradingCalendar.Kind) -> TradingCalendar? {
            TradingCalendar(kind: kind, holidays: holidays[kind] ?? [])
        }
    }
}

/// The calendars of the symbols of one graph: each symbol's calendar is found once, by its name, and
/// kept by symbol id (cold: the first time a symbol's feed is checked).
struct SessionCalendars {
    let sessions: PipelineConfig.Sessions
    private(set) var calendars: [TradingCalendar] = []
    /// Indexed by `SymbolID`: an index into `calendars`, −1 = not looked up yet.
    private var calendarIndexBySymbol: [Int32] = []

    init(_ sessions: PipelineConfig.Sessions) {
        self.sessions = sessions
        for kind in sessions.kindsInUse {
            // `PipelineConfig.validate` refuses a config whose calendar zone is unknown.
            guard let calendar = sessions.makeCalendar(kind) else {
                preconditionFailure("calendar \(kind.rawValue): its time zone is not in the tz database")
            }
            calendars.append(calendar)
        }
        assert(!calendars.isEmpty)
    }

    /// The calendar of `symbol`, looked up by `name` the first time.
    mutating func calendar(for symbol: SymbolID, name: () -> String) -> TradingCalendar {
        let index = Int(symbol)
        if index >= calendarIndexBySymbol.count { growSlots(&calendarIndexBySymbol, to: symbol) { -1 } }
        if calendarIndexBySymbol[index] < 0 {
            let kind = sessions.calendar(forSymbol: name())
            guard let found = calendars.firstIndex(where: { $0.kind == kind }) else {
                preconditionFailure("calendar \(kind.rawValue) of symbol \(name()) was built with the graph")
            }
            calendarIndexBySymbol[index] = Int32(found)
        }
        return calendars[Int(calendarIndexBySymbol[index])]
    }
}
