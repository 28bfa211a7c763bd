import Foundation
import TapeCore
import TapeGraph
import TapeLogging

/// The Redis sink's writer thread: merges handovers into `RedisPendingState`, writes it pipelined, and
/// rides out outages (see `RedisSink` for the contract). Everything here runs on that one thread but
/// the `mailbox`, which is shared with the engine thread under its lock.
final class RedisWriter: @unchecked Sendable {
    /// Error replies that mean "not now" (restarting, loading its data, out of memory, a script running,
    /// a replica without its master): the server is treated as down, not as failed.
    static let transientReplies = ["LOADING", "BUSY", "OOM", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "READONLY"]

    private let connection: RedisConnection
    private let options: RedisSinkOptions
    private let layout: RedisLayout
    private let mailbox: RedisMailbox
    private let logger: Logger
    private let dependency: DependencyTracker

    private var state: RedisPendingState
    private var down = false
    private var failed = false
    private var downSince: Int64 = 0
    private var nextAttemptAt: Int64 = 0
    private var attemptsWhileDown = 0
    private var backoff: Backoff
    /// Set by a reconnect: the next successful round is the write-back, logged and counted.
    private var writingBack = false
    private var closeDeadline: Int64? = nil
    /// Reused for every command.
    private var arguments: [String] = []

    init(connection: RedisConnection, options: RedisSinkOptions, mailbox: RedisMailbox, logger: Logger,
         dependency: DependencyTracker, startError: RedisError?) {
        self.connection = connection
        self.options = options
        self.layout = options.layout
        self.mailbox = mailbox
        self.logger = logger
        self.dependency = dependency
        state = RedisPendingState(barListLength: options.barListLength, anomalyListLength: options.anomalyListLength,
                                  tradingListLength: options.tradingListLength)
        backoff = Backoff(initialNanoseconds: options.backoffInitialNanoseconds,
                          maxNanoseconds: options.backoffMaxNanoseconds, seed: options.backoffSeed)
        if let startError { goDown(startError) }
    }

    func run() {
        while true {
            mailbox.condition.lock()
            while !hasWork(now: Monotonic.nanoseconds()) {
                if let wake = wakeTime() {
                    let seconds = Double(max(0, wake - Monotonic.nanoseconds())) / 1e9
                    _ = mailbox.condition.wait(until: Date(timeIntervalSinceNow: seconds))
                } else {
                    mailbox.condition.wait()
                }
            }
            let batches = mailbox.batches
            mailbox.batches.removeAll()
            let through = mailbox.handedOver
            let closing = mailbox.closeRequested
            mailbox.condition.unlock()

            var counted = RedisSinkCounters()
            for batch in batches { merge(batch, into: &counted) }
            if closing && closeDeadline == nil {
                closeDeadline = Monotonic.nanoseconds() + options.closeWaitNanoseconds
            }
            if !failed {
                if down && Monotonic.nanoseconds() >= nextAttemptAt { attemptReconnect(&counted) }
                if !down && state.hasPending { writePending(&counted) }
            }
            var finish = false
            if closing {
                if failed || !state.hasPending {
                    finish = true
                } else if down, let deadline = closeDeadline, Monotonic.nanoseconds() >= deadline {
                    counted.unwrittenAtClose = state.pendingCount
                    logger.error(.text("tape: redis \(connection.peer): still down at close after "
                                 + "\(Self.seconds(options.closeWaitNanoseconds)): \(state.pendingDescription) not written"),
                                 metadata: ["event": "unwritten_at_close"])
                    finish = true
                }
            }
            if finish { connection.close() }
            mailbox.condition.lock()
            mailbox.counters.add(counted)
            mailbox.counters.pendingMax = max(mailbox.counters.pendingMax, state.pendingCount)
            // Everything taken is written, held while down, or dropped after a failure.
            mailbox.flushedThrough = through
            if finish { mailbox.finished = true }
            mailbox.condition.broadcast()
            mailbox.condition.unlock()
            if finish { return }
        }
    }

    // MARK: scheduling (under the mailbox lock)

    private func hasWork(now: Int64) -> Bool {
        if !mailbox.batches.isEmpty || mailbox.flushWanted > mailbox.flushedThrough { return true }
        if mailbox.closeRequested {
            if closeDeadline == nil || failed || !state.hasPending { return true }
            if down, let deadline = closeDeadline, now >= min(nextAttemptAt, deadline) { return true }
        }
        if failed { return false }
        if down { return state.hasPending && now >= nextAttemptAt }
        return state.hasPending
    }

    /// When a sleeping writer must look again by itself: the next reconnect attempt (or the close
    /// deadline) while something waits to be written.
    private func wakeTime() -> Int64? {
        guard down && !failed && state.hasPending else { return nil }
        if mailbox.closeRequested, let deadline = closeDeadline { return min(nextAttemptAt, deadline) }
        return nextAttemptAt
    }

    // MARK: state

    private func merge(_ batch: RedisBatch, into counted: inout RedisSinkCounters) {
        let items = batch.trades.count + batch.quotes.count + batch.bars.count + batch.predictions.count
            + batch.anomalies.count + batch.trading.count
        if failed {
            counted.droppedAfterFailure += items
            return
        }
        for tick in batch.trades { state.setLatest(layout.latestTrade(tick.symbol), .trade(tick.event)) }
        for tick in batch.quotes { state.setLatest(layout.latestQuote(tick.symbol), .quote(tick.event)) }
        for named in batch.bars {
            state.setLatest(layout.latestBar(named.symbol, named.bar.timeframe), .bar(named.bar, named.indicators))
            state.addBar(named, to: layout.bars(named.symbol, named.bar.timeframe))
        }
        for named in batch.predictions {
            let key = layout.latestPrediction(named.symbol, named.prediction.timeframe)
            state.setLatest(key, .prediction(named.prediction))
        }
        state.anomalies.append(contentsOf: batch.anomalies)
        for named in batch.trading { mergeTrading(named) }
        counted.listEntriesSkipped += state.trimLists()
        if down { counted.anomaliesDroppedWhileDown += state.trimAnomalies() }
    }

    /// A paper-trading row: orders and fills to their symbol's list (each with its update message), the
    /// position and the symbol's equity as latest values (a position only when it is not earlier than the one
    /// held, `PositionRecord.isLater(than:)`: a mark's row is stamped at its bar's end, which may be before a
    /// fill the event that closed the bar made).
    private func mergeTrading(_ named: NamedTrading) {
        switch named.row {
        case .order(let order):
            state.addRow(RedisPendingState.Row(
                score: order.time, member: RedisLayout.orderMember(order),
                update: RedisLayout.updateMessage(channel: "orders", symbol: named.symbol,
                                                  data: RedisLayout.orderValues(order))),
                to: layout.orders(named.symbol))
        case .fill(let fill):
            state.addRow(RedisPendingState.Row(
                score: fill.time, member: RedisLayout.fillMember(fill),
                update: RedisLayout.updateMessage(channel: "fills", symbol: named.symbol,
                                                  data: RedisLayout.fillValues(fill))),
                to: layout.fills(named.symbol))
        case .position(let position):
            let key = layout.latestPosition(named.symbol)
            if case .position(let held)? = state.latest[key], held.isLater(than: position) { return }
            state.setLatest(key, .position(position))
        case .equity(let equity):
            state.setLatest(layout.latestEquity(named.symbol), .equity(equity))
        }
    }

    // MARK: connection

    private func goDown(_ error: RedisError) {
        connection.close()
        down = true
        downSince = Monotonic.nanoseconds()
        attemptsWhileDown = 0
        writingBack = false
        nextAttemptAt = downSince + backoff.nextDelay()
        mailbox.condition.lock()
        mailbox.counters.outages += 1
        mailbox.condition.unlock()
        dependency.set(.down, detail: error.detail)
        logger.warning(.text("tape: redis \(connection.peer): down (\(error.detail)), keeping latest state in memory "
                       + "(\(state.pendingDescription) pending), retrying with backoff"),
                       metadata: ["event": "down", "error": .string(error.detail)])
    }

    /// One attempt: connect, `PING`. On success every latest key is marked for writing again.
    private func attemptReconnect(_ counted: inout RedisSinkCounters) {
        attemptsWhileDown += 1
        do {
            try connection.reconnect()
            _ = try connection.command(["PING"])
        } catch {
            connection.close()
            nextAttemptAt = Monotonic.nanoseconds() + backoff.nextDelay()
            return
        }
        down = false
        dependency.set(.up)
        backoff.reset()
        counted.reconnects += 1
        writingBack = true
        state.markEveryLatestKeyPending()
    }

    // MARK: writing

    private enum Stop: Error {
        /// The server is gone or said "not now": hold the state, reconnect later.
        case outage(RedisError)
        /// The server refused a command for good.
        case failure(RedisError)
    }

    /// Writes everything pending, in rounds of about `pipelineCommandsMax` commands; a round's keys
    /// leave the pending state only once all its replies are in.
    private func writePending(_ counted: inout RedisSinkCounters) {
        let written: Int
        do throws(Stop) {
            written = try writeRounds(&counted)
        } catch {
            switch error {
            case .outage(let cause):
                goDown(cause)
            case .failure(let cause):
                failed = true
                counted.droppedAfterFailure += state.pendingCount
                state.removeAll()
                mailbox.condition.lock()
                if mailbox.failure == nil { mailbox.failure = cause }
                mailbox.condition.unlock()
            }
            return
        }
        if writingBack {
            writingBack = false
            counted.writtenAfterReconnect += written
            let waited = Self.seconds(Monotonic.nanoseconds() - downSince)
            logger.notice(.text("tape: redis \(connection.peer): up again after \(waited) (\(attemptsWhileDown) "
                          + "attempt\(attemptsWhileDown == 1 ? "" : "s")), wrote \(written) keys and list entries"),
                          metadata: ["event": "up", "attempts": .stringConvertible(attemptsWhileDown),
                                     "down_seconds": .stringConvertible(Double(Monotonic.nanoseconds() - downSince) / 1e9)])
        }
    }

    /// Returns the keys and list entries written.
    private func writeRounds(_ counted: inout RedisSinkCounters) throws(Stop) -> Int {
        var round = Round()
        var latestDone = 0
        var listsDone = 0
        var rowListsDone = 0
        var written = 0
        defer { state.removeWritten(latestKeys: latestDone, lists: listsDone, rowLists: rowListsDone) }

        func send() throws(Stop) {
            try execute(round)
            counted.batches += 1
            counted.commands += round.commands.count
            counted.keysWritten += round.latestKeys
            counted.listEntriesWritten += round.listEntries
            counted.anomaliesPublished += round.anomalies
            counted.updatesPublished += round.updates
            written += round.latestKeys + round.listEntries
            latestDone += round.latestKeys
            listsDone += round.lists
            rowListsDone += round.rowLists
            if round.anomalies > 0 { state.anomalies.removeFirst(round.anomalies) }
            round = Round()
        }

        for key in state.pendingLatest {
            guard let value = state.latest[key] else { preconditionFailure("a pending key has a value") }
            let fields: [(String, String)]
            var timeframe: Timeframe? = nil
            switch value {
            case .trade(let trade): fields = RedisLayout.tradeFields(trade)
            case .quote(let quote): fields = RedisLayout.quoteFields(quote)
            case .bar(let bar, let indicators):
                fields = RedisLayout.barFields(bar, indicators)
                timeframe = bar.timeframe
            case .prediction(let prediction):
                fields = RedisLayout.predictionFields(prediction)
                timeframe = prediction.timeframe
            case .position(let position):
                fields = RedisLayout.hashFields(RedisLayout.positionValues(position))
            case .equity(let equity):
                fields = RedisLayout.hashFields(RedisLayout.equityValues(equity))
            }
            arguments.removeAll(keepingCapacity: true)
            arguments.append("HSET")
            arguments.append(key)
            for (field, text) in fields {
                arguments.append(field)
                arguments.append(text)
            }
            try queue(arguments, into: &round)
            try queueExpiry(key, timeframe: timeframe, into: &round)
            if options.publishUpdates { try queueUpdate(latestKey: key, value, into: &round) }
            round.latestKeys += 1
            if round.commands.count >= options.pipelineCommandsMax { try send() }
        }
        for key in state.listOrder {
            guard let list = state.lists[key] else { preconditionFailure("a pending list has entries") }
            for named in list.bars {
                let score = String(named.bar.end)
                try queue(["ZREMRANGEBYSCORE", key, score, score], into: &round)
                try queue(["ZADD", key, score, RedisLayout.barMember(named.bar, named.indicators)], into: &round)
                if options.publishUpdates {
                    try queuePublish(RedisLayout.updateMessage(channel: "bars:\(named.bar.timeframe)", symbol: named.symbol,
                                                               data: RedisLayout.barValues(named.bar, named.indicators)),
                                     into: &round)
                    if let indicators = named.indicators {
                        try queuePublish(RedisLayout.updateMessage(channel: "indicators", symbol: named.symbol,
                                                                   data: RedisLayout.indicatorValues(named.bar, indicators)),
                                         into: &round)
                    }
                }
            }
            try queue(["ZREMRANGEBYRANK", key, "0", String(-options.barListLength - 1)], into: &round)
            try queueExpiry(key, timeframe: list.timeframe, into: &round)
            round.lists += 1
            round.listEntries += list.bars.count
            if round.commands.count >= options.pipelineCommandsMax { try send() }
        }
        for key in state.rowListOrder {
            guard let rows = state.rowLists[key] else { preconditionFailure("a pending list has entries") }
            for row in rows {
                // The same member again (a repeated write) is the same entry: ZADD is idempotent here.
                try queue(["ZADD", key, String(row.score), row.member], into: &round)
                if options.publishUpdates { try queuePublish(row.update, into: &round) }
            }
            try queue(["ZREMRANGEBYRANK", key, "0", String(-options.tradingListLength - 1)], into: &round)
            try queueExpiry(key, timeframe: nil, into: &round)
            round.rowLists += 1
            round.listEntries += rows.count
            if round.commands.count >= options.pipelineCommandsMax { try send() }
        }
        if !state.anomalies.isEmpty {
            for named in state.anomalies {
                let member = RedisLayout.anomalyMember(symbol: named.symbol, named.anomaly)
                try queue(["ZADD", layout.anomalies, String(named.anomaly.time), member], into: &round)
                try queue(["PUBLISH", layout.anomalyChannel, member], into: &round)
                if options.publishUpdates {
                    try queuePublish(RedisLayout.updateMessage(channel: "anomalies", symbol: named.symbol,
                                                               data: RedisLayout.anomalyValues(named.anomaly)),
                                     into: &round)
                }
            }
            try queue(["ZREMRANGEBYRANK", layout.anomalies, "0", String(-options.anomalyListLength - 1)], into: &round)
            try queueExpiry(layout.anomalies, timeframe: nil, into: &round)
            round.anomalies = state.anomalies.count
            round.listEntries += state.anomalies.count
        }
        if !round.commands.isEmpty { try send() }
        return written
    }

    /// One pipelined round: what it carries, and each command's name and key for messages.
    private struct Round {
        var commands: [String] = []
        var latestKeys = 0
        var lists = 0
        /// Order and fill lists.
        var rowLists = 0
        var listEntries = 0
        var anomalies = 0
        var updates = 0
    }

    /// The update of a latest value for WebSocket clients: trades, quotes, predictions (a bar's is sent
    /// with its list entry: every bar, not only the latest). The symbol is the key's tail.
    private func queueUpdate(latestKey key: String, _ value: RedisPendingState.Latest,
                             into round: inout Round) throws(Stop) {
        let message: String
        switch value {
        case .trade(let trade):
            message = RedisLayout.updateMessage(channel: "trades", symbol: String(key.dropFirst(layout.latestTrade("").count)),
                                                data: RedisLayout.tradeValues(trade))
        case .quote(let quote):
            message = RedisLayout.updateMessage(channel: "quotes", symbol: String(key.dropFirst(layout.latestQuote("").count)),
                                                data: RedisLayout.quoteValues(quote))
        case .prediction(let prediction):
            let head = layout.latestPrediction("", prediction.timeframe)   // "<prefix>latest:prediction::<tf>"
            let prefixCount = head.count - ":\(prediction.timeframe)".count
            let symbol = key.dropFirst(prefixCount).dropLast(":\(prediction.timeframe)".count)
            message = RedisLayout.updateMessage(channel: "predictions", symbol: String(symbol),
                                                data: RedisLayout.predictionValues(prediction))
        case .position(let position):
            message = RedisLayout.updateMessage(channel: "positions",
                                                symbol: String(key.dropFirst(layout.latestPosition("").count)),
                                                data: RedisLayout.positionValues(position))
        case .equity(let equity):
            message = RedisLayout.updateMessage(channel: "equity",
                                                symbol: String(key.dropFirst(layout.latestEquity("").count)),
                                                data: RedisLayout.equityValues(equity))
        case .bar:
            return
        }
        try queuePublish(message, into: &round)
    }

    private func queuePublish(_ message: String, into round: inout Round) throws(Stop) {
        try queue(["PUBLISH", layout.updatesChannel, message], into: &round)
        round.updates += 1
    }

    private func queue(_ command: [String], into round: inout Round) throws(Stop) {
        do {
            try connection.append(command)
        } catch {
            throw .outage(error as? RedisError
                ?? RedisError(peer: connection.peer, kind: .connection, detail: "\(error)"))
        }
        round.commands.append("\(command[0]) \(command[1])")
    }

    private func queueExpiry(_ key: String, timeframe: Timeframe?, into round: inout Round) throws(Stop) {
        guard let seconds = RedisLayout.expirySeconds(ttlSeconds: options.ttlSeconds, timeframe: timeframe) else {
            return
        }
        try queue(["EXPIRE", key, String(seconds)], into: &round)
    }

    private func execute(_ round: Round) throws(Stop) {
        let replies: [RedisReply]
        do {
            replies = try connection.readReplies(round.commands.count)
        } catch {
            throw .outage(error as? RedisError
                ?? RedisError(peer: connection.peer, kind: .connection, detail: "\(error)"))
        }
        for (index, reply) in replies.enumerated() {
            guard case .error(let message) = reply else { continue }
            let error = RedisError(peer: connection.peer, kind: .server, detail: "\(round.commands[index]): \(message)")
            if Self.transientReplies.contains(where: { message.hasPrefix($0 + " ") || message == $0 }) {
                throw .outage(error)
            }
            throw .failure(error)
        }
    }

    static func seconds(_ nanoseconds: Int64) -> String {
        String(format: "%.1f s", Double(nanoseconds) / 1e9)
    }
}

/// What the writer holds: a copy of every latest value it has seen (small: symbols × keys), which of
/// them are not yet written, the bars not yet added to their lists (at most N per list) and the
/// anomalies not yet published.
struct RedisPendingState {
    enum Latest {
        case trade(MarketEvent)
        case quote(MarketEvent)
        case bar(BarOutput, IndicatorOutput?)
        case prediction(PredictionOutput)
        case position(PositionRecord)
        case equity(EquityRecord)
    }

    /// An entry of an order or fill list: its score (time, ns), member (JSON) and update message.
    struct Row {
        var score: Int64
        var member: String
        var update: String
    }

    struct PendingList {
        var timeframe: Timeframe
        var bars: [NamedBar]
    }

    let barListLength: Int
    let anomalyListLength: Int
    let tradingListLength: Int
    /// Every latest key seen, and its newest value.
    private(set) var latest: [String: Latest] = [:]
    /// Every latest key, in the order first seen (the write-back order after a reconnect).
    private var latestOrder: [String] = []
    /// Latest keys to write, in the order they changed.
    private(set) var pendingLatest: [String] = []
    private var isPending: Set<String> = []
    private(set) var lists: [String: PendingList] = [:]
    /// List keys with entries to write, in the order their first pending entry arrived.
    private(set) var listOrder: [String] = []
    var anomalies: [NamedAnomaly] = []
    /// Order and fill lists with entries to write (at most `tradingListLength` each), in the order their
    /// first pending entry arrived.
    private(set) var rowLists: [String: [Row]] = [:]
    private(set) var rowListOrder: [String] = []

    init(barListLength: Int, anomalyListLength: Int, tradingListLength: Int) {
        self.barListLength = barListLength
        self.anomalyListLength = anomalyListLength
        self.tradingListLength = tradingListLength
    }

    var hasPending: Bool { !pendingLatest.isEmpty || !listOrder.isEmpty || !anomalies.isEmpty || !rowListOrder.isEmpty }

    var pendingListEntries: Int {
        listOrder.reduce(0) { $0 + (lists[$1]?.bars.count ?? 0) } + anomalies.count
            + rowListOrder.reduce(0) { $0 + (rowLists[$1]?.count ?? 0) }
    }

    var pendingCount: Int { pendingLatest.count + pendingListEntries }

    var pendingDescription: String { "\(pendingLatest.count) keys, \(pendingListEntries) list entries" }

    mutating func setLatest(_ key: String, _ value: Latest) {
        if latest.updateValue(value, forKey: key) == nil { latestOrder.append(key) }
        if isPending.insert(key).inserted { pendingLatest.append(key) }
    }

    mutating func addBar(_ named: NamedBar, to key: String) {
        if lists[key] == nil {
            lists[key] = PendingList(timeframe: named.bar.timeframe, bars: [])
            listOrder.append(key)
        }
        lists[key]!.bars.append(named)
    }

    mutating func addRow(_ row: Row, to key: String) {
        if rowLists[key] == nil {
            rowLists[key] = []
            rowListOrder.append(key)
        }
        rowLists[key]!.append(row)
    }

    /// Keeps the newest `barListLength` bars per list and `tradingListLength` entries per order or fill
    /// list; returns how many older ones were dropped.
    mutating func trimLists() -> Int {
        var dropped = 0
        for key in listOrder where lists[key]!.bars.count > barListLength {
            let excess = lists[key]!.bars.count - barListLength
            lists[key]!.bars.removeFirst(excess)
            dropped += excess
        }
        for key in rowListOrder where rowLists[key]!.count > tradingListLength {
            let excess = rowLists[key]!.count - tradingListLength
            rowLists[key]!.removeFirst(excess)
            dropped += excess
        }
        return dropped
    }

    /// Keeps the newest `anomalyListLength` anomalies; returns how many were dropped.
    mutating func trimAnomalies() -> Int {
        let excess = anomalies.count - anomalyListLength
        guard excess > 0 else { return 0 }
        anomalies.removeFirst(excess)
        return excess
    }

    /// After a reconnect: every latest key is written again (the server may have come back empty).
    mutating func markEveryLatestKeyPending() {
        pendingLatest = latestOrder
        isPending = Set(latestOrder)
    }

    /// Drops the first `latestKeys` pending keys, the first `lists` pending bar lists and the first
    /// `rowLists` order and fill lists (written).
    mutating func removeWritten(latestKeys: Int, lists written: Int, rowLists rowsWritten: Int) {
        for key in pendingLatest.prefix(latestKeys) { isPending.remove(key) }
        pendingLatest.removeFirst(latestKeys)
        for key in listOrder.prefix(written) { lists[key] = nil }
        listOrder.removeFirst(written)
        for key in rowListOrder.prefix(rowsWritten) { rowLists[key] = nil }
        rowListOrder.removeFirst(rowsWritten)
    }

    /// After a failure: nothing more is written.
    mutating func removeAll() {
        pendingLatest.removeAll()
        isPending.removeAll()
        lists.removeAll()
        listOrder.removeAll()
        anomalies.removeAll()
        rowLists.removeAll()
        rowListOrder.removeAll()
    }
}

extension RedisSinkCounters {
    /// Adds the writer's counts of one pass (not `pendingMax`, a maximum).
    mutating func add(_ other: RedisSinkCounters) {
        handovers += other.handovers
        batches += other.batches
        commands += other.commands
        keysWritten += other.keysWritten
        listEntriesWritten += other.listEntriesWritten
        anomaliesPublished += other.anomaliesPublished
        updatesPublished += other.updatesPublished
        outages += other.outages
        reconnects += other.reconnects
        writtenAfterReconnect += other.writtenAfterReconnect
        listEntriesSkipped += other.listEntriesSkipped
        anomaliesDroppedWhileDown += other.anomaliesDroppedWhileDown
        unwrittenAtClose += other.unwrittenAtClose
        droppedAfterFailure += other.droppedAfterFailure
        indicatorsWithoutBar += other.indicatorsWithoutBar
    }
}
