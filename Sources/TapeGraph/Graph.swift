import TapeCore
import TapeClock
#if canImport(Glibc)
import Glibc
#endif

/// A node downstream of the built-in ones (e.g. the model's inference node). It sees every output the
/// graph emits, in emission order, and may emit outputs of its own; those go to the sink right after
/// the output that caused them (and are shown to later downstream nodes, not to itself).
///
/// Snapshot contract (docs/snapshot.md): `snapshot(into:)` writes all the state that later outputs
/// depend on; `restore(from:)`, called on a freshly made node of the same type and settings, reads
/// exactly what `snapshot` wrote (the graph checks that every byte was read) and throws
/// `SnapshotError` on bad bytes, never traps. A node that holds no state writes nothing and reads nothing.
///
/// A node that also needs the input events (the trading node: fills against quotes and trades) says so
/// with `wantsEvents`; it then sees every event before the graph processes it (so what it decides on an
/// output caused by an event acts on the next event, never on the one that caused it), and `finish` at the
/// end of input, after the last windows closed. What it emits there goes to the sink and to later nodes.
public protocol DownstreamNode: AnyObject {
    func process(_ output: GraphOutput, emit: (GraphOutput) -> Void)
    func snapshot(into writer: inout SnapshotWriter)
    func restore(from reader: inout SnapshotReader) throws
    var wantsEvents: Bool { get }
    /// Called by `addNode`: the graph's clock (stream time, e.g. for outputs of timers) and symbol table.
    func attach(clock: SimulatedClock, symbols: SymbolTable)
    func onEvent(_ event: MarketEvent, emit: (GraphOutput) -> Void)
    func finish(emit: (GraphOutput) -> Void)
    /// A section of the run's summary.json (key, value) after the run, or nil (the trading node: its metrics).
    var summarySection: (key: String, value: JSONValue)? { get }
    /// Whether it emits predictions (the run folder then has predictions.csv, even empty).
    var emitsPredictions: Bool { get }
}

extension DownstreamNode {
    public var wantsEvents: Bool { false }
    public func attach(clock: SimulatedClock, symbols: SymbolTable) {}
    public func onEvent(_ event: MarketEvent, emit: (GraphOutput) -> Void) {}
    public func finish(emit: (GraphOutput) -> Void) {}
    public var summarySection: (key: String, value: JSONValue)? { nil }
    public var emitsPredictions: Bool { false }
}

/// Counters for the run summary.
public struct GraphCounters: Sendable, Equatable {
    public var trades = 0
    public var quotes = 0
    public var bars = 0
    public var lateTicks = 0
    public var badTicks = 0
    /// Events (trades or 1-minute bars) that reached a window of a timeframe that had already closed
    /// and so were left out of that timeframe's bars. Reachable with bar input: a complete bar closes
    /// its window at once, before the watermark passes it, so a repeated bar (same end) is not late
    /// yet finds its 1m window closed. Counted once per event.
    public var droppedEvents = 0
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
    /// Most decimal places of a volume added (`Numbers.decimalPlaces`): the bar's volume is the sum
    /// rounded to it, so that sizes 0.1 and 0.2 make a volume of 0.3, not 0.30000000000000004.
    var volumeDecimals = 0
}

/// Timers of the graph: the token's top bits say whose (docs/snapshot.md: tokens are in snapshots).
enum TimerKind {
    static let mask: UInt64 = 3 << 60
    /// A window's close: low 16 bits = timeframe index.
    static let window: UInt64 = 1 << 60
    /// A rule's timer: low 16 bits = rule index.
    static let rule: UInt64 = 2 << 60

    static func token(_ kind: UInt64, symbol: SymbolID, index: Int) -> UInt64 {
        assert(index >= 0 && index <= 0xFFFF)
        return kind | (UInt64(symbol) << 16) | UInt64(index)
    }
}

/// State of one (symbol, timeframe) series: a value held in its symbol's `series` array and changed in
/// place (`s.series[t]`), so walking a symbol's timeframes retains nothing.
struct Series {
    let tf: Timeframe
    let tfIndex: Int
    var windows: [Window] = []           // open windows, by start
    var closedUpTo: Nanos = .min          // end of the last closed window
    var ind: IndicatorSet
    // session VWAP over closed windows of the current UTC day
    var sessionDay: Int64 = .min
    var sessionPV = 0.0, sessionV = 0.0
    init(tf: Timeframe, index: Int, config: PipelineConfig) {
        self.tf = tf; tfIndex = index
        ind = IndicatorSet(config)
        windows.reserveCapacity(4)
    }

    /// Adds a closed window to the session (UTC day) VWAP; returns the session VWAP (NaN without volume).
    mutating func addToSession(_ w: Window) -> Double {
        let day = w.start / 86_400_000_000_000
        if day != sessionDay { sessionDay = day; sessionPV = 0; sessionV = 0 }
        if w.volumeKnown { sessionPV += w.pv; sessionV += w.volume }
        return sessionV > 0 ? sessionPV / sessionV : .nan
    }
}

/// State of one symbol.
final class SymbolState {
    let id: SymbolID
    var series: [Series]
    var maxEventTime: Nanos = .min
    // quotes
    var mid = Double.nan
    var spread = Double.nan
    init(id: SymbolID, config: PipelineConfig) {
        self.id = id
        series = config.timeframes.enumerated().map { Series(tf: $0.element, index: $0.offset, config: config) }
    }
}

/// The processing graph: per-symbol state machines for bars, indicators and anomaly rules.
/// Plain state, no I/O, no wall clock: time comes from `clock`, a `SimulatedClock` advanced by the
/// stream (event receive times and clock ticks), order from the caller. Anomaly rules are nodes
/// (`AnomalyRule`, Rules/), made from the config by `RuleRegistry`.
///
/// Semantics (docs/graph.md): windows are UTC-aligned by event time; the watermark of a symbol is
/// max(largest event time seen, clock) − allowed lateness; a window closes when the watermark reaches
/// its end, checked on each event of the symbol and by a clock timer at `end + lateness`; a trade
/// below the watermark is late (side output `late_ticks`, never in a bar).
public final class Graph: TimerTarget {
    public let config: PipelineConfig
    public let clock: SimulatedClock
    public let symbols: SymbolTable
    public let sink: GraphSink
    public internal(set) var counters = GraphCounters()
    /// Bars closed by this run, per configured timeframe (in `config.timeframes` order). Not part of a
    /// snapshot: it counts this process's work, for the summary and its warnings.
    public private(set) var barsClosedByTimeframe: [Int] = []

    var states: [SymbolState?] = []
    var nodes: [DownstreamNode] = []
    let lateness: Nanos
    var finishing = false

    /// The anomaly rules in registration order.
    let rules: [AnomalyRule]
    /// Indices into `rules`: those listening to every event, to trades, and to bar closes per timeframe index.
    private let eventRules: [Int]
    private let tradeRules: [Int]
    private let barRules: [[Int]]
    /// The most rules a graph runs (the rule index lives in 16 bits of a timer token).
    static let ruleCountMax = 1 << 16

    public init(config: PipelineConfig, clock: SimulatedClock, symbols: SymbolTable, sink: GraphSink) {
        self.config = config; self.clock = clock; self.symbols = symbols; self.sink = sink
        lateness = config.allowedLateness
        let rules = RuleRegistry.rules(for: config)
        precondition(rules.count < Graph.ruleCountMax)
        self.rules = rules
        var barRules: [[Int]] = Array(repeating: [], count: config.timeframes.count)
        for (index, rule) in rules.enumerated() {
            // A rule on a timeframe that is not configured never fires (config validation refuses it).
            if rule.hooks.contains(.barCloses), let timeframe = rule.timeframe,
               let timeframeIndex = config.timeframes.firstIndex(of: timeframe) {
                barRules[timeframeIndex].append(index)
            }
        }
        self.barRules = barRules
        eventRules = rules.indices.filter { rules[$0].hooks.contains(.events) }
        tradeRules = rules.indices.filter { rules[$0].hooks.contains(.trades) }
    }

    @inline(__always)
    private func context(_ ruleIndex: Int) -> RuleContext { RuleContext(graph: self, ruleIndex: ruleIndex) }

    /// Adds a downstream node (before the first event). Nodes run in the order added.
    public func addNode(_ node: DownstreamNode) {
        node.attach(clock: clock, symbols: symbols)
        if node.wantsEvents { eventNodes.append(nodes.count) }
        nodes.append(node)
    }
    /// Indices into `nodes` of those that see the input events.
    private var eventNodes: [Int] = []

    // MARK: emission

    @inline(__always)
    func emit(_ o: GraphOutput) {
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
        // Parsers accept only times in TimeUtil's range, which keeps `end + lateness` and `floorTo` in Int64.
        assert(TimeUtil.isAccepted(e.eventTime) && TimeUtil.isAccepted(e.receiveTime),
               "event time \(e.eventTime) / receive time \(e.receiveTime) outside \(TimeUtil.acceptedRangeText)")
        let s = state(e.symbol)
        let now = clock.now
        for index in eventRules { rules[index].onEvent(e, now: now, context: context(index)) }
        for index in eventNodes { nodes[index].onEvent(e) { child in emit(child, from: index + 1) } }
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
        for index in tradeRules where !rules[index].acceptTrade(e, context: context(index)) {
            counters.badTicks += 1
            return
        }
        if e.eventTime > s.maxEventTime {
            s.maxEventTime = e.eventTime
            wm = watermark(s, now)
            closeDue(s, wm)
        }
        var dropped = false
        let volumeDecimals = e.size.isFinite ? Numbers.decimalPlaces(e.size) : 0
        for t in 0..<s.series.count {
            let added = add(s, t, start: floorTo(e.eventTime, s.series[t].tf.nanos), price: e.price, high: e.price,
                            low: e.price, volume: e.size, pv: e.price * e.size, n: 1, volumeKnown: true,
                            volumeDecimals: volumeDecimals, completeAt: nil)
            if !added { dropped = true }
        }
        // Unreachable for trades alone (windows close at the watermark and this trade is not late); reachable
        // when bar input on the same symbol closed a window early. Counted, never silent.
        if dropped { counters.droppedEvents += 1 }
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
        let volumeDecimals = e.size.isFinite ? Numbers.decimalPlaces(e.size) : 0
        let typical = (e.high + e.low + e.price) / 3
        var dropped = false
        for t in 0..<s.series.count {
            let nanos = s.series[t].tf.nanos
            guard nanos >= TimeUtil.nsPerMinute && nanos % TimeUtil.nsPerMinute == 0 else { continue }
            let added = add(s, t, start: floorTo(barStart, nanos), price: e.open, high: e.high, low: e.low,
                            close: e.price, volume: volKnown ? e.size : 0, pv: volKnown ? typical * e.size : 0, n: 1,
                            volumeKnown: volKnown, volumeDecimals: volumeDecimals, completeAt: e.eventTime)
            if !added { dropped = true }
        }
        if dropped { counters.droppedEvents += 1 }
        closeDue(s, wm)
    }

    @inline(__always)
    private func floorTo(_ t: Nanos, _ step: Nanos) -> Nanos {
        let r = t % step
        return r < 0 ? t - r - step : t - r
    }

    /// Adds a trade (or a 1-minute bar) to the series' window starting at `start`, opening it if
    /// needed. `completeAt`: for bar input, the input bar's end; a window whose end it reaches is
    /// complete and closes at once. Returns false, adding nothing, when that window already closed
    /// (the caller counts it in `droppedEvents`).
    @inline(__always)
    private func add(_ s: SymbolState, _ t: Int, start: Nanos, price: Double, high: Double, low: Double,
                     close: Double? = nil, volume: Double, pv: Double, n: Int, volumeKnown: Bool,
                     volumeDecimals: Int, completeAt: Nanos?) -> Bool {
        var idx = s.series[t].windows.count - 1
        while idx >= 0 && s.series[t].windows[idx].start > start { idx -= 1 }
        if idx < 0 || s.series[t].windows[idx].start != start {
            if start < s.series[t].closedUpTo { return false }
            let end = start + s.series[t].tf.nanos
            s.series[t].windows.insert(Window(start: start, end: end, open: price), at: idx + 1)
            idx += 1
            clock.schedule(at: end &+ lateness, target: self,
                           token: TimerKind.token(TimerKind.window, symbol: s.id, index: t))
        }
        s.series[t].windows[idx].update(high: high, low: low, close: close ?? price, volume: volume, pv: pv, n: n,
                                        volumeKnown: volumeKnown, volumeDecimals: volumeDecimals)
        if let c = completeAt, idx == 0, c >= s.series[t].windows[0].end {
            closeWindows(s, t, upTo: s.series[t].windows[0].end)
        }
        return true
    }

    /// Closes every window of the symbol whose end is at or before `wm`, per timeframe in order.
    @inline(__always)
    private func closeDue(_ s: SymbolState, _ wm: Nanos) {
        for t in 0..<s.series.count where !s.series[t].windows.isEmpty && s.series[t].windows[0].end <= wm {
            closeWindows(s, t, upTo: wm)
        }
    }

    private func closeWindows(_ s: SymbolState, _ t: Int, upTo wm: Nanos) {
        while let w = s.series[t].windows.first, w.end <= wm {
            s.series[t].windows.removeFirst()
            closeWindow(w, s, t)
        }
    }

    private func closeWindow(_ w: Window, _ s: SymbolState, _ t: Int) {
        assert(s.series[t].tfIndex == t)
        s.series[t].closedUpTo = w.end
        let timeframe = s.series[t].tf
        // The sum without float noise (the decimal places of its terms); VWAP divides by the sum as added.
        let vol = w.volumeKnown ? Numbers.rounded(w.volume, decimalPlaces: w.volumeDecimals) : .nan
        let vwap = (w.volumeKnown && w.volume > 0) ? w.pv / w.volume : .nan
        let bar = BarOutput(symbol: s.id, timeframe: timeframe, start: w.start, end: w.end, open: w.open, high: w.high,
                            low: w.low, close: w.close, volume: vol, vwap: vwap, trades: w.count)
        if t >= barsClosedByTimeframe.count {
            barsClosedByTimeframe.append(contentsOf: repeatElement(0, count: t + 1 - barsClosedByTimeframe.count))
        }
        barsClosedByTimeframe[t] += 1
        emit(.bar(bar))
        var io = IndicatorOutput(symbol: s.id, timeframe: timeframe, end: w.end)
        s.series[t].ind.update(w.close, into: &io)
        io.sessionVwap = s.series[t].addToSession(w)
        emit(.indicators(io))
        // Anomaly rules on bar closes of this timeframe, in registration order.
        for index in barRules[t] {
            rules[index].onBarClose(bar, volumeKnown: w.volumeKnown, context: context(index))
        }
    }

    func scheduleRuleTimer(at due: Nanos, symbol: SymbolID, rule: Int) {
        clock.schedule(at: due, target: self, token: TimerKind.token(TimerKind.rule, symbol: symbol, index: rule))
    }

    // MARK: timers

    public func onTimer(token: UInt64, now: Nanos) {
        if finishing { return }   // after end of input no timer (stale feed, window) fires
        let id = SymbolID((token >> 16) & 0xFFFF_FFFF)
        let index = Int(token & 0xFFFF)
        switch token & TimerKind.mask {
        case TimerKind.window:
            guard Int(id) < states.count, let s = states[Int(id)] else {
                preconditionFailure("a window timer belongs to a symbol with state")
            }
            closeDue(s, watermark(s, now))
        case TimerKind.rule:
            precondition(index < rules.count && rules[index].hooks.contains(.timers), "a rule timer names its rule")
            rules[index].onTimer(symbol: id, now: now, context: context(index))
        default:
            preconditionFailure("unknown timer token \(token)")
        }
    }

    /// End of input: every open window closes (as if the watermark went to +infinity), in symbol *name*
    /// then timeframe order. Stale-feed timers do not fire for it. Name order, not symbol id order: ids
    /// follow the order in which readers interned names, which differs between a live session (arrival
    /// order) and the replay of its recording (merge priming reads each file's first line), while names
    /// do not — so the last outputs of a run are the same whoever drove the graph.
    public func finish() {
        finishing = true
        let open = states.compactMap { $0 }.sorted { symbols.name($0.id) < symbols.name($1.id) }
        for state in open {
            for timeframe in 0..<state.series.count { closeWindows(state, timeframe, upTo: .max) }
        }
        for index in nodes.indices { nodes[index].finish { child in emit(child, from: index + 1) } }
    }
}

extension Window {
    @inline(__always)
    mutating func update(high h: Double, low l: Double, close c: Double, volume v: Double, pv p: Double, n: Int, volumeKnown: Bool,
                         volumeDecimals: Int) {
        if h > high { high = h }
        if l < low { low = l }
        close = c
        volume += v
        pv += p
        count += n
        if !volumeKnown { self.volumeKnown = false }
        if volumeDecimals > self.volumeDecimals { self.volumeDecimals = volumeDecimals }
    }
}
