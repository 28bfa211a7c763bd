import TapeCore
import TapeSources

/// What a warm-up (`tape live --warmup FILES`) delivered, so that the live stream that follows drops what
/// the warm-up already covered — nothing counted twice at the seam, nothing dropped that it did not cover.
///
/// Per (symbol, kind): the largest sequence id and the latest event time seen in the warm-up. A live
/// event is covered when it has a sequence id and the warm-up saw ids for its symbol and kind, and its id
/// is at most the largest (Binance trade and update ids, Polygon sequence numbers); otherwise when its
/// event time is at or before the warm-up's latest for its symbol and kind (bars from REST polls: a bar
/// ending at or before the last warm-up bar). Receive times cannot tell: live stamps are always later.
public final class WarmupOverlap {
    private var largestSequence: [Int: Int64] = [:]
    private var latestEventTime: [Int: Nanos] = [:]
    public private(set) var observed = 0

    public init() {}

    @inline(__always)
    private static func key(_ event: MarketEvent) -> Int { Int(event.symbol) &* 4 &+ Int(event.kind.rawValue) }

    /// Notes one warm-up event (clock ticks are ignored).
    public func observe(_ event: MarketEvent) {
        guard event.kind != .clockTick else { return }
        observed += 1
        let key = Self.key(event)
        if event.sequence > 0 { largestSequence[key] = max(largestSequence[key] ?? .min, event.sequence) }
        latestEventTime[key] = max(latestEventTime[key] ?? .min, event.eventTime)
    }

    /// True if the warm-up already delivered this live event.
    public func covers(_ event: MarketEvent) -> Bool {
        guard event.kind != .clockTick else { return false }
        let key = Self.key(event)
        if event.sequence > 0, let largest = largestSequence[key] { return event.sequence <= largest }
        guard let latest = latestEventTime[key] else { return false }
        return event.eventTime <= latest
    }
}

/// Passes a source through, telling `WarmupOverlap` about every item (the warm-up run's source).
public final class ObservedSource: EventSource {
    private let inner: EventSource
    private let overlap: WarmupOverlap
    public init(_ inner: EventSource, overlap: WarmupOverlap) {
        self.inner = inner
        self.overlap = overlap
    }
    public var name: String { inner.name }
    public var formatName: String { inner.formatName }
    public var stats: SourceStats { inner.stats }
    public func next(_ event: inout MarketEvent) -> SourceStep {
        let step = inner.next(&event)
        if step == .event { overlap.observe(event) }
        return step
    }
}
