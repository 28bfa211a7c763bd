import TapeCore
import TapeGraph

/// Per-symbol state of a strategy: a dense array indexed by `SymbolID`, grown on demand (no dictionary on the
/// hot path), with its snapshot encoding.
public struct SymbolSlots<Value> {
    public private(set) var values: [Value]
    public let initial: Value

    public init(initial: Value) {
        self.initial = initial
        self.values = []
    }

    public subscript(symbol: SymbolID) -> Value {
        get { Int(symbol) < values.count ? values[Int(symbol)] : initial }
        set {
            let index = Int(symbol)
            if index >= values.count { values.append(contentsOf: repeatElement(initial, count: index + 1 - values.count)) }
            values[index] = newValue
        }
    }

    public mutating func replaceAll(_ restored: [Value]) { values = restored }
}

extension SymbolSlots where Value == Double {
    public func snapshot(into writer: inout SnapshotWriter) {
        writer.appendCount(values.count)
        for value in values { writer.append(value) }
    }

    public mutating func restore(from reader: inout SnapshotReader) throws {
        let count = try reader.readCount(minimumElementBytes: 8, limit: Int(UInt32.max))
        var restored: [Double] = []
        restored.reserveCapacity(count)
        for _ in 0..<count { restored.append(try reader.readDouble()) }
        values = restored
    }
}

/// The settings every built-in strategy shares: the timeframe it listens to, the position size, shorts.
public struct CommonStrategySettings: Sendable, Equatable {
    public var timeframe: Timeframe
    /// Units held when long (and when short, negated).
    public var quantity: Double
    /// When false a short signal goes flat instead of short.
    public var allowShort: Bool

    public init(timeframe: Timeframe = Timeframe(seconds: 60), quantity: Double = 1, allowShort: Bool) {
        precondition(quantity > 0 && quantity.isFinite, "a strategy trades a positive quantity")
        self.timeframe = timeframe
        self.quantity = quantity
        self.allowShort = allowShort
    }

    /// Reads `timeframe`, `quantity`, `allow_short` (defaults: 1m, 1, `allowShortDefault`).
    public init(_ parameters: inout StrategyParameters, allowShortDefault: Bool) throws {
        self.timeframe = try parameters.timeframe("timeframe", default: Timeframe(seconds: 60))
        self.quantity = try parameters.positiveDouble("quantity", default: 1)
        self.allowShort = try parameters.bool("allow_short", default: allowShortDefault)
    }

    /// The position a short signal asks for: −quantity, or flat without shorts.
    public var shortTarget: Double { allowShort ? -quantity : 0 }
}
