import TapeCore

/// Alpha Vantage REST: `GET /query?function=…&symbol=…&apikey=…`.
/// Docs: https://www.alphavantage.co/documentation/ (TIME_SERIES_INTRADAY, GLOBAL_QUOTE)
///
/// - `function=TIME_SERIES_INTRADAY&interval=1min[&outputsize=compact|full]` →
///   `{"Meta Data": {"1. Information": "Intraday (1min) open, high, low, close prices and volume",
///   "2. Symbol", "3. Last Refreshed", "4. Interval": "1min", "5. Output Size": "Compact"|"Full size",
///   "6. Time Zone": "US/Eastern"}, "Time Series (1min)": {"YYYY-MM-DD HH:MM:SS": {"1. open": "…",
///   "2. high", "3. low", "4. close", "5. volume"}, …}}`, newest first, values as strings, each bar
///   labelled by its start in US/Eastern; compact = the latest 100 bars, full = all up to now.
/// - `function=GLOBAL_QUOTE` → `{"Global Quote": {"01. symbol", "02. open", "03. high", "04. low",
///   "05. price", "06. volume", "07. latest trading day", "08. previous close", "09. change",
///   "10. change percent": "x%"}}` from the bars up to now (the latest day's bars; previous close =
///   the last close of the day before).
/// - Errors, HTTP 200 as the real service answers them: a bad or missing key (with `--api-key`) →
///   `{"Error Message": "the parameter apikey is invalid or missing. …"}`; an unknown function, symbol or
///   interval → `{"Error Message": "Invalid API call. …"}`.
/// - Throttling, HTTP 200 as the free tier does it (https://www.alphavantage.co/premium/ ; the text of
///   the bodies as users report them): over `--rate-limit` calls a minute → `{"Note": "Thank you for
///   using Alpha Vantage! Our standard API call frequency is N calls per minute …"}`; over
///   `--daily-limit` → `{"Information": "Thank you for using Alpha Vantage! Our standard API rate limit
///   is N requests per day. …"}`; `--http-429-every` → HTTP 429 with the `Information` body.
public struct AlphaVantageREST: Sendable {
    /// Bars in a compact answer.
    public static let compactBars = 100

    let history: BarHistory
    let clock = VendorClock()
    let faults: FaultSettings

    public init(history: BarHistory, faults: FaultSettings) {
        self.history = history
        self.faults = faults
    }

    public func answer(query: [String: String], verdict: RestGate.Verdict, now: Nanos) -> RestAnswer {
        switch verdict {
        case .serve: break
        case .badKey:
            return message("Error Message", "the parameter apikey is invalid or missing. Please claim your free API "
                           + "key on (https://www.alphavantage.co/support/#api-key). It should take less than 20 "
                           + "seconds.")
        case .minuteLimit:
            return message("Note", "Thank you for using Alpha Vantage! Our standard API call frequency is "
                           + "\(faults.rateLimitPerMinute ?? 0) calls per minute and \(faults.dailyLimit ?? 25) calls "
                           + "per day. Please visit https://www.alphavantage.co/premium/ if you would like to target "
                           + "a higher API call frequency.")
        case .dailyLimit, .injected429:
            var answer = message("Information", "Thank you for using Alpha Vantage! Our standard API rate limit is "
                                 + "\(faults.dailyLimit ?? 25) requests per day. Please subscribe to any of the "
                                 + "premium "
                                 + "plans at https://www.alphavantage.co/premium/ to instantly remove all daily rate "
                                 + "limits.")
            if verdict == .injected429 { answer.status = 429 }
            return answer
        }
        let function = query["function"] ?? ""
        let symbol = query["symbol"] ?? ""
        switch function {
        case "TIME_SERIES_INTRADAY":
            guard query["interval"] == "1min", let bars = history.bars(of: symbol, upTo: now) else {
                return invalidCall(function)
            }
            let full = query["outputsize"] == "full"
            let served = full ? bars : bars.suffix(Self.compactBars)
            return RestAnswer(status: 200, body: intraday(symbol: symbol, bars: served, full: full))
        case "GLOBAL_QUOTE":
            guard let bars = history.bars(of: symbol, upTo: now) else { return invalidCall(function) }
            guard let day = DaySummary(symbol: symbol, bars: bars, clock: clock) else {
                return RestAnswer(status: 200, body: #"{"Global Quote": {}}"# + "\n")
            }
            return RestAnswer(status: 200, body: globalQuote(day))
        default:
            return invalidCall(function)
        }
    }

    func intraday(symbol: String, bars: ArraySlice<SimEvent>, full: Bool) -> String {
        let lastRefreshed = bars.last.map { clock.dateTime($0.eventTime - 60_000_000_000) } ?? ""
        var text = "{\n    \"Meta Data\": {\n"
        text += "        \"1. Information\": \"Intraday (1min) open, high, low, close prices and volume\",\n"
        text += "        \"2. Symbol\": \(WireText.quoted(symbol)),\n"
        text += "        \"3. Last Refreshed\": \"\(lastRefreshed)\",\n"
        text += "        \"4. Interval\": \"1min\",\n"
        text += "        \"5. Output Size\": \"\(full ? "Full size" : "Compact")\",\n"
        text += "        \"6. Time Zone\": \"\(clock.zoneName)\"\n    },\n"
        text += "    \"Time Series (1min)\": {"
        var first = true
        for bar in bars.reversed() {
            text += first ? "\n" : ",\n"
            first = false
            text += "        \"\(clock.dateTime(bar.eventTime - 60_000_000_000))\": {\n"
            text += "            \"1. open\": \"\(WireText.number(bar.open))\",\n"
            text += "            \"2. high\": \"\(WireText.number(bar.high))\",\n"
            text += "            \"3. low\": \"\(WireText.number(bar.low))\",\n"
            text += "            \"4. close\": \"\(WireText.number(bar.price))\",\n"
            text += "            \"5. volume\": \"\(WireText.number(bar.size))\"\n        }"
        }
        return text + "\n    }\n}\n"
    }

    func globalQuote(_ day: DaySummary) -> String {
        let fields: [(String, String)] = [
            ("01. symbol", day.symbol), ("02. open", WireText.number(day.open)),
            ("03. high", WireText.number(day.high)), ("04. low", WireText.number(day.low)),
            ("05. price", WireText.number(day.price)), ("06. volume", WireText.number(day.volume)),
            ("07. latest trading day", day.latestDay), ("08. previous close", WireText.number(day.previousClose)),
            ("09. change", WireText.number(day.change)),
            ("10. change percent", WireText.number((day.changePercent * 10_000).rounded() / 10_000) + "%"),
        ]
        let members = fields.map { "        \(WireText.quoted($0.0)): \(WireText.quoted($0.1))" }
        return "{\n    \"Global Quote\": {\n" + members.joined(separator: ",\n") + "\n    }\n}\n"
    }

    func invalidCall(_ function: String) -> RestAnswer {
        message("Error Message", "Invalid API call. Please retry or visit the documentation "
                + "(https://www.alphavantage.co/documentation/) for \(function).")
    }

    func message(_ key: String, _ text: String) -> RestAnswer {
        RestAnswer(status: 200, body: "{\n    \(WireText.quoted(key)): \(WireText.quoted(text))\n}\n")
    }
}
