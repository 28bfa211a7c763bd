import TapeCore
import TapeGraph
import Foundation

/// What the model predicts: the forward log return log(close[t+H] / close[t]) over `horizon` bars of
/// `timeframe` (bars counted per symbol; t+H is the H-th later bar row of that symbol).
public struct TargetSpec: Sendable, Equatable {
    public var timeframe: Timeframe
    public var horizon: Int
    public init(timeframe: Timeframe = Timeframe(seconds: 60), horizon: Int = 1) {
        precondition(horizon >= 1)
        self.timeframe = timeframe; self.horizon = horizon
    }
}

/// XGBoost training parameters. Training is deterministic: `nthread` 1, fixed `seed`.
public struct ModelParams: Sendable, Equatable {
    public var rounds = 200
    public var maxDepth = 4
    public var eta = 0.05
    public var subsample = 0.8
    public var colsampleByTree = 1.0
    public var minChildWeight = 5.0
    public var lambda = 1.0
    public var alpha = 0.0
    public var gamma = 0.0
    /// `hist` or `exact`.
    public var treeMethod = "hist"
    public var maxBin = 256
    public var seed = 42
    /// nil: the mean of the training targets (libxgboost 1.7 would otherwise start from 0.5).
    public var baseScore: Double? = nil
    public init() {}

    /// The XGBoost parameters, in a fixed order (`base_score` appended at training time).
    public var xgboostParams: [(String, String)] {
        let f = Numbers.format
        return [
            ("objective", "reg:squarederror"), ("booster", "gbtree"), ("tree_method", treeMethod),
            ("max_depth", String(maxDepth)), ("eta", f(eta)), ("subsample", f(subsample)),
            ("colsample_bytree", f(colsampleByTree)), ("min_child_weight", f(minChildWeight)),
            ("lambda", f(lambda)), ("alpha", f(alpha)), ("gamma", f(gamma)), ("max_bin", String(maxBin)),
            ("seed", String(seed)), ("nthread", "1"), ("verbosity", "0"),
        ]
    }
}

/// Feature rows with their targets (NaN when not known: the last H rows of each symbol).
public struct Dataset: Sendable {
    public var rows: [FeatureRow]
    public var targets: [Double]
    /// Bar end of the bar whose close resolves the target (`Int64.max` when there is none).
    public var targetEnds: [Nanos]
    public var target: TargetSpec
    public init(rows: [FeatureRow], targets: [Double], targetEnds: [Nanos], target: TargetSpec) {
        precondition(rows.count == targets.count && rows.count == targetEnds.count)
        self.rows = rows; self.targets = targets; self.targetEnds = targetEnds; self.target = target
    }

    /// Builds targets from rows that are in time order per symbol.
    public init(rows: [FeatureRow], target: TargetSpec) {
        var bySym: [SymbolID: [Int]] = [:]
        for (i, r) in rows.enumerated() { bySym[r.symbol, default: []].append(i) }
        var t = [Double](repeating: .nan, count: rows.count)
        var te = [Nanos](repeating: .max, count: rows.count)
        for (_, idx) in bySym {
            for k in 0..<idx.count where k + target.horizon < idx.count {
                let a = rows[idx[k]], b = rows[idx[k + target.horizon]]
                t[idx[k]] = Foundation.log(b.close / a.close)
                te[idx[k]] = b.end
            }
        }
        self.init(rows: rows, targets: t, targetEnds: te, target: target)
    }

    public var count: Int { rows.count }

    /// Indices of rows with a known, finite target.
    public var labelled: [Int] { targets.indices.filter { targets[$0].isFinite } }

    /// FNV-1a 64 over every row's symbol, end, close, feature values and target (bit patterns).
    public var digest: String {
        var h = FNV64()
        for (i, r) in rows.enumerated() {
            h.add(UInt64(r.symbol)); h.add(UInt64(bitPattern: r.end)); h.add(r.close.bitPattern)
            for v in r.values { h.add(v.bitPattern) }
            h.add(targets[i].bitPattern)
        }
        return h.hex
    }
}

struct FNV64 {
    var h: UInt64 = 0xcbf29ce484222325
    mutating func add(_ v: UInt64) {
        var x = v
        for _ in 0..<8 { h = (h ^ (x & 0xff)) &* 0x100000001b3; x >>= 8 }
    }
    mutating func add(_ s: String) { for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 } }
    var hex: String { let s = String(h, radix: 16); return "fnv1a64:" + String(repeating: "0", count: 16 - s.count) + s }
}

/// A sink that collects feature rows of one timeframe during a replay (pass it in
/// `ReplayOptions.extraSinks`), then gives the `Dataset` with forward-return targets.
public final class TrainingCollector: GraphSink {
    public let target: TargetSpec
    public let symbols: Set<SymbolID>?
    private let builder: FeatureBuilder
    public private(set) var rows: [FeatureRow] = []

    public init(target: TargetSpec = TargetSpec(), symbols: Set<SymbolID>? = nil) {
        self.target = target
        self.symbols = symbols
        self.builder = FeatureBuilder(timeframes: [target.timeframe])
    }

    public func emit(_ output: GraphOutput) {
        if let r = builder.consume(output) {
            if let s = symbols, !s.contains(r.symbol) { return }
            rows.append(r)
        }
    }

    /// Rows (ordered by bar end, then symbol) with targets.
    public func dataset() -> Dataset {
        let sorted = rows.enumerated().sorted { a, b in
            a.element.end != b.element.end ? a.element.end < b.element.end
                : (a.element.symbol != b.element.symbol ? a.element.symbol < b.element.symbol : a.offset < b.offset)
        }.map { $0.element }
        return Dataset(rows: sorted, target: target)
    }
}

public enum ModelTrainer {
    /// Row-major float32 matrix of the given rows.
    public static func matrix(_ rows: [FeatureRow], _ idx: [Int]? = nil, labels: [Double]? = nil) throws -> DMatrix {
        let sel = idx ?? Array(rows.indices)
        let cols = FeatureBuilder.featureCount
        var flat = [Float](); flat.reserveCapacity(sel.count * cols)
        for i in sel {
            precondition(rows[i].values.count == cols, "feature row of wrong width")
            for v in rows[i].values { flat.append(Float(v)) }
        }
        return try DMatrix(values: flat, rows: sel.count, cols: cols, labels: labels.map { l in sel.map { Float(l[$0]) } })
    }

    /// Trains on the given rows (rows with a non-finite target are skipped). Deterministic.
    public static func train(rows: [FeatureRow], targets: [Double], params: ModelParams = ModelParams()) throws -> Booster {
        precondition(rows.count == targets.count)
        let idx = targets.indices.filter { targets[$0].isFinite }
        guard !idx.isEmpty else { throw ModelError("no rows with a target to train on") }
        let d = try matrix(rows, idx, labels: targets)
        let b = try Booster(training: [d])
        for (k, v) in params.xgboostParams { try b.setParam(k, v) }
        try b.setParam("base_score", Numbers.format(resolvedBaseScore(params, idx.map { targets[$0] })))
        try b.setFeatureNames(FeatureBuilder.featureNames)
        for i in 0..<params.rounds { try b.updateOneIter(i, d) }
        return b
    }

    static func resolvedBaseScore(_ p: ModelParams, _ y: [Double]) -> Double {
        if let b = p.baseScore { return b }
        // float32 like XGBoost stores it, so the text round-trips exactly
        return Double(Float(y.reduce(0, +) / Double(y.count)))
    }

    public static func predict(_ booster: Booster, rows: [FeatureRow], _ idx: [Int]? = nil) throws -> [Double] {
        let sel = idx ?? Array(rows.indices)
        if sel.isEmpty { return [] }
        return try booster.predict(matrix(rows, sel)).map(Double.init)
    }
}

/// Walk-forward evaluation settings.
public struct WalkForwardConfig: Sendable, Equatable {
    public var folds = 5
    /// Rolling training window length (ns); nil = expanding (train from the first row).
    public var trainSpan: Nanos? = nil
    /// Test window length (ns); nil = the labelled time range split evenly (see `WalkForward`).
    public var testSpan: Nanos? = nil
    /// Cost per unit of position change, in log-return units (0.0005 = 5 bp).
    public var costPerTrade = 0.0005
    public init(folds: Int = 5, trainSpan: Nanos? = nil, testSpan: Nanos? = nil, costPerTrade: Double = 0.0005) {
        self.folds = folds; self.trainSpan = trainSpan; self.testSpan = testSpan; self.costPerTrade = costPerTrade
    }
}

public struct FoldResult: Sendable, Equatable {
    /// nil for the overall row.
    public var fold: Int?
    public var trainStart: Nanos
    public var trainEnd: Nanos
    public var testStart: Nanos
    public var testEnd: Nanos
    public var nTrain: Int
    public var nTest: Int
    public var metrics: EvalMetrics

    public var csvRow: String {
        let f = Numbers.format
        let m = metrics
        return "\(fold.map(String.init) ?? "overall"),\(trainStart),\(trainEnd),\(testStart),\(testEnd),\(nTrain),\(nTest),"
            + "\(f(m.rmse)),\(f(m.rmseBaseline)),\(f(m.mae)),\(f(m.maeBaseline)),\(f(m.directionalAccuracy)),\(f(m.ic)),"
            + "\(f(m.cumReturn)),\(f(m.cumReturnAfterCost))"
    }
}

/// One out-of-sample prediction of the walk-forward: the test row `row` (an index into the dataset) as
/// predicted by the model of `fold`, which never saw it.
public struct OutOfSamplePrediction: Sendable, Equatable {
    public var row: Int
    public var fold: Int
    public var prediction: Double
    public var target: Double
}

public struct WalkForwardResult: Sendable {
    public var folds: [FoldResult]
    public var overall: FoldResult
    /// Every test row of every fold, fold by fold, in dataset order within a fold.
    public var outOfSample: [OutOfSamplePrediction] = []
    public static let csvHeader = "fold,train_start_ns,train_end_ns,test_start_ns,test_end_ns,n_train,n_test,rmse,rmse_baseline,mae,mae_baseline,directional_accuracy,ic,cum_return,cum_return_after_cost"
    /// `evaluation.csv` text (header, one row per fold, `overall` last).
    public var csv: String { ([WalkForwardResult.csvHeader] + folds.map(\.csvRow) + [overall.csvRow]).joined(separator: "\n") + "\n" }
}

/// Walk-forward evaluation by time. Times are row (bar end) times; windows are half-open [start, end).
///
/// Let T0 = first and T1 = last labelled row time + one bar. Test windows are `folds` consecutive windows
/// of length S ending at T1: S = `testSpan`, or (T1 − T0 − trainSpan) / folds with a rolling
/// `trainSpan`, or (T1 − T0) / (folds + 1) when expanding, the last two rounded down to whole bars. Fold k trains on rows in
/// [testStart − trainSpan, testStart) (or [T0, testStart) when expanding) whose target is resolved by
/// testStart (targetEnd ≤ testStart: no label overlaps the test window), then predicts its test rows.
public enum WalkForward {
    public static func evaluate(_ data: Dataset, params: ModelParams = ModelParams(),
                                config: WalkForwardConfig = WalkForwardConfig()) throws -> WalkForwardResult {
        let lab = data.labelled
        guard lab.count >= 2, config.folds >= 1 else { throw ModelError("not enough labelled rows (\(lab.count)) for walk-forward") }
        let t0 = lab.map { data.rows[$0].end }.min()!
        let bar = data.target.timeframe.nanos
        let t1 = lab.map { data.rows[$0].end }.max()! + bar
        var span: Nanos
        if let s = config.testSpan { span = s }
        else if let tr = config.trainSpan { span = (t1 - t0 - tr) / Nanos(config.folds) }
        else { span = (t1 - t0) / Nanos(config.folds + 1) }
        if config.testSpan == nil && span >= bar { span -= span % bar }  // windows on bar boundaries
        let firstTest = t1 - span * Nanos(config.folds)
        guard span > 0, firstTest > t0 else { throw ModelError("walk-forward windows do not fit the data (span \(span) ns)") }

        var folds: [FoldResult] = []
        var allP: [Double] = [], allY: [Double] = []
        var outOfSample: [OutOfSamplePrediction] = []
        for k in 0..<config.folds {
            let testStart = firstTest + Nanos(k) * span
            let testEnd = k == config.folds - 1 ? t1 : testStart + span
            let trainStart = config.trainSpan.map { max(t0, testStart - $0) } ?? t0
            let trainIdx = lab.filter { let r = data.rows[$0]; return r.end >= trainStart && r.end < testStart && data.targetEnds[$0] <= testStart }
            let testIdx = lab.filter { let e = data.rows[$0].end; return e >= testStart && e < testEnd }
            guard !trainIdx.isEmpty else { throw ModelError("fold \(k): no training rows") }
            let b = try ModelTrainer.train(rows: trainIdx.map { data.rows[$0] }, targets: trainIdx.map { data.targets[$0] }, params: params)
            let p = try ModelTrainer.predict(b, rows: data.rows, testIdx)
            let y = testIdx.map { data.targets[$0] }
            allP += p; allY += y
            for (position, row) in testIdx.enumerated() {
                outOfSample.append(OutOfSamplePrediction(row: row, fold: k, prediction: p[position], target: y[position]))
            }
            folds.append(FoldResult(fold: k, trainStart: trainStart, trainEnd: testStart, testStart: testStart, testEnd: testEnd,
                                    nTrain: trainIdx.count, nTest: testIdx.count,
                                    metrics: EvalMetrics(predictions: p, targets: y, costPerTrade: config.costPerTrade,
                                                         horizon: data.target.horizon)))
        }
        let overall = FoldResult(fold: nil, trainStart: folds.first!.trainStart, trainEnd: folds.last!.trainEnd,
                                 testStart: folds.first!.testStart, testEnd: folds.last!.testEnd,
                                 nTrain: folds.reduce(0) { $0 + $1.nTrain }, nTest: allP.count,
                                 metrics: EvalMetrics(predictions: allP, targets: allY, costPerTrade: config.costPerTrade,
                                                      horizon: data.target.horizon))
        assert(outOfSample.count == overall.nTest)
        return WalkForwardResult(folds: folds, overall: overall, outOfSample: outOfSample)
    }
}
