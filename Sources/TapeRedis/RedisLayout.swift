import TapeCore
import TapeGraph

/// Where the hot cache keeps what, under one configurable prefix (docs/storage-redis.md), so that tests
/// and several deployments can share one server. `<symbol>` is the engine's symbol name (`spot:BTCUSDT`),
/// `<timeframe>` is written as in the config (`1m`, `5m`, `1h`); both are the last parts of a key, and a
/// timeframe never holds a colon, so a key reads unambiguously from the right.
///
/// | key                                           | type   | holds                                          |
/// |-----------------------------------------------|--------|------------------------------------------------|
/// | `<prefix>latest:trade:<symbol>`               | hash   | the latest trade (`tradeFields`)               |
/// | `<prefix>latest:quote:<symbol>`               | hash   | the latest quote (`quoteFields`)               |
/// | `<prefix>latest:bar:<symbol>:<timeframe>`     | hash   | the latest closed bar and its indicators       |
/// | `<prefix>latest:prediction:<symbol>:<tf>`     | hash   | the latest model prediction                    |
/// | `<prefix>bars:<symbol>:<timeframe>`           | zset   | the last N bars with indicators, JSON, by end  |
/// | `<prefix>anomalies`                           | zset   | the last N anomalies, JSON, by time            |
/// | channel `<prefix>anomalies`                   | pubsub | every anomaly as it is raised, JSON            |
///
/// Field names are the CSV column names of the run folder (`bars.csv`, `indicators.csv`, …) without the
/// columns the key already names; values are the CSV text: numbers in their shortest round-trip form
/// (`Numbers.format`), times as integer nanoseconds, NaN as the empty string. In JSON members NaN is `null`.
public struct RedisLayout: Sendable, Equatable {
    public static let defaultPrefix = "tape:"
    public let prefix: String

    public init(prefix: String = RedisLayout.defaultPrefix) { self.prefix = prefix }

    public func latestTrade(_ symbol: String) -> String { "\(prefix)latest:trade:\(symbol)" }
    public func latestQuote(_ symbol: String) -> String { "\(prefix)latest:quote:\(symbol)" }
    public func latestBar(_ symbol: String, _ timeframe: Timeframe) -> String {
        "\(prefix)latest:bar:\(symbol):\(timeframe)"
    }
    public func latestPrediction(_ symbol: String, _ timeframe: Timeframe) -> String {
        "\(prefix)latest:prediction:\(symbol):\(timeframe)"
    }
    /// Sorted set of bar members (`barMember`), scored by the bar's end (ns), capped to the newest N.
    public func bars(_ symbol: String, _ timeframe: Timeframe) -> String { "\(prefix)bars:\(symbol):\(timeframe)" }
    /// Sorted set of anomaly members (`anomalyMember`), scored by the anomaly's time (ns), capped to the newest N.
    public var anomalies: String { "\(prefix)anomalies" }
    /// The pub/sub channel every anomaly is published on (a channel and a key live in separate namespaces).
    public var anomalyChannel: String { "\(prefix)anomalies" }
    /// The pub/sub channel of every update for WebSocket clients (`updateMessage`), when the sink publishes
    /// updates (`RedisSinkOptions.publishUpdates`). One channel, in write order: per hand-over the latest
    /// trades, quotes and predictions, then each bar followed by its indicators (in order per symbol and
    /// timeframe), then the anomalies in emission order.
    public var updatesChannel: String { "\(prefix)updates" }

    // MARK: values

    /// `event_time_ns, receive_time_ns, price, size, side, sequence` (side: 0 unknown, 1 buy, 2 sell).
    public static func tradeFields(_ trade: MarketEvent) -> [(String, String)] {
        tradeValues(trade).map { ($0.0, hashText($0.1)) }
    }

    public static func tradeValues(_ trade: MarketEvent) -> [(String, JSONValue)] {
        [("event_time_ns", .int(trade.eventTime)), ("receive_time_ns", .int(trade.receiveTime)),
         ("price", .number(trade.price)), ("size", .number(trade.size)),
         ("side", .int(Int64(trade.side))), ("sequence", .int(trade.sequence))]
    }

    /// `event_time_ns, receive_time_ns, bid, bid_size, ask, ask_size`.
    public static func quoteFields(_ quote: MarketEvent) -> [(String, String)] {
        quoteValues(quote).map { ($0.0, hashText($0.1)) }
    }

    public static func quoteValues(_ quote: MarketEvent) -> [(String, JSONValue)] {
        [("event_time_ns", .int(quote.eventTime)), ("receive_time_ns", .int(quote.receiveTime)),
         ("bid", .number(quote.bid)), ("bid_size", .number(quote.bidSize)),
         ("ask", .number(quote.ask)), ("ask_size", .number(quote.askSize))]
    }

    /// The indicator fields of a bar hash or member, in order (the columns of `indicators.csv`).
    public static let indicatorFields = ["sma", "ema", "rsi", "macd", "macd_signal", "macd_hist", "bb_middle",
                                         "bb_upper", "bb_lower", "session_vwap"]

    /// The bar columns of `bars.csv` (`start_ns … trades`) then the indicator columns of `indicators.csv`
    /// (`sma … session_vwap`); indicators missing (not emitted) are NaN. One list for the hash and the member.
    public static func barValues(_ bar: BarOutput, _ indicators: IndicatorOutput?) -> [(String, JSONValue)] {
        let values = indicators ?? IndicatorOutput(symbol: bar.symbol, timeframe: bar.timeframe, end: bar.end)
        return barValues(start: bar.start, end: bar.end, open: bar.open, high: bar.high, low: bar.low, close: bar.close,
                         volume: bar.volume, vwap: bar.vwap, trades: Int64(bar.trades),
                         indicators: [values.sma, values.ema, values.rsi, values.macd, values.macdSignal,
                                      values.macdHist, values.bbMiddle, values.bbUpper, values.bbLower,
                                      values.sessionVwap])
    }

    private static func barValues(start: Nanos, end: Nanos, open: Double, high: Double, low: Double, close: Double,
                                  volume: Double, vwap: Double, trades: Int64,
                                  indicators: [Double]) -> [(String, JSONValue)] {
        precondition(indicators.count == indicatorFields.count, "one value per indicator field")
        let bar: [(String, JSONValue)] = [
            ("start_ns", .int(start)), ("end_ns", .int(end)), ("open", .number(open)), ("high", .number(high)),
            ("low", .number(low)), ("close", .number(close)), ("volume", .number(volume)), ("vwap", .number(vwap)),
            ("trades", .int(trades)),
        ]
        return bar + zip(indicatorFields, indicators).map { ($0, JSONValue.number($1)) }
    }

    /// The latest-bar hash of a bar from elsewhere (the read-through's fallback maps a stored row with it):
    /// indicators by field name, a missing one empty.
    public static func barFields(start: Nanos, end: Nanos, open: Double, high: Double, low: Double, close: Double,
                                 volume: Double, vwap: Double, trades: Int64,
                                 indicators: [String: Double]) -> [String: String] {
        let values = barValues(start: start, end: end, open: open, high: high, low: low, close: close, volume: volume,
                               vwap: vwap, trades: trades, indicators: indicatorFields.map { indicators[$0] ?? .nan })
        return Dictionary(uniqueKeysWithValues: values.map { ($0.0, hashText($0.1)) })
    }

    public static func barFields(_ bar: BarOutput, _ indicators: IndicatorOutput?) -> [(String, String)] {
        barValues(bar, indicators).map { ($0.0, hashText($0.1)) }
    }

    /// One member of `bars(…)`: `{"start_ns":…,"end_ns":…,"open":…,…,"session_vwap":…}`.
    public static func barMember(_ bar: BarOutput, _ indicators: IndicatorOutput?) -> String {
        JSONValue.object(barValues(bar, indicators)).renderCompact()
    }

    /// `end_ns, prediction`.
    public static func predictionFields(_ prediction: PredictionOutput) -> [(String, String)] {
        [("end_ns", String(prediction.end)), ("prediction", Numbers.format(prediction.prediction))]
    }

    /// One member of `anomalies` and one message on `anomalyChannel`:
    /// `{"symbol":…,"time_ns":…,"rule":…,"value":…,"threshold":…,"severity":…}`.
    public static func anomalyMember(symbol: String, _ anomaly: AnomalyOutput) -> String {
        JSONValue.object([
            ("symbol", .string(symbol)), ("time_ns", .int(anomaly.time)), ("rule", .string(anomaly.rule)),
            ("value", .number(anomaly.value)), ("threshold", .number(anomaly.threshold)),
            ("severity", .string(anomaly.severity.rawValue)),
        ]).renderCompact()
    }

    // MARK: updates

    /// The update channels, as WebSocket clients name them: `trades`, `quotes` (the latest of each per
    /// hand-over, not every tick), `bars:<timeframe>` (every closed bar with its indicators),
    /// `indicators` and `predictions` (every timeframe; the data names it), `anomalies`.
    public static let updateChannels = ["trades", "quotes", "bars:<timeframe>", "indicators", "anomalies", "predictions"]

    /// One message on `updatesChannel`: `{"channel":…,"symbol":…,"data":{…}}`.
    public static func updateMessage(channel: String, symbol: String, data: [(String, JSONValue)]) -> String {
        JSONValue.object([("channel", .string(channel)), ("symbol", .string(symbol)), ("data", .object(data))])
            .renderCompact()
    }

    /// `timeframe, end_ns` then the indicator fields.
    public static func indicatorValues(_ bar: BarOutput, _ indicators: IndicatorOutput) -> [(String, JSONValue)] {
        let all = barValues(bar, indicators)
        return [("timeframe", .string(bar.timeframe.description)), ("end_ns", .int(bar.end))]
            + all.suffix(indicatorFields.count)
    }

    /// `timeframe, end_ns, prediction`.
    public static func predictionValues(_ prediction: PredictionOutput) -> [(String, JSONValue)] {
        [("timeframe", .string(prediction.timeframe.description)), ("end_ns", .int(prediction.end)),
         ("prediction", .number(prediction.prediction))]
    }

    /// `time_ns, rule, value, threshold, severity`.
    public static func anomalyValues(_ anomaly: AnomalyOutput) -> [(String, JSONValue)] {
        [("time_ns", .int(anomaly.time)), ("rule", .string(anomaly.rule)), ("value", .number(anomaly.value)),
         ("threshold", .number(anomaly.threshold)), ("severity", .string(anomaly.severity.rawValue))]
    }

    /// A hash field's text: integers as digits, numbers by `Numbers.format` (NaN → empty).
    static func hashText(_ value: JSONValue) -> String {
        switch value {
        case .int(let integer): return String(integer)
        case .number(let number): return Numbers.format(number)
        case .string(let text): return text
        case .bool(let flag): return flag ? "1" : "0"
        case .null: return ""
        case .array, .object: preconditionFailure("a hash field holds a scalar")
        }
    }

    // MARK: expiry

    /// How long a key lives after its last write: `ttlSeconds` (nil: for ever), but a per-timeframe key at
    /// least two of its timeframes, so that a key written once per period never expires between writes.
    public static func expirySeconds(ttlSeconds: Int64?, timeframe: Timeframe?) -> Int64? {
        guard let ttlSeconds else { return nil }
        guard let timeframe else { return ttlSeconds }
        return max(ttlSeconds, 2 * timeframe.seconds)
    }
}
