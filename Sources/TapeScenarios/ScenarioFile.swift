import Foundation
import Yams
import TapeCore
import TapeGraph
import TapeRecordings

public struct ScenarioError: Error, CustomStringConvertible {
    public var file: String
    public var key: String
    public var message: String
    public init(file: String, key: String, message: String) { self.file = file; self.key = key; self.message = message }
    public var description: String { "\(file): \(key.isEmpty ? "" : "key '\(key)': ")\(message)" }
}

/// Deterministic damage applied to a copy of the input at run time (never in the repo).
public struct DamageSpec: Sendable, Equatable {
    public var truncateAtFraction: Double? = nil
    public var injectGarbageEvery: Int? = nil
    public var truncateGzipAtFraction: Double? = nil
    public init() {}
}

/// A count assertion: exact (`3`) or bounds (`{min: 1, max: 10}`).
public struct CountSpec: Sendable, Equatable {
    public var min: Double? = nil
    public var max: Double? = nil
    public init(min: Double? = nil, max: Double? = nil) { self.min = min; self.max = max }
    public func check(_ v: Double) -> Bool { (min.map { v >= $0 } ?? true) && (max.map { v <= $0 } ?? true) }
    public var text: String {
        if let a = min, let b = max, a == b { return "== \(fmtNum(a))" }
        return [min.map { ">= \(fmtNum($0))" }, max.map { "<= \(fmtNum($0))" }].compactMap { $0 }.joined(separator: " and ")
    }
    static func parse(_ n: Node, key: String, file: String) throws -> CountSpec {
        if let d = n.float, n.scalar != nil { return CountSpec(min: d, max: d) }
        guard let m = n.mapping else { throw ScenarioError(file: file, key: key, message: "must be a number or {min:, max:}") }
        var c = CountSpec()
        for (k, v) in m {
            guard let d = v.float else { throw ScenarioError(file: file, key: "\(key).\(k.string ?? "?")", message: "must be a number") }
            switch k.string {
            case "min": c.min = d
            case "max": c.max = d
            default: throw ScenarioError(file: file, key: "\(key).\(k.string ?? "?")", message: "unknown key (min, max)")
            }
        }
        if c.min == nil && c.max == nil { throw ScenarioError(file: file, key: key, message: "needs min and/or max") }
        return c
    }
}

func fmtNum(_ d: Double) -> String { d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d) }

/// One value assertion: in `file`, the row matching every `where` column, `column` equals `value` ± `tolerance`.
public struct ValueAssertion: Sendable, Equatable {
    public var file: String
    public var whereColumns: [(String, String)]
    public var column: String
    public var value: Double
    public var tolerance: Double
    public static func == (a: ValueAssertion, b: ValueAssertion) -> Bool {
        a.file == b.file && a.column == b.column && a.value == b.value && a.tolerance == b.tolerance
            && a.whereColumns.map { $0.0 + "=" + $0.1 } == b.whereColumns.map { $0.0 + "=" + $0.1 }
    }
}

/// The `expect:` block (all optional; goldens in `<name>/expected/` are checked besides).
public struct Expectations: Sendable, Equatable {
    public var exitCode: Int32? = nil
    /// Anomaly count per rule (anomalies.csv `rule` column).
    public var anomalies: [(String, CountSpec)] = []
    /// Reject count per reason (summary.json `ticks_rejected_by_reason`); `total` = `ticks_rejected`.
    public var rejects: [(String, CountSpec)] = []
    /// summary.json integer counters (`ticks_in`, `ticks_delivered`, ...) and `events_out_by_kind` keys as `events.<kind>`.
    public var counts: [(String, CountSpec)] = []
    /// Bounds on the `overall` row of `model/evaluation.csv` (column name → bounds).
    public var metrics: [(String, CountSpec)] = []
    /// Bounds on the backtest's statistics (summary.json `trading`: `trade_count`, `total_return`, `sharpe`, …),
    /// as LEAN's regression algorithms state their expected statistics.
    public var trading: [(String, CountSpec)] = []
    public var values: [ValueAssertion] = []
    public init() {}
    public static func == (a: Expectations, b: Expectations) -> Bool {
        func k(_ x: [(String, CountSpec)]) -> [String] { x.map { $0.0 + $0.1.text } }
        return a.exitCode == b.exitCode && k(a.anomalies) == k(b.anomalies) && k(a.rejects) == k(b.rejects)
            && k(a.counts) == k(b.counts) && k(a.metrics) == k(b.metrics) && k(a.trading) == k(b.trading) && a.values == b.values
    }

    static func counts(_ n: Node, key: String, file: String) throws -> [(String, CountSpec)] {
        guard let m = n.mapping else { throw ScenarioError(file: file, key: key, message: "must be a mapping name: count") }
        return try m.map { k, v in
            guard let ks = k.string else { throw ScenarioError(file: file, key: key, message: "keys must be strings") }
            return (ks, try CountSpec.parse(v, key: "\(key).\(ks)", file: file))
        }
    }

    static func parse(_ n: Node, file: String) throws -> Expectations {
        var e = Expectations()
        for (k, v) in n.mapping! {
            let ks = k.string ?? "?"
            let key = "expect.\(ks)"
            switch ks {
            case "digest": guard v.string != nil else { throw ScenarioError(file: file, key: key, message: "must be a hex string") }
            case "exit_code":
                guard let i = v.int else { throw ScenarioError(file: file, key: key, message: "must be an integer") }
                e.exitCode = Int32(i)
            case "anomalies": e.anomalies = try counts(v, key: key, file: file)
            case "rejects": e.rejects = try counts(v, key: key, file: file)
            case "counts": e.counts = try counts(v, key: key, file: file)
            case "metrics": e.metrics = try counts(v, key: key, file: file)
            case "trading": e.trading = try counts(v, key: key, file: file)
            case "values":
                guard let seq = v.sequence else { throw ScenarioError(file: file, key: key, message: "must be a list") }
                for (i, item) in seq.enumerated() {
                    let ik = "\(key)[\(i)]"
                    guard let m = item.mapping else { throw ScenarioError(file: file, key: ik, message: "must be a mapping") }
                    var fileName = "bars.csv", column: String? = nil, value: Double? = nil, tol = 0.0
                    var wh: [(String, String)] = []
                    for (k2, v2) in m {
                        let k2s = k2.string ?? "?"
                        switch k2s {
                        case "file": guard let s = v2.string else { throw ScenarioError(file: file, key: "\(ik).file", message: "must be a string") }; fileName = s
                        case "column": column = v2.string
                        case "value": guard let d = v2.float else { throw ScenarioError(file: file, key: "\(ik).value", message: "must be a number") }; value = d
                        case "tolerance": guard let d = v2.float, d >= 0 else { throw ScenarioError(file: file, key: "\(ik).tolerance", message: "must be a number >= 0") }; tol = d
                        case "where":
                            guard let wm = v2.mapping else { throw ScenarioError(file: file, key: "\(ik).where", message: "must be a mapping column: value") }
                            for (wk, wv) in wm { wh.append((wk.string ?? "?", wv.string ?? "")) }
                        default: throw ScenarioError(file: file, key: "\(ik).\(k2s)", message: "unknown key (file, where, column, value, tolerance)")
                        }
                    }
                    guard let c = column else { throw ScenarioError(file: file, key: "\(ik).column", message: "required") }
                    guard let val = value else { throw ScenarioError(file: file, key: "\(ik).value", message: "required") }
                    e.values.append(ValueAssertion(file: fileName, whereColumns: wh, column: c, value: val, tolerance: tol))
                }
            default:
                throw ScenarioError(file: file, key: key, message: "unknown key (digest, exit_code, anomalies, rejects, counts, metrics, trading, values)")
            }
        }
        return e
    }
}

/// The `model:` block: either `path:` (a committed model file run by `InferenceNode`) or `train:`
/// (train during the scenario on the replay's bars; writes `model/evaluation.csv`).
public struct ModelSpec: Sendable, Equatable {
    public var path: String? = nil
    public var timeframe = "1m"
    public var horizon = 1
    public var rounds = 30
    public var maxDepth = 3
    public var folds = 3
    public var cost = 0.0005
    /// After training, replay again with the trained model (`InferenceNode`) to write `predictions.csv`.
    public var predict = true
    public init() {}
    static func parse(_ n: Node, file: String) throws -> ModelSpec {
        guard let m = n.mapping else { throw ScenarioError(file: file, key: "model", message: "must be a mapping (path: or train:)") }
        var s = ModelSpec()
        var sawTrain = false
        for (k, v) in m {
            switch k.string {
            case "path":
                guard let p = v.string else { throw ScenarioError(file: file, key: "model.path", message: "must be a path") }
                s.path = p
            case "train":
                sawTrain = true
                guard let tm = v.mapping else { throw ScenarioError(file: file, key: "model.train", message: "must be a mapping") }
                for (k2, v2) in tm {
                    let kk = "model.train.\(k2.string ?? "?")"
                    func int() throws -> Int { guard let i = v2.int, i > 0 else { throw ScenarioError(file: file, key: kk, message: "must be a positive integer") }; return i }
                    switch k2.string {
                    case "timeframe": guard let t = v2.string else { throw ScenarioError(file: file, key: kk, message: "must be a timeframe like 1m") }; s.timeframe = t
                    case "horizon": s.horizon = try int()
                    case "rounds": s.rounds = try int()
                    case "max_depth": s.maxDepth = try int()
                    case "folds": s.folds = try int()
                    case "predict": guard let b = v2.bool else { throw ScenarioError(file: file, key: kk, message: "must be true or false") }; s.predict = b
                    case "cost": guard let d = v2.float, d >= 0 else { throw ScenarioError(file: file, key: kk, message: "must be a number >= 0") }; s.cost = d
                    default: throw ScenarioError(file: file, key: kk, message: "unknown key (timeframe, horizon, rounds, max_depth, folds, cost, predict)")
                    }
                }
            default: throw ScenarioError(file: file, key: "model.\(k.string ?? "?")", message: "unknown key (path, train)")
            }
        }
        if s.path != nil && sawTrain { throw ScenarioError(file: file, key: "model", message: "give either path or train, not both") }
        if s.path == nil && !sawTrain { throw ScenarioError(file: file, key: "model", message: "needs path or train") }
        return s
    }
}

/// A parsed `scenarios/<name>.yaml`.
public struct ScenarioFile: Sendable {
    public var name: String
    public var path: String
    public var recordings: [String]
    public var format: String? = nil
    /// Bar files: `bar_time`, `bar_length`, `columns` (as `--bar-time`, `--bar-length`, `--columns`).
    public var bars = BarOptions()
    public var from: String? = nil
    public var to: String? = nil
    public var symbols: [String]? = nil
    /// Partial pipeline config (raw YAML text) merged over the defaults.
    public var configOverrides: String = ""
    public var damage: DamageSpec? = nil
    public var expectedDigest: String? = nil
    public var model: ModelSpec? = nil
    public var expect = Expectations()
    /// How the goldens are kept (`golden:`, default `full`).
    public var golden: GoldenKind = .full
    /// Columns kept as small CSVs under `golden: digests` (`golden_columns:`), in file order.
    public var goldenColumns: [GoldenColumns] = []

    public static let knownKeys: Set<String> = ["name", "description", "recordings", "format", "bar_time", "bar_length",
                                                "columns", "from", "to", "symbols",
                                                "config", "model", "damage", "expect", "golden", "golden_columns"]

    public static func load(path: String) throws -> ScenarioFile {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ScenarioError(file: path, key: "", message: "cannot read file")
        }
        return try parse(yaml: text, path: path)
    }

    public static func parse(yaml: String, path: String) throws -> ScenarioFile {
        let node: Node?
        do { node = try Yams.compose(yaml: yaml) } catch { throw ScenarioError(file: path, key: "", message: "not valid YAML: \(error)") }
        guard let map = node?.mapping else { throw ScenarioError(file: path, key: "", message: "top level must be a mapping") }
        var dict: [String: Node] = [:]
        for (k, v) in map {
            guard let ks = k.string else { throw ScenarioError(file: path, key: "\(k)", message: "keys must be strings") }
            guard knownKeys.contains(ks) else {
                throw ScenarioError(file: path, key: ks, message: "unknown key (known: \(knownKeys.sorted().joined(separator: ", ")))")
            }
            dict[ks] = v
        }
        let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        let name = dict["name"]?.string ?? stem
        var recs: [String] = []
        switch dict["recordings"] {
        case .some(.scalar(let s)): recs = [s.string]
        case .some(.sequence(let seq)):
            for (i, n) in seq.enumerated() {
                guard let s = n.string else { throw ScenarioError(file: path, key: "recordings[\(i)]", message: "must be a path string") }
                recs.append(s)
            }
        case .none: throw ScenarioError(file: path, key: "recordings", message: "required (a path or a list of paths)")
        default: throw ScenarioError(file: path, key: "recordings", message: "must be a path or a list of paths")
        }
        if recs.isEmpty { throw ScenarioError(file: path, key: "recordings", message: "at least one recording") }
        var s = ScenarioFile(name: name, path: path, recordings: recs)
        s.format = dict["format"]?.string
        for key in ["bar_time", "bar_length", "columns"] {
            guard let node = dict[key] else { continue }
            guard let text = node.string else { throw ScenarioError(file: path, key: key, message: "must be a string") }
            do {
                switch key {
                case "bar_time": s.bars.anchor = try BarOptions.parseAnchor(text)
                case "bar_length": s.bars.lengthNanos = try BarOptions.parseLength(text)
                default: s.bars.columns = try BarOptions.parseColumns(text)
                }
            } catch { throw ScenarioError(file: path, key: key, message: "\(error)") }
        }
        s.from = dict["from"]?.string
        s.to = dict["to"]?.string
        for (k, v) in [("from", s.from), ("to", s.to)] {
            if let v, TimeUtil.parseUserTime(v) == nil {
                throw ScenarioError(file: path, key: k, message: "'\(v)': expected ISO-8601 UTC (2024-08-08T23:55:00Z) or integer ns")
            }
        }
        if let sy = dict["symbols"] {
            guard let seq = sy.sequence else { throw ScenarioError(file: path, key: "symbols", message: "must be a list") }
            s.symbols = try seq.enumerated().map { i, n in
                guard let v = n.string else { throw ScenarioError(file: path, key: "symbols[\(i)]", message: "must be a string") }
                return v
            }
        }
        if let c = dict["config"] {
            guard c.mapping != nil else { throw ScenarioError(file: path, key: "config", message: "must be a mapping (partial pipeline config)") }
            s.configOverrides = try Yams.serialize(node: c)
            do { _ = try PipelineConfig().merged(overrides: s.configOverrides, source: path) }
            catch let e as ConfigError { throw ScenarioError(file: path, key: e.key.isEmpty ? "config" : "config." + e.key, message: e.message) }
        }
        if let d = dict["damage"] {
            guard let m = d.mapping else { throw ScenarioError(file: path, key: "damage", message: "must be a mapping") }
            var spec = DamageSpec()
            for (k, v) in m {
                switch k.string {
                case "truncate_at_fraction":
                    guard let f = v.float, f > 0, f < 1 else { throw ScenarioError(file: path, key: "damage.truncate_at_fraction", message: "must be a number in (0,1)") }
                    spec.truncateAtFraction = f
                case "inject_garbage_every":
                    guard let n = v.int, n > 0 else { throw ScenarioError(file: path, key: "damage.inject_garbage_every", message: "must be a positive integer") }
                    spec.injectGarbageEvery = n
                case "truncate_gzip_at_fraction":
                    guard let f = v.float, f > 0, f < 1 else { throw ScenarioError(file: path, key: "damage.truncate_gzip_at_fraction", message: "must be a number in (0,1)") }
                    spec.truncateGzipAtFraction = f
                default: throw ScenarioError(file: path, key: "damage.\(k.string ?? "?")", message: "unknown damage key (truncate_at_fraction, inject_garbage_every, truncate_gzip_at_fraction)")
                }
            }
            s.damage = spec
        }
        if let e = dict["expect"] {
            guard let m = e.mapping else { throw ScenarioError(file: path, key: "expect", message: "must be a mapping") }
            s.expectedDigest = m["digest"]?.string
            s.expect = try Expectations.parse(e, file: path)
        }
        if let mo = dict["model"] { s.model = try ModelSpec.parse(mo, file: path) }
        if let g = dict["golden"] {
            guard let text = g.string, let kind = GoldenKind(rawValue: text) else {
                throw ScenarioError(file: path, key: "golden", message: "must be one of \(GoldenKind.namesText)")
            }
            s.golden = kind
        }
        if let columns = dict["golden_columns"] { s.goldenColumns = try parseGoldenColumns(columns, golden: s.golden, path: path) }
        return s
    }

    /// `golden_columns: {bars: [symbol, timeframe, end_ns, close], anomalies: [...]}`: only with
    /// `golden: digests`; the columns of the graph's files are checked against `GraphOutput.csvHeaders`
    /// here, those of `model_evaluation` when the run wrote the file.
    static func parseGoldenColumns(_ node: Node, golden: GoldenKind, path: String) throws -> [GoldenColumns] {
        guard golden == .digests else {
            throw ScenarioError(file: path, key: "golden_columns",
                                message: "only with golden: digests (full and gzip goldens keep every column)")
        }
        guard let mapping = node.mapping else {
            throw ScenarioError(file: path, key: "golden_columns", message: "must be a mapping like {bars: [symbol, end_ns, close]}")
        }
        var result: [GoldenColumns] = []
        for (k, v) in mapping {
            let name = k.string ?? "?"
            let key = "golden_columns.\(name)"
            guard GoldenColumns.keys.contains(name) else {
                throw ScenarioError(file: path, key: key, message: "unknown file (one of \(GoldenColumns.keys.joined(separator: ", ")))")
            }
            guard let sequence = v.sequence, !sequence.isEmpty else {
                throw ScenarioError(file: path, key: key, message: "must be a non-empty list of column names")
            }
            let known = GraphOutput.csvHeaders[name].map { $0.split(separator: ",").map(String.init) }
            var columns: [String] = []
            for (index, item) in sequence.enumerated() {
                let itemKey = "\(key)[\(index)]"
                guard let column = item.string, !column.isEmpty else {
                    throw ScenarioError(file: path, key: itemKey, message: "must be a column name")
                }
                if let known, !known.contains(column) {
                    throw ScenarioError(file: path, key: itemKey,
                                        message: "no column '\(column)' in \(name).csv (columns: \(known.joined(separator: ", ")))")
                }
                guard !columns.contains(column) else {
                    throw ScenarioError(file: path, key: itemKey, message: "'\(column)' is already listed")
                }
                columns.append(column)
            }
            result.append(GoldenColumns(key: name, columns: columns))
        }
        return result
    }
}
