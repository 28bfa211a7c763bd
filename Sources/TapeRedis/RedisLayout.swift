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
/// | `<prefix>latest:position:<symbol>`            | hash   | the latest position (`positionValues`)         |
/// | `<prefix>latest:equity:<symbol>`              | hash   | the latest equity of the symbol (`equityValues`) |
/// | `<prefix>orders:<symbol>`                     | zset   | the last N order changes, JSON, by time        |
/// | `<prefix>fills:<symbol>`                      | zset   | the last N fills, JSON, by time                |
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
    /// The latest position of a symbol (paper trading): the row with the greatest time written so far.
    public func latestPosition(_ symbol: String) -> String { "\(prefix)latest:position:\(symbol)" }
    /// The latest equity row of a symbol (its contribution to the account; the account's total is not kept).
    public func latestEquity(_ symbol: String) -> String { "\(prefix)latest:equity:\(symbol)" }
    /// Sorted set of a symbol's order changes (`orderMember`), scored by time (ns), capped to the newest N.
    public func orders(_ symbol: String) -> String { "\(prefix)orders:\(symbol)" }
    /// Sorted set of a symbol's fills (`fillMember`), scored by time (ns), capped to the newest N.
    public func fills(_ symbol: String) -> String { "\(prefix)fills:\(symbol)" }
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

    // MARK: trading (docs/backtesting.md): the run folder's columns without `symbol`, in its order, with the
    // key columns the stores add (`sequence`; a position's `order_id` and `fill_number`)

    /// `time_ns, order_id, sequence, side, type, tif, quantity, limit_price, stop_price, status,
    /// filled_quantity, tag, reason`.
    public static func orderValues(_ order: OrderRecord) -> [(String, JSONValue)] {
        [("time_ns", .int(order.time)), ("order_id", .int(order.orderID)), ("sequence", .int(order.sequence)),
         ("side", .string(order.side.name)), ("type", .string(order.type.name)),
         ("tif", .string(order.timeInForce.name)), ("quantity", .number(order.quantity)),
         ("limit_price", .number(order.limitPrice)), ("stop_price", .number(order.stopPrice)),
         ("status", .string(order.status.name)), ("filled_quantity", .number(order.filledQuantity)),
         ("tag", .string(order.tag)), ("reason", .string(order.reason))]
    }

    /// `time_ns, order_id, fill_number, side, price, quantity, fee, rule, arrival_ns, tag` (fills.csv).
    public static func fillValues(_ fill: FillRecord) -> [(String, JSONValue)] {
        [("time_ns", .int(fill.time)), ("order_id", .int(fill.orderID)), ("fill_number", .int(fill.fillNumber)),
         ("side", .string(fill.side.name)), ("price", .number(fill.price)), ("quantity", .number(fill.quantity)),
         ("fee", .number(fill.fee)), ("rule", .string(fill.rule.name)), ("arrival_ns", .int(fill.arrivalTime)),
         ("tag", .string(fill.tag))]
    }

    /// `time_ns, order_id, fill_number` (the fill the row follows; 0 and 0 at a mark), `quantity,
    /// average_price, realized_pnl, unrealized_pnl, fees, mark_price`.
    public static func positionValues(_ position: PositionRecord) -> [(String, JSONValue)] {
        [("time_ns", .int(position.time)), ("order_id", .int(position.orderID)),
         ("fill_number", .int(position.fillNumber)), ("quantity", .number(position.quantity)),
         ("average_price", .number(position.averagePrice)), ("realized_pnl", .number(position.realizedPnL)),
         ("unrealized_pnl", .number(position.unrealizedPnL)), ("fees", .number(position.fees)),
         ("mark_price", .number(position.markPrice))]
    }

    /// `time_ns, cash, equity, gross_exposure` (a symbol's row of equity.csv).
    public static func equityValues(_ equity: EquityRecord) -> [(String, JSONValue)] {
        [("time_ns", .int(equity.time)), ("cash", .number(equity.cash)), ("equity", .number(equity.equity)),
         ("gross_exposure", .number(equity.grossExposure))]
    }

    /// The hash fields of `values` (`hashText`: NaN empty).
    public static func hashFields(_ values: [(String, JSONValue)]) -> [(String, String)] {
        values.map { ($0.0, hashText($0.1)) }
    }

    /// One member of `orders(…)`: `{"time_ns":…,"order_id":…,"sequence":…,…,"reason":…}`.
    public static func orderMember(_ order: OrderRecord) -> String { JSONValue.object(orderValues(order)).renderCompact() }

    /// One member of `fills(…)`: `{"time_ns":…,"order_id":…,"fill_number":…,…,"tag":…}`.
    public static func fillMember(_ fill: FillRecord) -> String { JSONValue.object(fillValues(fill)).renderCompact() }

    // MARK: updates

    /// The update channels, as WebSocket clients name them: `trades`, `quotes` (the latest of each per
    /// hand-over, not every tick), `bars:<timeframe>` (every closed bar with its indicators),
    /// `indicators` and `predictions` (every timeframe; the data names it), `anomalies`; paper trading's
    /// `orders` and `fills` (every one) and `positions` and `equity` (the latest per symbol per hand-over).
    public static let updateChannels = ["trades", "quotes", "bars:<timeframe>", "indicators", "anomalies", "predictions",
                                        "orders", "fills", "positions", "equity"]

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
