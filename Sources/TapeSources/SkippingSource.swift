import TapeCore

/// Skips the first `count` items of a source: how a replay continues from a checkpoint, whose input
/// position is the number of items already pulled from each input. While it skips, `skipping` is
/// called with true (the driver mutes the reject log: those records were reported by the run that
/// took the checkpoint), and with false once it passes items through.
public final class SkippingSource: EventSource {
    public let inner: any EventSource
    public var name: String { inner.name }
    public var formatName: String { inner.formatName }
    public var stats: SourceStats { inner.stats }
    public var layout: InputLayout? { inner.layout }
    /// Items still to skip.
    public private(set) var remaining: UInt64
    /// Items the input was short of the checkpoint's position (0 unless it ended while skipping: the
    /// input is not the one the checkpoint was taken on).
    public private(set) var missing: UInt64 = 0
    private let skipping: (Bool) -> Void

    public init(_ inner: any EventSource, count: UInt64, skipping: @escaping (Bool) -> Void = { _ in }) {
        self.inner = inner
        remaining = count
        self.skipping = skipping
    }

    public func next(_ event: inout MarketEvent) -> SourceStep {
        if remaining > 0 {
            skipping(true)
            defer { skipping(false) }
            while remaining > 0 {
                switch inner.next(&event) {
                case .event: remaining -= 1
                case .idle: return .idle
                case .end:
                    missing = remaining
                    remaining = 0
                    return .end
                }
            }
        }
        return inner.next(&event)
    }
}
