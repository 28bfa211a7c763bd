import TapeCore

/// `stale_feed`: no event for a symbol for more than `after` of clock time. Fired by a timer with no
/// further input, once per gap; time = last event clock time + after, value = gap in seconds, always
/// a warning. One timer outstanding per symbol: when it fires early (events came meanwhile) it
/// reschedules itself at last event + after (no timer per event).
final class StaleFeedRule: AnomalyRule {
    let name = "stale_feed"
    let hooks: RuleHooks = [.events, .timers]
    private let after: Nanos

    struct SymbolState {
        var lastEventClock: Nanos = .min
        /// Due time of the pending timer; `.min` = none pending.
        var timerDue: Nanos = .min
        var reported = false
    }
    private var states: [SymbolState] = []

    init(_ config: PipelineConfig.StaleFeed) {
        precondition(config.after >= 0, "stale_feed.after is a duration, never negative")
        after = config.after
    }

    func onEvent(_ event: MarketEvent, now: Nanos, context: RuleContext) {
        let index = Int(event.symbol)
        if index >= states.count { growSlots(&states, to: event.symbol) { SymbolState() } }
        // One read and one write of the slot (a plain value): no access held across a call.
        var state = states[index]
        state.lastEventClock = now
        state.reported = false
        let schedule = state.timerDue == .min
        if schedule { state.timerDue = now + after }
        states[index] = state
        if schedule { context.scheduleTimer(at: state.timerDue, symbol: event.symbol) }
    }

    func onTimer(symbol: SymbolID, now: Nanos, context: RuleContext) {
        let index = Int(symbol)
        precondition(index < states.count && states[index].timerDue != .min,
                     "a stale-feed timer has its symbol's state")
        states[index].timerDue = .min
        let due = states[index].lastEventClock + after
        if due > now {
            states[index].timerDue = due
            context.scheduleTimer(at: due, symbol: symbol)
        } else if !states[index].reported {
            states[index].reported = true
            let gapSeconds = Double(now - states[index].lastEventClock) / 1e9
            context.emit(AnomalyOutput(symbol: symbol, time: now, rule: name, value: gapSeconds,
                                       threshold: Double(after) / 1e9, severity: .warning))
        }
    }

    func snapshot(into writer: inout SnapshotWriter) {
        writer.appendCount(states.count)
        for state in states {
            writer.append(state.lastEventClock)
            writer.append(state.timerDue)
            writer.append(state.reported)
        }
    }

    func restore(from reader: inout SnapshotReader) throws {
        let count = try reader.readCount(minimumElementBytes: 17, limit: snapshotSymbolsMax)
        var restored: [SymbolState] = []
        restored.reserveCapacity(count)
        for _ in 0..<count {
            restored.append(SymbolState(lastEventClock: try reader.readInt64(), timerDue: try reader.readInt64(),
                                        reported: try reader.readBool()))
        }
        states = restored
    }
}
