import TapeCore

/// `stale_feed`: a symbol's feed silent for `after` of open market. Fired by a timer with no further
/// input, once per gap; value = the silence counted in seconds, always a warning. One timer
/// outstanding per symbol: when it fires early (events came meanwhile) it reschedules itself at the
/// next deadline (no timer per event).
///
/// Trading sessions (`sessions:` in the config, Sessions/): each symbol follows a calendar, found by
/// its name the first time its timer fires. The silence counts from the last event or from the open
/// of the session, whichever is later, and the rule fires only while the market is open, so a
/// weekend or a daily break is no anomaly and a feed silent across a weekend is not stale on
/// Sunday's first minute. With the default sessions (every symbol on `crypto`, always open) the
/// deadline is last event + after, as it always was.
final class StaleFeedRule: AnomalyRule {
    let name = "stale_feed"
    let hooks: RuleHooks = [.events, .timers]
    private let after: Nanos
    /// Every symbol is on `crypto` (the default sessions): no calendar is looked up.
    private let alwaysOpen: Bool
    private var calendars: SessionCalendars

    struct SymbolState {
        var lastEventClock: Nanos = .min
        /// Due time of the pending timer; `.min` = none pending.
        var timerDue: Nanos = .min
        var reported = false
    }
    private var states: [SymbolState] = []

    init(_ config: PipelineConfig.StaleFeed, sessions: PipelineConfig.Sessions) {
        precondition(config.after >= 0, "stale_feed.after is a duration, never negative")
        after = config.after
        alwaysOpen = sessions.kindsInUse == [.crypto]
        calendars = SessionCalendars(sessions)
    }

    func onEvent(_ event: MarketEvent, now: Nanos, context: RuleContext) {
        let index = Int(event.symbol)
        if index >= states.count { growSlots(&states, to: event.symbol) { SymbolState() } }
        // One read and one write of the slot (a plain value): no access held across a call.
        var state = states[index]
        state.lastEventClock = now
        state.reported = false
        // now + after is the earliest deadline under any calendar; the timer finds the real one.
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
        let last = states[index].lastEventClock
        let deadline: (due: Nanos, countedFrom: Nanos)?
        if alwaysOpen {
            deadline = (last + after, last)
        } else {
            let calendar = calendars.calendar(for: symbol) { context.symbolName(symbol) }
            deadline = calendar.silenceDeadline(since: last, duration: after)
        }
        // No open stretch long enough within reach: nothing to wait for; the next event schedules again.
        guard let deadline else { return }
        // The deadline never moves back: it grows with the last event, and a timer fires no later than it.
        assert(deadline.due >= now, "a stale-feed timer fires at or before its deadline")
        if deadline.due > now {
            states[index].timerDue = deadline.due
            context.scheduleTimer(at: deadline.due, symbol: symbol)
        } else if !states[index].reported {
            states[index].reported = true
            let gapSeconds = Double(now - deadline.countedFrom) / 1e9
            context.emit(AnomalyOutput(symbol: symbol, time: now, rule: name, value: gapSeconds,
                                       threshold: Double(after) / 1e9, severity: .warning))
        }
    }

    // The calendars are not state: they follow from the config (its hash is in the snapshot) and the
    // symbol names (in the snapshot's table), so the layout is what it was before sessions existed.
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
