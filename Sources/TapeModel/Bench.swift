import TapeCore
import TapeGraph
import Foundation

/// Benchmarks for `make bench`: inference cost per bar and training time, on deterministic synthetic
/// 1-minute bars (a random walk from a fixed-seed generator) with simple indicators.
public enum ModelBench {
    public struct Result: Sendable {
        public var name: String
        public var count: Int
        public var seconds: Double
        /// ns per bar (inference) or per row·round (training).
        public var nsPerUnit: Double
        public var line: String { "\(name): \(count) in \(String(format: "%.3f", seconds)) s, \(String(format: "%.0f", nsPerUnit)) ns/unit" }
    }

    /// `.bar` + `.indicators` outputs of `n` synthetic 1-minute bars for symbol 1 (deterministic).
    public static func syntheticOutputs(bars n: Int, seed: UInt64 = 7, start: Nanos = 1_640_995_200_000_000_000) -> [GraphOutput] {
        var s = seed &* 6364136223846793005 &+ 1442695040888963407
        func u() -> Double { s = s &* 6364136223846793005 &+ 1442695040888963407; return Double(s >> 11) / Double(1 << 53) }
        var out: [GraphOutput] = []; out.reserveCapacity(2 * n)
        var close = 40000.0, ema = close, sma = [Double]()
        var gain = 0.0, loss = 0.0, ema12 = close, ema26 = close, sig = 0.0
        let tf = Timeframe(seconds: 60)
        for i in 0..<n {
            let r = (u() - 0.5) * 0.004 + (i > 0 ? 0.1 * ((u() - 0.5) * 0.001) : 0)
            let open = close
            close = open * Foundation.exp(r)
            let hi = max(open, close) * (1 + u() * 0.001), lo = min(open, close) * (1 - u() * 0.001)
            let end = start + Nanos(i + 1) * tf.nanos
            out.append(.bar(BarOutput(symbol: 1, timeframe: tf, start: end - tf.nanos, end: end, open: open, high: hi, low: lo,
                                      close: close, volume: 100 + 1000 * u(), vwap: (hi + lo + close) / 3, trades: 10)))
            sma.append(close); if sma.count > 20 { sma.removeFirst() }
            ema += (close - ema) * 2 / 21
            let ch = close - open
            gain = (gain * 13 + max(ch, 0)) / 14; loss = (loss * 13 + max(-ch, 0)) / 14
            ema12 += (close - ema12) * 2 / 13; ema26 += (close - ema26) * 2 / 27
            let macd = ema12 - ema26; sig += (macd - sig) * 0.2
            var ind = IndicatorOutput(symbol: 1, timeframe: tf, end: end)
            if sma.count == 20 {
                let m = sma.reduce(0, +) / 20
                let sd = (sma.map { ($0 - m) * ($0 - m) }.reduce(0, +) / 20).squareRoot()
                ind.sma = m; ind.bbMiddle = m; ind.bbUpper = m + 2 * sd; ind.bbLower = m - 2 * sd
            }
            if i >= 20 { ind.ema = ema; ind.rsi = loss == 0 ? 100 : 100 - 100 / (1 + gain / loss) }
            if i >= 33 { ind.macd = macd; ind.macdSignal = sig; ind.macdHist = macd - sig }
            out.append(.indicators(ind))
        }
        return out
    }

    static func now() -> Double { Date().timeIntervalSince1970 }

    /// Trains a model on `trainBars` synthetic bars (`rounds` rounds), then runs an `InferenceNode` over
    /// `bars` further bars. Returns (training, inference per bar).
    public static func run(trainBars: Int = 20_000, rounds: Int = 200, bars: Int = 50_000) throws -> [Result] {
        let train = syntheticOutputs(bars: trainBars)
        let c = TrainingCollector()
        for o in train { c.emit(o) }
        let ds = c.dataset()
        var p = ModelParams(); p.rounds = rounds
        let t0 = now()
        let b = try ModelTrainer.train(rows: ds.rows, targets: ds.targets, params: p)
        let t1 = now()
        let meta = ModelMeta(featureNames: FeatureBuilder.featureNames, target: ds.target)
        let test = syntheticOutputs(bars: bars, seed: 99)
        var results: [Result] = []
        for useEnsemble in [true, false] {
            let node = try InferenceNode(booster: b, meta: meta, useEnsemble: useEnsemble)
            var nPred = 0
            let t2 = now()
            for o in test { node.process(o) { _ in nPred += 1 } }
            let t3 = now()
            results.append(Result(name: "model.inference per bar (features + \(useEnsemble ? "Swift tree evaluator" : "XGBoost in-place predict"), \(rounds) trees)",
                                  count: nPred, seconds: t3 - t2, nsPerUnit: (t3 - t2) * 1e9 / Double(max(nPred, 1))))
        }
        return [
            Result(name: "model.train (\(ds.labelled.count) rows x \(rounds) rounds, 1 thread)", count: ds.labelled.count,
                   seconds: t1 - t0, nsPerUnit: (t1 - t0) * 1e9 / Double(ds.labelled.count * rounds)),
        ] + results
    }
}
