import Foundation
import TapeCore
import TapeClock

/// The one inbound queue of a live session. Every wire message of every feed and every clock tick
/// enters here and is **stamped with its receive time under one lock**, strictly increasing
/// (`ReceiveStamper`), so the order of the queue is the order of the stamps: the stream order the
/// engine sees, and the order in which the replay of the recording merges it back.
///
///     let inbox = Inbox()
///     inbox.push(feed: 0, message: bytes)        // a connector's read loop
///     inbox.take(into: &batch, waitNanos: 5_000_000)  // the engine's thread
///
/// Messages are copied into a byte arena; the consumer swaps whole arenas (`take`), so neither side
/// allocates per message once the arenas have grown. A message's line breaks (`\n`, `\r`) become spaces
/// as it is stamped — JSON allows that — so it is one line in the recording and decodes the same live and
/// in replay. Limits: `maxPending` messages waiting (a push beyond it is refused and counted as
/// dropped: the engine is not keeping up), `maxMessageBytes` per message (longer: refused, counted).
public final class Inbox: @unchecked Sendable {
    /// One stamped item. `feed` is the connector's index, or `Inbox.tickFeed` for a clock tick.
    public struct Entry: Sendable {
        public var receiveTime: Nanos
        public var feed: Int32
        public var start: Int
        public var count: Int
    }

    /// What the consumer takes at once: entries in stamp order and the bytes they point into.
    public struct Batch {
        public var entries: [Entry] = []
        public var bytes: [UInt8] = []
        public init() {}
        public mutating func removeAll() {
            entries.removeAll(keepingCapacity: true)
            bytes.removeAll(keepingCapacity: true)
        }
    }

    public static let tickFeed: Int32 = -1
    /// Messages waiting before a push is refused.
    public let maxPending: Int
    /// The longest message accepted (bytes).
    public let maxMessageBytes: Int

    private let stamper: ReceiveStamper
    private let condition = NSCondition()
    private var pending = Batch()
    private var closed = false
    private var droppedByFeed: [Int32: Int] = [:]

    public init(stamper: ReceiveStamper = ReceiveStamper(), maxPending: Int = 1 << 20,
                maxMessageBytes: Int = 4 << 20) {
        precondition(maxPending > 0 && maxMessageBytes > 0, "inbox limits must be positive")
        self.stamper = stamper
        self.maxPending = maxPending
        self.maxMessageBytes = maxMessageBytes
        pending.entries.reserveCapacity(4096)
        pending.bytes.reserveCapacity(1 << 20)
    }

    /// Stamps and queues one wire message of `feed`. Returns its receive time, or nil if refused
    /// (closed, full, too long — counted in `dropped`).
    @discardableResult
    public func push(feed: Int, message: UnsafeRawBufferPointer) -> Nanos? {
        precondition(feed >= 0, "feed index")
        condition.lock()
        defer { condition.unlock() }
        guard !closed, pending.entries.count < maxPending, message.count <= maxMessageBytes else {
            if !closed { droppedByFeed[Int32(feed), default: 0] += 1 }
            return nil
        }
        let receiveTime = stamper.stamp()
        let start = pending.bytes.count
        pending.bytes.append(contentsOf: message)
        // One line per message: line breaks inside a message are JSON whitespace.
        for index in start..<pending.bytes.count where pending.bytes[index] == 0x0A || pending.bytes[index] == 0x0D {
            pending.bytes[index] = 0x20
        }
        pending.entries.append(Entry(receiveTime: receiveTime, feed: Int32(feed), start: start, count: message.count))
        if pending.entries.count == 1 { condition.signal() }
        return receiveTime
    }

    /// Stamps and queues a clock tick (the live driver's timer). Returns its time, nil once closed.
    @discardableResult
    public func pushTick() -> Nanos? {
        condition.lock()
        defer { condition.unlock() }
        guard !closed else { return nil }
        let receiveTime = stamper.stamp()
        pending.entries.append(Entry(receiveTime: receiveTime, feed: Inbox.tickFeed, start: pending.bytes.count,
                                     count: 0))
        if pending.entries.count == 1 { condition.signal() }
        return receiveTime
    }

    /// Moves everything queued into `batch` (whose old contents are dropped), waiting up to `waitNanos`
    /// for something to arrive. Returns false when the inbox is closed and empty: the stream is over.
    public func take(into batch: inout Batch, waitNanos: Int64) -> Bool {
        batch.removeAll()
        condition.lock()
        defer { condition.unlock() }
        if pending.entries.isEmpty && !closed && waitNanos > 0 {
            _ = condition.wait(until: Date(timeIntervalSinceNow: Double(waitNanos) / 1e9))
        }
        if pending.entries.isEmpty { return !closed }
        swap(&batch, &pending)
        return true
    }

    /// Waits until something is queued or the inbox is closed, at most `nanos`.
    public func wait(nanos: Int64) {
        condition.lock()
        defer { condition.unlock() }
        if pending.entries.isEmpty && !closed {
            _ = condition.wait(until: Date(timeIntervalSinceNow: Double(nanos) / 1e9))
        }
    }

    /// No more pushes; what is queued is still taken. Idempotent.
    public func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    /// Messages refused per feed index (full queue or too long), for the summary.
    public var dropped: [Int32: Int] {
        condition.lock()
        defer { condition.unlock() }
        return droppedByFeed
    }
}
