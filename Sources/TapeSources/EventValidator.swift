import TapeCore

/// The sanity bounds of prices and sizes: a value above its bound is `out_of_range` (a decoding error
/// or a poisoned feed, never a market value), so nothing huge or infinite reaches a bar's volume or VWAP.
/// Generous but finite by default; `tape replay --max-price/--max-size` changes them.
public struct ValueBounds: Sendable, Equatable {
    /// Largest accepted price (trade price, bid, ask, bar open/high/low/close).
    public var priceMax: Double
    /// Largest accepted size (trade size, quote sizes, bar volume).
    public var sizeMax: Double
    public static let defaultPriceMax: Double = 1e9
    public static let defaultSizeMax: Double = 1e12
    public init(priceMax: Double = ValueBounds.defaultPriceMax, sizeMax: Double = ValueBounds.defaultSizeMax) {
        precondition(priceMax > 0 && priceMax.isFinite && sizeMax > 0 && sizeMax.isFinite,
                     "value bounds must be positive and finite")
        self.priceMax = priceMax
        self.sizeMax = sizeMax
    }
}

/// The checks every reader runs on every event before handing it out. Reports each reject itself
/// (file, line, reason, offending value) and keeps per-file state (the receive-time reference, a window
/// of recent ids).
///
/// Rules, in this order (first failure wins):
/// - any used price/size NaN or ±Inf → `nan_value` (a bar's volume may be NaN = absent);
/// - negative price/size → `negative_value`;
/// - zero price, zero trade size, zero bid/ask → `zero_value` (quote sizes may be 0);
/// - a price above `bounds.priceMax` or a size above `bounds.sizeMax` → `out_of_range`;
/// - quote bid > ask → `crossed_quote` (bid == ask, a locked book, is accepted);
/// - bar high < max(open, close) or low > min(open, close) (or high < low) → `out_of_range`;
/// - receive time more than `backwardsTolerance` before the reference (the largest accepted receive time
///   in this file) → `time_backwards` (within the tolerance: accepted unchanged);
/// - receive time more than `forwardJumpLimit` after the reference → `time_jump`, unless the jump is
///   confirmed (see below);
/// - when `checkDuplicates` (formats with real ids: trade id, update id): per (symbol, kind) a sequence
///   among the last `duplicateWindow` accepted ones → `duplicate`. An id below the largest seen but not
///   in the window (a trade delivered out of order) is accepted. Turn it off where `sequence` is a line
///   number.
/// Only accepted events move the reference and enter the id window.
///
/// The forward-jump rule keeps one outlier from becoming the reference (a far-future time would otherwise
/// make every later valid record `time_backwards`). A record more than `forwardJumpLimit` ahead is
/// rejected and remembered as a candidate; the next record that is itself more than the limit ahead of
/// the reference, and within `backwardsTolerance` before or `forwardJumpLimit` after the candidate,
/// confirms the jump: it is accepted and becomes the reference (a real gap — a weekend, a halted feed —
/// costs its first record, rejected with the reason, and nothing else). Any record accepted normally
/// clears the candidate. The default limit, 7 days, is above weekends and holidays in bar files and
/// far below a wrong century, a µs-for-ns unit or a corrupted digit; it is one comparison per event
/// and two integers of state.
public final class EventValidator {
    public let file: String
    public let backwardsTolerance: Nanos
    /// How far receive time may jump forward past the reference before the jump must be confirmed.
    public let forwardJumpLimit: Nanos
    public var checkDuplicates: Bool
    public let bounds: ValueBounds
    public let rejects: RejectHandler
    /// Rejects reported by this validator.
    public private(set) var rejected = 0
    /// The reference: the largest accepted receive time in this file.
    public private(set) var maxReceiveTime: Nanos = .min
    /// A rejected forward jump waiting for confirmation by a later record; .min = none.
    private var jumpCandidate: Nanos = .min
    /// Recent accepted ids, per (symbol, kind).
    private var recentIds = RecentIdWindows()

    public static let defaultForwardJumpLimit: Nanos = 7 * 24 * 3_600 * 1_000_000_000

    public init(file: String, rejects: RejectHandler, backwardsTolerance: Nanos = 1_000_000_000,
                forwardJumpLimit: Nanos = EventValidator.defaultForwardJumpLimit,
                bounds: ValueBounds = ValueBounds(), checkDuplicates: Bool = true) {
        precondition(backwardsTolerance >= 0 && forwardJumpLimit > 0, "time bounds must be positive")
        self.file = file
        self.rejects = rejects
        self.backwardsTolerance = backwardsTolerance
        self.forwardJumpLimit = forwardJumpLimit
        self.bounds = bounds
        self.checkDuplicates = checkDuplicates
    }

    /// Forgets the reference time, a pending jump and the id windows, as for a new file (the reject
    /// count stays): what a live feed does when its recording rotates, so it decides as the replay of
    /// the new file will.
    public func reset() {
        maxReceiveTime = .min
        jumpCandidate = .min
        recentIds = RecentIdWindows()
    }

    /// True if `e` may be delivered; otherwise the reject was reported (naming `file` and `line`).
    @inline(__always)
    public func check(_ e: inout MarketEvent, line: Int) -> Bool {
        let priceMax = bounds.priceMax
        let sizeMax = bounds.sizeMax
        // Comparisons are false for NaN, and ±Inf fails the bounds: one branch on the valid path.
        switch e.kind {
        case .trade:
            if !(e.price > 0 && e.price <= priceMax && e.size > 0 && e.size <= sizeMax) {
                return valueReject(e, line, price: e.price, size: e.size, priceName: "price", sizeName: "size",
                                   zeroSizeIsBad: true)
            }
        case .quote:
            if !(e.bid > 0 && e.ask > 0 && e.bidSize >= 0 && e.askSize >= 0 && e.bid <= priceMax
                 && e.ask <= priceMax && e.bidSize <= sizeMax && e.askSize <= sizeMax) {
                return quoteValueReject(e, line)
            }
            if e.bid > e.ask {
                return fail(.crossedQuote, line, "bid \(Numbers.format(e.bid)) > ask \(Numbers.format(e.ask))")
            }
        case .bar:
            if !(e.open > 0 && e.high > 0 && e.low > 0 && e.price > 0 && e.open <= priceMax && e.high <= priceMax
                 && e.low <= priceMax && e.price <= priceMax) {
                return barValueReject(e, line)
            }
            if e.size.isInfinite { return fail(.nanValue, line, "volume \(e.size)") }
            if e.size < 0 { return fail(.negativeValue, line, "volume \(Numbers.format(e.size))") }
            if e.size > sizeMax { return aboveBound(line, "volume", e.size, sizeMax) }
            if e.high < max(e.open, e.price) || e.low > min(e.open, e.price) || e.high < e.low {
                return fail(.outOfRange, line, "open \(Numbers.format(e.open)) high \(Numbers.format(e.high)) "
                            + "low \(Numbers.format(e.low)) close \(Numbers.format(e.price))")
            }
        case .clockTick:
            // No values to check; time may not go back beyond the tolerance nor jump; never a duplicate.
            if !receiveTimeFits(e.receiveTime) && !confirmsJump(e.receiveTime, line, what: "clock tick") {
                return false
            }
            acceptReceiveTime(e.receiveTime)
            return true
        }
        if !receiveTimeFits(e.receiveTime) && !confirmsJump(e.receiveTime, line, what: "receive time") {
            return false
        }
        if checkDuplicates {
            let key = Int(e.symbol) &* 3 &+ Int(e.kind.rawValue)
            if !recentIds.insert(e.sequence, key: key) {
                return fail(.duplicate, line, "sequence \(e.sequence) already seen for this symbol and kind "
                            + "(among the last \(RecentIdWindows.capacity))")
            }
        }
        acceptReceiveTime(e.receiveTime)
        return true
    }

    /// True if `time` is within [reference - backwardsTolerance, reference + forwardJumpLimit] (or it is
    /// the first record).
    @inline(__always)
    private func receiveTimeFits(_ time: Nanos) -> Bool {
        if maxReceiveTime == .min { return true }
        let earliest = maxReceiveTime &- backwardsTolerance
        let latest = maxReceiveTime > Nanos.max &- forwardJumpLimit ? Nanos.max : maxReceiveTime &+ forwardJumpLimit
        return time >= earliest && time <= latest
    }

    @inline(__always)
    private func acceptReceiveTime(_ time: Nanos) {
        if time > maxReceiveTime { maxReceiveTime = time }
        jumpCandidate = .min
    }

    /// A time outside the window: true if it confirms the jump candidate (the caller goes on, and accepting
    /// it makes it the reference); otherwise the reject is reported (`time_backwards`, or `time_jump` and
    /// the time becomes the candidate) and false returned.
    @inline(never)
    private func confirmsJump(_ time: Nanos, _ line: Int, what: String) -> Bool {
        if time < maxReceiveTime &- backwardsTolerance {
            return fail(.timeBackwards, line, "\(what) \(time) is \(maxReceiveTime &- time) ns before "
                        + "\(maxReceiveTime) (tolerance \(backwardsTolerance) ns)")
        }
        let candidate = jumpCandidate
        if candidate != .min && time >= candidate &- backwardsTolerance && time &- candidate <= forwardJumpLimit {
            return true   // two records agree on the later time: the stream continues from here
        }
        jumpCandidate = time
        return fail(.timeJump, line, "\(what) \(time) is \(time &- maxReceiveTime) ns after \(maxReceiveTime), "
                    + "beyond the forward-jump limit \(forwardJumpLimit) ns "
                    + "(accepted once the next record confirms it)")
    }

    private func valueReject(_ e: MarketEvent, _ line: Int, price: Double, size: Double, priceName: String,
                             sizeName: String, zeroSizeIsBad: Bool) -> Bool {
        if !price.isFinite { return fail(.nanValue, line, "\(priceName) \(price)") }
        if !size.isFinite { return fail(.nanValue, line, "\(sizeName) \(size)") }
        if price < 0 { return fail(.negativeValue, line, "\(priceName) \(Numbers.format(price))") }
        if size < 0 { return fail(.negativeValue, line, "\(sizeName) \(Numbers.format(size))") }
        if price == 0 { return fail(.zeroValue, line, "\(priceName) 0") }
        if size == 0 && zeroSizeIsBad { return fail(.zeroValue, line, "\(sizeName) 0") }
        if price > bounds.priceMax { return aboveBound(line, priceName, price, bounds.priceMax) }
        return aboveBound(line, sizeName, size, bounds.sizeMax)
    }

    private func aboveBound(_ line: Int, _ name: String, _ value: Double, _ bound: Double) -> Bool {
        fail(.outOfRange, line, "\(name) \(Numbers.format(value)) above the bound \(Numbers.format(bound))")
    }

    private func barValueReject(_ e: MarketEvent, _ line: Int) -> Bool {
        let f: [(String, Double)] = [("open", e.open), ("high", e.high), ("low", e.low), ("close", e.price)]
        for (n, v) in f where !v.isFinite { return fail(.nanValue, line, "\(n) \(v)") }
        for (n, v) in f where v < 0 { return fail(.negativeValue, line, "\(n) \(Numbers.format(v))") }
        for (n, v) in f where v == 0 { return fail(.zeroValue, line, "\(n) 0") }
        for (n, v) in f where v > bounds.priceMax { return aboveBound(line, n, v, bounds.priceMax) }
        return fail(.nanValue, line, "unusable bar values")
    }

    private func quoteValueReject(_ e: MarketEvent, _ line: Int) -> Bool {
        let f: [(String, Double)] = [("bid", e.bid), ("bid size", e.bidSize), ("ask", e.ask), ("ask size", e.askSize)]
        for (n, v) in f where !v.isFinite { return fail(.nanValue, line, "\(n) \(v)") }
        for (n, v) in f where v < 0 { return fail(.negativeValue, line, "\(n) \(Numbers.format(v))") }
        if e.bid == 0 { return fail(.zeroValue, line, "bid 0") }
        if e.ask == 0 { return fail(.zeroValue, line, "ask 0") }
        for (name, value) in f {
            let bound = name.hasSuffix("size") ? bounds.sizeMax : bounds.priceMax
            if value > bound { return aboveBound(line, name, value, bound) }
        }
        return fail(.outOfRange, line, "unusable quote values")
    }

    @inline(never)
    private func fail(_ r: RejectReason, _ line: Int, _ detail: String) -> Bool {
        rejected += 1
        rejects.reject(Reject(file: file, line: line, reason: r, detail: detail))
        return false
    }
}

/// The ids accepted recently, per key (symbol × kind): for each key a ring of the last `capacity` ids
/// and the largest id seen. An id above the largest is new (the usual case: one comparison and a store);
/// an id at or below it is a duplicate only if it is in the ring (a linear scan, on out-of-order ids
/// only). A key's ring grows by doubling up to `capacity` (a symbol with few events keeps a small one),
/// so storage grows with the data seen, never per event once a ring is full.
struct RecentIdWindows {
    /// Ids remembered per key.
    static let capacity = 4096

    private struct Window {
        var ids: [Int64] = []
        /// Once full, the slot overwritten next (the oldest id).
        var nextSlot = 0
        var largest = Int64.min
    }

    private var windows: [Window] = []
    /// Window index per key; -1 = the key has none yet.
    private var windowOfKey: [Int32] = []

    /// Records `id` under `key`; false (and nothing recorded) if it is among the key's recent ids.
    @inline(__always)
    mutating func insert(_ id: Int64, key: Int) -> Bool {
        let index = key < windowOfKey.count && windowOfKey[key] >= 0 ? Int(windowOfKey[key]) : addWindow(key: key)
        if id <= windows[index].largest && windows[index].ids.contains(id) { return false }
        if id > windows[index].largest { windows[index].largest = id }
        if windows[index].ids.count < RecentIdWindows.capacity {
            windows[index].ids.append(id)
        } else {
            let slot = windows[index].nextSlot
            windows[index].ids[slot] = id
            windows[index].nextSlot = slot &+ 1 == RecentIdWindows.capacity ? 0 : slot &+ 1
        }
        return true
    }

    @inline(never)
    private mutating func addWindow(key: Int) -> Int {
        precondition(key >= 0, "negative id-window key")
        if key >= windowOfKey.count {
            windowOfKey.append(contentsOf: repeatElement(-1, count: key + 1 - windowOfKey.count))
        }
        windows.append(Window())
        windowOfKey[key] = Int32(windows.count - 1)
        return windows.count - 1
    }
}
