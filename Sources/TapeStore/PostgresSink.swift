import Foundation
import TapeCore
import TapeClock
import TapeGraph
import TapeIO
import TapeSinks
import TapeLogging
import Histogram

/// What a `PostgresSink` writes and how it batches.
public struct PostgresSinkSettings: Sendable {
    /// `postgres://user@host:port/database` (libpq URL; a password in it never reaches a message).
    public var url: String
    /// Every row carries it; `tape_runs` describes it.
    public var runID: String
    /// `replay` or `live`.
    public var runKind: String
    /// sha256 of the canonical graph config: part of every output row's key.
    public var configHash: String
    /// JSON array describing the inputs (paths, sha256) or feeds.
    public var inputsJSON: String
    public var tapeVersion: String
    /// A batch is handed to the writer at this many rows (all tables)...
    public var batchRows = 65_536
    /// ...or when it has waited this long (wall time, checked in `poll()`).
    public var batchMilliseconds = 200
    /// Batches waiting for the writer before the engine thread blocks (back-pressure).
    public var queueBatches = 4
    /// Where batches go while PostgreSQL is unreachable (gzip, one file per batch).
    public var spoolDirectory: String
    /// At close, how long to keep trying an unreachable server before failing with the spool kept.
    public var closeTimeoutSeconds: Double = 60
    /// Retention applied by the hourly maintenance of a long session (`StoreMaintenance`).
    public var retentionDays = StoreMaintenance.retentionDaysDefault
    public var maintenanceIntervalSeconds: Double = 3600
    /// `tape work`: batches are handed over only by `commit(_:)`, each with the partition's checkpoint
    /// committed in the same transaction (under the target's epoch), and an outage holds the batch in
    /// memory (the engine waits; Kafka keeps the records) instead of spooling it. nil: replay and live.
    public var checkpoints: CheckpointTarget? = nil
    public var reconnectInitialMilliseconds: Int64 = 200
    public var reconnectMaxMilliseconds: Int64 = 5_000

    public init(url: String, runID: String, runKind: String, configHash: String, inputsJSON: String,
                tapeVersion: String, spoolDirectory: String) {
        self.url = url; self.runID = runID; self.runKind = runKind; self.configHash = configHash
        self.inputsJSON = inputsJSON; self.tapeVersion = tapeVersion; self.spoolDirectory = spoolDirectory
    }
}

/// What a `PostgresSink` did (summary.json `stores.postgres`).
public struct PostgresSinkCounters: Sendable, Equatable, Codable {
    /// Rows handed to the writer, per table.
    public var rows: [String: Int] = [:]
    /// Rows the database did not hold yet (new), and rows it already held (a repeated write).
    public var rowsInserted = 0
    public var rowsAlreadyStored = 0
    public var batches = 0
    /// Times the server went away, and reconnections.
    public var outages = 0
    public var reconnects = 0
    /// Batches written to the local spool while the server was away, and written back from it.
    public var batchesSpooled = 0
    public var batchesReplayedFromSpool = 0
    /// Batches still in the spool at the end (non-zero only when the run failed on it).
    public var batchesLeftInSpool = 0
    /// Hand-offs that found the writer's queue full, and the engine thread's time spent waiting.
    public var blockedHandoffs = 0
    public var blockedNanoseconds: Int64 = 0
    /// Writer time inside PostgreSQL calls.
    public var writeNanoseconds: Int64 = 0

    enum CodingKeys: String, CodingKey {
        case rows, batches, outages, reconnects
        case rowsInserted = "rows_inserted", rowsAlreadyStored = "rows_already_stored"
        case batchesSpooled = "batches_spooled", batchesReplayedFromSpool = "batches_replayed_from_spool"
        case batchesLeftInSpool = "batches_left_in_spool", blockedHandoffs = "blocked_handoffs"
        case blockedNanoseconds = "blocked_ns", writeNanoseconds = "write_ns"
    }
}

/// Writes every tick the engine delivers and every graph output into PostgreSQL (schema: `StoreSchema`,
/// docs/storage.md), paper trading's orders, fills, positions and symbols' equity included (not the account's
/// total equity: `appendTrading`), exactly once per key however often the same input is written.
///
/// - **Engine thread** (`record`, `emit`, `poll`): rows are encoded straight into a binary COPY batch
///   (no allocation per row once warm). A batch is handed over at `batchRows` rows or after
///   `batchMilliseconds`; a full queue blocks the engine (counted): the graph never runs ahead of what
///   can be stored by more than `queueBatches` batches.
/// - **Writer thread**: one transaction per batch: the partitions of its days are made first, then per
///   table a `COPY … (FORMAT binary)` straight into the table inside a savepoint; when a key is already
///   there (the same input written again), that table's rows go through a temporary staging table and
///   `INSERT … ON CONFLICT DO NOTHING` (and later batches of that table take that path directly).
///   `tape_runs.last_event_ns` moves in the same transaction.
/// - **Outage**: when the server goes away, the batch and every later one go, in order, to gzip files in
///   `spoolDirectory` (written to a temporary name, fsynced, renamed). The writer reconnects with
///   jittered backoff and writes the spool back in order before anything newer. One log line per state
///   change names the server. The engine never waits on the outage (only on a full queue).
/// - **Failure**: an error that is not a lost connection (a schema that does not match) is the sink's
///   `failure`: the run stops (exit 5). At close, a server still away after `closeTimeoutSeconds` is
///   a failure too, naming the spool that holds what is missing.
public final class PostgresSink: EventSink, ReportingSink, @unchecked Sendable {
    public let name = "postgres"
    public let settings: PostgresSinkSettings
    /// `host:port/database`.
    public let peer: String
    /// The server as the writer sees it (`/ready`): down from a lost connection to the next reconnection.
    public let dependency: DependencyTracker
    private let symbols: SymbolTable
    private let logger: Logger

    // Engine thread.
    private var current: StoreBatch
    private var lastHandoff = WallClock.nanos()
    private var lastDay: Int64 = .min
    private var timeframeNames: [Int64: [UInt8]] = [:]
    private let runIDBytes: [UInt8]
    private let configHashBytes: [UInt8]
    private var handedOff = 0
    private var closed = false
    /// Per symbol id: this batch's tick ranges (valid for ids in `touched`).
    private var ranges: [StoreBatch.TickRange?] = []
    private var touched: [SymbolID] = []

    // Shared, under `condition`.
    private let condition = NSCondition()
    private var queue: [StoreBatch] = []
    private var free: [StoreBatch] = []
    private var written = 0
    private var closing = false
    private var writerDone = false
    private var storedFailure: (any Error)? = nil
    private var counters_ = PostgresSinkCounters()
    private var tickWindow_ = (first: Int64.max, lastCommit: Int64.min)
    private var latency_ = Histogram<UInt64>(highestTrackableValue: 3_600_000_000_000, numberOfSignificantValueDigits: .three)

    // Writer thread.
    private var connection: PostgresConnection?
    private let mode: StorePartitions.Mode
    private var knownDays: Set<Int64> = []
    private var staging: Set<StoreTable> = []
    private var stagingCreated = false
    private var backoff: Backoff
    private var nextReconnect: Int64 = 0
    /// The current outage: when it began (wall ns) and the reconnection attempts so far.
    private var downSince: Int64 = 0
    private var attemptsWhileDown = 0
    private var spoolSequence = 0
    private var spooled: [String] = []
    private var lastMaintenance = WallClock.nanos()
    private var runFirstEvent: Nanos = .max
    private var runLastEvent: Nanos = .min

    /// Connects, applies the migrations and records the run (a server that cannot be reached at the
    /// start is an error: nothing would be stored), then starts the writer. `logger` gets one event per
    /// change of the server's state (down, up again with the outage's length), with `peer` and `error`.
    public init(settings: PostgresSinkSettings, symbols: SymbolTable,
                logger: Logger = Logger(label: "tape.store.postgres")) throws {
        self.settings = settings
        self.symbols = symbols
        let connection = try PostgresConnection(url: settings.url)
        peer = connection.peer
        var logger = logger
        logger[metadataKey: "peer"] = .string(connection.peer)
        self.logger = logger
        dependency = DependencyTracker(name: "postgres", status: .up, peer: connection.peer)
        try StoreSchema.migrate(connection)
        mode = try StorePartitions.mode(connection)
        try connection.execute("""
            INSERT INTO tape_runs (run_id, kind, started_at, config_hash, tape_version, inputs)
            VALUES (\(StoreSchema.quote(settings.runID)), \(StoreSchema.quote(settings.runKind)), now(),
                    \(StoreSchema.quote(settings.configHash)), \(StoreSchema.quote(settings.tapeVersion)),
                    \(StoreSchema.quote(settings.inputsJSON))::jsonb)
            ON CONFLICT (run_id) DO NOTHING
            """)
        self.connection = connection
        runIDBytes = Array(settings.runID.utf8)
        configHashBytes = Array(settings.configHash.utf8)
        current = StoreBatch()
        backoff = Backoff(initialNanoseconds: settings.reconnectInitialMilliseconds * 1_000_000,
                          maxNanoseconds: settings.reconnectMaxMilliseconds * 1_000_000,
                          seed: settings.runID.utf8.reduce(14_695_981_039_346_656_037) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 })
        let thread = Thread { [self] in writerLoop() }
        thread.name = "tape-postgres"
        thread.start()
    }

    public var counters: PostgresSinkCounters {
        condition.lock(); defer { condition.unlock() }
        return counters_
    }

    public var failure: (any Error)? {
        condition.lock(); defer { condition.unlock() }
        return storedFailure
    }

    /// Checkpointed mode: per stored tick, wall time from its receive stamp to the commit of its
    /// transaction, ns (the distributed path's end-to-end latency; `tape work` prints its percentiles).
    /// Checkpointed mode: the first stored tick's receive stamp and the wall time of the last commit that
    /// stored ticks (the window of a sustained-rate figure); nil before any.
    public var tickWindow: (firstReceive: Int64, lastCommit: Int64)? {
        condition.lock(); defer { condition.unlock() }
        return tickWindow_.first == .max ? nil : (tickWindow_.first, tickWindow_.lastCommit)
    }

    public var commitLatency: Histogram<UInt64> {
        condition.lock(); defer { condition.unlock() }
        return latency_
    }

    // MARK: Engine thread

    @inline(__always)
    private func noteDay(_ nanos: Nanos) {
        let day = nanos >= 0 ? nanos / 86_400_000_000_000 : (nanos + 1) / 86_400_000_000_000 - 1
        if day != lastDay {
            lastDay = day
            current.days.insert(day)
        }
    }

    private func timeframeName(_ timeframe: Timeframe) -> [UInt8] {
        if let known = timeframeNames[timeframe.seconds] { return known }
        let bytes = Array(timeframe.description.utf8)
        timeframeNames[timeframe.seconds] = bytes
        return bytes
    }

    public func record(_ event: MarketEvent) {
        if checkpointed { current.receiveTimes.append(event.receiveTime) }
        noteDay(event.eventTime)
        if event.eventTime < current.firstEvent { current.firstEvent = event.eventTime }
        if event.eventTime > current.lastEvent { current.lastEvent = event.eventTime }
        current.tables[StoreTable.ticks.rawValue].appendTick(event, symbol: symbols.utf8(event.symbol))
        let index = Int(event.symbol)
        if index >= ranges.count { ranges.append(contentsOf: repeatElement(nil, count: index + 1 - ranges.count)) }
        if ranges[index] == nil {
            touched.append(event.symbol)
            ranges[index] = StoreBatch.TickRange(symbol: symbols.name(event.symbol), firstReceive: event.receiveTime,
                                                 lastReceive: event.receiveTime, firstTime: event.eventTime,
                                                 lastTime: event.eventTime, rows: 1)
        } else {
            ranges[index]!.lastReceive = event.receiveTime
            if event.eventTime < ranges[index]!.firstTime { ranges[index]!.firstTime = event.eventTime }
            if event.eventTime > ranges[index]!.lastTime { ranges[index]!.lastTime = event.eventTime }
            ranges[index]!.rows += 1
        }
        if checkpointed { return }
        if current.tables[StoreTable.ticks.rawValue].rows >= settings.batchRows { handOff() }
    }

    public func emit(_ output: GraphOutput) {
        let table: StoreTable
        switch output {
        case .bar(let bar):
            table = .bars
            noteDay(bar.start)
            current.tables[table.rawValue].appendBar(bar, symbol: symbols.utf8(bar.symbol), timeframe: timeframeName(bar.timeframe),
                                                     configHash: configHashBytes, runID: runIDBytes)
        case .indicators(let indicators):
            table = .indicators
            noteDay(indicators.end)
            current.tables[table.rawValue].appendIndicators(indicators, symbol: symbols.utf8(indicators.symbol),
                                                            timeframe: timeframeName(indicators.timeframe),
                                                            configHash: configHashBytes, runID: runIDBytes)
        case .anomaly(let anomaly):
            table = .anomalies
            noteDay(anomaly.time)
            current.tables[table.rawValue].appendAnomaly(anomaly, symbol: symbols.utf8(anomaly.symbol),
                                                         configHash: configHashBytes, runID: runIDBytes)
        case .prediction(let prediction):
            table = .predictions
            noteDay(prediction.end)
            current.tables[table.rawValue].appendPrediction(prediction, symbol: symbols.utf8(prediction.symbol),
                                                            timeframe: timeframeName(prediction.timeframe),
                                                            configHash: configHashBytes, runID: runIDBytes)
        case .lateTick:
            return // in the run folder's late_ticks.csv; the tick itself is in `ticks`
        case .trading(let trading):
            guard let stored = appendTrading(trading) else { return }
            table = stored
        }
        if checkpointed { return }
        if current.tables[table.rawValue].rows >= settings.batchRows { handOff() }
    }

    private var checkpointed: Bool { settings.checkpoints != nil }

    /// A trading row into its table; nil for the account's total equity, which is not stored (each `tape
    /// work` member has an account of its own: the total across members is the configured cash plus the sum
    /// of the symbols' equity rows; docs/storage.md, "Trading").
    private func appendTrading(_ trading: TradingOutput) -> StoreTable? {
        switch trading {
        case .order(let order):
            noteDay(order.time)
            current.tables[StoreTable.orders.rawValue].appendOrder(order, symbol: symbols.utf8(order.symbol),
                                                                   configHash: configHashBytes, runID: runIDBytes)
            return .orders
        case .fill(let fill):
            noteDay(fill.time)
            current.tables[StoreTable.fills.rawValue].appendFill(fill, symbol: symbols.utf8(fill.symbol),
                                                                 configHash: configHashBytes, runID: runIDBytes)
            return .fills
        case .position(let position):
            noteDay(position.time)
            current.tables[StoreTable.positions.rawValue].appendPosition(
                position, symbol: symbols.utf8(position.symbol), configHash: configHashBytes, runID: runIDBytes)
            return .positions
        case .equity(let equity):
            guard let symbol = equity.symbol else { return nil }
            noteDay(equity.time)
            current.tables[StoreTable.equity.rawValue].appendEquity(equity, symbol: symbols.utf8(symbol),
                                                                    configHash: configHashBytes, runID: runIDBytes)
            return .equity
        }
    }

    /// `tape work`: hands over everything since the last commit with `checkpoint`, to be committed in
    /// one transaction (engine thread, between two items). Blocks while the writer's queue is full.
    public func commit(_ checkpoint: WorkerCheckpoint) {
        precondition(checkpointed, "commit(_:) needs settings.checkpoints")
        guard !closed else { return }
        current.checkpoint = checkpoint
        handOff()
    }

    public func poll() {
        guard !checkpointed, !closed, !current.tables.allSatisfy(\.isEmpty) else { return }
        if WallClock.nanos() - lastHandoff >= Int64(settings.batchMilliseconds) * 1_000_000 { handOff() }
    }

    /// Gives the current batch to the writer (blocking while its queue is full) and takes an empty one.
    private func handOff() {
        lastHandoff = WallClock.nanos()
        guard current.rows > 0 || current.checkpoint != nil else { return }
        let batch = current
        for id in touched {
            batch.tickRanges.append(ranges[Int(id)]!)
            ranges[Int(id)] = nil
        }
        touched.removeAll(keepingCapacity: true)
        batch.finish()
        condition.lock()
        var counts = counters_.rows
        for table in StoreTable.allCases { counts[table.name, default: 0] += batch.tables[table.rawValue].rows }
        counters_.rows = counts
        if queue.count >= settings.queueBatches && storedFailure == nil {
            counters_.blockedHandoffs += 1
            let waitStart = WallClock.nanos()
            while queue.count >= settings.queueBatches && storedFailure == nil { condition.wait() }
            counters_.blockedNanoseconds += WallClock.nanos() - waitStart
        }
        if storedFailure == nil {
            queue.append(batch)
            handedOff += 1
        }
        current = free.popLast() ?? StoreBatch()
        condition.broadcast()
        condition.unlock()
        current.reset()
        lastDay = .min
    }

    /// Returns when every row given so far is committed in PostgreSQL or, while it is away, in the spool.
    public func flush() throws {
        if !closed { handOff() }
        condition.lock(); defer { condition.unlock() }
        while written < handedOff && storedFailure == nil && !writerDone { condition.wait() }
        if let storedFailure { throw storedFailure }
    }

    public func close() throws {
        if !closed {
            // Checkpointed: rows after the last commit belong to no checkpoint; the next owner of the
            // partition makes them again from the committed one.
            if !checkpointed { handOff() }
            closed = true
            condition.lock()
            closing = true
            condition.broadcast()
            while !writerDone { condition.wait() }
            condition.unlock()
        }
        if let failure { throw failure }
    }

    // MARK: Writer thread

    private func fail(_ error: any Error) {
        condition.lock()
        if storedFailure == nil { storedFailure = error }
        queue.removeAll() // nothing more is written; the engine stops at its next check
        condition.broadcast()
        condition.unlock()
    }

    private func writerLoop() {
        while true {
            condition.lock()
            while queue.isEmpty && !closing {
                if storedFailure == nil && (connection == nil || !spooled.isEmpty) {
                    // Away: wake for the next reconnection attempt.
                    let wait = max(nextReconnect - WallClock.nanos(), 1_000_000)
                    condition.unlock()
                    if !condition.lockedWait(nanoseconds: wait, while: { self.queue.isEmpty && !self.closing }) {
                        tryRecover()
                    }
                    condition.lock()
                } else {
                    condition.wait()
                }
            }
            guard let batch = queue.first else {
                condition.unlock()
                break // closing with an empty queue
            }
            let failed = storedFailure != nil
            condition.unlock()
            if !failed { process(batch) }
            condition.lock()
            if !queue.isEmpty && queue.first === batch { queue.removeFirst() }
            written += 1
            free.append(batch)
            condition.broadcast()
            condition.unlock()
            if !failed, connection != nil, spooled.isEmpty,
               WallClock.nanos() - lastMaintenance >= Int64(settings.maintenanceIntervalSeconds * 1e9) {
                maintain()
            }
        }
        finishAtClose()
        condition.lock()
        writerDone = true
        condition.broadcast()
        condition.unlock()
    }

    /// Writes one batch, or spools it while the server is away (or while older batches wait in the spool).
    private func process(_ batch: StoreBatch) {
        if checkpointed { return hold(batch) }
        if connection != nil && spooled.isEmpty {
            do {
                try write(batch)
                return
            } catch let error as PostgresError where error.connectionLost {
                wentAway(error)
            } catch {
                fail(error)
                return
            }
        }
        spool(batch)
        tryRecover()
    }

    /// Checkpointed mode: writes the batch, retrying through an outage (reconnect with backoff) until it
    /// is committed, the sink fails, or the sink is closing and `closeTimeoutSeconds` have passed.
    private func hold(_ batch: StoreBatch) {
        var closingSince: Int64? = nil
        while true {
            if connection == nil {
                condition.lock(); let isClosing = closing; condition.unlock()
                if isClosing {
                    let since = closingSince ?? WallClock.nanos()
                    closingSince = since
                    if WallClock.nanos() - since > Int64(settings.closeTimeoutSeconds * 1e9) {
                        return fail(PostgresError(peer: peer, detail: "still unreachable after "
                            + "\(Int(settings.closeTimeoutSeconds)) s at close: the last commit of \(settings.checkpoints!.description) "
                            + "is lost; the next owner re-processes it from the committed checkpoint"))
                    }
                }
                let wait = nextReconnect - WallClock.nanos()
                if wait > 0 { usleep(UInt32(min(wait / 1000, 100_000))); continue }
                if !reconnect(then: "committing the held batch") { continue }
            }
            do {
                try write(batch)
                return
            } catch let error as PostgresError where error.connectionLost {
                wentAway(error)
            } catch {
                return fail(error)
            }
        }
    }

    /// The connection is gone: said once (the retries that follow are not), the outage timed and counted.
    private func wentAway(_ error: PostgresError) {
        connection = nil
        stagingCreated = false
        backoff.reset()
        downSince = WallClock.nanos()
        attemptsWhileDown = 0
        nextReconnect = downSince + backoff.nextDelay()
        dependency.set(.down, detail: error.detail)
        logger.warning(.text("tape: postgres \(peer): down (\(error.detail)); "
                       + (checkpointed ? "holding the uncommitted batch; consumption waits (the broker keeps the records)"
                                       : "spooling batches to \(settings.spoolDirectory)")),
                       metadata: ["error": .string(error.detail), "event": "down"])
        condition.lock(); counters_.outages += 1; condition.unlock()
    }

    /// One reconnection attempt: counted, and said on success with the outage's summary (its length, the
    /// attempts); on failure the next attempt is scheduled (jittered backoff up to `reconnectMaxMilliseconds`).
    private func reconnect(then next: String) -> Bool {
        attemptsWhileDown += 1
        do {
            connection = try PostgresConnection(url: settings.url)
        } catch {
            nextReconnect = WallClock.nanos() + backoff.nextDelay()
            return false
        }
        condition.lock(); counters_.reconnects += 1; condition.unlock()
        let seconds = Double(WallClock.nanos() - downSince) / 1e9
        dependency.set(.up)
        logger.notice(.text("tape: postgres \(peer): up again; \(next) (away \(String(format: "%.1f", seconds)) s, "
                      + "\(attemptsWhileDown) attempt\(attemptsWhileDown == 1 ? "" : "s"))"),
                      metadata: ["event": "up", "down_seconds": .stringConvertible(seconds),
                                 "attempts": .stringConvertible(attemptsWhileDown)])
        backoff.reset()
        return true
    }

    /// Reconnects when its backoff is due, then writes the spool back in order.
    private func tryRecover() {
        if connection == nil {
            guard WallClock.nanos() >= nextReconnect,
                  reconnect(then: "writing back \(spooled.count) spooled batches") else { return }
        }
        while let path = spooled.first {
            guard let batch = readSpool(path) else { return }
            do {
                try write(batch)
            } catch let error as PostgresError where error.connectionLost {
                wentAway(error)
                return
            } catch {
                fail(error)
                return
            }
            unlink(path)
            spooled.removeFirst()
            condition.lock(); counters_.batchesReplayedFromSpool += 1; condition.unlock()
        }
    }

    private func spool(_ batch: StoreBatch) {
        spoolSequence += 1
        let path = settings.spoolDirectory + "/" + String(format: "batch-%08d.bin.gz", spoolSequence)
        do {
            try FS.makeDirectories(settings.spoolDirectory)
            let temporary = path + ".tmp"
            let writer = try GzipWriter(path: temporary, level: 1)
            let bytes = batch.serialized()
            bytes.withUnsafeBytes { writer.write(bytes: $0) }
            try writer.sync()
            try writer.close()
            guard rename(temporary, path) == 0 else { throw PostgresError(peer: path, detail: "rename: \(String(cString: strerror(errno)))") }
            spooled.append(path)
            condition.lock(); counters_.batchesSpooled += 1; condition.unlock()
        } catch {
            fail(PostgresError(peer: peer, detail: "server away and the spool cannot be written (\(path)): \(error)"))
        }
    }

    private func readSpool(_ path: String) -> StoreBatch? {
        var bytes: [UInt8] = []
        do {
            let stream = try GzipStream(path: path, threaded: false)
            var issues: [GzipIssue] = []
            while let chunk = stream.nextChunk(issues: &issues) { bytes.append(contentsOf: chunk) }
            if let issue = issues.first { throw PostgresError(peer: path, detail: "\(issue.detail)") }
        } catch {
            fail(PostgresError(peer: peer, detail: "spooled batch \(path) unreadable: \(error)"))
            return nil
        }
        guard let batch = StoreBatch.deserialize(bytes) else {
            fail(PostgresError(peer: peer, detail: "spooled batch \(path) is damaged"))
            return nil
        }
        return batch
    }

    /// One transaction: partitions, each table's rows, the run's event range.
    private func write(_ batch: StoreBatch) throws {
        guard let connection else { throw PostgresError(peer: peer, detail: "not connected", connectionLost: true) }
        let started = WallClock.nanos()
        let newDays = batch.days.subtracting(knownDays)
        if !newDays.isEmpty {
            try StorePartitions.ensureDays(connection, days: Array(newDays), mode: mode)
        }
        var inserted = 0, already = 0
        try connection.transaction {
            for table in StoreTable.allCases where !batch.tables[table.rawValue].isEmpty {
                let rows = batch.tables[table.rawValue]
                let columns = table.columns.joined(separator: ", ")
                if table == .ticks {
                    let replaced = try replaceTickRanges(batch, connection: connection)
                    let taken = try rows.bytes.withUnsafeBytes {
                        try connection.copy("COPY ticks (\(columns)) FROM STDIN (FORMAT binary)", bytes: $0)
                    }
                    inserted += taken - replaced
                    already += replaced
                    continue
                }
                if !staging.contains(table) {
                    try connection.execute("SAVEPOINT direct")
                    do {
                        let taken = try rows.bytes.withUnsafeBytes {
                            try connection.copy("COPY \(table.name) (\(columns)) FROM STDIN (FORMAT binary)", bytes: $0)
                        }
                        try connection.execute("RELEASE SAVEPOINT direct")
                        inserted += taken
                        continue
                    } catch let error as PostgresError where error.sqlState == "23505" {
                        try connection.execute("ROLLBACK TO SAVEPOINT direct")
                        staging.insert(table) // the same input again: the next batches stage directly
                    }
                }
                if !stagingCreated {
                    for each in StoreTable.allCases {
                        try connection.execute("""
                            CREATE TEMPORARY TABLE IF NOT EXISTS stage_\(each.name)
                            (LIKE \(each.name) INCLUDING DEFAULTS) ON COMMIT DELETE ROWS
                            """)
                    }
                    stagingCreated = true
                }
                try rows.bytes.withUnsafeBytes {
                    _ = try connection.copy("COPY stage_\(table.name) (\(columns)) FROM STDIN (FORMAT binary)", bytes: $0)
                }
                let new = try connection.executeCounting("""
                    INSERT INTO \(table.name) (\(columns)) SELECT \(columns) FROM stage_\(table.name) ON CONFLICT DO NOTHING
                    """)
                try connection.execute("TRUNCATE stage_\(table.name)")
                inserted += new
                already += rows.rows - new
            }
            if let checkpoint = batch.checkpoint, let target = settings.checkpoints {
                let changed = try connection.executeCounting(
                    WorkerCheckpoints.commitStatement(target, checkpoint, configHash: settings.configHash))
                if changed != 1 { throw CheckpointFenced(target: target) }
            }
            if batch.firstEvent <= batch.lastEvent {
                try connection.execute("""
                    UPDATE tape_runs SET first_event_ns = least(coalesce(first_event_ns, \(batch.firstEvent)), \(batch.firstEvent)),
                        last_event_ns = greatest(coalesce(last_event_ns, \(batch.lastEvent)), \(batch.lastEvent))
                    WHERE run_id = \(StoreSchema.quote(settings.runID))
                    """)
            }
        }
        knownDays.formUnion(newDays)
        let committedAt = WallClock.nanos()
        condition.lock()
        for stamp in batch.receiveTimes { _ = latency_.record(UInt64(max(0, committedAt - stamp))) }
        if let first = batch.receiveTimes.first {
            tickWindow_.first = min(tickWindow_.first, first)
            tickWindow_.lastCommit = max(tickWindow_.lastCommit, committedAt)
        }
        counters_.batches += 1
        counters_.rowsInserted += inserted
        counters_.rowsAlreadyStored += already
        counters_.writeNanoseconds += WallClock.nanos() - started
        condition.unlock()
    }

    /// Deletes the stored ticks of every symbol whose receive-time range in this batch overlaps a stored
    /// write (`tick_ranges`), then records this batch's ranges. Returns the rows deleted (they are written
    /// again by this batch when the input is the same).
    private func replaceTickRanges(_ batch: StoreBatch, connection: PostgresConnection) throws -> Int {
        guard !batch.tickRanges.isEmpty else { return 0 }
        let values = batch.tickRanges.map { range in
            "(\(StoreSchema.quote(range.symbol)), \(range.firstReceive)::bigint, \(range.lastReceive)::bigint, "
                + "\(StoreSchema.timestamp(range.firstTime)), \(StoreSchema.timestamp(range.lastTime)), \(range.rows)::bigint)"
        }.joined(separator: ", ")
        // Overlapping stored writes, with the event-time bounds of what they hold.
        let overlaps = try connection.query("""
            SELECT b.symbol, b.lo, b.hi, least(b.t0, min(r.first_time)), greatest(b.t1, max(r.last_time))
            FROM (VALUES \(values)) AS b(symbol, lo, hi, t0, t1, n)
            JOIN tick_ranges r ON r.symbol = b.symbol AND r.first_receive_ns <= b.hi AND r.last_receive_ns >= b.lo
            GROUP BY b.symbol, b.lo, b.hi, b.t0, b.t1
            """)
        var deleted = 0
        for row in overlaps {
            guard let symbol = row[0], let lo = row[1], let hi = row[2], let t0 = row[3], let t1 = row[4] else { continue }
            deleted += try connection.executeCounting("""
                DELETE FROM ticks WHERE symbol = \(StoreSchema.quote(symbol)) AND receive_ns BETWEEN \(lo) AND \(hi)
                AND time BETWEEN \(StoreSchema.quote(t0))::timestamptz AND \(StoreSchema.quote(t1))::timestamptz
                """)
        }
        try connection.execute("""
            INSERT INTO tick_ranges (symbol, first_receive_ns, last_receive_ns, first_time, last_time, rows, run_id)
            SELECT symbol, lo, hi, t0, t1, n, \(StoreSchema.quote(settings.runID)) FROM (VALUES \(values)) AS b(symbol, lo, hi, t0, t1, n)
            """)
        return deleted
    }

    private func maintain() {
        lastMaintenance = WallClock.nanos()
        guard let connection else { return }
        do { try StoreMaintenance.run(connection, retentionDays: settings.retentionDays) } catch {
            logger.warning("tape: postgres \(peer): maintenance failed: \(error)", metadata: ["error": "\(error)"])
        }
    }

    /// At close: a server still away is retried until `closeTimeoutSeconds`; then the run fails naming
    /// the spool. Else the run's row gets its end.
    private func finishAtClose() {
        let deadline = WallClock.nanos() + Int64(settings.closeTimeoutSeconds * 1e9)
        while failure == nil && (connection == nil || !spooled.isEmpty) && WallClock.nanos() < deadline {
            tryRecover()
            if connection == nil || !spooled.isEmpty {
                let wait = min(max(nextReconnect - WallClock.nanos(), 1_000_000), deadline - WallClock.nanos())
                if wait > 0 { usleep(UInt32(min(wait / 1000, 1_000_000))) }
            }
        }
        if failure == nil && !spooled.isEmpty {
            fail(PostgresError(peer: peer, detail: "still unreachable after \(Int(settings.closeTimeoutSeconds)) s at the end of the run: "
                               + "\(spooled.count) batches kept in \(settings.spoolDirectory)"))
        }
        condition.lock(); counters_.batchesLeftInSpool = spooled.count; condition.unlock()
        if failure == nil, let connection {
            try? connection.execute("UPDATE tape_runs SET finished_at = now() WHERE run_id = \(StoreSchema.quote(settings.runID))")
        }
    }

    public var report: JSONValue {
        (try? JSONValue(encoding: counters)) ?? .null
    }

    /// The run's summary.json, stored in `tape_runs.summary` once the driver has written it (best effort:
    /// a server away at that point leaves it NULL, with a message).
    public func runFinished(summaryJSON json: String) {
        do {
            let connection = try PostgresConnection(url: settings.url)
            try connection.execute("UPDATE tape_runs SET summary = \(StoreSchema.quote(json))::jsonb WHERE run_id = \(StoreSchema.quote(settings.runID))")
        } catch {
            logger.warning("tape: postgres \(peer): summary not stored: \(error)", metadata: ["error": "\(error)"])
        }
    }
}

extension NSCondition {
    /// Waits up to `nanoseconds` while `predicate` holds (locks and unlocks itself). Returns true when
    /// woken with the predicate false (work arrived), false on timeout.
    func lockedWait(nanoseconds: Int64, while predicate: () -> Bool) -> Bool {
        lock(); defer { unlock() }
        let deadline = Date(timeIntervalSinceNow: Double(nanoseconds) / 1e9)
        while predicate() {
            if !wait(until: deadline) { return !predicate() }
        }
        return true
    }
}

extension CopyBinaryRows {
    @inline(__always)
    mutating func appendTick(_ event: MarketEvent, symbol: [UInt8]) {
        beginRow(fields: 16)
        timestamptz(nanos: event.eventTime)
        int8(event.eventTime)
        int8(event.receiveTime)
        text(symbol)
        int2(Int16(event.kind.rawValue))
        int8(event.sequence)
        switch event.kind {
        case .trade:
            float8(event.price); float8(event.size); int2(Int16(event.side))
            null(); null(); null(); null(); null(); null(); null()
        case .quote:
            null(); null(); null()
            float8(event.bid); float8(event.bidSize); float8(event.ask); float8(event.askSize)
            null(); null(); null()
        case .bar, .clockTick:
            float8(event.price); float8(event.size); null()
            null(); null(); null(); null()
            float8(event.open); float8(event.high); float8(event.low)
        }
    }

    mutating func appendBar(_ bar: BarOutput, symbol: [UInt8], timeframe: [UInt8], configHash: [UInt8], runID: [UInt8]) {
        beginRow(fields: 13)
        timestamptz(nanos: bar.start)
        timestamptz(nanos: bar.end)
        text(symbol)
        text(timeframe)
        float8(bar.open); float8(bar.high); float8(bar.low); float8(bar.close)
        float8(bar.volume); float8(bar.vwap)
        int8(Int64(bar.trades))
        text(configHash)
        text(runID)
    }

    mutating func appendIndicators(_ value: IndicatorOutput, symbol: [UInt8], timeframe: [UInt8], configHash: [UInt8], runID: [UInt8]) {
        beginRow(fields: 15)
        timestamptz(nanos: value.end)
        text(symbol)
        text(timeframe)
        float8(value.sma); float8(value.ema); float8(value.rsi)
        float8(value.macd); float8(value.macdSignal); float8(value.macdHist)
        float8(value.bbMiddle); float8(value.bbUpper); float8(value.bbLower)
        float8(value.sessionVwap)
        text(configHash)
        text(runID)
    }

    mutating func appendAnomaly(_ anomaly: AnomalyOutput, symbol: [UInt8], configHash: [UInt8], runID: [UInt8]) {
        beginRow(fields: 9)
        timestamptz(nanos: anomaly.time)
        int8(anomaly.time)
        text(symbol)
        text(Array(anomaly.rule.utf8))
        float8(anomaly.value)
        float8(anomaly.threshold)
        text(Array(anomaly.severity.rawValue.utf8))
        text(configHash)
        text(runID)
    }

    mutating func appendOrder(_ order: OrderRecord, symbol: [UInt8], configHash: [UInt8], runID: [UInt8]) {
        beginRow(fields: 17)
        timestamptz(nanos: order.time)
        int8(order.time)
        text(symbol)
        int8(order.orderID)
        int8(order.sequence)
        text(order.side.name)
        text(order.type.name)
        text(order.timeInForce.name)
        float8(order.quantity); float8(order.limitPrice); float8(order.stopPrice)
        text(order.status.name)
        float8(order.filledQuantity)
        text(order.tag)
        text(order.reason)
        text(configHash)
        text(runID)
    }

    mutating func appendFill(_ fill: FillRecord, symbol: [UInt8], configHash: [UInt8], runID: [UInt8]) {
        beginRow(fields: 14)
        timestamptz(nanos: fill.time)
        int8(fill.time)
        text(symbol)
        int8(fill.orderID)
        int8(fill.fillNumber)
        text(fill.side.name)
        float8(fill.price); float8(fill.quantity); float8(fill.fee)
        text(fill.rule.name)
        int8(fill.arrivalTime)
        text(fill.tag)
        text(configHash)
        text(runID)
    }

    mutating func appendPosition(_ position: PositionRecord, symbol: [UInt8], configHash: [UInt8], runID: [UInt8]) {
        beginRow(fields: 13)
        timestamptz(nanos: position.time)
        int8(position.time)
        text(symbol)
        int8(position.orderID)
        int8(position.fillNumber)
        float8(position.quantity); float8(position.averagePrice); float8(position.realizedPnL)
        float8(position.unrealizedPnL); float8(position.fees); float8(position.markPrice)
        text(configHash)
        text(runID)
    }

    /// A symbol's equity row (the total's are not stored).
    mutating func appendEquity(_ equity: EquityRecord, symbol: [UInt8], configHash: [UInt8], runID: [UInt8]) {
        precondition(equity.symbol != nil, "a symbol's equity row")
        beginRow(fields: 8)
        timestamptz(nanos: equity.time)
        int8(equity.time)
        text(symbol)
        float8(equity.cash); float8(equity.equity); float8(equity.grossExposure)
        text(configHash)
        text(runID)
    }

    mutating func appendPrediction(_ prediction: PredictionOutput, symbol: [UInt8], timeframe: [UInt8], configHash: [UInt8], runID: [UInt8]) {
        beginRow(fields: 6)
        timestamptz(nanos: prediction.end)
        text(symbol)
        text(timeframe)
        float8(prediction.prediction)
        text(configHash)
        text(runID)
    }
}
