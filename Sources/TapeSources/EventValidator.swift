import TapeCore

/// The checks every reader runs on every event before handing it out. Reports each reject itself
/// (file, line, reason, offending value) and keeps per-file state (max receive time, last ids).
///
/// Rules, in this order (first failure wins):
/// - any used price/size NaN or ±Inf → `nan_value` (a bar's volume may be NaN = absent);
/// - negative price/size → `negative_value`;
/// - zero price, zero trade size, zero bid/ask → `zero_value` (quote sizes may be 0);
/// - quote bid > ask → `crossed_quote` (bid == ask, a locked book, is accepted);
/// - bar high < max(open, close) or low > min(open, close) (or high < low) → `out_of_range`;
/// - receive time more than `backwardsTolerance` before the largest accepted so far in this file →
///   `time_backwards` (within the tolerance: accepted unchanged);
/// - when `checkDuplicates` (formats with real ids: trade id, update id): per (symbol, kind) a
///   sequence ≤ the last accepted one → `duplicate`. Turn it off where `sequence` is a line number.
/// Only accepted events move the max receive time and the last ids.
public final class EventValidator {
    public let file: String
    public let backwardsTolerance: Nanos
    public var checkDuplicates: Bool
    public let rejects: RejectHandler
    /// Rejects reported by this validator.
    public private(set) var rejected = 0
    public private(set) var maxReceiveTime: Nanos = .min
    // Last accepted sequence, indexed by symbol * 3 + kind; Int64.min = none.
    private var lastSeq: [Int64] = []

    public init(file: String, rejects: RejectHandler, backwardsTolerance: Nanos = 1_000_000_000,
                checkDuplicates: Bool = true) {
        self.file = file; self.rejects = rejects
        self.backwardsTolerance = backwardsTolerance; self.checkDuplicates = checkDuplicates
        lastSeq.reserveCapacity(64)
    }

    /// True if `e` may be delivered; otherwise the reject was reported (naming `file` and `line`).
    @inline(__always)
    public func check(_ e: inout MarketEvent, line: Int) -> Bool {
        switch e.kind {
        case .trade:
            if !e.price.isFinite || !e.size.isFinite || e.price <= 0 || e.size <= 0 {
                return valueReject(e, line, price: e.price, size: e.size, priceName: "price", sizeName: "size",
                                   zeroSizeIsBad: true)
            }
        case .quote:
            if !(e.bid > 0 && e.ask > 0 && e.bidSize >= 0 && e.askSize >= 0 && e.bid.isFinite && e.ask.isFinite
                 && e.bidSize.isFinite && e.askSize.isFinite) {
                return quoteValueReject(e, line)
            }
            if e.bid > e.ask {
                return fail(.crossedQuote, line, "bid \(Numbers.format(e.bid)) > ask \(Numbers.format(e.ask))")
            }
        case .bar:
            if !(e.open > 0 && e.high > 0 && e.low > 0 && e.price > 0 && e.open.isFinite && e.high.isFinite
                 && e.low.isFinite && e.price.isFinite) {
                return barValueReject(e, line)
            }
            if e.size.isInfinite { return fail(.nanValue, line, "volume \(e.size)") }
            if e.size < 0 { return fail(.negativeValue, line, "volume \(Numbers.format(e.size))") }
            if e.high < max(e.open, e.price) || e.low > min(e.open, e.price) || e.high < e.low {
                return fail(.outOfRange, line, "open \(Numbers.format(e.open)) high \(Numbers.format(e.high)) low \(Numbers.format(e.low)) close \(Numbers.format(e.price))")
            }
        case .clockTick:
            // No values to check; time may not go back beyond the tolerance; never a duplicate.
            if e.receiveTime < maxReceiveTime &- backwardsTolerance && maxReceiveTime != .min {
                return fail(.timeBackwards, line,
                            "clock tick \(e.receiveTime) is \(maxReceiveTime - e.receiveTime) ns before \(maxReceiveTime)")
            }
            if e.receiveTime > maxReceiveTime { maxReceiveTime = e.receiveTime }
            return true
        }
        if e.receiveTime < maxReceiveTime &- backwardsTolerance && maxReceiveTime != .min {
            return fail(.timeBackwards, line,
                        "receive time \(e.receiveTime) is \(maxReceiveTime - e.receiveTime) ns before \(maxReceiveTime) (tolerance \(backwardsTolerance) ns)")
        }
        if checkDuplicates {
            let k = Int(e.symbol) &* 3 &+ Int(e.kind.rawValue)
            if k >= lastSeq.count { lastSeq.append(contentsOf: repeatElement(Int64.min, count: k + 1 - lastSeq.count + 16)) }
            if e.sequence <= lastSeq[k] {
                return fail(.duplicate, line, "sequence \(e.sequence) <= last accepted \(lastSeq[k]) for this symbol and kind")
            }
            lastSeq[k] = e.sequence
        }
        if e.receiveTime > maxReceiveTime { maxReceiveTime = e.receiveTime }
        return true
    }

    private func valueReject(_ e: MarketEvent, _ line: Int, price: Double, size: Double, priceName: String,
                             sizeName: String, zeroSizeIsBad: Bool) -> Bool {
        if !price.isFinite { return fail(.nanValue, line, "\(priceName) \(price)") }
        if !size.isFinite { return fail(.nanValue, line, "\(sizeName) \(size)") }
        if price < 0 { return fail(.negativeValue, line, "\(priceName) \(Numbers.format(price))") }
        if size < 0 { return fail(.negativeValue, line, "\(sizeName) \(Numbers.format(size))") }
        if price == 0 { return fail(.zeroValue, line, "\(priceName) 0") }
        return fail(.zeroValue, line, "\(sizeName) 0")
    }

    private func barValueReject(_ e: MarketEvent, _ line: Int) -> Bool {
        let f: [(String, Double)] = [("open", e.open), ("high", e.high), ("low", e.low), ("close", e.price)]
        for (n, v) in f where !v.isFinite { return fail(.nanValue, line, "\(n) \(v)") }
        for (n, v) in f where v < 0 { return fail(.negativeValue, line, "\(n) \(Numbers.format(v))") }
        for (n, v) in f where v == 0 { return fail(.zeroValue, line, "\(n) 0") }
        return fail(.nanValue, line, "unusable bar values")
    }

    private func quoteValueReject(_ e: MarketEvent, _ line: Int) -> Bool {
        let f: [(String, Double)] = [("bid", e.bid), ("bid size", e.bidSize), ("ask", e.ask), ("ask size", e.askSize)]
        for (n, v) in f where !v.isFinite { return fail(.nanValue, line, "\(n) \(v)") }
        for (n, v) in f where v < 0 { return fail(.negativeValue, line, "\(n) \(Numbers.format(v))") }
        if e.bid == 0 { return fail(.zeroValue, line, "bid 0") }
        return fail(.zeroValue, line, "ask 0")
    }

    @inline(never)
    private func fail(_ r: RejectReason, _ line: Int, _ detail: String) -> Bool {
        rejected += 1
        rejects.reject(Reject(file: file, line: line, reason: r, detail: detail))
        return false
    }
}
