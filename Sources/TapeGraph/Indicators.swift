import TapeCore
#if canImport(Glibc)
import Glibc
#endif

// Streaming indicators, O(1) per bar, that reproduce TA-Lib's arithmetic step by step (same
// summation order, same seeding), so values match TA-Lib at every index where it gives one.

/// A fixed-size ring of the last `n` values.
struct Ring {
    private var buf: [Double]
    private var head = 0
    private(set) var count = 0
    let capacity: Int
    init(_ n: Int) { capacity = n; buf = Array(repeating: 0, count: n) }
    /// Value `age` steps back (0 = newest).
    @inline(__always) func back(_ age: Int) -> Double { buf[(head - 1 - age + capacity * 2) % capacity] }
    /// Pushes a value; returns the value that fell out when full.
    @inline(__always) mutating func push(_ v: Double) -> Double? {
        let old: Double? = count == capacity ? buf[head] : nil
        buf[head] = v
        head = (head + 1) % capacity
        if count < capacity { count += 1 }
        return old
    }
    var isFull: Bool { count == capacity }
    /// Values oldest first.
    var values: [Double] { (0..<count).map { back(count - 1 - $0) } }

    /// Snapshot: capacity, head, count, then the whole buffer (so positions are restored exactly).
    func snapshot(into writer: inout SnapshotWriter) {
        writer.appendCount(capacity)
        writer.appendCount(head)
        writer.appendCount(count)
        for value in buf { writer.append(value) }
    }

    /// Reads a ring written by `snapshot`; refuses one of another capacity than the config's.
    init(from reader: inout SnapshotReader, capacity expected: Int) throws {
        let capacity = try reader.readCount()
        guard capacity == expected else { throw reader.error("ring capacity \(capacity), config says \(expected)") }
        let head = try reader.readCount()
        let count = try reader.readCount()
        guard head < capacity && count <= capacity else {
            throw reader.error("ring head \(head) / count \(count) out of range")
        }
        self.init(capacity)
        for index in 0..<capacity { buf[index] = try reader.readDouble() }
        self.head = head
        self.count = count
    }
}

/// TA-Lib SMA: a running total; first value after `n` inputs.
struct SMA {
    let n: Int
    private var ring: Ring
    private var total = 0.0
    init(_ n: Int) { self.n = n; ring = Ring(n) }
    mutating func update(_ x: Double) -> Double {
        // TA-Lib: periodTotal += in[i]; out = periodTotal / n; periodTotal -= in[trailing]
        total += x
        _ = ring.push(x)
        guard ring.isFull else { return .nan }
        let out = total / Double(n)
        total -= ring.back(n - 1)
        return out
    }
    func snapshot(into writer: inout SnapshotWriter) {
        ring.snapshot(into: &writer)
        writer.append(total)
    }
    mutating func restore(from reader: inout SnapshotReader) throws {
        ring = try Ring(from: &reader, capacity: n)
        total = try reader.readDouble()
    }
}

/// TA-Lib EMA: seeded with the SMA of the first `n` inputs (summed in order), then
/// prev = (x − prev)·k + prev with k = 2/(n+1).
struct EMA {
    let n: Int
    let k: Double
    private var seedSum = 0.0
    private var seen = 0
    private(set) var value = Double.nan
    init(_ n: Int) { self.n = n; k = 2.0 / Double(n + 1) }
    mutating func update(_ x: Double) -> Double {
        seen += 1
        if seen < n { seedSum += x; return .nan }
        if seen == n { seedSum += x; value = seedSum / Double(n); return value }
        value = ((x - value) * k) + value
        return value
    }
    func snapshot(into writer: inout SnapshotWriter) {
        writer.append(seedSum)
        writer.appendCount(seen)
        writer.append(value)
    }
    mutating func restore(from reader: inout SnapshotReader) throws {
        seedSum = try reader.readDouble()
        seen = try reader.readCount(minimumElementBytes: 0)
        value = try reader.readDouble()
    }
}

/// TA-Lib RSI (Wilder smoothing, unstable period 0): first value after n+1 inputs.
struct RSI {
    let n: Int
    private var prev = Double.nan
    private var gain = 0.0, loss = 0.0
    private var seen = 0
    init(_ n: Int) { self.n = n }
    private static func isZero(_ v: Double) -> Bool { -0.00000000000001 < v && v < 0.00000000000001 }
    mutating func update(_ x: Double) -> Double {
        seen += 1
        if seen == 1 { prev = x; return .nan }
        let d = x - prev
        prev = x
        if seen <= n + 1 {
            if d < 0 { loss -= d } else { gain += d }
            if seen < n + 1 { return .nan }
            loss /= Double(n); gain /= Double(n)
        } else {
            loss *= Double(n - 1); gain *= Double(n - 1)
            if d < 0 { loss -= d } else { gain += d }
            loss /= Double(n); gain /= Double(n)
        }
        let s = gain + loss
        return RSI.isZero(s) ? 0 : 100.0 * (gain / s)
    }
    func snapshot(into writer: inout SnapshotWriter) {
        writer.append(prev)
        writer.append(gain)
        writer.append(loss)
        writer.appendCount(seen)
    }
    mutating func restore(from reader: inout SnapshotReader) throws {
        prev = try reader.readDouble()
        gain = try reader.readDouble()
        loss = try reader.readDouble()
        seen = try reader.readCount(minimumElementBytes: 0)
    }
}

/// TA-Lib MACD: slow EMA seeded with the SMA of inputs [0, slow); fast EMA seeded with the SMA of
/// inputs [slow−fast, slow) so both start at index slow−1; signal = EMA(signal) of the MACD line,
/// seeded with the SMA of its first `signal` values. TA-Lib outputs all three from index
/// slow+signal−2 on.
struct MACD {
    let fast: Int, slow: Int, signal: Int
    let kFast: Double, kSlow: Double, kSignal: Double
    private var first: [Double] = []
    private var fastV = 0.0, slowV = 0.0
    private var seen = 0
    private var signalSeed = 0.0
    private var macdSeen = 0
    private var signalV = 0.0
    init(fast: Int, slow: Int, signal: Int) {
        self.fast = fast; self.slow = slow; self.signal = signal
        kFast = 2.0 / Double(fast + 1); kSlow = 2.0 / Double(slow + 1); kSignal = 2.0 / Double(signal + 1)
        first.reserveCapacity(slow)
    }
    mutating func update(_ x: Double) -> (macd: Double, signal: Double, hist: Double) {
        seen += 1
        if seen < slow { first.append(x); return (.nan, .nan, .nan) }
        if seen == slow {
            first.append(x)
            var s = 0.0
            for v in first { s += v }
            slowV = s / Double(slow)
            var f = 0.0
            for v in first[(slow - fast)...] { f += v }
            fastV = f / Double(fast)
            first = []
        } else {
            fastV = ((x - fastV) * kFast) + fastV
            slowV = ((x - slowV) * kSlow) + slowV
        }
        let m = fastV - slowV
        macdSeen += 1
        if macdSeen < signal { signalSeed += m; return (.nan, .nan, .nan) }
        if macdSeen == signal { signalSeed += m; signalV = signalSeed / Double(signal) }
        else { signalV = ((m - signalV) * kSignal) + signalV }
        return (m, signalV, m - signalV)
    }
    func snapshot(into writer: inout SnapshotWriter) {
        writer.appendCount(first.count)
        for value in first { writer.append(value) }
        writer.append(fastV)
        writer.append(slowV)
        writer.appendCount(seen)
        writer.append(signalSeed)
        writer.appendCount(macdSeen)
        writer.append(signalV)
    }
    mutating func restore(from reader: inout SnapshotReader) throws {
        let firstCount = try reader.readCount(minimumElementBytes: 8, limit: slow)
        var restored: [Double] = []
        restored.reserveCapacity(slow)
        for _ in 0..<firstCount { restored.append(try reader.readDouble()) }
        first = restored
        fastV = try reader.readDouble()
        slowV = try reader.readDouble()
        seen = try reader.readCount(minimumElementBytes: 0)
        signalSeed = try reader.readDouble()
        macdSeen = try reader.readCount(minimumElementBytes: 0)
        signalV = try reader.readDouble()
        guard seen >= slow || first.count == seen else {
            throw reader.error("MACD seed holds \(first.count) of \(seen) values")
        }
    }
}

/// TA-Lib BBANDS with SMA: middle = SMA; stddev from a running sum of squares minus the squared
/// SMA (TA-Lib's `stddev_using_precalc_ma`), 0 when that variance is ≤ 1e-14.
struct Bollinger {
    let n: Int
    let k: Double
    private var sma: SMA
    private var ring: Ring
    private var total2 = 0.0
    init(_ n: Int, _ k: Double) { self.n = n; self.k = k; sma = SMA(n); ring = Ring(n) }
    mutating func update(_ x: Double) -> (middle: Double, upper: Double, lower: Double) {
        let mid = sma.update(x)
        total2 += x * x
        _ = ring.push(x)
        guard ring.isFull else { return (.nan, .nan, .nan) }
        var mean2 = total2 / Double(n)
        let old = ring.back(n - 1)
        total2 -= old * old
        mean2 -= mid * mid
        let sd = mean2 < 0.00000000000001 ? 0.0 : sqrt(mean2)
        let d = sd * k
        return (mid, mid + d, mid - d)
    }
    func snapshot(into writer: inout SnapshotWriter) {
        sma.snapshot(into: &writer)
        ring.snapshot(into: &writer)
        writer.append(total2)
    }
    mutating func restore(from reader: inout SnapshotReader) throws {
        try sma.restore(from: &reader)
        ring = try Ring(from: &reader, capacity: n)
        total2 = try reader.readDouble()
    }
}

/// All indicators of one (symbol, timeframe) series.
struct IndicatorSet {
    var sma: SMA
    var ema: EMA
    var rsi: RSI
    var macd: MACD
    var bb: Bollinger
    init(_ c: PipelineConfig) {
        sma = SMA(c.smaPeriod); ema = EMA(c.emaPeriod); rsi = RSI(c.rsiPeriod)
        macd = MACD(fast: c.macdFast, slow: c.macdSlow, signal: c.macdSignal)
        bb = Bollinger(c.bollingerPeriod, c.bollingerStddev)
    }
    mutating func update(_ close: Double, into o: inout IndicatorOutput) {
        o.sma = sma.update(close)
        o.ema = ema.update(close)
        o.rsi = rsi.update(close)
        (o.macd, o.macdSignal, o.macdHist) = macd.update(close)
        (o.bbMiddle, o.bbUpper, o.bbLower) = bb.update(close)
    }
    /// Snapshot of every indicator's running state, in declaration order (docs/snapshot.md).
    func snapshot(into writer: inout SnapshotWriter) {
        sma.snapshot(into: &writer)
        ema.snapshot(into: &writer)
        rsi.snapshot(into: &writer)
        macd.snapshot(into: &writer)
        bb.snapshot(into: &writer)
    }
    mutating func restore(from reader: inout SnapshotReader) throws {
        try sma.restore(from: &reader)
        try ema.restore(from: &reader)
        try rsi.restore(from: &reader)
        try macd.restore(from: &reader)
        try bb.restore(from: &reader)
    }
}
