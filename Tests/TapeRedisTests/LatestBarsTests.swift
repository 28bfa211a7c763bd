import Foundation
import TapeCore
import TapeGraph
import TapeRedis
import TapeTestSupport
import XCTest

/// The fallback's calls, recorded from any thread.
final class FallbackCalls: @unchecked Sendable {
    private let lock = NSLock()
    private var calls: [String] = []
    func record(_ key: String) {
        lock.lock()
        calls.append(key)
        lock.unlock()
    }
    var all: [String] {
        lock.lock()
        defer { lock.unlock() }
        return calls
    }
}

/// The read-through helper on a scripted request mix, against the Redis of `make services`.
final class LatestBarsTests: XCTestCase {
    private let minute = Timeframe(seconds: 60)

    private func bar(_ close: String, end: Int64) -> [String: String] {
        ["start_ns": String(end - 60_000_000_000), "end_ns": String(end), "open": "1", "high": close, "low": "0.5",
         "close": close, "volume": "", "trades": "3"]
    }

    /// Hits and misses counted right, the fallback called only on misses, a found value filled into Redis
    /// (with the expiry) and served from there afterwards.
    func testScriptedRequestMix() throws {
        let redis = try RedisTestSupport.connect()
        let prefix = RedisTestSupport.prefix("readthrough")
        try RedisTestSupport.deleteKeys(redis, prefix: prefix)
        defer { try? RedisTestSupport.deleteKeys(redis, prefix: prefix) }

        // A is cached already; the store of history has B and C; nobody has D.
        let cachedA = bar("101.5", end: 1_723_075_260_000_000_000)
        var seed = ["HSET", "\(prefix)latest:bar:A:1m"]
        for (field, value) in cachedA { seed += [field, value] }
        _ = try redis.command(seed)
        let history: [String: [String: String]] = [
            "A": bar("1", end: 1), "B": bar("0.1", end: 1_723_075_320_000_000_000), "C": bar("3e-05", end: 120),
        ]
        let calls = FallbackCalls()
        let latest = LatestBars(connection: try RedisTestSupport.connect(), layout: RedisLayout(prefix: prefix),
                                ttlSeconds: 30) { symbol, timeframe in
            calls.record("\(symbol):\(timeframe)")
            return history[symbol]
        }

        let script = ["A", "B", "B", "D", "C", "A", "D", "C", "B", "E", "A"]
        // The expected counts, from the script alone.
        var cached: Set<String> = ["A"]
        var expected = LatestBars.Counters()
        var expectedCalls: [String] = []
        for symbol in script {
            let answer = try latest.latestBar(symbol: symbol, timeframe: minute)
            if cached.contains(symbol) {
                expected.hits += 1
                XCTAssertEqual(answer, symbol == "A" ? cachedA : history[symbol], symbol)
            } else {
                expected.misses += 1
                expectedCalls.append("\(symbol):1m")
                if let found = history[symbol] {
                    expected.filled += 1
                    cached.insert(symbol)
                    XCTAssertEqual(answer, found, symbol)
                } else {
                    expected.notFound += 1
                    XCTAssertNil(answer, symbol)
                }
            }
        }
        XCTAssertEqual(latest.counters, expected)
        XCTAssertEqual(expected.hits, 6)
        XCTAssertEqual(calls.all, expectedCalls, "the fallback is asked on misses only")

        // Filled: the store's fields, expiring after max(TTL, two timeframes) = 120 s.
        for symbol in ["B", "C"] {
            let key = "\(prefix)latest:bar:\(symbol):1m"
            XCTAssertEqual(try redis.command(["HGETALL", key]).fieldValues, history[symbol])
            let ttl = try redis.command(["TTL", key]).integer ?? -3
            XCTAssertTrue(ttl > 30 && ttl <= 120, "\(key) TTL \(ttl)")
        }
        XCTAssertEqual(try redis.command(["EXISTS", "\(prefix)latest:bar:D:1m"]).integer, 0, "nothing to fill")
    }

    /// A fallback builds its answer with `RedisLayout.barFields`: the fields are the CSV columns of the
    /// bar and its indicators, with the CSV text (what the sink writes for the same bar).
    func testFallbackFieldsAreTheCSVColumns() {
        let symbols = SymbolTable()
        let symbol = symbols.intern("spot:BTCUSDT")
        let bar = BarOutput(symbol: symbol, timeframe: minute, start: 1_723_075_200_000_000_000,
                            end: 1_723_075_260_000_000_000, open: 61_837.63, high: 61_900, low: 61_800.5,
                            close: 61_850.01, volume: 12.345, vwap: 61_851.123456789, trades: 321)
        var indicators = IndicatorOutput(symbol: symbol, timeframe: minute, end: bar.end)
        indicators.sma = 61_840.1
        indicators.rsi = 55.5
        indicators.sessionVwap = 61_849.9
        func columns(_ output: GraphOutput, drop: Int) -> [(String, String)] {
            let names = GraphOutput.csvHeaders[output.kindName]!.split(separator: ",").map(String.init)
            let values = output.csvRow(symbols: symbols).split(separator: ",", omittingEmptySubsequences: false)
            return Array(zip(names, values.map(String.init)).dropFirst(drop))
        }
        let expected = Dictionary(uniqueKeysWithValues: columns(.bar(bar), drop: 2)
                                      + columns(.indicators(indicators), drop: 3))
        let fields = RedisLayout.barFields(start: bar.start, end: bar.end, open: bar.open, high: bar.high, low: bar.low,
                                           close: bar.close, volume: bar.volume, vwap: bar.vwap,
                                           trades: Int64(bar.trades),
                                           indicators: ["sma": 61_840.1, "rsi": 55.5, "session_vwap": 61_849.9])
        XCTAssertEqual(fields, expected)
    }

    /// Redis unreachable: every lookup is a miss served by the fallback, nothing is thrown.
    func testRedisUnreachableServesFromTheFallback() throws {
        let calls = FallbackCalls()
        let connection = RedisConnection(endpoint: try RedisEndpoint(url: "redis://127.0.0.1:1"),
                                         connectTimeoutNanoseconds: 200_000_000)
        let latest = LatestBars(connection: connection) { symbol, _ in
            calls.record(symbol)
            return symbol == "B" ? ["close": "2"] : nil
        }
        XCTAssertEqual(try latest.latestBar(symbol: "B", timeframe: minute), ["close": "2"])
        XCTAssertNil(try latest.latestBar(symbol: "Z", timeframe: minute))
        XCTAssertEqual(try latest.latestBar(symbol: "B", timeframe: minute), ["close": "2"])
        var expected = LatestBars.Counters()
        expected.misses = 3
        expected.redisUnavailable = 3
        expected.notFound = 1
        XCTAssertEqual(latest.counters, expected)
        XCTAssertEqual(calls.all, ["B", "Z", "B"])
    }
}
