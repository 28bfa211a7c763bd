import TapeCore
import TapeGraph
import TapeSinks
import TapeBus
import TapeClock

/// Where `TickBusSink` sends records: a Kafka producer (`tape ingest`), or memory in tests.
public protocol TickPublisher: AnyObject {
    /// Partitions of the topic (clock ticks and end marks go to each).
    var partitionCount: Int32 { get }
    /// Sends one record: `partition` nil = by key (the symbol); `timestampMs` = the receive time in ms.
    /// May block while the producer's bounded buffer is full (back-pressure); never drops.
    func publish(key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer, partition: Int32?, timestampMs: Int64)
    /// Housekeeping on the engine thread (delivery reports).
    func poll()
    var failure: (any Error)? { get }
    /// Waits until every record sent is acknowledged (or fails).
    func flush() throws
    func close() throws
    /// summary.json `stores.<name>`.
    var report: JSONValue { get }
}

/// `tape ingest`'s sink: every market event the engine delivers (decoded and validated, in the engine's
/// order) becomes a `TickRecord` keyed by its symbol, and every clock tick one record per partition;
/// at close, an end-of-session mark goes to every partition (the recording ends there too, so a worker's
/// graph finishes where the replay of the recording does).
public final class TickBusSink: EventSink, ReportingSink {
    public let name: String
    private let publisher: TickPublisher
    private let symbols: SymbolTable
    private var value: [UInt8] = []
    private let empty: [UInt8] = []
    private var lastTime: Nanos = 0
    private var closed = false
    public private(set) var events = 0
    public private(set) var clockTicks = 0
    /// The session's id and the last place given.
    public let session: UInt64
    private var sequence: UInt64 = 0

    /// `session`: the ingest session's id, unique per session (default: the wall time now, ns).
    public init(name: String = "kafka", publisher: TickPublisher, symbols: SymbolTable, session: UInt64? = nil) {
        self.name = name
        self.publisher = publisher
        self.symbols = symbols
        self.session = session ?? UInt64(max(1, WallClock.nanos()))
        value.reserveCapacity(256)
    }

    private func nextPlace() -> TickRecord.Place {
        sequence += 1
        return TickRecord.Place(session: session, sequence: sequence)
    }

    public func record(_ event: MarketEvent) {
        TickRecord.encode(event, exchange: event.exchange == 0 ? empty : symbols.utf8(event.exchange),
                          conditions: event.conditions == 0 ? empty : symbols.utf8(event.conditions),
                          place: nextPlace(), into: &value)
        lastTime = event.receiveTime
        let key = symbols.utf8(event.symbol)
        key.withUnsafeBytes { k in
            value.withUnsafeBytes { v in
                publisher.publish(key: k, value: v, partition: nil, timestampMs: event.receiveTime / 1_000_000)
            }
        }
        events += 1
    }

    public func recordClockTick(at time: Nanos) {
        TickRecord.encode(.clockTick(at: time), exchange: empty, conditions: empty, place: nextPlace(), into: &value)
        lastTime = time
        toEveryPartition(time)
        clockTicks += 1
    }

    private func toEveryPartition(_ time: Nanos) {
        value.withUnsafeBytes { v in
            for partition in 0..<publisher.partitionCount {
                publisher.publish(key: nil, value: v, partition: partition, timestampMs: time / 1_000_000)
            }
        }
    }

    public func emit(_ output: GraphOutput) {}

    public func poll() { publisher.poll() }
    public var failure: (any Error)? { publisher.failure }
    public func flush() throws { try publisher.flush() }

    /// Sends the end-of-session mark to every partition, waits for every record's acknowledgement, closes.
    public func close() throws {
        if !closed {
            closed = true
            if lastTime > 0 {
                TickRecord.endOfSession(at: lastTime, place: nextPlace(), into: &value)
                toEveryPartition(lastTime)
            }
            try publisher.flush()
        }
        try publisher.close()
    }

    public var report: JSONValue {
        var fields: [(String, JSONValue)] = [("session", .string(String(session))), ("events", .int(Int64(events))),
                                             ("clock_ticks", .int(Int64(clockTicks)))]
        if case .object(let more) = publisher.report { fields += more }
        return .object(fields)
    }
}
