import Foundation
import TapeCore
import TapeEngine
import TapeGraph
import TapeRedis
import TapeSinks
import TapeTestSupport
import XCTest

/// What `tape serve`'s WebSocket relays: the updates a pipeline's Redis sink publishes on
/// `<prefix>updates`, received by `RedisSubscriber` over the Redis of `make services`. Expected values come
/// from the engine's collected outputs and the input, read field by field from the JSON.
final class RedisUpdatesTests: XCTestCase {
    func testEveryBarIndicatorAndAnomalyIsPublishedOnceInOrderAndTheLatestTicks() throws {
        let input = try RedisTestSupport.input()
        let prefix = RedisTestSupport.prefix("updates")
        let redis = try RedisTestSupport.connect()
        defer { try? RedisTestSupport.deleteKeys(redis, prefix: prefix) }
        var options = RedisSinkOptions()
        options.keyPrefix = prefix
        options.barListLength = 1_000_000   // no bar trimmed within a hand-over: every one is published
        let received = LogLines()
        let subscribed = LogLines()
        let subscriber = try RedisSubscriber(url: RedisTestSupport.url, channel: prefix + "updates", log: { _ in },
                                             onSubscribed: { subscribed.append("subscribed") },
                                             onMessage: { received.append($0) })
        subscriber.start()
        let deadline = Date().addingTimeInterval(10)
        while !subscriber.isSubscribed && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        XCTAssertTrue(subscriber.isSubscribed)

        let sink = try RedisSink(url: RedisTestSupport.url, symbols: input.symbols, options: options) { _ in }
        let run = RedisTestSupport.replay(input, sinks: [sink])
        XCTAssertTrue(run.engine.close().isEmpty)
        let published = sink.counters.updatesPublished
        let wait = Date().addingTimeInterval(20)
        while received.lines.count < published && Date() < wait { Thread.sleep(forTimeInterval: 0.05) }
        subscriber.stop()
        XCTAssertEqual(received.lines.count, published, "every published update arrived")
        XCTAssertEqual(subscribed.lines.count, 1)

        var bars: [String: [[String: Any]]] = [:], indicators: [[String: Any]] = [], anomalies: [[String: Any]] = []
        var lastTrade: [String: [String: Any]] = [:], lastQuote: [String: [String: Any]] = [:]
        for line in received.lines {
            // JSONDecoder reads numbers exactly (JSONSerialization on Linux can be off by an ulp).
            let message = try JSONDecoder().decode(Update.self, from: Data(line.utf8))
            let channel = message.channel, symbol = message.symbol
            let data = message.data.mapValues { $0.value }
            switch channel {
            case "trades": lastTrade[symbol] = data
            case "quotes": lastQuote[symbol] = data
            case "indicators": indicators.append(data.merging(["symbol": symbol]) { a, _ in a })
            case "anomalies": anomalies.append(data.merging(["symbol": symbol]) { a, _ in a })
            case "predictions": break
            default:
                XCTAssertTrue(channel.hasPrefix("bars:"), channel)
                bars[symbol + " " + channel, default: []].append(data)
            }
        }
        // Bars: every one, once, in order per symbol and timeframe, with its values.
        var expectedBars: [String: [BarOutput]] = [:], expectedIndicators: [IndicatorOutput] = []
        var expectedAnomalies: [(String, AnomalyOutput)] = []
        for output in run.collected.outputs {
            switch output {
            case .bar(let bar): expectedBars[input.symbols.name(bar.symbol) + " bars:\(bar.timeframe)", default: []].append(bar)
            case .indicators(let values): expectedIndicators.append(values)
            case .anomaly(let anomaly): expectedAnomalies.append((input.symbols.name(anomaly.symbol), anomaly))
            default: break
            }
        }
        XCTAssertEqual(Set(bars.keys), Set(expectedBars.keys))
        for (key, expected) in expectedBars {
            let got = bars[key] ?? []
            XCTAssertEqual(got.count, expected.count, key)
            for (bar, data) in zip(expected, got) {
                XCTAssertEqual((data["end_ns"] as? NSNumber)?.int64Value, bar.end, key)
                XCTAssertEqual((data["close"] as? NSNumber)?.doubleValue, bar.close, key)
                XCTAssertEqual((data["volume"] as? NSNumber)?.doubleValue, bar.volume, key)
                XCTAssertEqual((data["trades"] as? NSNumber)?.intValue, bar.trades, key)
            }
        }
        // Indicators: in order per symbol and timeframe (each right after its bar; lists are written one
        // after the other within a hand-over).
        XCTAssertEqual(indicators.count, expectedIndicators.count)
        func key(_ symbol: String?, _ timeframe: String?) -> String { "\(symbol ?? "") \(timeframe ?? "")" }
        let gotByList = Dictionary(grouping: indicators) { key($0["symbol"] as? String, $0["timeframe"] as? String) }
        let expectedByList = Dictionary(grouping: expectedIndicators) { key(input.symbols.name($0.symbol), "\($0.timeframe)") }
        XCTAssertEqual(Set(gotByList.keys), Set(expectedByList.keys))
        for (list, expected) in expectedByList { for (values, data) in zip(expected, gotByList[list] ?? []) {
            XCTAssertEqual((data["end_ns"] as? NSNumber)?.int64Value, values.end)
            XCTAssertEqual(data["timeframe"] as? String, "\(values.timeframe)")
            if values.rsi.isNaN { XCTAssertTrue(data["rsi"] is NSNull) }
            else { XCTAssertEqual((data["rsi"] as? NSNumber)?.doubleValue, values.rsi) }
        } }
        XCTAssertGreaterThan(expectedAnomalies.count, 0)
        XCTAssertEqual(anomalies.map { $0["symbol"] as? String }, expectedAnomalies.map { $0.0 })
        XCTAssertEqual(anomalies.map { ($0["time_ns"] as? NSNumber)?.int64Value }, expectedAnomalies.map { $0.1.time })
        XCTAssertEqual(anomalies.map { $0["rule"] as? String }, expectedAnomalies.map { $0.1.rule })
        // Trades and quotes are the latest per hand-over: the last one of each symbol is the input's last.
        var inputLastTrade: [String: MarketEvent] = [:], inputLastQuote: [String: MarketEvent] = [:]
        for event in input.events {
            if event.kind == .trade { inputLastTrade[input.symbols.name(event.symbol)] = event }
            if event.kind == .quote { inputLastQuote[input.symbols.name(event.symbol)] = event }
        }
        XCTAssertEqual(Set(lastTrade.keys), Set(inputLastTrade.keys))
        for (symbol, event) in inputLastTrade {
            XCTAssertEqual((lastTrade[symbol]?["sequence"] as? NSNumber)?.int64Value, event.sequence, symbol)
            XCTAssertEqual((lastTrade[symbol]?["price"] as? NSNumber)?.doubleValue, event.price, symbol)
        }
        XCTAssertEqual(Set(lastQuote.keys), Set(inputLastQuote.keys))
        for (symbol, event) in inputLastQuote {
            XCTAssertEqual((lastQuote[symbol]?["receive_time_ns"] as? NSNumber)?.int64Value, event.receiveTime, symbol)
            XCTAssertEqual((lastQuote[symbol]?["ask"] as? NSNumber)?.doubleValue, event.ask, symbol)
        }
    }

    /// A subscriber started before Redis answers keeps trying, and subscribes once the server is there;
    /// `stop()` ends it promptly even while it waits.
    func testASubscriberWithoutServerRetriesAndStopsPromptly() throws {
        let lines = LogLines()
        let subscriber = try RedisSubscriber(url: "redis://127.0.0.1:1", channel: "tape-test:updates",
                                             log: { lines.append($0) }, onMessage: { _ in })
        subscriber.start()
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertFalse(subscriber.isSubscribed)
        let started = Date()
        subscriber.stop()
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.0)
        XCTAssertEqual(lines.lines.count, 1, "one line per state change: \(lines.lines)")
        XCTAssertTrue(lines.lines.first?.contains("127.0.0.1:1") ?? false)
        XCTAssertEqual(subscriber.counters.outages, 1)
    }
}

/// One update as a client reads it: numbers as NSNumber, text as String, null as NSNull.
private struct Update: Decodable {
    struct Value: Decodable {
        let value: Any
        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() { value = NSNull() }
            else if let integer = try? container.decode(Int64.self) { value = NSNumber(value: integer) }
            else if let number = try? container.decode(Double.self) { value = NSNumber(value: number) }
            else { value = try container.decode(String.self) }
        }
    }
    let channel: String
    let symbol: String
    let data: [String: Value]
}
