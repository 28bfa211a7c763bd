import TapeCore
import Yams

/// A configuration problem: names the source (file) and the key path.
public struct ConfigError: Error, CustomStringConvertible {
    public var source: String
    public var key: String
    public var message: String
    public var description: String { "\(source): \(key.isEmpty ? "" : key + ": ")\(message)" }
    public init(source: String, key: String, message: String) {
        self.source = source; self.key = key; self.message = message
    }
}

/// The graph's configuration (`config/pipeline.yaml`). Every field has the documented default.
public struct PipelineConfig: Sendable, Equatable {
    public var timeframes: [Timeframe] = [Timeframe(seconds: 60), Timeframe(seconds: 300), Timeframe(seconds: 900)]
    /// Watermark = max(largest event time seen for the symbol, clock) − allowedLateness.
    public var allowedLateness: Nanos = 2_000_000_000

    public var smaPeriod = 20
    public var emaPeriod = 20
    public var rsiPeriod = 14
    public var macdFast = 12
    public var macdSlow = 26
    public var macdSignal = 9
    public var bollingerPeriod = 20
    public var bollingerStddev = 2.0

    public struct PriceSpike: Sendable, Equatable {
        public var enabled = true
        public var timeframe = Timeframe(seconds: 60)
        public var window = 20
        public var z = 4.0
    }
    public struct VolumeSpike: Sendable, Equatable {
        public var enabled = true
        public var timeframe = Timeframe(seconds: 60)
        public var window = 20
        public var k = 5.0
    }
    public struct BadTick: Sendable, Equatable {
        public var enabled = true
        public var maxDeviationPct = 5.0
        public var interval: Nanos = 10_000_000_000
    }
    public struct StaleFeed: Sendable, Equatable {
        public var enabled = true
        public var after: Nanos = 120_000_000_000
    }
    public var priceSpike = PriceSpike()
    public var volumeSpike = VolumeSpike()
    public var badTick = BadTick()
    public var staleFeed = StaleFeed()
    /// Trading calendars per symbol (Sessions/SessionsConfig.swift): when `stale_feed` may fire.
    public var sessions = Sessions()
    /// Strategies, execution and portfolio (`trading:`; none by default: no trading outputs).
    public var trading: TradingSection? = nil

    public init() {}

    /// Loads a YAML config over the defaults (or over `base`). Unknown keys and bad values throw a
    /// `ConfigError` naming `source` and the key path.
    public static func load(yaml: String, source: String, base: PipelineConfig = PipelineConfig()) throws -> PipelineConfig {
        var c = base
        let node: Node?
        do { node = try Yams.compose(yaml: yaml) } catch {
            throw ConfigError(source: source, key: "", message: "not valid YAML: \(error)")
        }
        guard let node else { return c }
        var p = Parser(source: source)
        try p.apply(node, to: &c)
        try c.validate(source: source)
        return c
    }

    /// This config with some keys overridden by a partial YAML document (scenarios use this).
    public func merged(overrides yaml: String, source: String) throws -> PipelineConfig {
        try PipelineConfig.load(yaml: yaml, source: source, base: self)
    }

    /// Checks settings that depend on each other; `load` calls it. Call it after changing a config in code
    /// (CLI overrides, an added timeframe) to get the same errors as from a file.
    public func validate(source: String) throws {
        if timeframes.isEmpty { throw ConfigError(source: source, key: "timeframes", message: "at least one timeframe") }
        if Set(timeframes).count != timeframes.count { throw ConfigError(source: source, key: "timeframes", message: "duplicate timeframe") }
        if macdFast >= macdSlow { throw ConfigError(source: source, key: "indicators.macd", message: "fast (\(macdFast)) must be below slow (\(macdSlow))") }
        // A bar-close rule on a timeframe that is not configured would never fire: refuse it.
        let configured = timeframes.map(\.description).joined(separator: ", ")
        let barRules = [("anomalies.price_spike.timeframe", priceSpike.enabled, priceSpike.timeframe),
                        ("anomalies.volume_spike.timeframe", volumeSpike.enabled, volumeSpike.timeframe)]
        for (key, enabled, timeframe) in barRules where enabled && !timeframes.contains(timeframe) {
            throw ConfigError(source: source, key: key,
                              message: "\(timeframe) is not one of the configured timeframes (\(configured)); "
                                       + "add it to timeframes or disable the rule")
        }
        if let mark = trading?.markTimeframe, !timeframes.contains(mark) {
            throw ConfigError(source: source, key: "trading.mark_timeframe",
                              message: "\(mark) is not one of the configured timeframes (\(configured))")
        }
        // Every calendar the config names must find its time zone in the tz database, now rather than
        // when the graph is made.
        for kind in Set(sessions.kindsInUse + sessions.holidays.keys).sorted() where sessions.makeCalendar(kind) == nil {
            throw ConfigError(source: source, key: "sessions",
                              message: "calendar \(kind.rawValue): its time zone is not in this machine's tz database")
        }
    }

    /// Stable text of every setting (hashed into the run's `config_hash`).
    public var canonicalText: String {
        let f = Numbers.format
        return """
        timeframes=\(timeframes.map(\.description).joined(separator: ","))
        allowed_lateness_ns=\(allowedLateness)
        sma=\(smaPeriod) ema=\(emaPeriod) rsi=\(rsiPeriod) macd=\(macdFast)/\(macdSlow)/\(macdSignal) bollinger=\(bollingerPeriod)/\(f(bollingerStddev))
        price_spike=\(priceSpike.enabled),\(priceSpike.timeframe),\(priceSpike.window),\(f(priceSpike.z))
        volume_spike=\(volumeSpike.enabled),\(volumeSpike.timeframe),\(volumeSpike.window),\(f(volumeSpike.k))
        bad_tick=\(badTick.enabled),\(f(badTick.maxDeviationPct)),\(badTick.interval)
        stale_feed=\(staleFeed.enabled),\(staleFeed.after)

        """ + sessions.canonicalLines + (trading?.canonicalLines ?? "")
    }
}

/// Parses durations: `500ms`, `2s`, `1m`, `1h`, `250us`, `10ns`, or a bare number of seconds; nil beyond
/// `TimeUtil.durationNanosMax` (366 days), so that a time plus a duration cannot overflow.
public func parseDuration(_ s: String) -> Nanos? {
    let maximum = Double(TimeUtil.durationNanosMax)
    let units: [(String, Double)] = [("ms", 1e6), ("us", 1e3), ("ns", 1), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
    for (u, mult) in units where s.hasSuffix(u) {
        guard let v = Double(s.dropLast(u.count)), v >= 0, v * mult <= maximum else { return nil }
        return Nanos((v * mult).rounded())
    }
    if let v = Double(s), v >= 0, v * 1e9 <= maximum { return Nanos((v * 1e9).rounded()) }
    return nil
}

private struct Parser {
    let source: String

    func err(_ key: String, _ msg: String) -> ConfigError { ConfigError(source: source, key: key, message: msg) }

    func mapping(_ n: Node, _ key: String) throws -> [(String, Node)] {
        guard case .mapping(let m) = n else { throw err(key, "expected a mapping") }
        return try m.map { (k, v) in
            guard let s = k.string else { throw err(key, "keys must be strings") }
            return (s, v)
        }
    }

    func scalar(_ n: Node, _ key: String) throws -> String {
        guard case .scalar(let s) = n else { throw err(key, "expected a value, got a \(n.isMapping ? "mapping" : "list")") }
        return s.string
    }

    func int(_ n: Node, _ key: String) throws -> Int {
        let s = try scalar(n, key)
        guard let v = Int(s), v > 0 else { throw err(key, "expected a positive integer, got \"\(s)\"") }
        return v
    }

    func double(_ n: Node, _ key: String) throws -> Double {
        let s = try scalar(n, key)
        guard let v = Double(s), v.isFinite, v > 0 else { throw err(key, "expected a positive number, got \"\(s)\"") }
        return v
    }

    func bool(_ n: Node, _ key: String) throws -> Bool {
        let s = try scalar(n, key)
        switch s.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw err(key, "expected true or false, got \"\(s)\"")
        }
    }

    func duration(_ n: Node, _ key: String) throws -> Nanos {
        let s = try scalar(n, key)
        guard let v = parseDuration(s) else { throw err(key, "expected a duration like 500ms, 2s, 1m (≤ 366 days), got \"\(s)\"") }
        return v
    }

    func timeframe(_ n: Node, _ key: String) throws -> Timeframe {
        let s = try scalar(n, key)
        guard let t = Timeframe(s) else { throw err(key, "expected a timeframe like 30s, 1m, 15m, 1h (≤ 366d), got \"\(s)\"") }
        return t
    }

    func unknown(_ key: String, _ allowed: [String]) -> ConfigError {
        err(key, "unknown key (allowed here: \(allowed.joined(separator: ", ")))")
    }

    mutating func apply(_ root: Node, to c: inout PipelineConfig) throws {
        for (k, v) in try mapping(root, "") {
            switch k {
            case "timeframes":
                guard case .sequence(let seq) = v else { throw err(k, "expected a list like [1m, 5m, 15m]") }
                c.timeframes = try seq.enumerated().map { try timeframe($0.element, "\(k)[\($0.offset)]") }.sorted()
            case "allowed_lateness": c.allowedLateness = try duration(v, k)
            case "indicators": try indicators(v, &c)
            case "anomalies": try anomalies(v, &c)
            case "sessions": try sessions(v, &c)
            case "trading": try trading(v, &c)
            default: throw unknown(k, ["timeframes", "allowed_lateness", "indicators", "anomalies", "sessions", "trading"])
            }
        }
    }

    func indicators(_ n: Node, _ c: inout PipelineConfig) throws {
        for (k, v) in try mapping(n, "indicators") {
            let key = "indicators.\(k)"
            switch k {
            case "sma": c.smaPeriod = try int(v, key)
            case "ema": c.emaPeriod = try int(v, key)
            case "rsi": c.rsiPeriod = try int(v, key)
            case "macd":
                for (k2, v2) in try mapping(v, key) {
                    switch k2 {
                    case "fast": c.macdFast = try int(v2, "\(key).fast")
                    case "slow": c.macdSlow = try int(v2, "\(key).slow")
                    case "signal": c.macdSignal = try int(v2, "\(key).signal")
                    default: throw unknown("\(key).\(k2)", ["fast", "slow", "signal"])
                    }
                }
            case "bollinger":
                for (k2, v2) in try mapping(v, key) {
                    switch k2 {
                    case "period": c.bollingerPeriod = try int(v2, "\(key).period")
                    case "stddev": c.bollingerStddev = try double(v2, "\(key).stddev")
                    default: throw unknown("\(key).\(k2)", ["period", "stddev"])
                    }
                }
            default: throw unknown(key, ["sma", "ema", "rsi", "macd", "bollinger"])
            }
        }
    }

    func anomalies(_ n: Node, _ c: inout PipelineConfig) throws {
        for (k, v) in try mapping(n, "anomalies") {
            let key = "anomalies.\(k)"
            switch k {
            case "price_spike":
                for (k2, v2) in try mapping(v, key) {
                    let kk = "\(key).\(k2)"
                    switch k2 {
                    case "enabled": c.priceSpike.enabled = try bool(v2, kk)
                    case "timeframe": c.priceSpike.timeframe = try timeframe(v2, kk)
                    case "window": c.priceSpike.window = try int(v2, kk)
                    case "z": c.priceSpike.z = try double(v2, kk)
                    default: throw unknown(kk, ["enabled", "timeframe", "window", "z"])
                    }
                }
            case "volume_spike":
                for (k2, v2) in try mapping(v, key) {
                    let kk = "\(key).\(k2)"
                    switch k2 {
                    case "enabled": c.volumeSpike.enabled = try bool(v2, kk)
                    case "timeframe": c.volumeSpike.timeframe = try timeframe(v2, kk)
                    case "window": c.volumeSpike.window = try int(v2, kk)
                    case "k": c.volumeSpike.k = try double(v2, kk)
                    default: throw unknown(kk, ["enabled", "timeframe", "window", "k"])
                    }
                }
            case "bad_tick":
                for (k2, v2) in try mapping(v, key) {
                    let kk = "\(key).\(k2)"
                    switch k2 {
                    case "enabled": c.badTick.enabled = try bool(v2, kk)
                    case "max_deviation_pct": c.badTick.maxDeviationPct = try double(v2, kk)
                    case "interval": c.badTick.interval = try duration(v2, kk)
                    default: throw unknown(kk, ["enabled", "max_deviation_pct", "interval"])
                    }
                }
            case "stale_feed":
                for (k2, v2) in try mapping(v, key) {
                    let kk = "\(key).\(k2)"
                    switch k2 {
                    case "enabled": c.staleFeed.enabled = try bool(v2, kk)
                    case "after": c.staleFeed.after = try duration(v2, kk)
                    default: throw unknown(kk, ["enabled", "after"])
                    }
                }
            default: throw unknown(key, ["price_spike", "volume_spike", "bad_tick", "stale_feed"])
            }
        }
    }
}

extension Parser {
    func calendarKind(_ n: Node, _ key: String) throws -> TradingCalendar.Kind {
        let s = try scalar(n, key)
        guard let kind = TradingCalendar.Kind(rawValue: s) else {
            throw err(key, "unknown calendar \"\(s)\" (one of \(TradingCalendar.Kind.namesText))")
        }
        return kind
    }

    /// A local date `2024-12-25` as days since 1970-01-01.
    func date(_ n: Node, _ key: String) throws -> Int {
        let s = try scalar(n, key)
        guard s.utf8.count == 10, let midnight = TimeUtil.parseDateTime(s) else {
            throw err(key, "expected a date like 2024-12-25, got \"\(s)\"")
        }
        return Int(midnight / (86_400 * TimeUtil.nsPerSecond))
    }

    /// `sessions: {default: crypto, symbols: {PATTERN: CALENDAR, …}, holidays: {CALENDAR: [DATE, …]}}`.
    /// Over a base config (scenario overrides): `default` replaces, a `symbols` entry replaces the one
    /// with the same pattern or is added after the others, a `holidays` list replaces that calendar's.
    func sessions(_ n: Node, _ c: inout PipelineConfig) throws {
        typealias Sessions = PipelineConfig.Sessions
        for (k, v) in try mapping(n, "sessions") {
            let key = "sessions.\(k)"
            switch k {
            case "default": c.sessions.defaultCalendar = try calendarKind(v, key)
            case "symbols":
                for (pattern, v2) in try mapping(v, key) {
                    let kk = "\(key).\(pattern)"
                    let valid = Array(pattern.utf8).withUnsafeBytes { SymbolTable.isValidName($0) }
                    guard !pattern.isEmpty, valid else {
                        throw err(kk, "a symbol name or a pattern with *, not empty, without control characters")
                    }
                    let kind = try calendarKind(v2, kk)
                    if let index = c.sessions.symbols.firstIndex(where: { $0.pattern == pattern }) {
                        c.sessions.symbols[index].calendar = kind
                    } else {
                        guard c.sessions.symbols.count < Sessions.symbolPatternsMax else {
                            throw err(key, "more than \(Sessions.symbolPatternsMax) entries")
                        }
                        c.sessions.symbols.append(Sessions.SymbolCalendar(pattern: pattern, calendar: kind))
                    }
                }
            case "holidays":
                for (name, v2) in try mapping(v, key) {
                    let kk = "\(key).\(name)"
                    guard let kind = TradingCalendar.Kind(rawValue: name) else {
                        throw err(kk, "unknown calendar \"\(name)\" (one of \(TradingCalendar.Kind.namesText))")
                    }
                    if kind == .crypto { throw err(kk, "crypto is open every day: it has no holidays") }
                    guard case .sequence(let seq) = v2 else { throw err(kk, "expected a list of dates like [2024-12-25]") }
                    guard seq.count <= Sessions.holidaysMax else { throw err(kk, "more than \(Sessions.holidaysMax) dates") }
                    let days = try seq.enumerated().map { try date($0.element, "\(kk)[\($0.offset)]") }
                    c.sessions.holidays[kind] = days.isEmpty ? nil : Array(Set(days)).sorted()
                }
            default: throw unknown(key, ["default", "symbols", "holidays"])
            }
        }
    }
}

extension Parser {
    /// `trading: {cash, mark_timeframe, execution: {…}, strategies: [{type, name?, symbols?, …}]}`. Over a
    /// base config (scenario overrides): scalars replace, `execution` keys replace one by one, a
    /// `strategies` list replaces the whole list.
    func trading(_ n: Node, _ c: inout PipelineConfig) throws {
        var t = c.trading ?? TradingSection()
        for (k, v) in try mapping(n, "trading") {
            let key = "trading.\(k)"
            switch k {
            case "cash": t.cash = try double(v, key)
            case "mark_timeframe": t.markTimeframe = try timeframe(v, key)
            case "execution":
                for (k2, v2) in try mapping(v, key) { t.execution[k2] = try scalar(v2, "\(key).\(k2)") }
            case "strategies":
                guard case .sequence(let seq) = v else { throw err(key, "expected a list of strategies like [{type: rsi_reversion, …}]") }
                guard seq.count <= TradingSection.strategiesMax else { throw err(key, "more than \(TradingSection.strategiesMax) strategies") }
                var entries: [TradingSection.Entry] = []
                for (index, item) in seq.enumerated() {
                    let at = "\(key)[\(index)]"
                    var type: String? = nil, name: String? = nil, symbols: [String] = [], parameters: [String: String] = [:]
                    for (k2, v2) in try mapping(item, at) {
                        switch k2 {
                        case "type": type = try scalar(v2, "\(at).type")
                        case "name": name = try scalar(v2, "\(at).name")
                        case "symbols":
                            guard case .sequence(let names) = v2 else { throw err("\(at).symbols", "expected a list like [spot:BTCUSDT]") }
                            symbols = try names.enumerated().map { try scalar($0.element, "\(at).symbols[\($0.offset)]") }
                        default: parameters[k2] = try scalar(v2, "\(at).\(k2)")
                        }
                    }
                    guard let type, !type.isEmpty else { throw err(at, "a strategy needs a type") }
                    var chosen = name ?? type
                    if name == nil {
                        var n = 2
                        while entries.contains(where: { $0.name == chosen }) { chosen = "\(type)#\(n)"; n += 1 }
                    } else if entries.contains(where: { $0.name == chosen }) {
                        throw err("\(at).name", "\(chosen) is the name of another strategy")
                    }
                    guard !chosen.contains(","), !chosen.contains("\n") else { throw err("\(at).name", "no commas or line breaks in a name") }
                    entries.append(TradingSection.Entry(name: chosen, type: type, symbols: symbols, parameters: parameters))
                }
                t.strategies = entries
            default: throw unknown(key, ["cash", "mark_timeframe", "execution", "strategies"])
            }
        }
        c.trading = t
    }
}

private extension Node {
    var isMapping: Bool { if case .mapping = self { return true }; return false }
}

extension PipelineConfig {
    /// Adds `timeframe` (a model's timeframe, say) unless it is there: timeframes stay sorted and
    /// distinct, as the YAML loader leaves them. `tape train` and scenarios both add theirs this way,
    /// so one config gives one emission order and one `canonicalText` (hence one `config_hash`).
    public mutating func addTimeframe(_ timeframe: Timeframe) {
        timeframes = Array(Set(timeframes + [timeframe])).sorted()
        assert(timeframes.contains(timeframe) && zip(timeframes, timeframes.dropFirst()).allSatisfy { $0 < $1 })
    }
}
