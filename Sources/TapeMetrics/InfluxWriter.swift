import Foundation
import TapeCore
import TapeHTTP
import TapeIO
import TapeLogging
#if canImport(Glibc)
import Glibc
#endif

/// Writes metric points to InfluxDB 1.x on its own thread, in gzip-compressed batches of line
/// protocol, and never makes its caller wait on the network or fail because of it.
///
/// ```swift
/// let endpoint = try InfluxEndpoint(url: "influx://127.0.0.1:58086/tape")
/// let writer = InfluxWriter(settings: InfluxWriter.Settings(endpoint: endpoint), logger: Logger(label: "tape.store.influx"))
/// writer.write([MetricPoint("tape_pipeline", fields: ["lag_ns": .integer(1_200_000)], time: now)])
/// writer.close()   // sends what is buffered (bounded wait) and stops the thread
/// ```
///
/// Contract:
/// - `write` (any thread) appends to a bounded buffer (`bufferLinesMax` points) and returns; the lock
///   it takes is never held by the worker across I/O or compression. When the buffer is full the
///   oldest buffered point is dropped and counted (`linesDroppedBufferFull`): after an outage the
///   newest points are the useful ones.
/// - The worker sends a batch of at most `batchLinesMax` points when that many are buffered, when the
///   oldest has waited `batchIntervalNanoseconds`, or on `flush`/`close`: line protocol (one point a
///   line), gzip-compressed, `POST /write?db=…&precision=ns` with `Content-Encoding: gzip`. Before the
///   first batch, and whenever the server answers "database not found", it sends
///   `CREATE DATABASE "<db>"` (`POST /query`; idempotent on InfluxDB 1.x).
/// - A batch's outcome: 2xx **written**; 400 or 413 (bad lines, a field type conflict — a partial
///   write —, too large) **rejected**: counted and dropped, since resending cannot help; anything else
///   (no connection, timeout, 5xx, 401/403, 404, 429) a **failure**: the batch is kept and resent
///   after a jittered exponential backoff (`Backoff`, from `retryInitialNanoseconds` to
///   `retryMaxNanoseconds`) while new points keep filling the buffer. Memory: at most
///   `bufferLinesMax` buffered points plus the one encoded batch being resent.
/// - One event through `logger` per change of outcome (first batch written, failing, writing again,
///   rejecting) and one at close if anything was lost, each naming the server (`InfluxEndpoint`
///   description, metadata `peer`), never the password. `dependency` says the same for `/ready` (not
///   required: the pipeline runs on without its metrics).
/// - `flush()` waits at most `flushWaitNanosecondsMax`, and returns at once while the server is
///   failing. `close()` sends what is left while the server answers (one more attempt even during an
///   outage), drops the rest at the first failure (`linesDroppedAtClose`), and waits at most
///   `closeWaitNanosecondsMax`; a request still running then ends by its own timeout, after which the
///   worker stops. `write` after `close` counts the points as dropped at close. `close()` must be
///   called: the worker thread keeps the writer alive until then.
/// - Accounting: `linesAccepted` = written + invalid + dropped (buffer full, rejected, at close) +
///   buffered + in flight, at every instant (`Counters.isBalanced`).
public final class InfluxWriter: @unchecked Sendable {
    public struct Settings: Sendable {
        public var endpoint: InfluxEndpoint
        /// Points per request, at most.
        public var batchLinesMax = 5_000
        /// A buffered point waits at most about this long before its batch is sent (wall time).
        public var batchIntervalNanoseconds: Int64 = 1_000_000_000
        /// Points buffered, at most; beyond it the oldest is dropped.
        public var bufferLinesMax = 50_000
        /// One request (connect + send + answer) ends after this long.
        public var requestTimeoutMilliseconds = 5_000
        public var retryInitialNanoseconds: Int64 = 500_000_000
        public var retryMaxNanoseconds: Int64 = 30_000_000_000
        /// The longest `flush()` waits.
        public var flushWaitNanosecondsMax: Int64 = 2_000_000_000
        /// The longest `close()` waits.
        public var closeWaitNanosecondsMax: Int64 = 5_000_000_000
        /// zlib level of the request bodies (1 fastest ... 9 smallest).
        public var gzipLevel: Int32 = 6
        /// Send `CREATE DATABASE` before the first batch (and after "database not found").
        public var createDatabase = true
        /// Seed of the backoff's jitter: by default different per process and start, so that several
        /// writers do not retry in step; a test pins it.
        public var jitterSeed = UInt64(truncatingIfNeeded: InfluxWriter.monotonicNanoseconds())
            ^ UInt64(truncatingIfNeeded: getpid())

        public init(endpoint: InfluxEndpoint) { self.endpoint = endpoint }
    }

    /// What the writer did (a consistent snapshot, readable at any time).
    public struct Counters: Sendable, Equatable {
        /// Points given to `write`.
        public var linesAccepted = 0
        /// Points the server acknowledged (2xx).
        public var linesWritten = 0
        public var batchesWritten = 0
        /// Line-protocol bytes of the batches encoded (each batch once, however often it is resent).
        public var bytesUncompressed: Int64 = 0
        /// The gzip bytes of those batches: the request bodies.
        public var bytesCompressed: Int64 = 0
        /// Points that cannot be written as line protocol (no field left, empty measurement).
        public var linesInvalid = 0
        /// Oldest points dropped because the buffer was full.
        public var linesDroppedBufferFull = 0
        /// Points in batches the server rejected (400/413; a partial write's accepted points included).
        public var linesRejected = 0
        public var batchesRejected = 0
        /// Points still buffered or unsent when `close()` gave up, or written after it.
        public var linesDroppedAtClose = 0
        /// Requests that failed (no connection, timeout, 5xx, ...), the database creation included.
        public var failures = 0
        /// Times the writer went from writing (or starting) to failing.
        public var outages = 0
        /// Points in the buffer now.
        public var linesBuffered = 0
        /// Points in the batch being sent or resent now.
        public var linesInFlight = 0
        public var bufferHighWaterMark = 0

        /// Points that will never be written.
        public var linesDropped: Int { linesDroppedBufferFull + linesRejected + linesDroppedAtClose }
        /// Every accepted point is accounted for exactly once.
        public var isBalanced: Bool {
            linesAccepted == linesWritten + linesInvalid + linesDropped + linesBuffered + linesInFlight
        }
    }

    /// How the last attempt ended; a change is logged.
    private enum Outcome: Equatable { case none, written, failed, rejected }

    public let settings: Settings
    /// InfluxDB as the writer sees it: up from the first batch written, down while requests fail.
    public let dependency: DependencyTracker
    private let logger: Logger
    /// `tape: metrics: influx host:port (database db): `, the start of every log line.
    private let logPrefix: String
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var queue: [MetricPoint] = []
    private var queueHead = 0
    private var counters_ = Counters()
    /// Monotonic time when the oldest buffered point arrived (or when a remainder was left behind).
    private var oldestBufferedAt: Int64 = 0
    /// Points accounted for (written, invalid or dropped): what `flush` waits for.
    private var linesSettled = 0
    private var flushTarget = 0
    private var lastOutcome = Outcome.none
    private var closeRequested = false
    private var workerFinished = false
    private var workerWaiting = false

    public init(settings: Settings, logger: Logger = Logger(label: "tape.store.influx")) {
        precondition(settings.batchLinesMax > 0 && settings.bufferLinesMax >= settings.batchLinesMax,
                     "InfluxWriter: 0 < batchLinesMax <= bufferLinesMax")
        precondition(settings.batchIntervalNanoseconds > 0 && settings.requestTimeoutMilliseconds > 0,
                     "InfluxWriter: positive interval and timeout")
        self.settings = settings
        var logger = logger
        logger[metadataKey: "peer"] = .string(settings.endpoint.description)
        self.logger = logger
        dependency = DependencyTracker(name: "influx", required: false, peer: settings.endpoint.description)
        logPrefix = "tape: metrics: \(settings.endpoint.description): "
        let thread = Thread { [self] in self.runWorker() }
        thread.name = "tape-influx"
        thread.start()
    }

    deinit {
        // The worker thread holds the writer until it ends, so this runs only after close().
        assert(workerFinished, "an InfluxWriter is released closed")
    }

    public var counters: Counters {
        condition.lock()
        defer { condition.unlock() }
        var snapshot = counters_
        snapshot.linesBuffered = queue.count - queueHead
        return snapshot
    }

    /// Buffers the points and returns (see the contract); never blocks on the network, never fails.
    public func write(_ points: [MetricPoint]) {
        guard !points.isEmpty else { return }
        condition.lock()
        defer { condition.unlock() }
        counters_.linesAccepted += points.count
        if closeRequested {
            counters_.linesDroppedAtClose += points.count
            linesSettled += points.count
            return
        }
        let wasEmpty = queue.count == queueHead
        if wasEmpty { oldestBufferedAt = InfluxWriter.monotonicNanoseconds() }
        for point in points {
            if queue.count - queueHead == settings.bufferLinesMax {
                queueHead += 1
                counters_.linesDroppedBufferFull += 1
                linesSettled += 1
            }
            queue.append(point)
        }
        compactQueue()
        let buffered = queue.count - queueHead
        assert(buffered <= settings.bufferLinesMax, "the buffer is bounded")
        counters_.bufferHighWaterMark = max(counters_.bufferHighWaterMark, buffered)
        if workerWaiting && (wasEmpty || buffered >= settings.batchLinesMax) { condition.broadcast() }
    }

    /// Asks the worker to send everything buffered now and waits until every point accepted before the
    /// call is accounted for — written, or counted as dropped or rejected — (true), or the server is
    /// failing, or `flushWaitNanosecondsMax` has passed (false).
    @discardableResult
    public func flush() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        let target = counters_.linesAccepted
        flushTarget = max(flushTarget, target)
        condition.broadcast()
        let deadline = InfluxWriter.monotonicNanoseconds() + settings.flushWaitNanosecondsMax
        while linesSettled < target && lastOutcome != .failed && !workerFinished {
            if !wait(until: deadline) { break }
        }
        return linesSettled >= target
    }

    /// Sends what is left (see the contract), stops the worker, and waits at most
    /// `closeWaitNanosecondsMax`. Idempotent. Returns true when the worker has finished.
    @discardableResult
    public func close() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        closeRequested = true
        condition.broadcast()
        let deadline = InfluxWriter.monotonicNanoseconds() + settings.closeWaitNanosecondsMax
        while !workerFinished {
            if !wait(until: deadline) { break }
        }
        return workerFinished
    }

    // MARK: worker thread

    private func runWorker() {
        var connection = InfluxConnection(settings: settings)
        var backoff = Backoff(initialNanoseconds: settings.retryInitialNanoseconds,
                              maxNanoseconds: max(settings.retryMaxNanoseconds, settings.retryInitialNanoseconds),
                              seed: settings.jitterSeed)
        var retryAt: Int64 = 0
        var lineBytes: [UInt8] = []
        var body: [UInt8] = []
        var bodyIsGzip = false
        condition.lock()
        while true {
            // A batch to send: the one being resent, or a new one once one is due.
            if counters_.linesInFlight == 0 {
                let now = InfluxWriter.monotonicNanoseconds()
                let buffered = queue.count - queueHead
                let flushing = closeRequested || flushTarget > linesSettled
                let due = buffered >= settings.batchLinesMax
                    || (buffered > 0 && (flushing || now - oldestBufferedAt >= settings.batchIntervalNanoseconds))
                if !due {
                    if closeRequested {
                        finish()
                        return
                    }
                    workerWaiting = true
                    _ = wait(until: buffered > 0 ? oldestBufferedAt + settings.batchIntervalNanoseconds : nil)
                    workerWaiting = false
                    continue
                }
                let count = min(buffered, settings.batchLinesMax)
                let batch = Array(queue[queueHead..<(queueHead + count)])
                queueHead += count
                compactQueue()
                if queue.count > queueHead { oldestBufferedAt = now }
                counters_.linesInFlight = count
                condition.unlock()
                let encoded = connection.encode(batch, lines: &lineBytes, body: &body)
                condition.lock()
                bodyIsGzip = encoded.gzip
                counters_.linesInvalid += count - encoded.lines
                linesSettled += count - encoded.lines
                counters_.linesInFlight = encoded.lines
                counters_.bytesUncompressed += Int64(lineBytes.count)
                counters_.bytesCompressed += Int64(body.count)
                if encoded.lines == 0 {
                    condition.broadcast()
                    continue
                }
            }
            // Wait out the backoff; closing makes one more attempt at once.
            if !closeRequested {
                let now = InfluxWriter.monotonicNanoseconds()
                if now < retryAt {
                    workerWaiting = true
                    _ = wait(until: retryAt)
                    workerWaiting = false
                    continue
                }
            }
            let closing = closeRequested
            let lines = counters_.linesInFlight
            condition.unlock()
            let result = connection.send(body, gzip: bodyIsGzip)
            condition.lock()
            var message: (Logger.Level, String, Logger.Metadata)? = nil
            switch result {
            case .written:
                counters_.linesWritten += lines
                counters_.batchesWritten += 1
                linesSettled += lines
                counters_.linesInFlight = 0
                if lastOutcome == .none {
                    message = (.info, "\(logPrefix)writing", ["event": "writing"])
                } else if lastOutcome != .written {
                    message = (.notice, "\(logPrefix)writing again (\(counters_.failures) failed requests, "
                        + "\(counters_.linesDropped) lines dropped so far)", ["event": "up"])
                }
                lastOutcome = .written
                backoff.reset()
            case .rejected(let reason):
                counters_.linesRejected += lines
                counters_.batchesRejected += 1
                linesSettled += lines
                counters_.linesInFlight = 0
                if lastOutcome != .rejected {
                    message = (.warning, "\(logPrefix)rejected a batch of \(lines) lines (\(reason)); dropped it "
                        + "(rejections in a row are logged once, all are counted)", ["event": "rejected", "error": "\(reason)"])
                }
                lastOutcome = .rejected
                backoff.reset()
            case .failed(let reason):
                counters_.failures += 1
                let delay = backoff.nextDelay()
                retryAt = InfluxWriter.monotonicNanoseconds() + delay
                if lastOutcome != .failed {
                    counters_.outages += 1
                    message = (.warning, "\(logPrefix)not written (\(reason)); keeping up to "
                        + "\(settings.bufferLinesMax) lines and retrying with backoff, the run goes on",
                        ["event": "down", "error": "\(reason)"])
                }
                lastOutcome = .failed
            }
            condition.broadcast()
            switch result {
            case .written, .rejected: dependency.set(.up)
            case .failed(let reason): dependency.set(.down, detail: "\(reason)")
            }
            if let (level, text, metadata) = message {
                condition.unlock()
                logger.log(level: level, "\(text)", metadata: metadata)
                condition.lock()
            }
            if closing, case .failed = result {
                let lost = counters_.linesInFlight + (queue.count - queueHead)
                counters_.linesDroppedAtClose += lost
                linesSettled += lost
                counters_.linesInFlight = 0
                queue.removeAll()
                queueHead = 0
                finish()
                return
            }
        }
    }

    /// Ends the worker (called with the lock held; returns with it released).
    private func finish() {
        assert(counters_.linesInFlight == 0 && queue.count == queueHead, "nothing left behind")
        var summary = counters_
        summary.linesBuffered = 0
        assert(summary.isBalanced, "every accepted point is accounted for")
        condition.unlock()
        // Printed before `close()` can return, so the line is out when the owner goes on.
        if summary.linesDropped > 0 {
            logger.warning(.text("\(logPrefix)closed; \(summary.linesWritten) lines written, "
                    + "\(summary.linesDropped) dropped (\(summary.linesDroppedBufferFull) buffer full, "
                    + "\(summary.linesRejected) rejected, \(summary.linesDroppedAtClose) at close), "
                    + "\(summary.failures) failed requests"))
        }
        condition.lock()
        workerFinished = true
        condition.broadcast()
        condition.unlock()
    }

    private func compactQueue() {
        if queueHead >= 1_024 && queueHead * 2 >= queue.count {
            queue.removeFirst(queueHead)
            queueHead = 0
        }
    }

    /// Waits on the condition (lock held) until signalled or `deadline` (monotonic); false once the
    /// deadline has passed.
    private func wait(until deadline: Int64?) -> Bool {
        guard let deadline else {
            condition.wait()
            return true
        }
        let remaining = deadline - InfluxWriter.monotonicNanoseconds()
        if remaining <= 0 { return false }
        return condition.wait(until: Date(timeIntervalSinceNow: Double(remaining) / 1e9))
    }

    static func monotonicNanoseconds() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }
}

/// The worker's side of the wire: its HTTP client, its compressor, whether the database exists.
/// Owned by the writer's thread only.
struct InfluxConnection {
    enum Result: Equatable {
        case written
        case rejected(String)
        case failed(String)
    }

    /// Bytes of a server's answer quoted in a message, at most.
    static let quotedAnswerBytesMax = 200

    let endpoint: InfluxEndpoint
    let client: HTTPClient?
    let gzip: GzipCompressor?
    /// Why the client could not be made, if it could not.
    let setupFailure: String?
    var databaseReady: Bool
    private let writeHeaders: [String]
    private let plainWriteHeaders: [String]

    init(settings: InfluxWriter.Settings) {
        endpoint = settings.endpoint
        var failure: String? = nil
        do { client = try HTTPClient(timeoutMilliseconds: settings.requestTimeoutMilliseconds) } catch {
            client = nil
            failure = "\(error)"
        }
        do { gzip = try GzipCompressor(level: settings.gzipLevel) } catch {
            gzip = nil  // bodies go uncompressed
        }
        setupFailure = failure
        databaseReady = !settings.createDatabase
        plainWriteHeaders = endpoint.authorizationHeaders + ["Content-Type: text/plain; charset=utf-8"]
        writeHeaders = plainWriteHeaders + ["Content-Encoding: gzip"]
    }

    /// Encodes the points as line protocol into `lines` and the request body into `body` (gzip when
    /// the compressor works). Returns how many points made a line.
    func encode(_ points: [MetricPoint], lines: inout [UInt8], body: inout [UInt8]) -> (lines: Int, gzip: Bool) {
        lines.removeAll(keepingCapacity: true)
        var written = 0
        for point in points where LineProtocol.append(point, to: &lines) {
            lines.append(0x0A)
            written += 1
        }
        if let gzip {
            do {
                try gzip.compress(lines, into: &body)
                return (written, true)
            } catch {
                // zlib failed (out of memory): this batch goes uncompressed.
            }
        }
        body = lines
        return (written, false)
    }

    /// Creates the database if needed, then posts the body to `/write`.
    mutating func send(_ body: [UInt8], gzip: Bool) -> Result {
        guard let client else { return .failed(setupFailure ?? "no HTTP client") }
        let secret = endpoint.password
        if !databaseReady {
            do {
                let response = try client.post(endpoint.queryURL, body: endpoint.createDatabaseForm,
                                               headers: endpoint.authorizationHeaders
                                                   + ["Content-Type: application/x-www-form-urlencoded"],
                                               redacting: secret)
                guard (200..<300).contains(response.status) else {
                    return .failed("CREATE DATABASE: " + quote(response))
                }
                databaseReady = true
            } catch {
                return .failed("\(error)")
            }
        }
        let response: HTTPResponse
        do {
            response = try client.post(endpoint.writeURL, body: body, headers: gzip ? writeHeaders : plainWriteHeaders,
                                       redacting: secret)
        } catch {
            return .failed("\(error)")
        }
        switch response.status {
        case 200..<300:
            return .written
        case 400, 413:
            return .rejected(quote(response))
        case 404:
            databaseReady = false  // "database not found": created again before the next attempt
            return .failed(quote(response))
        default:
            return .failed(quote(response))
        }
    }

    /// `HTTP <status>: <start of the answer>` on one line, the password removed.
    private func quote(_ response: HTTPResponse) -> String {
        let answer = response.body.prefix(InfluxConnection.quotedAnswerBytesMax)
        var text = String(decoding: answer, as: UTF8.self)
        text = text.replacingOccurrences(of: "\n", with: " ").trimmingCharacters(in: .whitespaces)
        text = Redaction.redact(text, secret: endpoint.password)
        return text.isEmpty ? "HTTP \(response.status)" : "HTTP \(response.status): \(text)"
    }
}
