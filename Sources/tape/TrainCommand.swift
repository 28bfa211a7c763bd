import ArgumentParser
import Foundation
import TapeCore
import TapeGraph
import TapeReplay
import TapeEngine
import TapeSinks
import TapeIO
import TapeSources
import TapeModel

/// `tape train`: replay recordings through the graph (bars + indicators), collect one feature row per
/// bar close of `--timeframe`, evaluate walk-forward and train the final model. Writes the replay's run
/// folder plus `<run>/model/{model.json, model.meta.json, evaluation.csv, training.json}`.
/// A thin wrapper over `TrainingCollector` + `TrainingRun.run` (TapeModel).
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train the gradient-boosted price model on recordings (walk-forward evaluation + final model).")

    @OptionGroup var input: InputOptions

    @Flag(help: "Do not write the HTML report.")
    var noReport = false

    @Option(help: "Run folder (default reports/<run-id>/); the model goes to <run>/model/.")
    var out: String?
    @Option(help: "Bar timeframe of features and target (30s, 1m, 5m, ...).")
    var timeframe: String = "1m"
    @Option(help: "Target horizon in bars: log(close[t+H] / close[t]).")
    var horizon: Int = 1
    @Option(help: "Boosting rounds.") var rounds: Int = ModelParams().rounds
    @Option(help: "Tree depth.") var maxDepth: Int = ModelParams().maxDepth
    @Option(help: "Learning rate.") var eta: Double = ModelParams().eta
    @Option(help: "Row subsample per tree.") var subsample: Double = ModelParams().subsample
    @Option(help: "Minimum hessian (rows) per leaf.") var minChildWeight: Double = ModelParams().minChildWeight
    @Option(help: "L2 regularisation.") var lambda: Double = ModelParams().lambda
    @Option(help: "Random seed.") var seed: Int = ModelParams().seed
    @Option(help: "hist or exact.") var treeMethod: String = ModelParams().treeMethod
    @Option(help: "Walk-forward folds.") var folds: Int = 5
    @Option(help: "Rolling training window (e.g. 7d, 12h); default: expanding from the first row.")
    var trainSpan: String?
    @Option(help: "Test window per fold (e.g. 1d); default: the data split evenly.")
    var testSpan: String?
    @Option(help: "Cost per unit of position change, in log-return units (0.0005 = 5 bp).")
    var cost: Double = 0.0005
    @Flag(help: "No progress line and no per-reject messages on stderr.") var quiet = false

    func span(_ s: String?, _ name: String) throws -> Nanos? {
        guard let s else { return nil }
        guard let t = Timeframe(s) else { throw ValidationError("--\(name) '\(s)': expected e.g. 90m, 12h, 7d") }
        return t.nanos
    }

    /// Fewer labelled rows than this: `tape train` refuses (exit 4).
    static let minimumLabelledRows = 50
    /// Fewer than this: a warning that the evaluation is thin.
    static let thinLabelledRows = 500

    mutating func run() throws {
        guard let tf = Timeframe(timeframe) else { throw ValidationError("--timeframe '\(timeframe)': expected e.g. 1m, 5m") }
        guard horizon >= 1 else { throw ValidationError("--horizon must be >= 1") }
        var o: ReplayOptions
        do { o = try input.replayOptions() } catch let e as UnusableInput { fail(e.description, code: TapeExit.unusableInput) }
        o.engine.config.addTimeframe(tf)
        o.outDir = out
        o.quiet = quiet
        let target = TargetSpec(timeframe: tf, horizon: horizon)
        let collector = TrainingCollector(target: target)
        o.extraSinks.append(collector)
        let s: ReplaySummary
        do { s = try runReplay(o) }
        catch let e as UnusableInput { fail(e.description, code: TapeExit.unusableInput) }
        catch let e as OutputFailed { fail(e.description, code: TapeExit.outputFailed) }

        var cfg = TrainingConfig()
        cfg.params.rounds = rounds; cfg.params.maxDepth = maxDepth; cfg.params.eta = eta
        cfg.params.subsample = subsample; cfg.params.minChildWeight = minChildWeight; cfg.params.lambda = lambda
        cfg.params.seed = seed; cfg.params.treeMethod = treeMethod
        cfg.walkForward = WalkForwardConfig(folds: folds, trainSpan: try span(trainSpan, "train-span"),
                                            testSpan: try span(testSpan, "test-span"), costPerTrade: cost)
        cfg.symbolNames = s.inputSymbols
        for p in o.inputs { cfg.inputDigests[p] = FileHash.sha256(path: p).map { "sha256:" + $0 } ?? "unreadable" }
        let ds = collector.dataset()
        // A model needs data: below the minimum training is refused (it would fit noise and report it as
        // skill); below the comfortable size it goes on with a warning.
        let labelled = ds.labelled.count
        if labelled < Self.minimumLabelledRows {
            fail("train: \(labelled) rows with a target (\(ds.count) feature rows of \(ds.target.timeframe) bars); at least "
                 + "\(Self.minimumLabelledRows) are needed for a walk-forward evaluation. Give more data, a shorter "
                 + "--timeframe, or a wider --from/--to.", code: TapeExit.unusableInput)
        }
        if labelled < Self.thinLabelledRows {
            FileHandle.standardError.write(Data(("tape: warning: train: only \(labelled) rows with a target (fewer than "
                + "\(Self.thinLabelledRows)): the walk-forward metrics of so few rows are mostly noise\n").utf8))
        }
        let dir = (s.runDir as NSString).appendingPathComponent("model")
        let t: TrainingSummary
        do { t = try TrainingRun.run(dataset: ds, config: cfg, outDir: dir) }
        catch let e as ModelError { fail("train: \(e.message)", code: TapeExit.unusableInput) }
        try Data((t.json.render() + "\n").utf8).write(to: URL(fileURLWithPath: (dir as NSString).appendingPathComponent("training.json")))
        // The run's summary.json gets a `model` entry: the training summary with the walk-forward metrics.
        var summary = s.summary
        summary.model = t.json
        try summary.write(to: (s.runDir as NSString).appendingPathComponent("summary.json"))
        let m = t.evaluation.overall.metrics
        let f = { (x: Double) in String(format: "%.6g", x) }
        print("run folder      \(s.runDir)")
        print("model           \(t.modelPath)")
        print("rows            \(t.rows) (\(t.labelledRows) with a target)")
        print("walk-forward    \(t.evaluation.folds.count) folds, \(m.n) test rows")
        print("rmse            \(f(m.rmse))  (zero-return baseline \(f(m.rmseBaseline)))")
        print("mae             \(f(m.mae))  (baseline \(f(m.maeBaseline)))")
        print("direction       \(f(m.directionalAccuracy))   ic \(f(m.ic))")
        print("cum log return  \(f(m.cumReturn))  after cost \(f(m.cumReturnAfterCost))")
        print("evaluation      \(t.evaluationPath)")
        let reportWritten = noReport || writeReport(s.runDir)
        if s.exitCode != 0 { throw ArgumentParser.ExitCode(s.exitCode) }
        if !reportWritten { throw ArgumentParser.ExitCode(TapeExit.outputFailed) }
    }
}

