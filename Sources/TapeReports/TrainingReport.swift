import Foundation
import TapeCore

/// The report's model section, from what `tape train` wrote into `<run>/model/` (docs/model.md):
/// the walk-forward evaluation as a formatted table, per-fold RMSE against the zero-return baseline and
/// the out-of-sample cumulative return (Chart.js), the feature importance, and a warning when the data
/// is too thin for the numbers to mean much.
struct TrainingReport {
    /// Below this many labelled rows the metrics are mostly noise (the CLI warns at the same size).
    static let thinLabelledRows = 500
    /// Below this many test rows a fold's metrics are mostly noise.
    static let thinFoldRows = 100
    /// Most points of the cumulative-return chart (every k-th row, the last kept).
    static let chartPointsMax = 1500

    var html = ""
    var script = ""

    static func load(runDir: String, meta: [String: Any]) -> TrainingReport? {
        guard let evaluation = CSVTable.load(runDir + "/model/evaluation.csv") ?? CSVTable.load(runDir + "/evaluation.csv"),
              !evaluation.rows.isEmpty else { return nil }
        var report = TrainingReport()
        report.build(runDir: runDir, evaluation: evaluation, meta: meta)
        return report
    }

    private mutating func build(runDir: String, evaluation: CSVTable, meta: [String: Any]) {
        let e = ReportWriter.esc
        html += "<h2>Model</h2>\n"
        let labelled = (meta["labelled_rows"] as? Int) ?? -1
        let target = meta["target"] as? [String: Any]
        let horizon = (target?["horizon_bars"] as? Int) ?? 1
        let walkForward = meta["walk_forward"] as? [String: Any]
        let cost = (walkForward?["cost_per_trade"] as? Double) ?? 0.0005
        if !meta.isEmpty {
            html += "<p>Target: forward log return over \(horizon) bar(s) of \(e((target?["timeframe"] as? String) ?? "?")); "
                + "\(labelled >= 0 ? ReportWriter.grouped(labelled) : "?") rows with a target; cost \(HumanUnits.text(cost * 1e4, digits: 3)) bp "
                + "per unit of position change.</p>\n"
        }
        func value(_ row: [String], _ name: String) -> Double? {
            evaluation.column(name).flatMap { Double(row[$0]) }
        }
        func text(_ row: [String], _ name: String) -> String { evaluation.column(name).map { row[$0] } ?? "" }
        var warnings: [String] = []
        if labelled >= 0 && labelled < TrainingReport.thinLabelledRows {
            warnings.append("Only \(labelled) rows with a target (fewer than \(TrainingReport.thinLabelledRows)): these metrics are mostly noise.")
        }
        let folds = evaluation.rows.filter { text($0, "fold") != "overall" }
        let thinFolds = folds.filter { (value($0, "n_test") ?? 0) < Double(TrainingReport.thinFoldRows) }
        if !thinFolds.isEmpty {
            warnings.append("\(thinFolds.count) of \(folds.count) folds test fewer than \(TrainingReport.thinFoldRows) rows.")
        }
        if let overall = evaluation.rows.first(where: { text($0, "fold") == "overall" }),
           let rmse = value(overall, "rmse"), let baseline = value(overall, "rmse_baseline"), rmse >= baseline {
            warnings.append("Out of sample the model's RMSE (\(HumanUnits.text(rmse, digits: 4))) is not below the zero-return "
                            + "forecast's (\(HumanUnits.text(baseline, digits: 4))).")
        }
        for w in warnings { html += "<p class=\"warn\">⚠ \(e(w))</p>\n" }

        // The evaluation table, in human units.
        html += "<h3>Walk-forward evaluation</h3>\n<table class=\"num\"><tr><th>fold</th><th>train from (UTC)</th>"
            + "<th>test from (UTC)</th><th>test to (UTC)</th><th>train rows</th><th>test rows</th><th>RMSE</th><th>baseline RMSE</th>"
            + "<th>RMSE vs baseline</th><th>MAE</th><th>baseline MAE</th><th>direction right</th><th>IC</th><th>cum. log return</th>"
            + "<th>after cost</th></tr>\n"
        for row in evaluation.rows {
            let rmse = value(row, "rmse"), baseline = value(row, "rmse_baseline")
            let relative = (rmse != nil && baseline != nil && baseline! > 0)
                ? (rmse! / baseline! - 1 >= 0 ? "+" : "") + HumanUnits.text((rmse! / baseline! - 1) * 100, digits: 3) + " %" : "—"
            let cells = [e(text(row, "fold")), ReportWriter.timeCell(text(row, "train_start_ns")), ReportWriter.timeCell(text(row, "test_start_ns")),
                         ReportWriter.timeCell(text(row, "test_end_ns")), ReportWriter.grouped(Int(value(row, "n_train") ?? 0)),
                         ReportWriter.grouped(Int(value(row, "n_test") ?? 0)), number(rmse, 4), number(baseline, 4), relative,
                         number(value(row, "mae"), 4), number(value(row, "mae_baseline"), 4),
                         value(row, "directional_accuracy").map { HumanUnits.text($0 * 100, digits: 3) + " %" } ?? "—",
                         number(value(row, "ic"), 3), number(value(row, "cum_return"), 3), number(value(row, "cum_return_after_cost"), 3)]
            html += "<tr>" + cells.map { "<td>\($0)</td>" }.joined() + "</tr>\n"
        }
        html += "</table>\n"

        // Per-fold RMSE against the baseline.
        let foldLabels = folds.map { "\"fold \(ReportWriter.jsString(text($0, "fold")))\"" }.joined(separator: ",")
        let modelRMSE = folds.map { jsNumber(value($0, "rmse")) }.joined(separator: ",")
        let baseRMSE = folds.map { jsNumber(value($0, "rmse_baseline")) }.joined(separator: ",")
        html += "<div class=\"chartbox\"><canvas id=\"foldRMSE\"></canvas></div>\n"
        script += """
        new Chart(document.getElementById('foldRMSE'),{type:'bar',data:{labels:[\(foldLabels)],datasets:[
          {label:'model RMSE',data:[\(modelRMSE)],backgroundColor:'#d35400'},{label:'zero-return baseline RMSE',data:[\(baseRMSE)],backgroundColor:'#90a4ae'}]},
          options:{animation:false,responsive:true,maintainAspectRatio:false,plugins:{title:{display:true,text:'Out-of-sample RMSE per fold'}},
          scales:{y:{beginAtZero:true,ticks:{callback:v=>Number(v).toPrecision(3)}}}}});created++;

        """

        // Out-of-sample cumulative return of trading sign(prediction), from oos_predictions.csv.
        if let oos = CSVTable.load(runDir + "/model/oos_predictions.csv"), let end = oos.column("end_ns"),
           let prediction = oos.column("prediction"), let realised = oos.column("target"), !oos.rows.isEmpty {
            var gross = 0.0, net = 0.0, position = 0.0
            var times: [String] = [], grossSeries: [String] = [], netSeries: [String] = []
            let step = max(1, (oos.rows.count + TrainingReport.chartPointsMax - 1) / TrainingReport.chartPointsMax)
            for (i, row) in oos.rows.enumerated() {
                let p = Double(row[prediction]) ?? 0, y = Double(row[realised]) ?? 0
                let sign: Double = p > 0 ? 1 : (p < 0 ? -1 : 0)
                gross += sign * y / Double(horizon)
                net += (sign * y - cost * abs(sign - position)) / Double(horizon)
                position = sign
                if i % step == 0 || i == oos.rows.count - 1 {
                    let minutes = (Int64(row[end]) ?? 0) / 60_000_000_000 * 60_000_000_000
                    times.append("\"\(String(HumanUnits.time(minutes).dropLast(4)))\"")
                    grossSeries.append(jsNumber(HumanUnits.significant(gross, 6)))
                    netSeries.append(jsNumber(HumanUnits.significant(net, 6)))
                }
            }
            html += "<div class=\"chartbox\"><canvas id=\"oosReturn\"></canvas></div>\n"
            html += "<p class=\"note\">\(ReportWriter.grouped(oos.rows.count)) out-of-sample predictions (model/oos_predictions.csv), "
                + "holding sign(prediction) for each row; gross \(HumanUnits.text(gross, digits: 3)), after cost \(HumanUnits.text(net, digits: 3)) "
                + "(log return).</p>\n"
            script += """
            new Chart(document.getElementById('oosReturn'),{type:'line',data:{labels:[\(times.joined(separator: ","))],datasets:[
              {label:'cumulative log return (gross)',data:[\(grossSeries.joined(separator: ","))],borderColor:'#2962ff',pointRadius:0,borderWidth:1.5},
              {label:'after cost',data:[\(netSeries.joined(separator: ","))],borderColor:'#d50000',pointRadius:0,borderWidth:1.5}]},
              options:{animation:false,responsive:true,maintainAspectRatio:false,plugins:{title:{display:true,text:'Out-of-sample cumulative return of sign(prediction)'}},
              scales:{x:{ticks:{maxRotation:0,autoSkip:true,autoSkipPadding:24}}}}});created++;

            """
        }

        foldEquity(runDir: runDir, horizon: horizon, cost: cost)

        // Feature importance of the final model.
        if let importance = CSVTable.load(runDir + "/model/feature_importance.csv"), let feature = importance.column("feature"),
           let gain = importance.column("gain"), let weight = importance.column("weight"), let cover = importance.column("cover") {
            let sorted = importance.rows.sorted { (Double($0[gain]) ?? 0) > (Double($1[gain]) ?? 0) }
            html += "<h3>Feature importance (final model)</h3>\n<div class=\"chartbox\"><canvas id=\"importance\"></canvas></div>\n"
            html += "<table class=\"num\"><tr><th>feature</th><th>mean gain</th><th>splits</th><th>mean cover</th></tr>\n"
            for row in sorted {
                html += "<tr><td>\(e(row[feature]))</td><td>\(ReportWriter.numberCell(row[gain], 4))</td><td>\(ReportWriter.numberCell(row[weight], 8))</td>"
                    + "<td>\(ReportWriter.numberCell(row[cover], 4))</td></tr>\n"
            }
            html += "</table>\n"
            let labels = sorted.map { "\"\(ReportWriter.jsString($0[feature]))\"" }.joined(separator: ",")
            let gains = sorted.map { jsNumber(Double($0[gain]).map { HumanUnits.significant($0, 6) }) }.joined(separator: ",")
            script += """
            new Chart(document.getElementById('importance'),{type:'bar',data:{labels:[\(labels)],datasets:[
              {label:'mean gain per split',data:[\(gains)],backgroundColor:'#00897b'}]},
              options:{indexAxis:'y',animation:false,responsive:true,maintainAspectRatio:false,plugins:{title:{display:true,text:'Feature importance (XGBoost gain)'}},
              scales:{x:{ticks:{callback:v=>Number(v).toPrecision(2)}},y:{ticks:{autoSkip:false}}}}});created++;

            """
        }
    }

    /// The model strategy's out-of-sample equity per walk-forward fold: holding sign(prediction) on each test
    /// row of `model/oos_predictions.csv`, after cost, each fold from 1 and flat at its start (as the
    /// evaluation's per-fold `cum_return_after_cost`, so a fold's last point is exp of that column).
    private mutating func foldEquity(runDir: String, horizon: Int, cost: Double) {
        guard let oos = CSVTable.load(runDir + "/model/oos_predictions.csv"), let end = oos.column("end_ns"),
              let fold = oos.column("fold"), let prediction = oos.column("prediction"), let realised = oos.column("target"),
              !oos.rows.isEmpty else { return }
        let step = max(1, (oos.rows.count + TrainingReport.chartPointsMax - 1) / TrainingReport.chartPointsMax)
        var folds: [String] = []
        var labels: [String] = []
        var points: [(fold: Int, label: Int, equity: Double)] = []
        var net = 0.0, position = 0.0
        var ends: [Double] = []
        for (i, row) in oos.rows.enumerated() {
            if folds.last != row[fold] {
                folds.append(row[fold])
                net = 0
                position = 0
            }
            let p = Double(row[prediction]) ?? 0, y = Double(row[realised]) ?? 0
            let sign: Double = p > 0 ? 1 : (p < 0 ? -1 : 0)
            net += (sign * y - cost * abs(sign - position)) / Double(horizon)
            position = sign
            let foldEnds = i == oos.rows.count - 1 || oos.rows[i + 1][fold] != row[fold]
            if foldEnds { ends.append(Foundation.exp(net)) }
            if i % step == 0 || foldEnds {
                let minutes = (Int64(row[end]) ?? 0) / 60_000_000_000 * 60_000_000_000
                labels.append("\"\(String(HumanUnits.time(minutes).dropLast(4)))\"")
                points.append((folds.count - 1, labels.count - 1, Foundation.exp(net)))
            }
        }
        assert(ends.count == folds.count, "one end per fold")
        let colors = ["#1565c0", "#e65100", "#2e7d32", "#6a1b9a", "#c62828", "#00838f", "#5d4037", "#ad1457"]
        var datasets: [String] = []
        for (index, name) in folds.enumerated() {
            var data = [String](repeating: "null", count: labels.count)
            for point in points where point.fold == index { data[point.label] = jsNumber(HumanUnits.significant(point.equity, 8)) }
            datasets.append("{label:'fold \(ReportWriter.jsString(name))',data:[\(data.joined(separator: ","))],"
                            + "borderColor:'\(colors[index % colors.count])',pointRadius:0,borderWidth:1.5,spanGaps:false}")
        }
        html += "<h3>Model strategy: out-of-sample equity per fold</h3>\n<div class=\"chartbox\"><canvas id=\"foldEquity\"></canvas></div>\n"
        html += "<p class=\"note\">Holding sign(prediction) on each test row, after cost, each fold from 1 and flat at its start; "
            + "equity at the end of each fold: "
            + zip(folds, ends).map { "<span class=\"foldend\" data-fold=\"\(ReportWriter.esc($0))\" data-value=\"\(Numbers.format($1))\">"
                + "fold \(ReportWriter.esc($0)) \(HumanUnits.text($1, digits: 6))</span>" }.joined(separator: ", ")
            + ". The backtest of a trading configuration (orders, fills, fees) is the Backtest section of <code>tape replay --trading</code>.</p>\n"
        script += """
        new Chart(document.getElementById('foldEquity'),{type:'line',data:{labels:[\(labels.joined(separator: ","))],datasets:[
          \(datasets.joined(separator: ",\n  "))]},
          options:{animation:false,responsive:true,maintainAspectRatio:false,plugins:{title:{display:true,text:'Out-of-sample equity of sign(prediction) per fold (after cost)'}},
          scales:{x:{ticks:{maxRotation:0,autoSkip:true,autoSkipPadding:24}}}}});created++;

        """
    }

    private func number(_ value: Double?, _ digits: Int) -> String { value.map { HumanUnits.text($0, digits: digits) } ?? "—" }
    private func jsNumber(_ value: Double?) -> String { value.flatMap { $0.isFinite ? Numbers.format($0) : nil } ?? "null" }
}
