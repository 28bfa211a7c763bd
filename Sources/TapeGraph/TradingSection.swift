import TapeCore

/// The `trading:` section of the pipeline config (docs/backtesting.md): the portfolio, the simulated
/// execution and the strategies that trade on the graph's outputs. Kept here as validated *text* (the
/// graph knows nothing of orders): `TapeTrading` turns it into its typed settings and strategies, naming
/// the key of any bad value; the section is part of `canonicalText` (the config hash) when present, so a
/// config without it keeps its hash.
public struct TradingSection: Sendable, Equatable {
    /// Cash at the start.
    public var cash = 100_000.0
    /// Equity is marked at every bar close of this timeframe (nil: the graph's smallest).
    public var markTimeframe: Timeframe? = nil
    /// `execution:` keys and values as written (latency, fee_bps, fee_per_unit, slippage_bps, …).
    public var execution: [String: String] = [:]
    /// The strategies in file order: each runs with its own orders, all on one portfolio.
    public var strategies: [Entry] = []

    public struct Entry: Sendable, Equatable {
        /// A name unique in the config (orders are tagged with it); default: the type, then `type#2` …
        public var name: String
        /// The registered strategy (`model_threshold`, `rsi_reversion`, …, or `external`).
        public var type: String
        /// Symbols it trades (names or patterns with `*`); empty: every symbol.
        public var symbols: [String]
        /// Every other key, as written (the strategy validates them).
        public var parameters: [String: String]
        public init(name: String, type: String, symbols: [String] = [], parameters: [String: String] = [:]) {
            self.name = name; self.type = type; self.symbols = symbols; self.parameters = parameters
        }
    }

    public init() {}

    /// `trading.*` lines for the config hash, keys sorted.
    var canonicalLines: String {
        var lines = ["trading.cash=\(Numbers.format(cash))",
                     "trading.mark_timeframe=\(markTimeframe.map(\.description) ?? "smallest")"]
        lines += execution.keys.sorted().map { "trading.execution.\($0)=\(execution[$0]!)" }
        for (index, entry) in strategies.enumerated() {
            lines.append("trading.strategies[\(index)]=\(entry.name),\(entry.type),\(entry.symbols.joined(separator: "|"))")
            lines += entry.parameters.keys.sorted().map { "trading.strategies[\(index)].\($0)=\(entry.parameters[$0]!)" }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The most strategies in one config.
    public static let strategiesMax = 64
}
