import Foundation
import TapeCore
import TapeGraph
#if canImport(Glibc)
import Glibc
#endif

/// Runs an `EngineSink` that does slow I/O (PostgreSQL, Redis, InfluxDB, Kafka, WebSocket) on its own
/// thread, behind a bounded queue, so the engine thread never waits on the network — until the queue
/// is full: then it blocks (back-pressure), and that is counted.
///
/// ```swift
/// let postgres = AsyncSink(name: "postgres", capacity: 8192, symbols: symbols) { names in
///     try PostgresSink(url: url, symbols: names)   // built with the worker's own SymbolTable
/// }
/// graph sink: [runOutput, postgres]; every few thousand events: try OutputFailed.check([postgres])
/// at the end: try OutputFailed.closeAll([postgres]); postgres.counters for the summary
/// ```
///
/// Contract:
/// - `emit` (engine thread) copies the output into the queue; the worker calls the wrapped sink's
///   `emit` in emission order. Outputs hold only value types, so the copy shares nothing mutable.
/// - Names: the engine's `SymbolTable` is appended by the engine thread and must not be read by the
///   worker. The wrapped sink gets its own table (`names` in the factory), owned by the worker: each
///   queued item carries the names of ids the engine created since the previous item, and the worker
///   interns them in id order, so every id means the same name in both tables (asserted).
/// - Failure: after each batch the worker reads the wrapped sink's `failure`; the first one is kept
///   and surfaced through `failure`, `flush()` and `close()`. From then on the queue is drained
///   without writing and new outputs are dropped (counted in `droppedAfterFailure`); the producer
///   never blocks on a failed sink.
/// - `flush()` blocks until every output enqueued before the call has been emitted and the wrapped
///   sink's `flush()` has returned (acknowledged). `close()` drains, closes the wrapped sink and waits
///   for the worker to finish; it must be called (the worker thread keeps the adapter alive).
/// - One producer: `emit`, `flush` and `close` are called from the engine thread.
public final class AsyncSink: EngineSink, @unchecked Sendable {
    /// Default queue length, in outputs.
    public static let defaultCapacity = 8192

    /// What the queue did (read at any time; a consistent snapshot).
    public struct Counters: Sendable, Equatable {
        public var capacity: Int
        /// Outputs accepted into the queue.
        public var enqueued: Int
        /// Outputs the wrapped sink has been given.
        public var written: Int
        /// Outputs dropped because the wrapped sink had failed (queued ones and later ones).
        public var droppedAfterFailure: Int
        /// Enqueues that found the queue full and waited.
        public var blockedEnqueues: Int
        /// Total time the engine thread waited on a full queue.
        public var blockedNanoseconds: Int64
        /// Most outputs ever waiting in the queue.
        public var highWaterMark: Int
    }

    private struct Item {
        var output: GraphOutput
        /// Names of the ids the engine created since the previous item, in id order (usually nil).
        var newNames: [String]?
    }

    public let name: String
    public let capacity: Int
    private let wrapped: any EngineSink
    private let engineSymbols: SymbolTable
    /// The worker's copy of the names, given to the wrapped sink.
    private let workerSymbols: SymbolTable
    /// Engine thread only: ids below this have been sent to the worker.
    private var namesSent: Int

    private let condition = NSCondition()
    // Ring of `capacity` slots. Guarded by `condition`: head, queued and every field below. Slots in
    // [head, head + queued) hold items; the worker reads the ones it claimed outside the lock, the
    // producer writes only free slots, under the lock.
    private let slots: UnsafeMutablePointer<Item>
    private var head = 0
    private var queued = 0
    private var counters_: Counters
    private var storedFailure: (any Error)? = nil
    private var flushRequestedThrough = 0
    private var flushedThrough = 0
    private var closeRequested = false
    private var workerFinished = false
    private var workerWaiting = false
    private var producerWaiting = false

    /// Starts the worker. `makeSink` builds the wrapped sink with the worker's `SymbolTable`.
    public init(name: String, capacity: Int = AsyncSink.defaultCapacity, symbols: SymbolTable,
                makeSink: (_ names: SymbolTable) throws -> any EngineSink) rethrows {
        precondition(capacity > 0, "an async sink needs room for at least one output")
        self.name = name
        self.capacity = capacity
        self.engineSymbols = symbols
        self.workerSymbols = SymbolTable()
        self.namesSent = workerSymbols.count
        self.wrapped = try makeSink(workerSymbols)
        self.slots = .allocate(capacity: capacity)
        self.counters_ = Counters(capacity: capacity, enqueued: 0, written: 0, droppedAfterFailure: 0,
                                  blockedEnqueues: 0, blockedNanoseconds: 0, highWaterMark: 0)
        let thread = Thread { [self] in self.runWorker() }
        thread.name = "tape-sink-\(name)"
        thread.start()
    }

    deinit {
        // The worker thread holds the adapter until it ends, so this runs only after close().
        assert(workerFinished && queued == 0, "an adapter is released drained and closed")
        slots.deallocate()
    }

    // MARK: engine thread

    public func emit(_ output: GraphOutput) {
        var item = Item(output: output, newNames: nil)
        let known = engineSymbols.count
        if known > namesSent {
            item.newNames = (namesSent..<known).map { engineSymbols.name(SymbolID($0)) }
            namesSent = known
        }
        condition.lock()
        defer { condition.unlock() }
        precondition(!closeRequested, "AsyncSink \(name): emit after close()")
        if storedFailure == nil && queued == capacity {
            counters_.blockedEnqueues += 1
            let start = AsyncSink.monotonicNanoseconds()
            while storedFailure == nil && queued == capacity && !workerFinished {
                producerWaiting = true
                condition.wait()
                producerWaiting = false
            }
            counters_.blockedNanoseconds += AsyncSink.monotonicNanoseconds() - start
        }
        if storedFailure != nil || workerFinished {
            counters_.droppedAfterFailure += 1
            return
        }
        assert(queued < capacity, "the producer writes only a free slot")
        (slots + (head + queued) % capacity).initialize(to: item)
        queued += 1
        counters_.enqueued += 1
        if queued > counters_.highWaterMark { counters_.highWaterMark = queued }
        if workerWaiting { condition.broadcast() }
    }

    public var failure: (any Error)? {
        condition.lock()
        defer { condition.unlock() }
        return storedFailure
    }

    public var counters: Counters {
        condition.lock()
        defer { condition.unlock() }
        return counters_
    }

    /// Blocks until every output enqueued before this call has reached the wrapped sink and its
    /// `flush()` has returned. Throws the failure.
    public func flush() throws {
        condition.lock()
        let target = counters_.enqueued
        if target > flushRequestedThrough { flushRequestedThrough = target }
        if workerWaiting { condition.broadcast() }
        while flushedThrough < target && storedFailure == nil && !workerFinished { condition.wait() }
        let failure = storedFailure
        condition.unlock()
        if let failure { throw failure }
    }

    /// Drains the queue, closes the wrapped sink on the worker thread and waits for the worker to end;
    /// idempotent. Throws the failure.
    public func close() throws {
        condition.lock()
        closeRequested = true
        condition.broadcast()
        while !workerFinished { condition.wait() }
        let failure = storedFailure
        condition.unlock()
        if let failure { throw failure }
    }

    // MARK: worker thread

    private func runWorker() {
        condition.lock()
        while true {
            if queued > 0 {
                let start = head
                let count = queued
                let failedBefore = storedFailure != nil
                condition.unlock()
                let failedNow = writeBatch(start: start, count: count, failedBefore: failedBefore)
                condition.lock()
                head = (head + count) % capacity
                queued -= count
                if failedBefore { counters_.droppedAfterFailure += count } else { counters_.written += count }
                if let failedNow, storedFailure == nil { storedFailure = failedNow }
                if producerWaiting || storedFailure != nil || flushRequestedThrough > flushedThrough {
                    condition.broadcast()
                }
                continue
            }
            // Queue empty: everything enqueued so far has been handled.
            if flushRequestedThrough > flushedThrough {
                let target = flushRequestedThrough
                if storedFailure == nil {
                    condition.unlock()
                    var flushFailure: (any Error)? = nil
                    do { try wrapped.flush() } catch { flushFailure = error }
                    condition.lock()
                    if let flushFailure, storedFailure == nil { storedFailure = flushFailure }
                }
                flushedThrough = target
                condition.broadcast()
                continue
            }
            if closeRequested {
                condition.unlock()
                var closeFailure: (any Error)? = nil
                do { try wrapped.close() } catch { closeFailure = error }
                condition.lock()
                if let closeFailure, storedFailure == nil { storedFailure = closeFailure }
                workerFinished = true
                condition.broadcast()
                condition.unlock()
                return
            }
            workerWaiting = true
            condition.wait()
            workerWaiting = false
        }
    }

    /// Emits the claimed items in order (or only releases them after a failure); returns the wrapped
    /// sink's failure if it appeared during this batch.
    private func writeBatch(start: Int, count: Int, failedBefore: Bool) -> (any Error)? {
        for offset in 0..<count {
            let item = (slots + (start + offset) % capacity).move()
            if let names = item.newNames {
                for name in names {
                    let expected = SymbolID(workerSymbols.count)
                    let interned = workerSymbols.intern(name)
                    precondition(interned == expected, "worker names follow the engine's ids")
                }
            }
            if !failedBefore { wrapped.emit(item.output) }
        }
        return failedBefore ? nil : wrapped.failure
    }

    private static func monotonicNanoseconds() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }
}
