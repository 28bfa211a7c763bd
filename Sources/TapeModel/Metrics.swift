#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Evaluation metrics of predictions `p` against realised targets `y` (same length).
/// Definitions (also in docs/model.md):
/// - rmse = sqrt(mean((p−y)²)); rmse_baseline = sqrt(mean(y²)) (the zero-return forecast).
/// - mae = mean|p−y|; mae_baseline = mean|y|.
/// - directional_accuracy = share of rows with y ≠ 0 where p·y > 0 (p = 0 counts as wrong); NaN if no such row.
/// - ic = Spearman rank correlation of p and y (ties get their average rank; NaN if either is constant).
/// - cum_return = Σ sign(p_t)·y_t / H (H = target horizon; for H = 1 the strategy's log return).
/// - cum_return_after_cost = cum_return − cost · Σ|sign(p_t) − sign(p_{t−1})| / H, position 0 before the
///   first row (entering costs 1·cost, a flip long↔short 2·cost, going flat 1·cost; no final exit).
public enum Metrics {
    public static func rmse(_ p: [Double], _ y: [Double]) -> Double {
        guard !p.isEmpty else { return .nan }
        var s = 0.0
        for i in p.indices { let d = p[i] - y[i]; s += d * d }
        return (s / Double(p.count)).squareRoot()
    }

    public static func mae(_ p: [Double], _ y: [Double]) -> Double {
        guard !p.isEmpty else { return .nan }
        var s = 0.0
        for i in p.indices { s += abs(p[i] - y[i]) }
        return s / Double(p.count)
    }

    public static func directionalAccuracy(_ p: [Double], _ y: [Double]) -> Double {
        var n = 0, hit = 0
        for i in p.indices where y[i] != 0 {
            n += 1
            if p[i] * y[i] > 0 { hit += 1 }
        }
        return n == 0 ? .nan : Double(hit) / Double(n)
    }

    /// Ranks 1...n, ties get the average of the ranks they span.
    public static func averageRanks(_ x: [Double]) -> [Double] {
        let idx = x.indices.sorted { x[$0] < x[$1] || (x[$0] == x[$1] && $0 < $1) }
        var r = [Double](repeating: 0, count: x.count)
        var i = 0
        while i < idx.count {
            var j = i
            while j + 1 < idx.count && x[idx[j + 1]] == x[idx[i]] { j += 1 }
            let avg = Double(i + j) / 2 + 1
            for k in i...j { r[idx[k]] = avg }
            i = j + 1
        }
        return r
    }

    public static func pearson(_ a: [Double], _ b: [Double]) -> Double {
        let n = Double(a.count)
        guard a.count > 1 else { return .nan }
        let ma = a.reduce(0, +) / n, mb = b.reduce(0, +) / n
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for i in a.indices {
            let da = a[i] - ma, db = b[i] - mb
            sab += da * db; saa += da * da; sbb += db * db
        }
        if saa == 0 || sbb == 0 { return .nan }
        return sab / (saa * sbb).squareRoot()
    }

    /// Spearman rank correlation (ties averaged).
    public static func spearman(_ a: [Double], _ b: [Double]) -> Double {
        pearson(averageRanks(a), averageRanks(b))
    }

    @inline(__always) static func sign(_ v: Double) -> Double { v > 0 ? 1 : (v < 0 ? -1 : 0) }

    /// (cum_return, cum_return_after_cost) of trading sign(p).
    public static func strategyReturns(_ p: [Double], _ y: [Double], costPerTrade: Double, horizon: Int = 1) -> (Double, Double) {
        var gross = 0.0, turnover = 0.0, pos = 0.0
        for i in p.indices {
            let s = sign(p[i])
            turnover += abs(s - pos)
            pos = s
            gross += s * y[i]
        }
        let h = Double(max(horizon, 1))
        return (gross / h, (gross - costPerTrade * turnover) / h)
    }
}

/// One evaluation: metrics of predictions against targets on a set of rows.
public struct EvalMetrics: Sendable, Equatable {
    public var n: Int
    public var rmse: Double
    public var rmseBaseline: Double
    public var mae: Double
    public var maeBaseline: Double
    public var directionalAccuracy: Double
    public var ic: Double
    public var cumReturn: Double
    public var cumReturnAfterCost: Double

    public init(predictions p: [Double], targets y: [Double], costPerTrade: Double, horizon: Int = 1) {
        precondition(p.count == y.count)
        n = p.count
        let zeros = [Double](repeating: 0, count: y.count)
        rmse = Metrics.rmse(p, y)
        rmseBaseline = Metrics.rmse(zeros, y)
        mae = Metrics.mae(p, y)
        maeBaseline = Metrics.mae(zeros, y)
        directionalAccuracy = Metrics.directionalAccuracy(p, y)
        ic = Metrics.spearman(p, y)
        (cumReturn, cumReturnAfterCost) = Metrics.strategyReturns(p, y, costPerTrade: costPerTrade, horizon: horizon)
    }
}
