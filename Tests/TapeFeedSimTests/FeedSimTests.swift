import Foundation
import Synchronization
import TapeCore
import TapeFeeds
import TapeTestSupport
import XCTest

/// `tape feed-sim` over loopback, checked against facts read independently (Python's gzip/json/csv).
final class FeedSimTests: XCTestCase {
    static let capture = "binance-feed/spot-btcusdt_20240808.gz"
    static let streams = "btcusdt@trade,btcusdt@bookTicker"

    func captureFacts() throws -> (messages: [String], trades: [[Double]]) {
        let path = try FeedSimPaths.data(Self.capture)
        let facts = try FeedSimPaths.facts(["capture", path, Self.streams]) as? [String: Any] ?? [:]
        let messages = facts["messages"] as? [String] ?? []
        let trades = (facts["trades"] as? [[Any]] ?? []).map { $0.compactMap { ($0 as? NSNumber)?.doubleValue } }
        XCTAssertGreaterThan(messages.count, 1_000)
        return (messages, trades)
    }

    static func json(_ text: String) -> Any? { try? JSONSerialization.jsonObject(with: Data(text.utf8)) }

    // MARK: Binance

    func testBinanceServesTheCaptureVerbatim() async throws {
        let facts = try captureFacts()
        let sim = try FeedSimProcess([try FeedSimPaths.data(Self.capture), "--protocol", "binance",
                                      "--speed", "max", "--shift", "none"])
        let expected = facts.messages.count
        let received = try await TestClient.collect(
            url: "ws://\(sim.base)/stream?streams=btcusdt@trade/btcusdt@bookTicker") { $1 >= expected }
        let (stats, _) = sim.stop()
        XCTAssertEqual(received.messages.count, expected)
        XCTAssertTrue(received.messages == facts.messages, "byte-equal to the capture's lines, in order")
        let trades = received.messages.filter { $0.hasPrefix(#"{"stream":"btcusdt@trade""#) }.count
        XCTAssertEqual(trades, facts.trades.count)
        let totals = stats["totals"] as? [String: Any] ?? [:]
        XCTAssertEqual(totals["messages_served"] as? Int, expected)
        XCTAssertEqual(totals["events_served"] as? Int, expected)
    }

    func testBinanceSubscribeMethodAndShift() async throws {
        let sim = try FeedSimProcess([try FeedSimPaths.data(Self.capture), "--protocol", "binance", "--speed", "max"])
        defer { sim.stop() }
        let startMilliseconds = Int(Date().timeIntervalSince1970 * 1000)
        let received = try await TestClient.collect(
            url: "ws://\(sim.base)/stream",
            send: [#"{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":7}"#]) { $1 >= 50 }
        XCTAssertEqual(received.messages.first, #"{"result":null,"id":7}"#)
        for message in received.messages.dropFirst() {
            XCTAssertTrue(message.hasPrefix(#"{"stream":"btcusdt@trade","data":{"#), message)
            let data = (Self.json(message) as? [String: Any])?["data"] as? [String: Any]
            let tradeTime = (data?["T"] as? NSNumber)?.intValue ?? 0
            // --shift now: the first message's time is the simulator's start (within a minute here).
            XCTAssertLessThan(abs(tradeTime - startMilliseconds), 60_000, message)
        }
    }

    func testFiveForcedDisconnectsLoseNothing() async throws {
        let facts = try captureFacts()
        let total = facts.messages.count
        let perConnection = total / 6 + 1   // 5 full connections, then the rest: exactly 5 drops
        let sim = try FeedSimProcess([try FeedSimPaths.data(Self.capture), "--protocol", "binance", "--speed", "max",
                                      "--shift", "none", "--drop-after-messages", String(perConnection)])
        var all: [String] = []
        var closes = 0
        while all.count < total && closes < 10 {
            let want = total - all.count
            let received = try await TestClient.collect(
                url: "ws://\(sim.base)/stream?streams=btcusdt@trade/btcusdt@bookTicker") { $1 >= want }
            all += received.messages
            if received.closedByServer { closes += 1 }
        }
        let (stats, log) = sim.stop()
        XCTAssertEqual(closes, 5)
        XCTAssertEqual(all.count, total)
        XCTAssertTrue(all == facts.messages, "every message once, in order, across the reconnects")
        let totals = stats["totals"] as? [String: Any] ?? [:]
        XCTAssertEqual(totals["drops"] as? Int, 5)
        XCTAssertEqual(totals["connections"] as? Int, 6)
        XCTAssertEqual(totals["messages_skipped_disconnected"] as? Int, 0)
        XCTAssertTrue(log.contains("closed (drop)"), log)
    }

    func testGarbleEveryTenthMessage() async throws {
        let sim = try FeedSimProcess([try FeedSimPaths.data(Self.capture), "--protocol", "binance", "--speed", "max",
                                      "--garble-every", "10"])
        let received = try await TestClient.collect(url: "ws://\(sim.base)/stream?streams=btcusdt@bookTicker") {
            $1 >= 100
        }
        let (stats, _) = sim.stop()
        for (index, message) in received.messages.prefix(100).enumerated() {
            let parses = Self.json(message) != nil
            XCTAssertEqual(parses, (index + 1) % 10 != 0, "message \(index + 1): \(message)")
        }
        XCTAssertGreaterThanOrEqual((stats["totals"] as? [String: Any])?["garbled"] as? Int ?? 0, 10)
    }

    func testStallKeepsTheSocketOpenAndSendsNothing() async throws {
        let sim = try FeedSimProcess([try FeedSimPaths.data(Self.capture), "--protocol", "binance", "--speed", "1",
                                      "--stall-every", "1", "--stall-for", "1.5"])
        let received = try await TestClient.collect(url: "ws://\(sim.base)/stream?streams=btcusdt@bookTicker",
                                                    timeout: .seconds(3)) { _, _ in false }
        let (stats, _) = sim.stop()
        XCTAssertFalse(received.closedByServer)
        let gaps = zip(received.arrivals, received.arrivals.dropFirst()).map { $1 - $0 }
        XCTAssertGreaterThanOrEqual(gaps.max() ?? .zero, .milliseconds(1_300), "a stall of 1.5 s shows as a gap")
        XCTAssertGreaterThan(received.messages.count, 20)
        XCTAssertGreaterThanOrEqual((stats["totals"] as? [String: Any])?["stalls"] as? Int ?? 0, 1)
    }

    // MARK: Polygon

    func testPolygonTradesDecodeToTheCapturesTrades() async throws {
        let facts = try captureFacts()
        let sim = try FeedSimProcess([try FeedSimPaths.data(Self.capture), "--protocol", "polygon", "--speed", "max",
                                      "--shift", "none", "--api-key", "good"])
        defer { sim.stop() }
        let expectedTrades = facts.trades.count
        let tradesSeen = Locked(0)
        let received = try await TestClient.collect(
            url: "ws://\(sim.base)/stocks",
            send: [#"{"action":"auth","params":"good"}"#, #"{"action":"subscribe","params":"T.BTCUSDT"}"#]
        ) { latest, _ in
            let trades = latest.components(separatedBy: #""ev":"T""#).count - 1
            return tradesSeen.withLock { seen in
                seen += trades
                return seen >= expectedTrades
            }
        }
        XCTAssertEqual(received.messages.first,
                       #"[{"ev":"status","status":"connected","message":"Connected Successfully"}]"#)
        XCTAssertEqual(received.messages.dropFirst().first,
                       #"[{"ev":"status","status":"auth_success","message":"authenticated"}]"#)
        XCTAssertEqual(received.messages.dropFirst(2).first,
                       #"[{"ev":"status","status":"success","message":"subscribed to: T.BTCUSDT"}]"#)
        // The decoder Tape's live connector uses reads every data message back.
        var decoder = PolygonDecoder(symbols: SymbolTable(), venue: nil)
        var events: [MarketEvent] = []
        for message in received.messages.dropFirst(3) {
            let outcome = Array(message.utf8).withUnsafeBytes { decoder.decode($0, receiveTime: 1, into: &events) }
            guard case .decoded = outcome else { return XCTFail("\(outcome) for \(message)") }
        }
        XCTAssertEqual(events.count, expectedTrades)
        XCTAssertTrue(events.allSatisfy { $0.kind == .trade })
        XCTAssertEqual(events.map { Double($0.sequence) }, facts.trades.map { $0[0] })
        XCTAssertEqual(events.map(\.price), facts.trades.map { $0[1] })
    }

    func testPolygonWrongKeyFailsAuthAndCloses() async throws {
        let sim = try FeedSimProcess([try FeedSimPaths.data(Self.capture), "--protocol", "polygon",
                                      "--api-key", "good"])
        let received = try await TestClient.collect(url: "ws://\(sim.base)/stocks",
                                                    send: [#"{"action":"auth","params":"bad"}"#],
                                                    timeout: .seconds(10)) { _, _ in false }
        let (stats, _) = sim.stop()
        XCTAssertEqual(received.messages.last,
                       #"[{"ev":"status","status":"auth_failed","message":"authentication failed"}]"#)
        XCTAssertTrue(received.closedByServer)
        XCTAssertEqual((stats["totals"] as? [String: Any])?["auth_failures"] as? Int, 1)
    }

    // MARK: Finage

    func testFinageDocumentedShapes() async throws {
        let facts = try captureFacts()
        let sim = try FeedSimProcess([try FeedSimPaths.data(Self.capture), "--protocol", "finage", "--speed", "max",
                                      "--api-key", "key"])
        defer { sim.stop() }
        let expected = facts.messages.count + 2
        let received = try await TestClient.collect(url: "ws://\(sim.base)/?token=key",
                                                    send: [#"{"action":"subscribe","symbols":"BTCUSDT"}"#]) {
            $1 >= expected
        }
        XCTAssertEqual(received.messages.count, expected)
        let greeting = received.messages.prefix(2).compactMap { Self.json($0) as? [String: Any] }
        XCTAssertEqual(greeting.map { $0["message"] as? String }, ["authorizing", "connected to the adapter"])
        XCTAssertEqual(greeting.map { $0["status_code"] as? Int }, [200, 200])
        var trades = 0
        for message in received.messages.dropFirst(2) {
            guard let object = Self.json(message) as? [String: Any] else { return XCTFail(message) }
            XCTAssertEqual(object["s"] as? String, "BTCUSDT")
            XCTAssertNotNil(object["t"] as? NSNumber)
            if let price = object["p"] as? String {
                trades += 1
                XCTAssertNotNil(Double(price))
                XCTAssertNotNil((object["q"] as? String).flatMap(Double.init))
            } else {
                for key in ["ap", "bp", "as", "bs"] {
                    XCTAssertNotNil(object[key] as? NSNumber, "\(key) is a number in \(message)")
                }
            }
        }
        XCTAssertEqual(trades, facts.trades.count)
    }

    func testFinageWrongTokenIsRefused() async throws {
        let sim = try FeedSimProcess([try FeedSimPaths.data(Self.capture), "--protocol", "finage", "--api-key", "key"])
        defer { sim.stop() }
        let received = try await TestClient.collect(url: "ws://\(sim.base)/?token=wrong",
                                                    timeout: .seconds(10)) { _, _ in false }
        XCTAssertEqual(received.messages, [#"{"status_code":401,"message":"invalid socket key"}"#])
        XCTAssertTrue(received.closedByServer)
    }
}
