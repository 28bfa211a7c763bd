import TapeCore
import Yams

/// A configuration error naming the source and key path.
public struct PipelineConfigError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ m: String) { message = m }
    public var description: String { message }
}

/// The graph's configuration (`config/pipeline.yaml`). Defaults are the documented ones.
public struct PipelineConfig: Sendable, Equatable {
    public var timeframes: [Timeframe] = [Timeframe(seconds: 60), Timeframe(seconds: 300), Timeframe(seconds: 900)]
    /// Allowed lateness of trades behind the per-symbol watermark, ns.
    public var allowedLateness: Nanos = 2 * TimeUtil.nsPerSecond
    public var smaPeriod = 20
    public var emaPeriod = 20
    public var rsiPeriod = 14
    public var macdFast = 12
    public var macdSlow = 26
    public var macdSignal = 9
    public var bbPeriod = 20
    public var bbStddev = 2.0
    // Anomalies
    public var priceSpikeEnabled = true
    public var priceSpikeTimeframe = Timeframe(seconds: 60)
    public var priceSpikeWindow = 20
    public var priceSpikeZ = 4.0
    public var volumeSpikeEnabled = true
    public var volumeSpikeTimeframe = Timeframe(seconds: 60)
    public var volumeSpikeWindow = 20
    public var volumeSpikeK = 5.0
    public var badTickEnabled = true
    public var badTickMaxDeviationPct = 5.0
    public var badTickInterval: Nanos = 5 * TimeUtil.nsPerSecond
    public var staleFeedEnabled = true
    public var staleFeedAfter: Nanos = 30 * TimeUtil.nsPerSecond

    public init() {}

    /// Loads a full config: defaults overridden by the keys present in `yaml`.
    public static func load(yaml: String, source: String) throws -> PipelineConfig {
        try PipelineConfig().merging(yaml: yaml, source: source)
    }

    /// Returns this config with the keys present in `yaml` overridden (scenario overrides).
    public func merging(yaml: String, source: String) throws -> PipelineConfig {
        let node: Any?
        do { node = try Yams.load(yaml: yaml) } catch {
            throw PipelineConfigError("\(source): invalid YAML: \(error)")
        }
        var c = self
        guard let node else { return c }
        guard let top = node as? [String: Any] else { throw PipelineConfigError("\(source): expected a mapping at top level") }
        try c.apply(top, source: source)
        return c
    }

    private static func str(_ v: Any) -> String {
        if let s = v as? String { return "\"\(s)\"" }
        return "\(v)"
    }
    private static func posInt(_ v: Any, _ src: String, _ key: String) throws -> Int {
        if let i = v as? Int, i > 0 { return i }
        throw PipelineConfigError("\(src): \(key): expected a positive integer, got \(str(v))")
    }
    private static func posDouble(_ v: Any, _ src: String, _ key: String) throws -> Double {
        if let d = v as? Double, d > 0, d.isFinite { return d }
        if let i = v as? Int, i > 0 { return Double(i) }
        throw PipelineConfigError("\(src): \(key): expected a positive number, got \(str(v))")
    }
    private static func bool(_ v: Any, _ src: String, _ key: String) throws -> Bool {
        if let b = v as? Bool { return b }
        throw PipelineConfigError("\(src): \(key): expected true or false, got \(str(v))")
    }
    /// Parses `500ms`, `2s`, `1m`, `1h`, or `0`.
    public static func parseDuration(_ s: String) -> Nanos? {
        if s == "0" { return 0 }
        let units: [(String, Int64)] = [("ms", 1_000_000), ("us", 1_000), ("ns", 1), ("s", 1_000_000_000),
                                         ("m", 60_000_000_000), ("h", 3_600_000_000_000)]
        for (u, mul) in units where s.hasSuffix(u) {
            guard let n = Int64(s.dropLast(u.count)), n >= 0 else { return nil }
            return n * mul
        }
        return nil
    }
    private static func duration(_ v: Any, _ src: String, _ key: String) throws -> Nanos {
        if let s = v as? String, let d = parseDuration(s) { return d }
        if let i = v as? Int, i == 0 { return 0 }
        throw PipelineConfigError("\(src): \(key): expected a duration like 500ms, 2s, 1m, got \(str(v))")
    }
    private static func timeframe(_ v: Any, _ src: String, _ key: String) throws -> Timeframe {
        if let s = v as? String, let t = Timeframe(s) { return t }
        throw PipelineConfigError("\(src): \(key): expected a timeframe like 5s, 1m, 1h, got \(str(v))")
    }
    private static func map(_ v: Any, _ src: String, _ key: String) throws -> [String: Any] {
        if let m = v as? [String: Any] { return m }
        throw PipelineConfigError("\(src): \(key): expected a mapping, got \(str(v))")
    }
    private static func unknown(_ src: String, _ key: String) -> PipelineConfigError {
        PipelineConfigError("\(src): \(key): unknown key")
    }

    private mutating func apply(_ top: [String: Any], source src: String) throws {
        typealias P = PipelineConfig
        for k in top.keys.sorted() {
            let v = top[k]!
            switch k {
            case "timeframes":
                guard let arr = v as? [Any], !arr.isEmpty else {
                    throw PipelineConfigError("\(src): timeframes: expected a non-empty list, got \(P.str(v))")
                }
                var tfs: [Timeframe] = []
                for (i, x) in arr.enumerated() { tfs.append(try P.timeframe(x, src, "timeframes[\(i)]")) }
                timeframes = Array(Set(tfs)).sorted()
            case "allowed_lateness": allowedLateness = try P.duration(v, src, "allowed_lateness")
            case "indicators":
                let m = try P.map(v, src, "indicators")
                for ik in m.keys.sorted() {
                    let iv = m[ik]!
                    let key = "indicators.\(ik)"
                    switch ik {
                    case "sma": smaPeriod = try P.posInt(iv, src, key)
                    case "ema": emaPeriod = try P.posInt(iv, src, key)
                    case "rsi": rsiPeriod = try P.posInt(iv, src, key)
                    case "macd":
                        let mm = try P.map(iv, src, key)
                        for mk in mm.keys.sorted() {
                            switch mk {
                            case "fast": macdFast = try P.posInt(mm[mk]!, src, "\(key).fast")
                            case "slow": macdSlow = try P.posInt(mm[mk]!, src, "\(key).slow")
                            case "signal": macdSignal = try P.posInt(mm[mk]!, src, "\(key).signal")
                            default: throw P.unknown(src, "\(key).\(mk)")
                            }
                        }
                    case "bollinger":
                        let mm = try P.map(iv, src, key)
                        for mk in mm.keys.sorted() {
                            switch mk {
                            case "period": bbPeriod = try P.posInt(mm[mk]!, src, "\(key).period")
                            case "stddev": bbStddev = try P.posDouble(mm[mk]!, src, "\(key).stddev")
                            default: throw P.unknown(src, "\(key).\(mk)")
                            }
                        }
                    default: throw P.unknown(src, key)
                    }
                }
            case "anomalies":
                let m = try P.map(v, src, "anomalies")
                for ak in m.keys.sorted() {
                    let key = "anomalies.\(ak)"
                    let mm = try P.map(m[ak]!, src, key)
                    for rk in mm.keys.sorted() {
                        let rv = mm[rk]!
                        let kk = "\(key).\(rk)"
                        switch (ak, rk) {
                        case ("price_spike", "enabled"): priceSpikeEnabled = try P.bool(rv, src, kk)
                        case ("price_spike", "timeframe"): priceSpikeTimeframe = try P.timeframe(rv, src, kk)
                        case ("price_spike", "window"): priceSpikeWindow = try P.posInt(rv, src, kk)
                        case ("price_spike", "z"): priceSpikeZ = try P.posDouble(rv, src, kk)
                        case ("volume_spike", "enabled"): volumeSpikeEnabled = try P.bool(rv, src, kk)
                        case ("volume_spike", "timeframe"): volumeSpikeTimeframe = try P.timeframe(rv, src, kk)
                        case ("volume_spike", "window"): volumeSpikeWindow = try P.posInt(rv, src, kk)
                        case ("volume_spike", "k"): volumeSpikeK = try P.posDouble(rv, src, kk)
                        case ("bad_tick", "enabled"): badTickEnabled = try P.bool(rv, src, kk)
                        case ("bad_tick", "max_deviation_pct"): badTickMaxDeviationPct = try P.posDouble(rv, src, kk)
                        case ("bad_tick", "interval"): badTickInterval = try P.duration(rv, src, kk)
                        case ("stale_feed", "enabled"): staleFeedEnabled = try P.bool(rv, src, kk)
                        case ("stale_feed", "after"):
                            let d = try P.duration(rv, src, kk)
                            if d <= 0 { throw PipelineConfigError("\(src): \(kk): expected a positive duration, got \(P.str(rv))") }
                            staleFeedAfter = d
                        default:
                            if ["price_spike", "volume_spike", "bad_tick", "stale_feed"].contains(ak) { throw P.unknown(src, kk) }
                            throw P.unknown(src, key)
                        }
                    }
                }
            default: throw P.unknown(src, k)
            }
        }
    }

    private static func dur(_ n: Nanos) -> String {
        if n == 0 { return "0" }
        if n % 3_600_000_000_000 == 0 { return "\(n / 3_600_000_000_000)h" }
        if n % 60_000_000_000 == 0 { return "\(n / 60_000_000_000)m" }
        if n % 1_000_000_000 == 0 { return "\(n / 1_000_000_000)s" }
        if n % 1_000_000 == 0 { return "\(n / 1_000_000)ms" }
        return "\(n)ns"
    }

    /// Stable canonical text of every key (sorted, fixed formatting) for the run's config hash.
    public var canonicalText: String {
        let f = Numbers.format
        var lines: [String] = []
        lines.append("allowed_lateness: \(PipelineConfig.dur(allowedLateness))")
        lines.append("anomalies.bad_tick.enabled: \(badTickEnabled)")
        lines.append("anomalies.bad_tick.interval: \(PipelineConfig.dur(badTickInterval))")
        lines.append("anomalies.bad_tick.max_deviation_pct: \(f(badTickMaxDeviationPct))")
        lines.append("anomalies.price_spike.enabled: \(priceSpikeEnabled)")
        lines.append("anomalies.price_spike.timeframe: \(priceSpikeTimeframe)")
        lines.append("anomalies.price_spike.window: \(priceSpikeWindow)")
        lines.append("anomalies.price_spike.z: \(f(priceSpikeZ))")
        lines.append("anomalies.stale_feed.after: \(PipelineConfig.dur(staleFeedAfter))")
        lines.append("anomalies.stale_feed.enabled: \(staleFeedEnabled)")
        lines.append("anomalies.volume_spike.enabled: \(volumeSpikeEnabled)")
        lines.append("anomalies.volume_spike.k: \(f(volumeSpikeK))")
        lines.append("anomalies.volume_spike.timeframe: \(volumeSpikeTimeframe)")
        lines.append("anomalies.volume_spike.window: \(volumeSpikeWindow)")
        lines.append("indicators.bollinger.period: \(bbPeriod)")
        lines.append("indicators.bollinger.stddev: \(f(bbStddev))")
        lines.append("indicators.ema: \(emaPeriod)")
        lines.append("indicators.macd.fast: \(macdFast)")
        lines.append("indicators.macd.signal: \(macdSignal)")
        lines.append("indicators.macd.slow: \(macdSlow)")
        lines.append("indicators.rsi: \(rsiPeriod)")
        lines.append("indicators.sma: \(smaPeriod)")
        lines.append("timeframes: [\(timeframes.map { $0.description }.joined(separator: ", "))]")
        return lines.joined(separator: "\n") + "\n"
    }
}
