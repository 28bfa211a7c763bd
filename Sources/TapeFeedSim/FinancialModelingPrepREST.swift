import TapeCore

/// Financial Modeling Prep REST, the legacy and the current paths:
/// - quote: `GET /api/v3/quote/SYM?apikey=…` and `GET /stable/quote?symbol=SYM&apikey=…` →
///   `[{"symbol","name","price","changesPercentage" (stable: "changePercentage"),"change","dayLow","dayHigh",
///   "yearHigh","yearLow","volume","open","previousClose","exchange","timestamp"}]` (numbers; timestamp in
///   seconds), from the bars up to now;
/// - 1-minute chart: `GET /api/v3/historical-chart/1min/SYM?apikey=…[&from=YYYY-MM-DD&to=YYYY-MM-DD]` and
///   `GET /stable/historical-chart/1min?symbol=SYM&…` → `[{"date":"YYYY-MM-DD HH:MM:SS","open","low",
///   "high","close","volume"}, …]`, newest first, numbers, each bar labelled by its start in US/Eastern;
///   bars up to now, within [from, to] (days, US/Eastern) or, without them, the last 3 days.
/// Docs: https://site.financialmodelingprep.com/developer/docs/stable/intraday-1-min
///       https://site.financialmodelingprep.com/developer/docs/stable/quote
///       (legacy example: https://financialmodelingprep.com/api/v3/historical-chart/1min/AAPL?from=…&to=…)
/// Errors: a bad key (with `--api-key`) → HTTP 401 `{"Error Message": "Invalid API KEY. …"}`; over the
/// limits or `--http-429-every` → HTTP 429 `{"Error Message": "Limit Reach . Please upgrade your plan …"}`;
/// an unknown symbol → `[]`.
public struct FinancialModelingPrepREST: Sendable {
    /// Days of chart served when the request names no range.
    public static let defaultChartDays = 3

    let history: BarHistory
    let clock = VendorClock()

    public init(history: BarHistory) { self.history = history }

    public enum Endpoint: Sendable { case quote(stable: Bool), chart }

    public func answer(endpoint: Endpoint, symbol: String, query: [String: String], verdict: RestGate.Verdict,
                       now: Nanos) -> RestAnswer {
        switch verdict {
        case .serve: break
        case .badKey:
            return RestAnswer(status: 401, body: #"{"Error Message": "Invalid API KEY. Feel free to create a Free API "#
                              + #"Key or visit https://site.financialmodelingprep.com/faqs?search=why-is-my-api-key-"#
                              + #"invalid for more information."}"# + "\n")
        case .injected429, .dailyLimit, .minuteLimit:
            return RestAnswer(status: 429, body: #"{"Error Message": "Limit Reach . Please upgrade your plan or visit "#
                              + #"our documentation for more details at https://site.financialmodelingprep.com/"}"#
                              + "\n")
        }
        guard let bars = history.bars(of: symbol, upTo: now) else { return RestAnswer(status: 200, body: "[]\n") }
        switch endpoint {
        case .quote(let stable):
            guard let day = DaySummary(symbol: symbol.uppercased(), bars: bars, clock: clock) else {
                return RestAnswer(status: 200, body: "[]\n")
            }
            return RestAnswer(status: 200, body: quote(day, stable: stable))
        case .chart:
            return RestAnswer(status: 200, body: chart(bars: bars, from: query["from"], to: query["to"]))
        }
    }

    func quote(_ day: DaySummary, stable: Bool) -> String {
        let percentKey = stable ? "changePercentage" : "changesPercentage"
        let fields: [(String, String)] = [
            ("symbol", WireText.quoted(day.symbol)), ("name", WireText.quoted(day.symbol)),
            ("price", WireText.number(day.price)), (percentKey, WireText.number(day.changePercent)),
            ("change", WireText.number(day.change)), ("dayLow", WireText.number(day.low)),
            ("dayHigh", WireText.number(day.high)), ("yearHigh", WireText.number(day.yearHigh)),
            ("yearLow", WireText.number(day.yearLow)), ("volume", WireText.number(day.volume)),
            ("open", WireText.number(day.open)), ("previousClose", WireText.number(day.previousClose)),
            ("exchange", "\"SIM\""), ("timestamp", String(day.lastEndTime / 1_000_000_000)),
        ]
        return "[\n  {\n" + fields.map { "    \"\($0.0)\": \($0.1)" }.joined(separator: ",\n") + "\n  }\n]\n"
    }

    func chart(bars: ArraySlice<SimEvent>, from: String?, to: String?) -> String {
        let oneMinute: Nanos = 60_000_000_000
        var rows: [String] = []
        let lastDay = bars.last.map { clock.dayNumber($0.eventTime - oneMinute) } ?? 0
        for bar in bars.reversed() {
            let start = bar.eventTime - oneMinute
            let date = clock.date(start)
            if from == nil && to == nil {
                if clock.dayNumber(start) <= lastDay - Self.defaultChartDays { break }
            } else {
                if let to, date > to { continue }
                if let from, date < from { break }
            }
            rows.append("  {\n    \"date\": \"\(clock.dateTime(start))\",\n"
                        + "    \"open\": \(WireText.number(bar.open)),\n    \"low\": \(WireText.number(bar.low)),\n"
                        + "    \"high\": \(WireText.number(bar.high)),\n    \"close\": \(WireText.number(bar.price)),\n"
                        + "    \"volume\": \(WireText.number(bar.size))\n  }")
        }
        return rows.isEmpty ? "[]\n" : "[\n" + rows.joined(separator: ",\n") + "\n]\n"
    }
}
