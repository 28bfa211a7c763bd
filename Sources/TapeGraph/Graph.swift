import TapeCore
import TapeClock
#if canImport(Glibc)
import Glibc
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
    public var bars = 0
    public var lateTicks = 0
    public var badTicks = 0
}

/// One open window of one (symbol, timeframe).
struct Window {
    var start: Nanos
    var end: Nanos
    var open = 0.0, high = -Double.infinity, low = Double.infinity, close = 0.0
    var volume = 0.0
    var pv = 0.0          // Σ price·size (ticks) or Σ typical·volume (bars)
    var count = 0
    var volumeKnown = true
}

/// State of one (symbol, timeframe) series.
final class Series {
    let tf: Timeframe
    let tfIndex: Int
    var windows: [Window] = []           // open windows, by start
    var closedUpTo: Nanos = .min          // end of the last closed window
    var ind: IndicatorSet
    // session VWAP over closed windows of the current UTC day
    var sessionDay: Int64 = .min
    var sessionPV = 0.0, sessionV = 0.0
    // anomaly state
    var lastClose = Double.nan
    var returns: Ring
    var volumes: Ring
    init(tf: Timeframe, index: Int, config: PipelineConfig) {
        self.tf = tf; tfIndex = index
        ind = IndicatorSet(config)
        returns = Ring(max(config.priceSpike.window, 1))
        volumes = Ring(max(config.volumeSpike.window, 1))
        windows.reserveCapacity(4)
    }
}

/// State of one symbol.
final class SymbolState {
    let id: SymbolID
    var series: [Series]
    var maxEventTime: Nanos = .min
    // bad tick
    var lastPrice = Double.nan
    var lastPriceTime: Nanos = .min
    // quotes
    var mid = Double.nan
    var spread = Double.nan
    // stale feed
    var lastEventClock: Nanos = .min
    var staleTimerDue: Nanos = .min      // .min = no timer pending
    var staleReported = false
    init(id: SymbolID, config: PipelineConfig) {
        self.id = id
        series = config.timeframes.enumerated().map { Series(tf: $0.element, index: $0.offset, config: config) }
    }
}

/// The processing graph: per-symbol state machines for bars, indicators and anomaly rules.
/// Plain state, no I/O, no wall clock: time comes from `clock`, order from the caller.
/// The same object runs under `SimulatedClock` in replay and live: time comes from the stream.
///
/// Semantics (docs/graph.md): windows are UTC-aligned by event time; the watermark of a symbol is
/// max(largest event time seen, clock) − allowed lateness; a window closes when the watermark reaches
/// its end, checked on each event of the symbol and by a clock timer at `end + lateness`; a trade
/// below the watermark is late (side output `late_ticks`, never in a bar).
public final class Graph: TimerTarget {
    public let config: PipelineConfig
    public let clock: Clock
    public let symbols: SymbolTable
    public let sink: GraphSink
    public private(set) var counters = GraphCounters()

    private var states: [SymbolState?] = []
    private var nodes: [DownstreamNode] = []
    private let lateness: Nanos
    private let priceSpikeIndex: Int?
    private let volumeSpikeIndex: Int?
    private var finishing = false

    private static let kindWindow: UInt64 = 1 << 60
    private static let kindStale: UInt64 = 2 << 60

    public init(config: PipelineConfig, clock: Clock, symbols: SymbolTable, sink: GraphSink) {
        self.config = config; self.clock = clock; self.symbols = symbols; self.sink = sink
        lateness = config.allowedLateness
        priceSpikeIndex = config.priceSpike.enabled ? config.timeframes.firstIndex(of: config.priceSpike.timeframe) : nil
        volumeSpikeIndex = config.volumeSpike.enabled ? config.timeframes.firstIndex(of: config.volumeSpike.timeframe) : nil
    }

    /// Adds a downstream node (before the first event). Nodes run in the order added.
    public func addNode(_ node: DownstreamNode) { nodes.append(node) }

    // MARK: emission

    @inline(__always)
    private func emit(_ o: GraphOutput) {
        if nodes.isEmpty { sink.emit(o) } else { emit(o, from: 0) }
    }

    private func emit(_ o: GraphOutput, from: Int) {
        sink.emit(o)
        var i = from
        while i < nodes.count {
            let next = i + 1
            nodes[i].process(o) { child in self.emit(child, from: next) }
            i = next
        }
    }

    @inline(__always)
    private func state(_ id: SymbolID) -> SymbolState {
        let i = Int(id)
        if i < states.count, let s = states[i] { return s }
        if i >= states.count { states.append(contentsOf: repeatElement(nil, count: i + 1 - states.count)) }
        let s = SymbolState(id: id, config: config)
        states[i] = s
        return s
    }

    // MARK: events

    /// Delivers one event. The driver has already advanced the clock to `event.receiveTime`.
    public func onEvent(_ e: MarketEvent) {
        let s = state(e.symbol)
        let now = clock.now
        if config.staleFeed.enabled { touchStale(s, now: now) }
        switch e.kind {
        case .trade: onTrade(e, s, now: now)
        case .quote:
            counters.quotes += 1
            s.mid = (e.bid + e.ask) * 0.5
            s.spread = e.ask - e.bid
        case .bar: onBar(e, s, now: now)
        case .clockTick: preconditionFailure("clock ticks advance the clock; the engine never delivers them")
        }
    }

    @inline(__always)
    private func watermark(_ s: SymbolState, _ now: Nanos) -> Nanos {
        let m = s.maxEventTime > now ? s.maxEventTime : now
        return m == .min ? .min : m - lateness
    }

    private func onTrade(_ e: MarketEvent, _ s: SymbolState, now: Nanos) {
        counters.trades += 1
        var wm = watermark(s, now)
        closeDue(s, wm)
        if e.eventTime < wm {
            counters.lateTicks += 1
            emit(.lateTick(LateTickOutput(symbol: e.symbol, eventTime: e.eventTime, receiveTime: e.receiveTime,
                                          price: e.price, size: e.size, watermark: wm)))
            return
        }
        if config.badTick.enabled && !s.lastPrice.isNaN && e.eventTime - s.lastPriceTime <= config.badTick.interval {
            let dev = abs(e.price / s.lastPrice - 1) * 100
            if dev > config.badTick.maxDeviationPct {
                counters.badTicks += 1
                let thr = config.badTick.maxDeviationPct
                emit(.anomaly(AnomalyOutput(symbol: e.symbol, time: e.eventTime, rule: "bad_tick", value: dev,
                                            threshold: thr, severity: dev > 2 * thr ? .critical : .warning)))
                return
            }
        }
        s.lastPrice = e.price
        s.lastPriceTime = e.eventTime
        if e.eventTime > s.maxEventTime {
            s.maxEventTime = e.eventTime
            wm = watermark(s, now)
            closeDue(s, wm)
        }
        for ser in s.series {
            add(ser, s, start: floorTo(e.eventTime, ser.tf.nanos), price: e.price, high: e.price, low: e.price,
                volume: e.size, pv: e.price * e.size, n: 1, volumeKnown: true, completeAt: nil)
        }
    }

    /// A 1-minute bar (eventTime = bar end). It passes through as the 1m bar and builds larger ones;
    /// timeframes below one minute cannot be built from it and are skipped.
    private func onBar(_ e: MarketEvent, _ s: SymbolState, now: Nanos) {
        counters.bars += 1
        let barStart = e.eventTime - TimeUtil.nsPerMinute
        var wm = watermark(s, now)
        closeDue(s, wm)
        if barStart < wm && e.eventTime <= wm {
            counters.lateTicks += 1
            emit(.lateTick(LateTickOutput(symbol: e.symbol, eventTime: e.eventTime, receiveTime: e.receiveTime,
                                          price: e.price, size: e.size, watermark: wm)))
            return
        }
        if e.eventTime > s.maxEventTime {
            s.maxEventTime = e.eventTime
            wm = watermark(s, now)
        }
        let volKnown = !e.size.isNaN
        let typical = (e.high + e.low + e.price) / 3
        for ser in s.series where ser.tf.nanos >= TimeUtil.nsPerMinute && ser.tf.nanos % TimeUtil.nsPerMinute == 0 {
            add(ser, s, start: floorTo(barStart, ser.tf.nanos), price: e.open, high: e.high, low: e.low, close: e.price,
                volume: volKnown ? e.size : 0, pv: volKnown ? typical * e.size : 0, n: 1, volumeKnown: volKnown,
                completeAt: e.eventTime)
        }
        closeDue(s, wm)
    }

    @inline(__always)
    private func floorTo(_ t: Nanos, _ step: Nanos) -> Nanos {
        let r = t % step
        return r < 0 ? t - r - step : t - r
    }

    /// Adds a trade (or a 1-minute bar) to the series' window starting at `start`, opening it if
    /// needed. `completeAt`: for bar input, the input bar's end; a window whose end it reaches is
    /// complete and closes at once.
    @inline(__always)
    private func add(_ ser: Series, _ s: SymbolState, start: Nanos, price: Double, high: Double, low: Double,
                     close: Double? = nil, volume: Double, pv: Double, n: Int, volumeKnown: Bool, completeAt: Nanos?) {
        var idx = ser.windows.count - 1
        while idx >= 0 && ser.windows[idx].start > start { idx -= 1 }
        if idx < 0 || ser.windows[idx].start != start {
            if start < ser.closedUpTo { return }  // cannot happen: late events are filtered by the watermark
            let end = start + ser.tf.nanos
            ser.windows.insert(Window(start: start, end: end, open: price), at: idx + 1)
            idx += 1
            clock.schedule(at: end &+ lateness, target: self,
                           token: Graph.kindWindow | (UInt64(s.id) << 16) | UInt64(ser.tfIndex))
        }
        ser.windows[idx].update(high: high, low: low, close: close ?? price, volume: volume, pv: pv, n: n, volumeKnown: volumeKnown)
        if let c = completeAt, c >= ser.windows[idx].end, idx == 0 {
            closeWindows(ser, s, upTo: ser.windows[idx].end)
        }
    }

    /// Closes every window of the symbol whose end is at or before `wm`, per timeframe in order.
    @inline(__always)
    private func closeDue(_ s: SymbolState, _ wm: Nanos) {
        for ser in s.series where !ser.windows.isEmpty && ser.windows[0].end <= wm {
            closeWindows(ser, s, upTo: wm)
        }
    }

    private func closeWindows(_ ser: Series, _ s: SymbolState, upTo wm: Nanos) {
        while let w = ser.windows.first, w.end <= wm {
            ser.windows.removeFirst()
            closeWindow(w, ser, s)
        }
    }

    private func closeWindow(_ w: Window, _ ser: Series, _ s: SymbolState) {
        ser.closedUpTo = w.end
        let vol = w.volumeKnown ? w.volume : .nan
        let vwap = (w.volumeKnown && w.volume > 0) ? w.pv / w.volume : .nan
        emit(.bar(BarOutput(symbol: s.id, timeframe: ser.tf, start: w.start, end: w.end, open: w.open, high: w.high,
                            low: w.low, close: w.close, volume: vol, vwap: vwap, trades: w.count)))
        var io = IndicatorOutput(symbol: s.id, timeframe: ser.tf, end: w.end)
        ser.ind.update(w.close, into: &io)
        let day = w.start / 86_400_000_000_000
        if day != ser.sessionDay { ser.sessionDay = day; ser.sessionPV = 0; ser.sessionV = 0 }
        if w.volumeKnown { ser.sessionPV += w.pv; ser.sessionV += w.volume }
        io.sessionVwap = ser.sessionV > 0 ? ser.sessionPV / ser.sessionV : .nan
        emit(.indicators(io))
        // Anomaly rules on bar closes.
        if ser.tfIndex == priceSpikeIndex {
            if !ser.lastClose.isNaN && ser.lastClose > 0 && w.close > 0 {
                let r = log(w.close / ser.lastClose)
                if ser.returns.isFull {
                    var mean = 0.0
                    for i in 0..<ser.returns.count { mean += ser.returns.back(i) }
                    mean /= Double(ser.returns.count)
                    var v = 0.0
                    for i in 0..<ser.returns.count { let d = ser.returns.back(i) - mean; v += d * d }
                    let sd = (v / Double(ser.returns.count - 1)).squareRoot()
                    if sd > 0 {
                        let z = (r - mean) / sd
                        let thr = config.priceSpike.z
                        if abs(z) > thr {
                            emit(.anomaly(AnomalyOutput(symbol: s.id, time: w.end, rule: "price_spike", value: z,
                                                        threshold: thr, severity: abs(z) > 2 * thr ? .critical : .warning)))
                        }
                    }
                }
                _ = ser.returns.push(r)
            }
        }
        if ser.tfIndex == volumeSpikeIndex && w.volumeKnown {
            if ser.volumes.isFull {
                var vals = ser.volumes.values
                vals.sort()
                let n = vals.count
                let median = n % 2 == 1 ? vals[n / 2] : (vals[n / 2 - 1] + vals[n / 2]) / 2
                let thr = config.volumeSpike.k * median
                if median > 0 && w.volume > thr {
                    emit(.anomaly(AnomalyOutput(symbol: s.id, time: w.end, rule: "volume_spike", value: w.volume,
                                                threshold: thr, severity: w.volume > 2 * thr ? .critical : .warning)))
                }
            }
            _ = ser.volumes.push(w.volume)
        }
        ser.lastClose = w.close
    }

    // MARK: stale feed

    @inline(__always)
    private func touchStale(_ s: SymbolState, now: Nanos) {
        s.lastEventClock = now
        s.staleReported = false
        if s.staleTimerDue == .min {
            s.staleTimerDue = now + config.staleFeed.after
            clock.schedule(at: s.staleTimerDue, target: self, token: Graph.kindStale | (UInt64(s.id) << 16))
        }
    }

    // MARK: timers

    public func onTimer(token: UInt64, now: Nanos) {
        if finishing { return }   // after end of input no timer (stale feed, window) fires
        let id = SymbolID((token >> 16) & 0xFFFF_FFFF)
        guard Int(id) < states.count, let s = states[Int(id)] else { return }
        if token & (3 << 60) == Graph.kindWindow {
            closeDue(s, watermark(s, now))
        } else {
            // Lazy rescheduling: one pending timer per symbol, moved forward when events came meanwhile.
            s.staleTimerDue = .min
            let due = s.lastEventClock + config.staleFeed.after
            if due > now {
                s.staleTimerDue = due
                clock.schedule(at: due, target: self, token: Graph.kindStale | (UInt64(s.id) << 16))
            } else if !s.staleReported {
                s.staleReported = true
                let gap = Double(now - s.lastEventClock) / 1e9
                emit(.anomaly(AnomalyOutput(symbol: s.id, time: now, rule: "stale_feed", value: gap,
                                            threshold: Double(config.staleFeed.after) / 1e9, severity: .warning)))
            }
        }
    }

    /// End of input: every open window closes (as if the watermark went to +infinity), in symbol id
    /// then timeframe order. Stale-feed timers do not fire for it.
    public func finish() {
        finishing = true
        for case let s? in states {
            for ser in s.series { closeWindows(ser, s, upTo: .max) }
        }
    }
}

extension Window {
    @inline(__always)
    mutating func update(high h: Double, low l: Double, close c: Double, volume v: Double, pv p: Double, n: Int, volumeKnown: Bool) {
        if h > high { high = h }
        if l < low { low = l }
        close = c
        volume += v
        pv += p
        count += n
        if !volumeKnown { self.volumeKnown = false }
    }
}

/// Graph throughput on events already decoded in memory (for `make bench`).
public enum GraphBench {
    public static func eventsPerSecond(events: [MarketEvent], config: PipelineConfig, symbols: SymbolTable) -> Double {
        final class Count: GraphSink { var n = 0; func emit(_ o: GraphOutput) { n += 1 } }
        let clock = SimulatedClock()
        let sink = Count()
        let g = Graph(config: config, clock: clock, symbols: symbols, sink: sink)
        let t0 = WallClock.nanos()
        for e in events {
            clock.advance(to: e.receiveTime)
            g.onEvent(e)
        }
        g.finish()
        let dt = Double(WallClock.nanos() - t0) / 1e9
        return Double(events.count) / max(dt, 1e-9)
    }
}
