import Foundation
import TapeCore
import TapeEngine
import TapeGraph
import TapeRedis
import TapeSinks
import TapeTestSupport
import XCTest

/// The Redis sink behind a real replay (three Binance captures and a month of 1-minute bars), against
/// the Redis of `make services`. Expected values come from the collected outputs and the input.
final class RedisSinkTests: XCTestCase {
    /// Small enough that the month of bars and the anomalies are trimmed.
    private let anomalyListLength = 25

    private func options(prefix: String) -> RedisSinkOptions {
        var options = RedisSinkOptions()
        options.keyPrefix = prefix
        options.anomalyListLength = anomalyListLength
        options.backoffInitialNanoseconds = 100_000_000
        options.backoffMaxNanoseconds = 1_000_000_000
        options.closeWaitNanoseconds = 30_000_000_000
        return options
    }

    /// Redis holds, per symbol, the same latest bar and indicators as the last rows of the CSVs, the
    /// latest trade and quote of the input, the last N bars per timeframe in order, the newest anomalies;
    /// every anomaly was published once, in order; every key expires.
    func testReplayLeavesTheLatestStateOfTheRunInRedis() throws {
        var redis = try RedisTestSupport.connect()
        let input = try RedisTestSupport.input()
        let prefix = RedisTestSupport.prefix("replay")
        try RedisTestSupport.deleteKeys(redis, prefix: prefix)
        defer { try? RedisTestSupport.deleteKeys(redis, prefix: prefix) }
        let options = options(prefix: prefix)

        let subscriber = try RedisTestSupport.connect()
        _ = try subscriber.command(["SUBSCRIBE", prefix + "anomalies"])
        let log = LogLines()
        let sink = try RedisSink(url: RedisTestSupport.url, symbols: input.symbols, options: options) { log.append($0) }
        let started = Date()
        let run = RedisTestSupport.replay(input, sinks: [sink])
        XCTAssertEqual(run.stop, .endOfStream)
        XCTAssertTrue(run.engine.close().isEmpty, "no sink failed")
        let seconds = Date().timeIntervalSince(started)

        let expected = ExpectedCache(prefix: prefix, input: input, outputs: run.collected.outputs,
                                     barListLength: options.barListLength, anomalyListLength: anomalyListLength)
        redis = try RedisTestSupport.connect()
        let actual = try RedisTestSupport.snapshot(redis, prefix: prefix)
        XCTAssertEqual(actual.others, [])
        XCTAssertEqual(Set(actual.hashes.keys), Set(expected.state.hashes.keys))
        for (key, fields) in expected.state.hashes where actual.hashes[key] != fields {
            XCTFail("\(key): Redis \(String(describing: actual.hashes[key])), expected \(String(describing: fields))")
        }
        XCTAssertEqual(Set(actual.lists.keys), Set(expected.state.lists.keys))
        for (key, members) in expected.state.lists where actual.lists[key] != members {
            XCTFail("\(key): \(actual.lists[key]??.count ?? 0) members, expected \(members?.count ?? 0); "
                    + "last \(String(describing: actual.lists[key]??.last)) vs \(String(describing: members?.last))")
        }
        // The month of 1-minute bars is longer than a list: trimmed to the newest N, in order.
        let barList = "\(prefix)bars:BTC-PERP:1m"
        XCTAssertEqual(actual.lists[barList]??.count, options.barListLength)
        XCTAssertGreaterThan(expected.anomaliesInOrder.count, anomalyListLength, "enough anomalies to trim the set")

        // Published: every anomaly once, in emission order.
        let messages = try subscriber.readReplies(expected.anomaliesInOrder.count)
        XCTAssertEqual(messages.map { $0.array?.last?.string ?? "" }, expected.anomaliesInOrder)
        subscriber.close()

        // Every key expires: in at most the TTL, or two timeframes for a longer timeframe (none here).
        for key in try RedisTestSupport.keys(redis, prefix: prefix) {
            let ttl = try redis.command(["TTL", key]).integer ?? -3
            XCTAssertTrue(ttl > 0 && ttl <= options.ttlSeconds!, "\(key) TTL \(ttl)")
        }

        let counters = sink.counters
        XCTAssertEqual(counters.outages, 0)
        XCTAssertEqual(counters.anomaliesPublished, expected.anomaliesInOrder.count)
        XCTAssertEqual(counters.indicatorsWithoutBar, 0)
        XCTAssertEqual(counters.unwrittenAtClose, 0)
        XCTAssertGreaterThan(counters.listEntriesSkipped, 0, "bars beyond N in one handover are never sent")
        XCTAssertEqual(log.lines, [], "no state change, nothing logged")
        let keysAndEntries = counters.keysWritten + counters.listEntriesWritten
        print("redis replay: \(input.events.count) events, \(run.collected.outputs.count) outputs in "
              + String(format: "%.2f s", seconds) + "; \(counters.keysWritten) keys + \(counters.listEntriesWritten) "
              + "list entries (\(keysAndEntries) in all) in \(counters.commands) commands, \(counters.batches) "
              + "round trips, \(counters.handovers) handovers, \(counters.listEntriesSkipped) entries skipped")
    }

    /// Redis stopped (shutdown nosave) for a while in the middle of a replay, with the engine polling
    /// all along, then started again with scripts/services.sh (the one that started it, so it comes back
    /// with its append-only file): afterwards Redis holds exactly the state
    /// of an undisturbed run, the pipeline never failed, one line was logged per state change, and the
    /// counters show the outage.
    func testRedisStoppedInTheMiddleOfAReplayEndsInTheSameState() throws {
        var redis = try RedisTestSupport.connect()
        let restart = try RedisTestSupport.servicesScript(of: redis)
        let input = try RedisTestSupport.input()
        let prefix = RedisTestSupport.prefix("outage")
        try RedisTestSupport.deleteKeys(redis, prefix: prefix)
        redis.close()
        let options = options(prefix: prefix)
        let outageSeconds = Double(ProcessInfo.processInfo.environment["TAPE_REDIS_OUTAGE_SECONDS"] ?? "") ?? 10
        let checkInterval = 512

        let log = LogLines()
        let sink = try RedisSink(url: RedisTestSupport.url, symbols: input.symbols, options: options) { log.append($0) }
        let driver = OutageDriver(total: input.events.count, checkInterval: checkInterval, outageSeconds: outageSeconds,
                                  restart: restart)
        let run = RedisTestSupport.replay(input, sinks: [sink], driver: driver, checkInterval: checkInterval)
        XCTAssertEqual(run.stop, .endOfStream, "the pipeline kept running")
        XCTAssertNil(driver.error)
        XCTAssertGreaterThanOrEqual(driver.outageSeconds, outageSeconds)
        XCTAssertGreaterThan(driver.checkpointsWhileDown, 10, "the engine polled while Redis was down")
        XCTAssertTrue(run.engine.close().isEmpty, "no sink failed")

        redis = try RedisTestSupport.connect()
        defer { try? RedisTestSupport.deleteKeys(redis, prefix: prefix) }
        let expected = ExpectedCache(prefix: prefix, input: input, outputs: run.collected.outputs,
                                     barListLength: options.barListLength, anomalyListLength: anomalyListLength)
        let actual = try RedisTestSupport.snapshot(redis, prefix: prefix)
        XCTAssertEqual(actual.hashes, expected.state.hashes)
        XCTAssertEqual(actual.lists.keys.sorted(), expected.state.lists.keys.sorted())
        for (key, members) in expected.state.lists where actual.lists[key] != members {
            XCTFail("\(key): \(actual.lists[key]??.count ?? 0) members, expected \(members?.count ?? 0)")
        }

        let counters = sink.counters
        XCTAssertEqual(counters.outages, 1)
        XCTAssertEqual(counters.reconnects, 1)
        XCTAssertGreaterThan(counters.writtenAfterReconnect, 0)
        XCTAssertEqual(counters.unwrittenAtClose, 0)
        let lines = log.lines
        XCTAssertEqual(lines.count, 2, "\(lines)")
        XCTAssertTrue(lines.first?.hasPrefix("tape: redis 127.0.0.1:\(RedisTestSupport.port): down (") ?? false,
                      "\(lines)")
        XCTAssertTrue(lines.last?.hasPrefix("tape: redis 127.0.0.1:\(RedisTestSupport.port): up again after ") ?? false,
                      "\(lines)")
        print("redis outage: \(lines.joined(separator: " | ")); counters \(counters.json.renderCompact())")
    }

    /// The connection is killed and every key deleted (a server that came back empty) in the middle of a
    /// replay: on reconnect every latest key is written again, so the latest state is exact; each list
    /// holds the newest bars, in order, without duplicates.
    func testAServerThatLostItsDataGetsTheLatestStateBack() throws {
        var redis = try RedisTestSupport.connect()
        let input = try RedisTestSupport.input()
        let prefix = RedisTestSupport.prefix("dataloss")
        try RedisTestSupport.deleteKeys(redis, prefix: prefix)
        defer { try? RedisTestSupport.deleteKeys(redis, prefix: prefix) }
        let options = options(prefix: prefix)
        let log = LogLines()
        let sinkName = "redis-dataloss-\(getpid())"
        let sink = try RedisSink(url: RedisTestSupport.url, symbols: input.symbols, options: options,
                                 name: sinkName) { log.append($0) }
        let killer = KillingDriver(at: input.events.count / 2) {
            try sink.flush()
            let clients = try redis.command(["CLIENT", "LIST"]).string ?? ""
            let line = clients.split(separator: "\n").first { $0.contains(" name=tape-\(sinkName) ") }
            let id = line?.split(separator: " ").first { $0.hasPrefix("id=") }?.dropFirst(3)
            XCTAssertNotNil(id, "the sink's connection is named tape-\(sinkName): \(clients)")
            _ = try redis.command(["CLIENT", "KILL", "ID", String(id ?? "")])
            try RedisTestSupport.deleteKeys(redis, prefix: prefix)
        }
        let run = RedisTestSupport.replay(input, sinks: [sink], driver: killer, checkInterval: 512)
        XCTAssertEqual(run.stop, .endOfStream)
        XCTAssertNil(killer.error)
        XCTAssertTrue(run.engine.close().isEmpty, "no sink failed")

        redis = try RedisTestSupport.connect()
        let expected = ExpectedCache(prefix: prefix, input: input, outputs: run.collected.outputs,
                                     barListLength: options.barListLength, anomalyListLength: anomalyListLength)
        let actual = try RedisTestSupport.snapshot(redis, prefix: prefix)
        XCTAssertEqual(actual.hashes, expected.state.hashes, "every latest key written again")
        for (key, members) in actual.lists {
            let all = expected.state.lists[key] ?? nil
            XCTAssertNotNil(all, key)
            guard let members, let all else { continue }
            XCTAssertFalse(members.isEmpty, key)
            XCTAssertEqual(Array(all.suffix(members.count)), members, "\(key): the newest, in order")
        }
        XCTAssertEqual(sink.counters.outages, 1)
        XCTAssertEqual(sink.counters.reconnects, 1)
        XCTAssertGreaterThanOrEqual(sink.counters.writtenAfterReconnect, expected.state.hashes.count)
        XCTAssertEqual(log.lines.count, 2, "\(log.lines)")
    }

    /// Many symbols: every latest key is written, with its newest value; prints the write rate.
    func testManySymbolsAllLatestKeysWritten() throws {
        let redis = try RedisTestSupport.connect()
        let prefix = RedisTestSupport.prefix("many")
        try RedisTestSupport.deleteKeys(redis, prefix: prefix)
        defer { try? RedisTestSupport.deleteKeys(redis, prefix: prefix) }
        let symbols = SymbolTable()
        let ids = (0..<5_000).map { symbols.intern("S\($0)") }
        var options = RedisSinkOptions()
        options.keyPrefix = prefix
        let sink = try RedisSink(url: RedisTestSupport.url, symbols: symbols, options: options) { _ in }
        let rounds = 10
        let started = Date()
        for round in 0..<rounds {
            for (index, id) in ids.enumerated() {
                let time = Nanos(round * 1_000_000 + index)
                sink.record(.trade(eventTime: time, receiveTime: time, symbol: id, price: Double(round) + 0.25,
                                   size: Double(index)))
                sink.record(.quote(eventTime: time, receiveTime: time, symbol: id, bid: Double(round), bidSize: 1,
                                   ask: Double(round) + 0.5, askSize: 2))
            }
            try sink.flush()
        }
        let seconds = Date().timeIntervalSince(started)
        try sink.close()
        let counters = sink.counters
        XCTAssertEqual(counters.keysWritten, rounds * ids.count * 2)
        XCTAssertEqual(try RedisTestSupport.keys(redis, prefix: prefix).count, ids.count * 2)
        for index in [0, 1_234, 4_999] {
            let trade = try redis.command(["HGETALL", "\(prefix)latest:trade:S\(index)"]).fieldValues
            XCTAssertEqual(trade?["price"], "9.25")
            XCTAssertEqual(trade?["size"], String(index))
            XCTAssertEqual(try redis.command(["HGET", "\(prefix)latest:quote:S\(index)", "ask"]).string, "9.5")
        }
        print("redis write rate: \(counters.keysWritten) keys in \(counters.commands) commands, "
              + "\(counters.batches) round trips, " + String(format: "%.2f s, %.0f keys/s", seconds,
                                                                Double(counters.keysWritten) / seconds))
    }

    /// `pollDue` (what `tape live`'s idle wait and a worker's Kafka poll honour): nil while nothing waits; due at
    /// once for the first item after a quiet spell (leading edge); then one interval after the last hand-over.
    func testPollDueIsWhenTheWaitingItemsFallDue() throws {
        let redis = try RedisTestSupport.connect()
        let prefix = RedisTestSupport.prefix("due")
        try RedisTestSupport.deleteKeys(redis, prefix: prefix)
        defer { try? RedisTestSupport.deleteKeys(redis, prefix: prefix) }
        let symbols = SymbolTable()
        let btc = symbols.intern("spot:BTCUSDT")
        var options = RedisSinkOptions()
        options.keyPrefix = prefix
        options.handoverIntervalNanoseconds = 3_600_000_000_000   // an hour: nothing falls due by itself here
        let sink = try RedisSink(url: RedisTestSupport.url, symbols: symbols, options: options) { _ in }
        defer { try? sink.close() }
        func now() -> Int64 {
            var time = timespec()
            clock_gettime(CLOCK_MONOTONIC, &time)
            return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
        }
        XCTAssertNil(sink.pollDue, "nothing waits")
        sink.record(.trade(eventTime: 1, receiveTime: 1, symbol: btc, price: 1, size: 1))
        XCTAssertLessThanOrEqual(try XCTUnwrap(sink.pollDue), now(), "the first item after a quiet spell is due at once")
        sink.poll()
        XCTAssertNil(sink.pollDue, "handed over")
        let handedOver = now()
        sink.record(.quote(eventTime: 2, receiveTime: 2, symbol: btc, bid: 1, bidSize: 1, ask: 2, askSize: 1))
        let due = try XCTUnwrap(sink.pollDue)
        XCTAssertGreaterThan(due, handedOver + options.handoverIntervalNanoseconds - 1_000_000_000)
        XCTAssertLessThanOrEqual(due, now() + options.handoverIntervalNanoseconds)
        sink.poll()
        XCTAssertNotNil(sink.pollDue, "not due yet: still waiting")
        try sink.flush()
        XCTAssertNil(sink.pollDue)
        XCTAssertEqual(try redis.command(["HGET", "\(prefix)latest:quote:spot:BTCUSDT", "ask"]).string, "2")
    }

    /// A bad URL is an error at start; so is an unreachable server (unless `startWhenDown`): each names
    /// the server, never the password.
    func testABadURLOrAnUnreachableServerIsAnErrorAtStart() throws {
        XCTAssertThrowsError(try RedisSink(url: "http://127.0.0.1:56379", symbols: SymbolTable()) { _ in }) {
            XCTAssertEqual(($0 as? RedisError)?.kind, .badURL, "\($0)")
        }
        XCTAssertThrowsError(try RedisSink(url: "redis://:s3cret@127.0.0.1:1", symbols: SymbolTable()) { _ in }) {
            XCTAssertEqual(($0 as? RedisError)?.kind, .connection, "\($0)")
            XCTAssertTrue("\($0)".hasPrefix("redis 127.0.0.1:1: "), "\($0)")
            XCTAssertFalse("\($0)".contains("s3cret"), "\($0)")
        }
        // Started down: no error, one line, and close gives up after its wait, counting what it held.
        var options = RedisSinkOptions()
        options.startWhenDown = true
        options.closeWaitNanoseconds = 300_000_000
        let log = LogLines()
        let symbols = SymbolTable()
        let sink = try RedisSink(url: "redis://127.0.0.1:1", symbols: symbols, options: options) { log.append($0) }
        sink.record(.trade(eventTime: 1, receiveTime: 1, symbol: symbols.intern("X"), price: 1, size: 1))
        try sink.flush()
        XCTAssertNoThrow(try sink.close())
        XCTAssertEqual(sink.counters.unwrittenAtClose, 1)
        XCTAssertEqual(sink.counters.outages, 1)
        XCTAssertEqual(log.lines.count, 2, "\(log.lines)")
        XCTAssertTrue(log.lines.first?.hasPrefix("tape: redis 127.0.0.1:1: down (") ?? false, "\(log.lines)")
        XCTAssertTrue(log.lines.last?.hasPrefix("tape: redis 127.0.0.1:1: still down at close") ?? false,
                      "\(log.lines)")
    }

    /// The factory for `ReplayOptions.sinkFactories`: a bad URL throws when the factory is made; a good
    /// one builds a sink per run with the run's symbols and printer; its report names the server.
    func testFactoryChecksTheURLFirstAndReports() throws {
        XCTAssertThrowsError(try RedisSink.factory(url: "redis://:pw@host:notaport")) {
            XCTAssertEqual(($0 as? RedisError)?.kind, .badURL, "\($0)")
            XCTAssertFalse("\($0)".contains("pw"), "\($0)")
        }
        _ = try RedisTestSupport.connect()
        var options = RedisSinkOptions()
        options.keyPrefix = RedisTestSupport.prefix("factory")
        let make = try RedisSink.factory(url: RedisTestSupport.url, options: options)
        let log = LogLines()
        let context = RunContext(directory: "/tmp", runID: "r", kind: "replay", symbols: SymbolTable(), configHash: "h",
                                 inputs: [], printer: { log.append($0) })
        let sink = try XCTUnwrap(try make(context) as? RedisSink)
        try sink.close()
        guard case .object(let members) = sink.report else { return XCTFail("report \(sink.report)") }
        XCTAssertEqual(members.first?.0, "server")
        XCTAssertEqual(members.first?.1, .string("127.0.0.1:\(RedisTestSupport.port)"))
        XCTAssertTrue(members.contains { $0.0 == "outages" && $0.1 == .int(0) }, "\(members)")
        XCTAssertEqual(sink.name, "redis")
    }

    /// A key of another type under the prefix is not an outage: it is the sink's failure, naming the
    /// server, the command and the key; the engine stops the run.
    func testAWrongTypeIsAFailureNotAnOutage() throws {
        let redis = try RedisTestSupport.connect()
        let prefix = RedisTestSupport.prefix("wrongtype")
        try RedisTestSupport.deleteKeys(redis, prefix: prefix)
        defer { try? RedisTestSupport.deleteKeys(redis, prefix: prefix) }
        _ = try redis.command(["SET", "\(prefix)latest:trade:X", "not a hash"])
        var options = RedisSinkOptions()
        options.keyPrefix = prefix
        let symbols = SymbolTable()
        let sink = try RedisSink(url: RedisTestSupport.url, symbols: symbols, options: options) { _ in }
        sink.record(.trade(eventTime: 1, receiveTime: 1, symbol: symbols.intern("X"), price: 1, size: 1))
        XCTAssertThrowsError(try sink.flush()) {
            let expected = "redis 127.0.0.1:\(RedisTestSupport.port): HSET \(prefix)latest:trade:X: WRONGTYPE"
            XCTAssertTrue("\($0)".hasPrefix(expected), "\($0)")
        }
        XCTAssertNotNil(sink.failure)
        XCTAssertThrowsError(try sink.close())
        XCTAssertEqual(sink.counters.outages, 0)
    }
}

/// Stops Redis a third of the way through, keeps the replay going slowly (the engine polls the sink at
/// every checkpoint) for `outageSeconds`, and starts Redis again two thirds of the way through.
final class OutageDriver: EngineDriver {
    let paces = false
    private let stopAt: Int
    private let startAt: Int
    private let outageSecondsWanted: Double
    private let pausePerCheckpoint: Double
    private let restart: URL
    private var stoppedAt: Date? = nil
    private var restarted = false
    private(set) var outageSeconds = 0.0
    private(set) var checkpointsWhileDown = 0
    private(set) var error: (any Error)? = nil

    init(total: Int, checkInterval: Int, outageSeconds: Double, restart: URL) {
        self.restart = restart
        stopAt = total / 3
        startAt = 2 * total / 3
        outageSecondsWanted = outageSeconds
        pausePerCheckpoint = outageSeconds / Double(max(1, (startAt - stopAt) / checkInterval))
    }

    func checkpoint(delivered: Int, streamTime: Nanos) -> Bool {
        do {
            if stoppedAt == nil && !restarted && delivered >= stopAt {
                try RedisTestSupport.stopRedis()
                stoppedAt = Date()
                return true
            }
            guard let since = stoppedAt else { return true }
            checkpointsWhileDown += 1
            if delivered < startAt {
                usleep(UInt32(pausePerCheckpoint * 1e6))
                return true
            }
            // However fast the replay went, the outage lasts outageSecondsWanted.
            while Date().timeIntervalSince(since) < outageSecondsWanted { usleep(50_000) }
            outageSeconds = Date().timeIntervalSince(since)
            stoppedAt = nil
            restarted = true
            try RedisTestSupport.startServices(script: restart)
        } catch {
            self.error = error
        }
        return true
    }
}

/// Runs `action` once, at the first checkpoint at or after `at` delivered events.
final class KillingDriver: EngineDriver {
    let paces = false
    private let at: Int
    private let action: () throws -> Void
    private var done = false
    private(set) var error: (any Error)? = nil

    init(at: Int, action: @escaping () throws -> Void) {
        self.at = at
        self.action = action
    }

    func checkpoint(delivered: Int, streamTime: Nanos) -> Bool {
        if !done && delivered >= at {
            done = true
            do { try action() } catch { self.error = error }
        }
        return true
    }
}
