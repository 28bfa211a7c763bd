import Foundation
import TapeCore
import TapeBacktest
import TapeTrading
import TapeGraph
import TapeReplay
import TapeEngine
import TapeSinks
import TapeModel
import TapeRecordings
import TapeIO
import TapeSources

/// Result of one scenario.
public struct ScenarioResult: Sendable {
    public enum Status: String, Sendable { case passed, failed, error, blessed }
    public var name: String
    public var file: String
    public var status: Status
    public var seconds: Double
    /// nil = no golden digest to compare.
    public var digestMatch: Bool?
    public var digest: String
    public var runDir: String
    /// Readable failure lines (assertions, first differing CSV rows).
    public var failures: [String]
    public init(name: String, file: String, status: Status, seconds: Double, digestMatch: Bool?, digest: String,
                runDir: String, failures: [String]) {
        self.name = name; self.file = file; self.status = status; self.seconds = seconds
        self.digestMatch = digestMatch; self.digest = digest; self.runDir = runDir; self.failures = failures
    }
}

/// Runs scenario files through `runReplay`, compares with goldens in `<dir>/<name>/expected/`,
/// checks `expect:` assertions; `bless` rewrites the goldens.
public struct ScenarioRunner {
    /// Paths in scenario files (recordings, model.path) are relative to this folder (the repo root).
    public var root: String
    /// Run folders go to `<workDir>/<name>/`.
    public var workDir: String
    /// Scenarios run at the same time (2 cores: 2).
    public var parallelism: Int = 2
    /// Max differing rows printed per CSV.
    public var maxDiffRows: Int = 5
    /// Golden files compared (those present in `expected/`); `bless` writes these.
    public static let goldenFiles = ["bars.csv", "indicators.csv", "anomalies.csv", "late_ticks.csv", "predictions.csv",
                                     "model/evaluation.csv", "orders.csv", "fills.csv", "positions.csv", "equity.csv"]

    public init(root: String, workDir: String) { self.root = root; self.workDir = workDir }

    func abs(_ p: String) -> String { p.hasPrefix("/") ? p : (root as NSString).appendingPathComponent(p) }

    /// `<dir of the yaml>/<name>/expected`
    public static func expectedDir(_ s: ScenarioFile) -> String {
        ((s.path as NSString).deletingLastPathComponent as NSString).appendingPathComponent(s.name + "/expected")
    }

    /// All `*.yaml` in a folder, sorted.
    public static func discover(_ dir: String) -> [String] {
        let items = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return items.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted().map { (dir as NSString).appendingPathComponent($0) }
    }

    // MARK: running

    /// What `from`/`to` accept: the times every parser accepts (TimeUtil's range).
    static let userTimeExpected = "expected ISO-8601 UTC or integer ns in \(TimeUtil.acceptedRangeText)"

    /// Runs one scenario (replay [+ training]) into `<workDir>/<name>/`; returns the run summary.
    public func execute(_ s: ScenarioFile) throws -> ReplaySummary {
        let runDir = (workDir as NSString).appendingPathComponent(s.name)
        try? FileManager.default.removeItem(atPath: runDir)
        try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
        var inputs = s.recordings.map(abs)
        if let d = s.damage {
            let dmgDir = (runDir as NSString).appendingPathComponent("damaged-input")
            inputs = try inputs.map { try Damage.apply(d, input: $0, outDir: dmgDir) }
        }
        var o = ReplayOptions(inputs: inputs)
        o.bars = s.bars
        o.outDir = runDir
        o.quiet = true
        o.messagePrinter = { _ in }
        o.hashInputs = s.damage == nil
        if let f = s.format {
            guard let fmt = RecordingFormat(rawValue: f) else {
                throw ScenarioError(file: s.path, key: "format", message: "unknown format '\(f)' (one of: \(RecordingFormat.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            o.format = fmt
        }
        if let f = s.from {
            guard let t = TimeUtil.parseUserTime(f) else {
                throw ScenarioError(file: s.path, key: "from", message: Self.userTimeExpected)
            }
            o.engine.from = t
        }
        if let t = s.to {
            guard let v = TimeUtil.parseUserTime(t) else {
                throw ScenarioError(file: s.path, key: "to", message: Self.userTimeExpected)
            }
            o.engine.to = v
        }
        o.engine.symbols = s.symbols
        if !s.configOverrides.isEmpty {
            do { o.engine.config = try PipelineConfig().merged(overrides: s.configOverrides, source: s.path + " (config)") }
            catch { throw ScenarioError(file: s.path, key: "config", message: "\(error)") }
        }
        var collector: TrainingCollector? = nil
        if let m = s.model {
            if let p = m.path {
                do { o.engine.extraNodes.append(try InferenceNode(modelPath: abs(p))) }
                catch { throw ScenarioError(file: s.path, key: "model.path", message: "\(error)") }
            } else {
                guard let tf = Timeframe(m.timeframe) else { throw ScenarioError(file: s.path, key: "model.train.timeframe", message: "bad timeframe") }
                o.engine.config.addTimeframe(tf)
                let c = TrainingCollector(target: TargetSpec(timeframe: tf, horizon: m.horizon))
                o.extraSinks.append(c)
                collector = c
            }
        }
        // The trading node (config `trading:`): in the pass whose outputs are the scenario's (the second
        // one when a model is trained and predicts).
        func tradingNode() throws -> TradingNode? {
            do { return try TradingSetup.node(for: o.engine.config, source: s.path + " (config)") }
            catch { throw ScenarioError(file: s.path, key: "config.trading", message: "\(error)") }
        }
        let trainsThenPredicts = s.model.map { $0.path == nil && $0.predict } ?? false
        var nodes: [TradingNode] = []
        defer { for node in nodes { _ = TradingSetup.stop(node) } }
        if !trainsThenPredicts, let node = try tradingNode() {
            nodes.append(node)
            o.engine.extraNodes.append(node)
        }
        var summary = try runReplay(o)
        if let c = collector, let m = s.model {
            var cfg = TrainingConfig()
            cfg.params.rounds = m.rounds
            cfg.params.maxDepth = m.maxDepth
            cfg.walkForward = WalkForwardConfig(folds: m.folds, costPerTrade: m.cost)
            cfg.symbolNames = summary.inputSymbols
            let dir = (runDir as NSString).appendingPathComponent("model")
            let t: TrainingSummary
            do { t = try TrainingRun.run(dataset: c.dataset(), config: cfg, outDir: dir) }
            catch { throw ScenarioError(file: s.path, key: "model.train", message: "training failed: \(error)") }
            if m.predict {
                // Second pass: the same replay with the trained model in the graph (predictions.csv; the
                // run folder's CSVs and digest are those of this pass).
                o.extraSinks = []
                do { o.engine.extraNodes = [try InferenceNode(modelPath: t.modelPath)] }
                catch { throw ScenarioError(file: s.path, key: "model.train", message: "trained model does not load: \(error)") }
                if let node = try tradingNode() {
                    nodes.append(node)
                    o.engine.extraNodes.append(node)
                }
                summary = try runReplay(o)
            }
        }
        return summary
    }

    /// Runs and checks one scenario file.
    public func run(file: String) -> ScenarioResult {
        let t0 = Date()
        var res = ScenarioResult(name: ((file as NSString).lastPathComponent as NSString).deletingPathExtension, file: file,
                                 status: .error, seconds: 0, digestMatch: nil, digest: "", runDir: "", failures: [])
        do {
            let s = try ScenarioFile.load(path: file)
            res.name = s.name
            let summary = try execute(s)
            res.runDir = summary.runDir
            res.digest = summary.digest
            res.failures = check(s, summary: summary, digestMatch: &res.digestMatch)
            res.status = res.failures.isEmpty ? .passed : .failed
        } catch {
            res.failures = ["\(error)"]
            res.status = .error
        }
        res.seconds = Date().timeIntervalSince(t0)
        return res
    }

    /// Runs several scenario files, `parallelism` at a time; results in input order.
    public func run(files: [String]) -> [ScenarioResult] {
        var results = [ScenarioResult?](repeating: nil, count: files.count)
        let lock = NSLock()
        var next = 0
        let workers = max(1, min(parallelism, files.count))
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while true {
                lock.lock(); let i = next; next += 1; lock.unlock()
                if i >= files.count { return }
                let r = run(file: files[i])
                lock.lock(); results[i] = r; lock.unlock()
            }
        }
        return results.map { $0! }
    }

    /// Runs the scenario, checks its own assertions (`expect:`, including `expect.digest`), and only
    /// when they all hold rewrites its goldens (`expected/`, in the scenario's `golden:` kind). A
    /// scenario whose assertions fail is refused: status `.failed`, the failed assertions in
    /// `failures`, the goldens left as they were.
    public func bless(file: String) -> ScenarioResult {
        let t0 = Date()
        var res = ScenarioResult(name: file, file: file, status: .error, seconds: 0, digestMatch: nil, digest: "", runDir: "", failures: [])
        do {
            let s = try ScenarioFile.load(path: file)
            res.name = s.name
            let summary = try execute(s)
            res.runDir = summary.runDir
            res.digest = summary.digest
            let own = ownAssertions(s, summary: summary)
            if own.isEmpty {
                try Goldens(scenario: s).write(summary)
                res.status = .blessed
            } else {
                res.status = .failed
                res.failures = ["refused: the scenario's own assertions fail (goldens unchanged):"] + own.map { "  " + $0 }
            }
        } catch {
            res.failures = ["\(error)"]
        }
        res.seconds = Date().timeIntervalSince(t0)
        return res
    }

    /// The scenario's own assertions, those written in its file (`expect:`), without the goldens.
    func ownAssertions(_ s: ScenarioFile, summary: ReplaySummary) -> [String] {
        var failures: [String] = []
        if let digest = s.expectedDigest, digest != summary.digest {
            failures.append("digest: expected \(digest) (expect.digest), got \(summary.digest)")
        }
        return failures + assertions(s, runDir: summary.runDir, summary: summary)
    }

    // MARK: checking

    func check(_ s: ScenarioFile, summary: ReplaySummary, digestMatch: inout Bool?) -> [String] {
        var f: [String] = []
        let exp = ScenarioRunner.expectedDir(s)
        var golden = s.expectedDigest
        if golden == nil, let d = try? String(contentsOfFile: exp + "/digest", encoding: .utf8) {
            golden = d.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if let g = golden {
            digestMatch = g == summary.digest
            if g != summary.digest { f.append("digest: expected \(g), got \(summary.digest)") }
        } else {
            f.append("no golden digest (run `tape scenario bless \(s.name)`)")
        }
        if let text = try? String(contentsOfFile: exp + "/" + ScenarioRunner.symbolDigestsFile, encoding: .utf8) {
            f += ScenarioRunner.compareSymbolDigests(expected: ScenarioRunner.parseSymbolDigests(text),
                                                     actual: summary.digestsBySymbol)
        }
        f += Goldens(scenario: s).compare(summary, blessed: golden != nil, maxRows: maxDiffRows)
        f += assertions(s, runDir: summary.runDir, summary: summary)
        return f
    }

    /// Golden per-symbol digests: one `<symbol> <sha256>` line per symbol, sorted by symbol.
    static let symbolDigestsFile = "digests_by_symbol"

    static func symbolDigestsText(_ digests: [String: String]) -> String {
        digests.keys.sorted().map { "\($0) \(digests[$0]!)\n" }.joined()
    }

    static func parseSymbolDigests(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2 { out[String(parts[0])] = String(parts[1]) }
        }
        return out
    }

    /// Per-symbol comparison: names each symbol whose outputs changed, appeared or disappeared. A global
    /// digest can change with the interleaving of symbols (partitioned runs); these may not.
    public static func compareSymbolDigests(expected: [String: String], actual: [String: String]) -> [String] {
        var failures: [String] = []
        for symbol in Set(expected.keys).union(actual.keys).sorted() {
            switch (expected[symbol], actual[symbol]) {
            case let (wanted?, got?) where wanted != got:
                failures.append("digest of \(symbol): expected \(wanted), got \(got)")
            case (_?, nil): failures.append("digest of \(symbol): expected outputs, got none")
            case (nil, _?): failures.append("digest of \(symbol): outputs, but none expected")
            default: break
            }
        }
        return failures
    }

    static func lines(_ p: String) -> [String] {
        guard let t = try? String(contentsOfFile: p, encoding: .utf8) else { return [] }
        var l = t.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if l.last == "" { l.removeLast() }
        return l
    }

    /// First differing rows of a CSV: row numbers are 1-based data rows (the header is row 0).
    public static func diff(name: String, expected: [String], actual: [String], maxRows: Int = 5) -> [String] {
        if expected == actual { return [] }
        var out = ["\(name): differs (expected \(max(0, expected.count - 1)) rows, got \(max(0, actual.count - 1)))"]
        var shown = 0
        for i in 0..<max(expected.count, actual.count) where shown < maxRows {
            let e = i < expected.count ? expected[i] : "<missing>"
            let a = i < actual.count ? actual[i] : "<missing>"
            if e != a {
                var label = i == 0 ? "header" : "row \(i)"
                if i > 0, i < expected.count, i < actual.count {
                    let h = expected[0].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                    let ec = e.split(separator: ",", omittingEmptySubsequences: false), ac = a.split(separator: ",", omittingEmptySubsequences: false)
                    let cols = (0..<max(ec.count, ac.count)).filter { j in (j < ec.count ? ec[j] : "") != (j < ac.count ? ac[j] : "") }
                        .map { $0 < h.count ? h[$0] : "#\($0)" }
                    label += " (\(cols.joined(separator: ", ")))"
                }
                out.append("  \(label):\n    expected: \(e)\n    actual:   \(a)")
                shown += 1
            }
        }
        return out
    }

    func assertions(_ s: ScenarioFile, runDir: String, summary: ReplaySummary) -> [String] {
        var f: [String] = []
        let x = s.expect
        if let c = x.exitCode, c != summary.exitCode { f.append("exit_code: expected \(c), got \(summary.exitCode)") }
        if !x.anomalies.isEmpty {
            var byRule: [String: Int] = [:]
            let t = ScenarioRunner.lines(runDir + "/anomalies.csv")
            let cols = t.first?.split(separator: ",", omittingEmptySubsequences: false).map(String.init) ?? []
            if let ri = cols.firstIndex(of: "rule") {
                for l in t.dropFirst() {
                    let r = l.split(separator: ",", omittingEmptySubsequences: false)
                    if ri < r.count { byRule[String(r[ri]), default: 0] += 1 }
                }
            }
            for (rule, spec) in x.anomalies {
                let n = rule == "total" ? byRule.values.reduce(0, +) : byRule[rule] ?? 0
                if !spec.check(Double(n)) { f.append("anomalies.\(rule): expected \(spec.text), got \(n)") }
            }
        }
        for (reason, spec) in x.rejects {
            let n = reason == "total" ? summary.ticksRejected : summary.rejectsByReason[reason] ?? 0
            if !spec.check(Double(n)) { f.append("rejects.\(reason): expected \(spec.text), got \(n) (all: \(summary.rejectsByReason.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")))") }
        }
        if !x.counts.isEmpty {
            var j: [String: Any] = [:]
            if let d = FileManager.default.contents(atPath: runDir + "/summary.json"),
               let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any] { j = o }
            for (k, spec) in x.counts {
                var v: Double? = nil
                if k.hasPrefix("events.") { v = (j["events_out_by_kind"] as? [String: Any])?[String(k.dropFirst(7))].flatMap { ($0 as? NSNumber)?.doubleValue } }
                else if k.hasPrefix("skipped.") { v = (j["skipped"] as? [String: Any])?[String(k.dropFirst(8))].flatMap { ($0 as? NSNumber)?.doubleValue } ?? 0 }
                else { v = (j[k] as? NSNumber)?.doubleValue }
                guard let val = v else { f.append("counts.\(k): not in summary.json"); continue }
                if !spec.check(val) { f.append("counts.\(k): expected \(spec.text), got \(fmtNum(val))") }
            }
        }
        if !x.metrics.isEmpty {
            let t = ScenarioRunner.lines(runDir + "/model/evaluation.csv")
            let cols = t.first?.split(separator: ",", omittingEmptySubsequences: false).map(String.init) ?? []
            let overall = t.dropFirst().last { $0.hasPrefix("overall,") }?.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            for (k, spec) in x.metrics {
                guard let o = overall, let i = cols.firstIndex(of: k), i < o.count, let v = Double(o[i]) else {
                    f.append("metrics.\(k): no value in model/evaluation.csv (overall row)"); continue
                }
                if !spec.check(v) { f.append("metrics.\(k): expected \(spec.text), got \(v)") }
            }
        }
        if !x.trading.isEmpty {
            var metrics: [String: Any] = [:]
            if let d = FileManager.default.contents(atPath: runDir + "/summary.json"),
               let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any] { metrics = o["trading"] as? [String: Any] ?? [:] }
            if metrics.isEmpty { f.append("trading: no trading metrics in summary.json (does the config have a trading: section?)") }
            for (k, spec) in x.trading where !metrics.isEmpty {
                guard let v = (metrics[k] as? NSNumber)?.doubleValue else {
                    f.append("trading.\(k): not a number in summary.json trading (\(metrics.keys.sorted().joined(separator: ", ")))"); continue
                }
                if !spec.check(v) { f.append("trading.\(k): expected \(spec.text), got \(v)") }
            }
        }
        for va in x.values {
            let t = ScenarioRunner.lines(runDir + "/" + va.file)
            let cols = t.first?.split(separator: ",", omittingEmptySubsequences: false).map(String.init) ?? []
            let desc = "\(va.file)[\(va.whereColumns.map { "\($0.0)=\($0.1)" }.joined(separator: ","))].\(va.column)"
            guard let ci = cols.firstIndex(of: va.column) else { f.append("values: \(desc): no column \(va.column)"); continue }
            let wi = va.whereColumns.map { (cols.firstIndex(of: $0.0), $0.1) }
            if wi.contains(where: { $0.0 == nil }) { f.append("values: \(desc): unknown where column"); continue }
            let row = t.dropFirst().lazy.map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
                .first { r in wi.allSatisfy { $0.0! < r.count && r[$0.0!] == $0.1 } }
            guard let r = row else { f.append("values: \(desc): no matching row"); continue }
            guard ci < r.count, let v = Double(r[ci]) else { f.append("values: \(desc): empty"); continue }
            if Swift.abs(v - va.value) > va.tolerance { f.append("values: \(desc): expected \(va.value) ± \(va.tolerance), got \(v)") }
        }
        return f
    }

    // MARK: output

    /// The result table printed by `tape scenario run`.
    public static func table(_ rs: [ScenarioResult]) -> String {
        let w = max(8, rs.map(\.name.count).max() ?? 0)
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        var out = pad("scenario", w) + "  status   seconds  digest\n"
        for r in rs {
            let dm = r.digestMatch.map { $0 ? "match" : "MISMATCH" } ?? "-"
            out += pad(r.name, w) + "  " + pad(r.status.rawValue, 7) + "  " + pad(String(format: "%7.2f", r.seconds), 7) + "  " + dm + "\n"
        }
        let failed = rs.filter { $0.status == .failed || $0.status == .error }
        for r in failed {
            out += "\n--- \(r.name) (\(r.file)) \(r.status.rawValue)\n"
            out += r.failures.joined(separator: "\n") + "\n"
        }
        out += "\n\(rs.count - failed.count)/\(rs.count) passed\n"
        return out
    }

    /// JUnit XML (one testsuite `tape-scenarios`, one testcase per scenario).
    public static func junit(_ rs: [ScenarioResult]) -> String {
        func x(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        let fails = rs.filter { $0.status == .failed }.count
        let errs = rs.filter { $0.status == .error }.count
        let total = rs.reduce(0.0) { $0 + $1.seconds }
        var o = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        o += "<testsuites tests=\"\(rs.count)\" failures=\"\(fails)\" errors=\"\(errs)\" time=\"\(String(format: "%.3f", total))\">\n"
        o += "  <testsuite name=\"tape-scenarios\" tests=\"\(rs.count)\" failures=\"\(fails)\" errors=\"\(errs)\" time=\"\(String(format: "%.3f", total))\">\n"
        for r in rs {
            o += "    <testcase classname=\"scenarios\" name=\"\(x(r.name))\" file=\"\(x(r.file))\" time=\"\(String(format: "%.3f", r.seconds))\""
            switch r.status {
            case .passed, .blessed: o += "/>\n"
            case .failed:
                o += ">\n      <failure message=\"\(x(r.failures.first ?? "failed"))\">\(x(r.failures.joined(separator: "\n")))</failure>\n    </testcase>\n"
            case .error:
                o += ">\n      <error message=\"\(x(r.failures.first ?? "error"))\">\(x(r.failures.joined(separator: "\n")))</error>\n    </testcase>\n"
            }
        }
        o += "  </testsuite>\n</testsuites>\n"
        return o
    }

    public static func writeJUnit(_ rs: [ScenarioResult], to path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try junit(rs).write(toFile: path, atomically: true, encoding: .utf8)
    }
}
