import Foundation
import TapeCore

/// The report's backtest section, from the run folder's trading files (docs/backtesting.md, docs/reports.md):
/// the metrics of `summary.json`'s `trading` object as a formatted table, the total equity and its drawdown
/// (`ReportScript.backtest`), the monthly returns, the first fills, and the fills per candle of each price
/// chart (`fillMarkers`). Present only when `equity.csv` has total rows: a run without trading has no section.
///
///     if let backtest = ReportBacktest.load(runDir: dir, summary: summary) {
///         html += backtest.html()          // near the top of the page
///         backtest.appendChartData(to: &js)  // const BACKTEST={…}
///     }
struct ReportBacktest {
    /// Most points of the equity and drawdown chart in the page; a longer run is merged into groups of
    /// k = ceil(marks / this) consecutive marks (last, lowest and highest equity, deepest drawdown).
    static let chartPointsMax = 20_000
    /// Fills listed in the trade table; fills.csv has every one.
    static let tradeListRowsMax = 200

    /// One total-equity mark: the last `total` row of equity.csv at its instant.
    struct Mark {
        var time: Int64
        var equity: Double
    }

    /// The fills of one symbol, as typed columns in file order.
    struct SymbolFills {
        var time: [Int64] = []
        var isBuy: [Bool] = []
        var price: [Double] = []
        var quantity: [Double] = []
    }

    /// One return of the monthly table: `month` 1…12, or 0 for the year's total.
    struct PeriodReturn: Equatable {
        var year: Int
        var month: Int
        var value: Double
    }

    var marks: [Mark] = []
    var fillsBySymbol: [String: SymbolFills] = [:]
    var fillCount = 0
    /// The first `tradeListRowsMax` rows of fills.csv: time, symbol, side, price, quantity, fee, rule, tag.
    var firstFills: [[String]] = []
    var trading: [String: Any] = [:]
    var initialCash = Double.nan
    var markTimeframe = ""

    /// The section's data, or nil when the run has no total equity rows.
    static func load(runDir: String, summary: [String: Any]) -> ReportBacktest? {
        var report = ReportBacktest()
        report.trading = summary["trading"] as? [String: Any] ?? [:]
        report.markTimeframe = report.trading["mark_timeframe"] as? String ?? ""
        report.marks = loadMarks(runDir + "/equity.csv")
        guard !report.marks.isEmpty else { return nil }
        // The equity before the first mark: the account's initial cash (the metrics' E₀).
        report.initialCash = (report.trading["initial_cash"] as? NSNumber)?.doubleValue ?? report.marks[0].equity
        report.loadFills(runDir + "/fills.csv")
        return report
    }

    /// The total rows of equity.csv, the last one per instant (several may share a time: a fill between marks).
    static func loadMarks(_ path: String) -> [Mark] {
        var marks: [Mark] = []
        var columns: [Int]? = nil
        let total = Array("total".utf8)
        _ = ReportSeries.stream(path) { header, row in
            if let header {
                let found = ["time_ns", "scope", "equity"].compactMap { ReportSeries.column($0, in: header, of: "equity") }
                columns = found.count == 3 ? found : nil
                return
            }
            guard let c = columns, row.bytes(c[1]).elementsEqual(total), let time = row.int(c[0]),
                  let equity = row.double(c[2]) else { return }
            if let last = marks.last, last.time == time {
                marks[marks.count - 1].equity = equity
            } else {
                marks.append(Mark(time: time, equity: equity))
            }
        }
        assert(zip(marks, marks.dropFirst()).allSatisfy { $0.time < $1.time }, "equity.csv total rows out of time order")
        return marks
    }

    private mutating func loadFills(_ path: String) {
        var columns: [Int]? = nil
        let names = ["symbol", "time_ns", "side", "price", "quantity", "fee", "rule", "tag"]
        let buy = Array("buy".utf8)
        _ = ReportSeries.stream(path) { header, row in
            if let header {
                let found = names.compactMap { ReportSeries.column($0, in: header, of: "fills") }
                columns = found.count == names.count ? found : nil
                return
            }
            guard let c = columns, let time = row.int(c[1]) else { return }
            let symbol = row.string(c[0])
            fillsBySymbol[symbol, default: SymbolFills()].append(
                time: time, isBuy: row.bytes(c[2]).elementsEqual(buy), price: row.double(c[3]) ?? .nan,
                quantity: row.double(c[4]) ?? .nan)
            fillCount += 1
            if firstFills.count < ReportBacktest.tradeListRowsMax { firstFills.append(c.map { row.string($0) }) }
        }
    }

    // MARK: Monthly returns

    /// The UTC (year, month) a mark closes: that of `time − 1 ns`, so the mark at 00:00 on the 1st (the
    /// close of the month's last bar) is the previous month's last mark.
    static func month(ofMark time: Int64) -> (year: Int, month: Int) {
        let seconds = (time - 1).quotientFloor(1_000_000_000)
        let days = Int(seconds.quotientFloor(86_400))
        // Days since 1970-01-01 to a civil date (H. Hinnant's days_from_civil, inverted).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month)
    }

    /// The return of the total equity per month with marks, from the last mark of the month before (the
    /// initial cash before the first month) to the month's last mark; and per year (`month` 0) from the
    /// last mark of the year before (or the initial cash) to the year's last mark.
    static func periodReturns(marks: [Mark], initialCash: Double) -> [PeriodReturn] {
        var out: [PeriodReturn] = []
        var monthStart = initialCash, yearStart = initialCash
        var index = 0
        while index < marks.count {
            let key = month(ofMark: marks[index].time)
            while index + 1 < marks.count && month(ofMark: marks[index + 1].time) == key { index += 1 }
            let end = marks[index].equity
            out.append(PeriodReturn(year: key.year, month: key.month, value: end / monthStart - 1))
            monthStart = end
            index += 1
            if index == marks.count || month(ofMark: marks[index].time).year != key.year {
                out.append(PeriodReturn(year: key.year, month: 0, value: end / yearStart - 1))
                yearStart = end
            }
        }
        return out
    }

    // MARK: HTML

    static let monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// How a metric is shown.
    enum Format { case percent, ratio, count, money, periods }

    /// The metrics table's rows: summary.json key, label, format.
    static let metricRows: [(key: String, label: String, format: Format)] = [
        ("initial_cash", "initial cash", .money), ("end_equity", "end equity", .money),
        ("total_return", "total return", .percent), ("annualized_return", "annualised return", .percent),
        ("volatility", "volatility (annualised)", .percent), ("sharpe", "Sharpe", .ratio), ("sortino", "Sortino", .ratio),
        ("max_drawdown", "max drawdown", .percent), ("max_drawdown_duration_periods", "max drawdown duration", .periods),
        ("calmar", "Calmar", .ratio), ("turnover", "turnover", .ratio), ("trade_count", "round trips", .count),
        ("hit_rate", "hit rate", .percent), ("average_win", "average win", .money), ("average_loss", "average loss", .money),
        ("profit_factor", "profit factor", .ratio), ("exposure", "exposure", .percent), ("fees_paid", "fees paid", .money),
        ("fills", "fills", .count), ("periods", "marks (periods)", .count),
    ]

    /// `-0.60 %`, `1.23`, `3,617`, `99,401.57`; `—` for null, `∞` for an infinite profit factor.
    func formatted(_ value: Double, _ format: Format) -> String {
        guard value.isFinite else { return value.isNaN ? "—" : (value > 0 ? "∞" : "−∞") }
        switch format {
        case .percent: return String(format: "%.2f %%", value * 100)
        case .ratio: return String(format: "%.2f", value)
        case .count: return ReportWriter.grouped(Int(value.rounded()))
        case .money: return ReportBacktest.money(value)
        case .periods:
            let periods = Int(value.rounded())
            let seconds = ReportWriter.tfSeconds(markTimeframe)
            let span = seconds == Int.max ? "" : " (" + ReportBacktest.duration(seconds: periods * seconds) + ")"
            return ReportWriter.grouped(periods) + " × " + ReportWriter.esc(markTimeframe) + span
        }
    }

    /// Thousands separators and 2 decimals (`99,401.57`); below 10 in magnitude, 4 significant digits
    /// (a fee of `0.04643`), so small amounts keep their digits.
    static func money(_ value: Double) -> String {
        if value != 0 && abs(value) < 10 { return HumanUnits.text(value, digits: 4) }
        let text = String(format: "%.2f", value)
        return ReportWriter.groupedDecimal(text)
    }

    /// `+1.23 %`, `-0.59 %`; below 0.01 % in magnitude 3 significant digits (`+0.00111 %`), not `+0.00 %`.
    static func signedPercent(_ value: Double) -> String {
        let percent = value * 100
        if percent != 0 && abs(percent) < 0.01 { return (percent > 0 ? "+" : "") + HumanUnits.text(percent, digits: 3) + " %" }
        return String(format: "%+.2f %%", percent)
    }

    /// `30 d 18 h 55 min`, `45 s`.
    static func duration(seconds: Int) -> String {
        if seconds == 0 { return "0 s" }
        let parts = [(seconds / 86_400, "d"), (seconds % 86_400 / 3600, "h"), (seconds % 3600 / 60, "min"), (seconds % 60, "s")]
        return parts.filter { $0.0 > 0 }.map { "\($0.0) \($0.1)" }.joined(separator: " ")
    }

    /// The section: metrics, the equity and drawdown chart (drawn from `BACKTEST`), monthly returns, trades.
    func html() -> String {
        let e = ReportWriter.esc
        var h = "<section class=\"backtest\" id=\"backtest\"><h2>Backtest</h2>\n"
        let strategies = (trading["strategies"] as? [Any])?.map { ReportWriter.jsonText($0) } ?? []
        h += "<p>Strategies: \(strategies.isEmpty ? "—" : strategies.map { "<code>\(e($0))</code>" }.joined(separator: ", ")); "
            + "equity marked at every \(e(markTimeframe.isEmpty ? "?" : markTimeframe)) bar close "
            + "(\(ReportWriter.grouped(marks.count)) marks, \(e(HumanUnits.time(marks[0].time))) — \(e(HumanUnits.time(marks[marks.count - 1].time)))). "
            + "Files: equity.csv, fills.csv, orders.csv, positions.csv.</p>\n"
        h += "<div class=\"btgrid\"><table class=\"num metrics\"><tr><th>metric</th><th>value</th></tr>\n"
        for row in ReportBacktest.metricRows {
            guard let raw = trading[row.key] else { continue }
            let value = (raw as? NSNumber)?.doubleValue ?? .nan  // null: not defined (no trades, no losses …)
            h += "<tr data-key=\"\(row.key)\"><th>\(e(row.label))</th><td data-value=\"\(Numbers.format(value))\">"
                + "\(formatted(value, row.format))</td></tr>\n"
        }
        h += "</table>\n"
        h += """
        <div class="btchart"><div class="toolbar"><button class="zin" title="zoom in">+</button><button class="zout" title="zoom out">−</button>\
        <button class="zall">All</button><span class="range"></span></div>
        <div class="hint">Total equity (account) and its drawdown 1 − equity / running peak, at every mark. Wheel: zoom · drag: pan · double-click: all.</div>
        <canvas class="equity"></canvas><div class="xaxis"></div><div class="info">&nbsp;</div></div></div>

        """
        h += monthlyHTML()
        h += tradesHTML()
        return h + "</section>\n"
    }

    func monthlyHTML() -> String {
        let returns = ReportBacktest.periodReturns(marks: marks, initialCash: initialCash)
        var h = "<h3>Monthly returns</h3>\n<table class=\"num monthly\"><tr><th>year</th>"
            + ReportBacktest.monthNames.map { "<th>\($0)</th>" }.joined() + "<th>year</th></tr>\n"
        var years: [Int] = []
        for r in returns where years.last != r.year { years.append(r.year) }
        for year in years {
            h += "<tr data-year=\"\(year)\"><th>\(year)</th>"
            for month in Array(1...12) + [0] {
                if let r = returns.first(where: { $0.year == year && $0.month == month }) {
                    let tone = r.value > 0 ? "pos" : (r.value < 0 ? "neg" : "zero")
                    h += "<td class=\"\(tone)\" data-month=\"\(month)\" data-value=\"\(Numbers.format(r.value))\">"
                        + "\(ReportBacktest.signedPercent(r.value))</td>"
                } else {
                    h += "<td></td>"
                }
            }
            h += "</tr>\n"
        }
        h += "</table>\n<p class=\"note\">Return of the total equity from the last mark of the month before (the initial cash "
            + "before the first month) to the month's last mark; a mark at 00:00 UTC on the 1st closes the month before. "
            + "The year column chains its months.</p>\n"
        return h
    }

    func tradesHTML() -> String {
        let e = ReportWriter.esc
        var h = "<h3>Trades</h3>\n<div class=\"scroll\"><table class=\"num trades\"><tr><th>time (UTC)</th><th>symbol</th><th>side</th><th>price</th>"
            + "<th>quantity</th><th>fee</th><th>rule</th><th>tag</th></tr>\n"
        for fill in firstFills {
            let cells = [ReportWriter.timeCell(fill[1]), e(fill[0]), e(fill[2]), ReportWriter.numberCell(fill[3], 10),
                         ReportWriter.numberCell(fill[4], 10), ReportWriter.numberCell(fill[5], 6), e(fill[6]), e(fill[7])]
            h += "<tr class=\"\(fill[2] == "buy" ? "buy" : "sell")\">" + cells.map { "<td>\($0)</td>" }.joined() + "</tr>\n"
        }
        h += "</table></div>\n"
        let shown = firstFills.count
        if fillCount > shown {
            h += "<p class=\"note\">The first \(ReportWriter.grouped(shown)) of \(ReportWriter.grouped(fillCount)) fills; "
                + "<a href=\"fills.csv\">fills.csv</a> has every one.</p>\n"
        } else {
            h += "<p class=\"note\">\(ReportWriter.grouped(fillCount)) fills (<a href=\"fills.csv\">fills.csv</a>).</p>\n"
        }
        return h
    }

    // MARK: Page data

    /// `const BACKTEST={…};` the chart's points: `t` (ms of the mark, a group's last), `e` (equity, a group's
    /// last), `lo`/`hi` (a group's lowest and highest equity), `dd` (its deepest drawdown, from every mark),
    /// `k` (marks per point), `span` (ms a point covers), `cash` (the initial cash).
    func appendChartData(to js: inout [UInt8]) {
        let k = max(1, (marks.count + ReportBacktest.chartPointsMax - 1) / ReportBacktest.chartPointsMax)
        var times: [Double] = [], last: [Double] = [], lowest: [Double] = [], highest: [Double] = [], deepest: [Double] = []
        var peak = initialCash.isFinite ? initialCash : marks[0].equity
        var first = 0
        while first < marks.count {
            let end = min(first + k, marks.count) - 1
            var low = Double.infinity, high = -Double.infinity, drawdown = 0.0
            for i in first...end {
                let equity = marks[i].equity
                peak = max(peak, equity)
                low = min(low, equity)
                high = max(high, equity)
                drawdown = max(drawdown, peak > 0 ? 1 - equity / peak : 0)
            }
            times.append(Double(marks[end].time / 1_000_000))
            last.append(marks[end].equity)
            lowest.append(low)
            highest.append(high)
            deepest.append(drawdown)
            first = end + 1
        }
        let seconds = ReportWriter.tfSeconds(markTimeframe)
        let spanMs = seconds == Int.max ? 0 : seconds * 1000 * k
        js += Array("const BACKTEST={\"k\":\(k),\"span\":\(spanMs),\"cash\":".utf8)
        ReportWriter.appendNumber(initialCash, to: &js)
        ReportWriter.appendArray("t", times, digits: nil, to: &js)
        // Equity to 10 significant digits (a cent of 10⁸), drawdowns to 6: display only, equity.csv keeps every digit.
        ReportWriter.appendArray("e", last, digits: 10, to: &js)
        ReportWriter.appendArray("lo", lowest, digits: 10, to: &js)
        ReportWriter.appendArray("hi", highest, digits: 10, to: &js)
        ReportWriter.appendArray("dd", deepest, digits: 6, to: &js)
        js += Array("};\n".utf8)
    }

    /// The fills of `symbol` on the candles of a price chart (`starts`: each candle's start, ns; `spanNanos`:
    /// its length), per candle and side: `,"fx":[candle],"fs":[1 buy, -1 sell],"fn":[fills],"fq":[quantity],
    /// "fp":[quantity-weighted price]`. A fill belongs to the last candle starting at or before it (the
    /// first candle for earlier fills). At most two entries per candle, whatever the number of fills, so
    /// 100k fills cost the page no more than the candles do; the chart merges them further per drawn candle.
    func appendFillMarkers(symbol: String, starts: [Int64], to js: inout [UInt8]) {
        guard let fills = fillsBySymbol[symbol], !starts.isEmpty else { return }
        struct Entry { var count = 0; var quantity = 0.0; var notional = 0.0 }
        var entries: [Int: Entry] = [:]   // candle × 2 + (0 buy, 1 sell)
        for i in fills.time.indices {
            var low = 0, high = starts.count
            while low < high {
                let middle = (low + high) / 2
                if starts[middle] <= fills.time[i] { low = middle + 1 } else { high = middle }
            }
            let candle = max(0, low - 1)
            let key = candle * 2 + (fills.isBuy[i] ? 0 : 1)
            let quantity = fills.quantity[i].isFinite ? fills.quantity[i] : 0
            var entry = entries[key] ?? Entry()
            entry.count += 1
            entry.quantity += quantity
            entry.notional += quantity * fills.price[i]
            entries[key] = entry
        }
        let keys = entries.keys.sorted()
        assert(keys.reduce(0) { $0 + entries[$1]!.count } == fills.time.count, "every fill on one candle")
        ReportWriter.appendArray("fx", keys.map { Double($0 / 2) }, digits: nil, to: &js)
        ReportWriter.appendArray("fs", keys.map { $0 % 2 == 0 ? 1 : -1 }, digits: nil, to: &js)
        ReportWriter.appendArray("fn", keys.map { Double(entries[$0]!.count) }, digits: nil, to: &js)
        ReportWriter.appendArray("fq", keys.map { entries[$0]!.quantity }, digits: 8, to: &js)
        ReportWriter.appendArray("fp", keys.map { key -> Double in
            let entry = entries[key]!
            return entry.quantity > 0 ? entry.notional / entry.quantity : .nan
        }, digits: 8, to: &js)
    }
}

extension ReportBacktest.SymbolFills {
    mutating func append(time: Int64, isBuy: Bool, price: Double, quantity: Double) {
        self.time.append(time)
        self.isBuy.append(isBuy)
        self.price.append(price)
        self.quantity.append(quantity)
    }
}

extension Int64 {
    /// Division rounded toward −∞ (times before 1970 stay in the right day).
    fileprivate func quotientFloor(_ divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}
