import Foundation
import TapeGraph
import TapeRedis
import TapeUpdates
import XCTest

/// The hub without a network: snapshot-then-updates order, a slow client closed without holding up the
/// others, resync after a gap, and requests refused with a reason. (The WebSocket server over it is
/// tested against real clients in TapeServeTests.)
final class UpdateHubTests: XCTestCase {
    private func update(_ channel: String, _ symbol: String, _ n: Int) -> String {
        RedisLayout.updateMessage(channel: channel, symbol: symbol, data: [("end_ns", .int(Int64(n)))])
    }

    private func json(_ text: String) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    func testASubscriberGetsTheSnapshotThenTheUpdatesOfItsKeysOnly() async throws {
        let hub = UpdateHub(queueCapacity: 100) { key in UpdateHub.snapshotMessage(key, data: #"[{"end_ns":0}]"#) }
        let client = hub.connect()
        await hub.handle(#"{"op":"subscribe","symbol":"spot:BTCUSDT","channels":["bars:1m","trades"]}"#, from: client)
        hub.publish(update("bars:1m", "spot:BTCUSDT", 1))
        hub.publish(update("bars:5m", "spot:BTCUSDT", 2))     // not subscribed
        hub.publish(update("bars:1m", "spot:ETHUSDT", 3))     // another symbol
        hub.publish(update("trades", "spot:BTCUSDT", 4))
        let (messages, close) = client.drain()
        XCTAssertNil(close)
        let parsed = try messages.map(json)
        XCTAssertEqual(parsed.map { $0["type"] as? String }, ["subscribed", "snapshot", "snapshot", "update", "update"])
        XCTAssertEqual(Set(parsed[1...2].map { $0["channel"] as? String }), ["bars:1m", "trades"])
        XCTAssertEqual(parsed[3]["channel"] as? String, "bars:1m")
        XCTAssertEqual((parsed[3]["data"] as? [String: Any])?["end_ns"] as? Int, 1)
        XCTAssertEqual(parsed[4]["channel"] as? String, "trades")
        XCTAssertEqual(hub.counters.updates, 4)
        XCTAssertEqual(hub.counters.delivered, 2)
    }

    func testUpdatesDuringTheSnapshotComeAfterIt() async throws {
        let gate = Gate()
        let hub = UpdateHub(queueCapacity: 100) { key in
            await gate.wait()
            return UpdateHub.snapshotMessage(key, data: "[]")
        }
        let client = hub.connect()
        let subscribing = Task { await hub.handle(#"{"op":"subscribe","symbol":"s","channels":["anomalies"]}"#, from: client) }
        while hub.counters.snapshots == 0 && client.drain().messages.isEmpty { try await Task.sleep(nanoseconds: 1_000_000) }
        hub.publish(update("anomalies", "s", 1))   // while the snapshot is being read
        hub.publish(update("anomalies", "s", 2))
        await gate.open()
        await subscribing.value
        let types = try client.drain().messages.map(json).map { "\($0["type"] ?? "") \(($0["data"] as? [String: Any])?["end_ns"] ?? "")" }
        XCTAssertEqual(types, ["snapshot ", "update 1", "update 2"])
    }

    func testASlowClientIsClosedAndTheOthersGetEveryUpdate() async throws {
        let hub = UpdateHub(queueCapacity: 10) { key in UpdateHub.snapshotMessage(key, data: "[]") }
        let slow = hub.connect(), fast = hub.connect()
        for client in [slow, fast] {
            await hub.handle(#"{"op":"subscribe","symbol":"s","channels":["trades"]}"#, from: client)
        }
        var received: [String] = []
        received += fast.drain().messages
        for n in 1...1_000 {
            hub.publish(update("trades", "s", n))
            if n % 5 == 0 { received += fast.drain().messages }   // the fast one keeps up
        }
        XCTAssertEqual(slow.closeReason, .slow(capacity: 10))
        XCTAssertEqual(slow.closeReason?.code, 4008)
        XCTAssertEqual(slow.drain().messages, [], "nothing more is sent to a closed client")
        XCTAssertNil(fast.closeReason)
        let updates = try received.map(json).filter { $0["type"] as? String == "update" }
        XCTAssertEqual(updates.compactMap { ($0["data"] as? [String: Any])?["end_ns"] as? Int }, Array(1...1_000))
        XCTAssertEqual(hub.counters.slowClientsClosed, 1)
    }

    func testResyncSendsANewSnapshotForEverySubscription() async throws {
        let count = Counter()
        let hub = UpdateHub(queueCapacity: 100) { key in
            UpdateHub.snapshotMessage(key, data: "[\(await count.next())]")
        }
        let client = hub.connect()
        await hub.handle(#"{"op":"subscribe","symbol":"s","channels":["trades","quotes"]}"#, from: client)
        _ = client.drain()
        await hub.resync()
        let snapshots = try client.drain().messages.map(json)
        XCTAssertEqual(snapshots.map { $0["type"] as? String }, ["snapshot", "snapshot"])
        XCTAssertEqual(Set(snapshots.compactMap { ($0["data"] as? [Int])?.first }), [3, 4])
    }

    func testBadRequestsAreAnsweredWithTheReason() async throws {
        let hub = UpdateHub { key in UpdateHub.snapshotMessage(key, data: "[]") }
        let client = hub.connect()
        for (request, reason) in [("not json", "not a JSON object"), (#"{"op":"fly"}"#, "unknown op fly"),
                                  (#"{"op":"subscribe","symbol":"s","channels":["candles"]}"#, "unknown channel candles"),
                                  (#"{"op":"subscribe","channels":["trades"]}"#, "needs \"symbol\"")] {
            await hub.handle(request, from: client)
            let reply = try json(try XCTUnwrap(client.drain().messages.first))
            XCTAssertEqual(reply["type"] as? String, "error")
            XCTAssertTrue((reply["message"] as? String ?? "").contains(reason), "\(reply)")
        }
        await hub.handle(#"{"op":"ping"}"#, from: client)
        XCTAssertEqual(client.drain().messages, [#"{"type":"pong"}"#])
        hub.disconnect(client)
        XCTAssertEqual(hub.clientCount, 0)
    }
}

private actor Gate {
    private var isOpen = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    func wait() async {
        if isOpen { return }
        await withCheckedContinuation { waiters.append($0) }
    }
    func open() {
        isOpen = true
        for waiter in waiters { waiter.resume() }
        waiters.removeAll()
    }
}

private actor Counter {
    private var value = 0
    func next() -> Int { value += 1; return value }
}
