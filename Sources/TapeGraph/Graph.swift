import TapeCore
import TapeClock
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A node downstream of the built-in ones (e.g. the model's inference node). It sees every output the
/// graph emits, in emission order, and may emit outputs of its own; those go to the sink right after
/// the output that caused them (and are shown to later downstream nodes, not to itself).
public protocol DownstreamNode: AnyObject {
    func process(_ output: GraphOutput, emit: (GraphOutput) -> Void)
}

/// Counters for the run summary.
public struct GraphCounters: Sendable, Equatable {
    public var trades = 0
    public var quotes = 0
    public var barEvents = 0
    public var lateTicks = 0
    public var badTicks = 0
    public var barsEmitted = 0
    public var anomalies = 0
    public init() {}
}

/// TA-Lib-compatible O(1) indicator state on one close series.
@usableFromInline
struct IndicatorState {
    var ring: [Double]
    var n = 0                   // closes seen
    // SMA (TA-Lib running sum: add new, output, subtract trailing)
    var smaSum = 0.0
    // EMA
    var ema = Double.nan
    // RSI
    var prevClose = Double.nan
    var rsiGain = 0.0, rsiLoss = 0.0
    // MACD
    var fast = Double.nan, slow = Double.nan, macdSum = 0.0, signal = Double.nan, macdCount = 0
    // Bollinger
    var bbSum = 0.0, bbSum2 = 0.0
    // session VWAP
    var sessDay: Int64 = .min, sessPQ = 0.0, sessQ = 0.0
    init(cap: Int) { ring = Array(repeating: .nan, count: cap) }
    @inline(__always) func back(_ k: Int) -> Double { ring[(n - 1 - k) % ring.count] } // k=0: latest
}

@usableFromInline
struct Window {
    var open = 0.0, high = 0.0, low = 0.0, close = 0.0, vol = 0.0, pq = 0.0, count = 0
}

@usableFromInline
struct SlotState {
    var lo: Int64 = 1, hi: Int64 = 0   // open window indices [lo, hi]; empty when lo > hi
    var windows: [Window]
    var ind: IndicatorState
    // price spike
    var lastClose = Double.nan
    var rets: [Double], retN = 0, retSum = 0.0, retSum2 = 0.0
    // volume spike
    var vols: [Double], volN = 0
}

@usableFromInline
struct SymState {
    var maxEventTime: Nanos = .min
    var lastEventClock: Nanos = .min
    var staleScheduled = false
    var staleFired = false
    var lastTradePrice = Double.nan
    var lastTradeTime: Nanos = .min
    var mid = Double.nan, spread = Double.nan
}

/// The processing graph: per-symbol state machines for bars, indicators and anomaly rules.
/// Plain state, no I/O, no wall clock: time comes from `clock`, order from the caller.
/// The same object runs under `SimulatedClock` (replay) and `LiveClock` (live).
public final class Graph: TimerTarget {
    public let config: PipelineConfig
    public let clock: Clock
    public let symbols: SymbolTable
    public let sink: GraphSink
    public private(set) var counters = GraphCounters()

    private var nodes: [DownstreamNode] = []
    private let tfs: [Timeframe]
    private let tfNanos: [Nanos]
    private let nTF: Int
    private let ringSizes: [Int]
    private let lateness: Nanos
    private var syms: [SymState] = []
    private var slots: [SlotState] = []
    private let indCap: Int
    private var finished = false
    private var scratch: [Double]
    private let psTF: Int   // index of price-spike timeframe or -1
    private let vsTF: Int

    private static let kindWindow: UInt64 = 1 << 62
    private static let kindStale: UInt64 = 2 << 62

    public init(config: PipelineConfig, clock: Clock, symbols: SymbolTable, sink: GraphSink) {
        self.config = config; self.clock = clock; self.symbols = symbols; self.sink = sink
        tfs = config.timeframes.sorted()
        tfNanos = tfs.map { $0.nanos }
        nTF = tfs.count
        lateness = max(0, config.allowedLateness)
        ringSizes = tfNanos.map { Int(max(0, config.allowedLateness) / $0) + 3 }
        indCap = max(config.smaPeriod, config.emaPeriod, config.rsiPeriod + 1, config.macdSlow, config.macdFast, config.bbPeriod) + 1
        scratch = Array(repeating: 0, count: config.volumeSpikeWindow)
        psTF = config.priceSpikeEnabled ? (tfs.firstIndex(of: config.priceSpikeTimeframe) ?? -1) : -1
        vsTF = config.volumeSpikeEnabled ? (tfs.firstIndex(of: config.volumeSpikeTimeframe) ?? -1) : -1
    }

    /// Adds a downstream node (before the first event). Nodes run in the order added.
    public func addNode(_ node: DownstreamNode) { nodes.append(node) }

    // MARK: emission

    @inline(__always) private func emit(_ o: GraphOutput) {
        sink.emit(o)
        if !nodes.isEmpty { runNodes(o, from: 0) }
    }

    private func runNodes(_ o: GraphOutput, from: Int) {
        var i = from
        while i < nodes.count {
            let next = i + 1
            nodes[i].process(o) { out in
                self.sink.emit(out)
                self.runNodes(out, from: next)
            }
            i += 1
        }
    }

    // MARK: state

    @inline(__always) private func ensure(_ s: SymbolID) {
        let i = Int(s)
        if i < syms.count { return }
        grow(i)
    }

    private func grow(_ i: Int) {
        while syms.count <= i {
            syms.append(SymState())
            for k in 0..<nTF {
                slots.append(SlotState(windows: Array(repeating: Window(), count: ringSizes[k]),
                                       ind: IndicatorState(cap: indCap),
                                       rets: Array(repeating: 0, count: config.priceSpikeWindow),
                                       vols: Array(repeating: 0, count: config.volumeSpikeWindow)))
            }
        }
    }

    @inline(__always) private func watermark(_ s: Int) -> Nanos {
        let m = syms[s].maxEventTime
        let t = m > clock.now ? m : clock.now
        return t == .min ? .min : t - lateness
    }

    // MARK: events

    /// Delivers one event. The driver has already advanced the clock to `event.receiveTime`.
    public func onEvent(_ e: MarketEvent) {
        let s = Int(e.symbol)
        ensure(e.symbol)
        let now = clock.now
        syms[s].lastEventClock = now
        syms[s].staleFired = false
        if config.staleFeedEnabled && !syms[s].staleScheduled && !finished {
            syms[s].staleScheduled = true
            clock.schedule(at: now + config.staleFeedAfter, target: self, token: Graph.kindStale | UInt64(s))
        }
        switch e.kind {
        case .trade: onTrade(e, s)
        case .quote:
            counters.quotes += 1
            syms[s].mid = (e.bid + e.ask) * 0.5
            syms[s].spread = e.ask - e.bid
        case .bar: onBar(e, s)
        }
    }

    private func onTrade(_ e: MarketEvent, _ s: Int) {
        counters.trades += 1
        let wm0 = watermark(s)
        closeWindows(s, wm0)
        if e.eventTime < wm0 {
            counters.lateTicks += 1
            emit(.lateTick(LateTickOutput(symbol: e.symbol, eventTime: e.eventTime, receiveTime: e.receiveTime,
                                          price: e.price, size: e.size, watermark: wm0)))
            return
        }
        if config.badTickEnabled {
            let ref = syms[s].lastTradePrice
            if ref.isFinite && e.eventTime - syms[s].lastTradeTime <= config.badTickInterval {
                let dev = abs(e.price / ref - 1) * 100
                if dev > config.badTickMaxDeviationPct {
                    counters.badTicks += 1
                    counters.anomalies += 1
                    emit(.anomaly(AnomalyOutput(symbol: e.symbol, time: e.eventTime, rule: "bad_tick", value: dev,
                                                threshold: config.badTickMaxDeviationPct,
                                                severity: dev > 2 * config.badTickMaxDeviationPct ? .critical : .warning)))
                    return
                }
            }
            syms[s].lastTradePrice = e.price
            syms[s].lastTradeTime = e.eventTime
        }
        if e.eventTime > syms[s].maxEventTime { syms[s].maxEventTime = e.eventTime }
        let wm1 = watermark(s)
        if wm1 != wm0 { closeWindows(s, wm1) }
        for k in 0..<nTF {
            add(slot: s * nTF + k, tf: k, sym: s, t: e.eventTime, o: e.price, h: e.price, l: e.price, c: e.price,
                v: e.size, pq: e.price * e.size, n: 1)
        }
    }

    /// A finished 1-minute bar: eventTime = bar end. Its window key is its start (end - 1m); it is complete,
    /// so it advances the watermark to its end + lateness (the 1m window closes at once).
    private func onBar(_ e: MarketEvent, _ s: Int) {
        counters.barEvents += 1
        let start = e.eventTime - TimeUtil.nsPerMinute
        let wm0 = watermark(s)
        closeWindows(s, wm0)
        if e.eventTime <= wm0 {   // its 1m window [end-1m, end) has already closed
            counters.lateTicks += 1
            emit(.lateTick(LateTickOutput(symbol: e.symbol, eventTime: e.eventTime, receiveTime: e.receiveTime,
                                          price: e.price, size: e.size, watermark: wm0)))
            return
        }
        let tp = (e.high + e.low + e.price) / 3
        for k in 0..<nTF {
            add(slot: s * nTF + k, tf: k, sym: s, t: start, o: e.open, h: e.high, l: e.low, c: e.price,
                v: e.size, pq: tp * e.size, n: 1)
        }
        let m = e.eventTime + lateness
        if m > syms[s].maxEventTime { syms[s].maxEventTime = m }
        closeWindows(s, watermark(s))
    }

    @inline(__always)
    private func add(slot: Int, tf: Int, sym: Int, t: Nanos, o: Double, h: Double, l: Double, c: Double,
                     v: Double, pq: Double, n: Int) {
        let tfn = tfNanos[tf]
        let idx = t >= 0 ? t / tfn : (t - tfn + 1) / tfn
        let R = Int64(ringSizes[tf])
        slots.withUnsafeMutableBufferPointer { sp in
            if sp[slot].lo > sp[slot].hi {
                sp[slot].lo = idx; sp[slot].hi = idx
                sp[slot].windows[Int(idx % R)] = Window()
                clock.schedule(at: (idx + 1) * tfn + lateness, target: self, token: Graph.kindWindow | UInt64(sym))
            } else if idx > sp[slot].hi {
                var j = sp[slot].hi + 1
                if idx - j >= R { j = idx - R + 1 }
                while j <= idx { sp[slot].windows[Int(j % R)] = Window(); j += 1 }
                sp[slot].hi = idx
                clock.schedule(at: (idx + 1) * tfn + lateness, target: self, token: Graph.kindWindow | UInt64(sym))
            }
            if idx < sp[slot].lo { return } // cannot happen: such a trade is late
            sp[slot].windows.withUnsafeMutableBufferPointer { wp in
                let w = Int(idx % R)
                if wp[w].count == 0 {
                    wp[w].open = o; wp[w].high = h; wp[w].low = l; wp[w].close = c
                    wp[w].vol = v; wp[w].pq = pq; wp[w].count = n
                } else {
                    if h > wp[w].high { wp[w].high = h }
                    if l < wp[w].low { wp[w].low = l }
                    wp[w].close = c; wp[w].vol += v; wp[w].pq += pq; wp[w].count += n
                }
            }
        }
    }

    /// Closes every open window of symbol `s` whose end is at or before `wm`, in timeframe order.
    private func closeWindows(_ s: Int, _ wm: Nanos) {
        for k in 0..<nTF {
            let slot = s * nTF + k
            let tfn = tfNanos[k]
            while slots[slot].lo <= slots[slot].hi && (slots[slot].lo + 1) * tfn <= wm {
                let idx = slots[slot].lo
                slots[slot].lo += 1
                let w = slots[slot].windows[Int(idx % Int64(ringSizes[k]))]
                if w.count > 0 { closeBar(slot: slot, tf: k, sym: s, start: idx * tfn, w: w) }
            }
        }
    }

    private func closeBar(slot: Int, tf: Int, sym: Int, start: Nanos, w: Window) {
        let tfv = tfs[tf]
        let end = start + tfNanos[tf]
        let id = SymbolID(sym)
        let vwap = (w.vol.isNaN || w.vol == 0) ? Double.nan : w.pq / w.vol
        let bar = BarOutput(symbol: id, timeframe: tfv, start: start, end: end, open: w.open, high: w.high,
                            low: w.low, close: w.close, volume: w.vol, vwap: vwap, trades: w.count)
        counters.barsEmitted += 1
        emit(.bar(bar))
        var out = IndicatorOutput(symbol: id, timeframe: tfv, end: end)
        // session VWAP (UTC day of the bar start)
        let day = start >= 0 ? start / 86_400_000_000_000 : (start - 86_399_999_999_999) / 86_400_000_000_000
        slots.withUnsafeMutableBufferPointer { sp in
            if sp[slot].ind.sessDay != day { sp[slot].ind.sessDay = day; sp[slot].ind.sessPQ = 0; sp[slot].ind.sessQ = 0 }
            if !w.vol.isNaN { sp[slot].ind.sessPQ += w.pq; sp[slot].ind.sessQ += w.vol }
            out.sessionVwap = sp[slot].ind.sessQ > 0 ? sp[slot].ind.sessPQ / sp[slot].ind.sessQ : .nan
            Graph.updateIndicators(&sp[slot].ind, w.close, config, &out)
        }
        emit(.indicators(out))
        if tf == psTF { priceSpike(slot: slot, sym: id, end: end, close: w.close) }
        if tf == vsTF { volumeSpike(slot: slot, sym: id, end: end, vol: w.vol) }
    }

    @inline(__always)
    static func updateIndicators(_ st: inout IndicatorState, _ x: Double, _ c: PipelineConfig, _ out: inout IndicatorOutput) {
        let cap = st.ring.count
        st.ring[st.n % cap] = x
        st.n += 1
        let n = st.n
        // SMA
        do {
            let p = c.smaPeriod
            st.smaSum += x
            if n >= p {
                out.sma = st.smaSum / Double(p)
                st.smaSum -= st.back(p - 1)
            }
        }
        // EMA (seed = SMA of first p)
        do {
            let p = c.emaPeriod
            if n == p {
                var s = 0.0
                for k in stride(from: p - 1, through: 0, by: -1) { s += st.back(k) }
                st.ema = s / Double(p)
                out.ema = st.ema
            } else if n > p {
                st.ema = (x - st.ema) * (2.0 / Double(p + 1)) + st.ema
                out.ema = st.ema
            }
        }
        // RSI (TA-Lib Wilder)
        do {
            let p = c.rsiPeriod
            let pd = Double(p)
            if n >= 2 {
                let d = x - st.prevClose
                if n <= p + 1 {
                    if d < 0 { st.rsiLoss -= d } else { st.rsiGain += d }
                    if n == p + 1 {
                        st.rsiLoss /= pd; st.rsiGain /= pd
                        let t = st.rsiGain + st.rsiLoss
                        out.rsi = (t > -1e-14 && t < 1e-14) ? 0 : 100 * (st.rsiGain / t)
                    }
                } else {
                    st.rsiLoss *= pd - 1; st.rsiGain *= pd - 1
                    if d < 0 { st.rsiLoss -= d } else { st.rsiGain += d }
                    st.rsiLoss /= pd; st.rsiGain /= pd
                    let t = st.rsiGain + st.rsiLoss
                    out.rsi = (t > -1e-14 && t < 1e-14) ? 0 : 100 * (st.rsiGain / t)
                }
            }
            st.prevClose = x
        }
        // MACD (TA-Lib alignment: both EMAs start at index slow-1, each seeded by the SMA of its last p closes)
        do {
            var fp = c.macdFast, sp = c.macdSlow
            if sp < fp { swap(&fp, &sp) }
            if n == sp {
                var s = 0.0
                for k in stride(from: sp - 1, through: 0, by: -1) { s += st.back(k) }
                st.slow = s / Double(sp)
                var f = 0.0
                for k in stride(from: fp - 1, through: 0, by: -1) { f += st.back(k) }
                st.fast = f / Double(fp)
            } else if n > sp {
                st.fast = (x - st.fast) * (2.0 / Double(fp + 1)) + st.fast
                st.slow = (x - st.slow) * (2.0 / Double(sp + 1)) + st.slow
            }
            if n >= sp {
                let m = st.fast - st.slow
                st.macdCount += 1
                let sg = c.macdSignal
                if st.macdCount < sg { st.macdSum += m }
                else if st.macdCount == sg {
                    st.macdSum += m
                    st.signal = st.macdSum / Double(sg)
                } else {
                    st.signal = (m - st.signal) * (2.0 / Double(sg + 1)) + st.signal
                }
                if st.macdCount >= sg {
                    out.macd = m; out.macdSignal = st.signal; out.macdHist = m - st.signal
                }
            }
        }
        // Bollinger (TA-Lib BBANDS, SMA middle, population stddev from running sums)
        do {
            let p = c.bbPeriod
            st.bbSum += x
            st.bbSum2 += x * x
            if n >= p {
                let mid = st.bbSum / Double(p)
                var v = st.bbSum2 / Double(p)
                let old = st.back(p - 1)
                st.bbSum -= old
                st.bbSum2 -= old * old
                v -= mid * mid
                let sd = v < 1e-14 ? 0.0 : v.squareRoot()   // TA-Lib TA_IS_ZERO_OR_NEG (0.6: 1e-14)
                let w = sd * c.bbStddev
                out.bbMiddle = mid; out.bbUpper = mid + w; out.bbLower = mid - w
            }
        }
    }

    private func priceSpike(slot: Int, sym: SymbolID, end: Nanos, close: Double) {
        let prev = slots[slot].lastClose
        slots[slot].lastClose = close
        guard prev.isFinite, prev > 0, close > 0 else { return }
        let r: Double = log(close / prev)
        let W = config.priceSpikeWindow
        if slots[slot].retN >= W && W >= 2 {
            let mean = slots[slot].retSum / Double(W)
            var varr = (slots[slot].retSum2 - Double(W) * mean * mean) / Double(W - 1)
            if varr < 0 { varr = 0 }
            let sd = varr.squareRoot()
            if sd > 0 {
                let z = (r - mean) / sd
                let zt = config.priceSpikeZ
                if abs(z) > zt {
                    counters.anomalies += 1
                    emit(.anomaly(AnomalyOutput(symbol: sym, time: end, rule: "price_spike", value: z, threshold: zt,
                                                severity: abs(z) > 2 * zt ? .critical : .warning)))
                }
            }
        }
        let pos = slots[slot].retN % W
        if slots[slot].retN >= W {
            let o = slots[slot].rets[pos]
            slots[slot].retSum -= o; slots[slot].retSum2 -= o * o
        }
        slots[slot].rets[pos] = r
        slots[slot].retSum += r; slots[slot].retSum2 += r * r
        slots[slot].retN += 1
    }

    private func volumeSpike(slot: Int, sym: SymbolID, end: Nanos, vol: Double) {
        guard vol.isFinite else { return }
        let W = config.volumeSpikeWindow
        if slots[slot].volN >= W {
            for i in 0..<W { scratch[i] = slots[slot].vols[i] }
            // insertion sort (W is small; runs once per bar close)
            for i in 1..<max(W, 1) {
                let v = scratch[i]; var j = i - 1
                while j >= 0 && scratch[j] > v { scratch[j + 1] = scratch[j]; j -= 1 }
                scratch[j + 1] = v
            }
            let med = W % 2 == 1 ? scratch[W / 2] : (scratch[W / 2 - 1] + scratch[W / 2]) / 2
            let thr = config.volumeSpikeK * med
            if med > 0 && vol > thr {
                counters.anomalies += 1
                emit(.anomaly(AnomalyOutput(symbol: sym, time: end, rule: "volume_spike", value: vol, threshold: thr,
                                            severity: vol > 2 * thr ? .critical : .warning)))
            }
        }
        slots[slot].vols[slots[slot].volN % W] = vol
        slots[slot].volN += 1
    }

    /// End of input: closes every open window (as if the watermark went to +infinity). Stale-feed timers
    /// do not fire afterwards.
    public func finish() {
        finished = true
        for s in 0..<syms.count { closeWindows(s, .max) }
    }

    public func onTimer(token: UInt64, now: Nanos) {
        if finished { return }
        let s = Int(token & 0xFFFF_FFFF)
        if token & (3 << 62) == Graph.kindWindow {
            closeWindows(s, watermark(s))
        } else if token & (3 << 62) == Graph.kindStale {
            let due = syms[s].lastEventClock + config.staleFeedAfter
            if now >= due {
                if !syms[s].staleFired {
                    syms[s].staleFired = true
                    let gap = Double(now - syms[s].lastEventClock) / 1e9
                    let thr = Double(config.staleFeedAfter) / 1e9
                    counters.anomalies += 1
                    emit(.anomaly(AnomalyOutput(symbol: SymbolID(s), time: now, rule: "stale_feed", value: gap,
                                                threshold: thr, severity: .warning)))
                }
                syms[s].staleScheduled = false   // next event re-arms
            } else {
                clock.schedule(at: due, target: self, token: token)
            }
        }
    }
}

/// Null sink for benchmarks.
public final class CountingSink: GraphSink {
    public private(set) var count = 0
    public init() {}
    public func emit(_ output: GraphOutput) { count += 1 }
}

/// Throughput benchmark entry point (`make bench`).
public enum GraphBench {
    /// Runs `events` (receive-time ordered) through a full graph under a SimulatedClock; returns events/s.
    public static func eventsPerSecond(events: [MarketEvent], config: PipelineConfig, symbols: SymbolTable) -> Double {
        guard let first = events.first else { return 0 }
        let clock = SimulatedClock(start: first.receiveTime)
        let sink = CountingSink()
        let g = Graph(config: config, clock: clock, symbols: symbols, sink: sink)
        let t0 = LiveClock.wallNanos()
        for e in events { clock.advance(to: e.receiveTime); g.onEvent(e) }
        g.finish()
        let t1 = LiveClock.wallNanos()
        return Double(events.count) / (Double(t1 - t0) / 1e9)
    }
}
