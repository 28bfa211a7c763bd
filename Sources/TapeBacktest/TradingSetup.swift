import TapeCore
import TapeGraph
import TapeTrading

/// Builds the trading node from the pipeline config's `trading:` section (docs/backtesting.md): the
/// execution settings, the account and each strategy — a built-in one from `StrategyRegistry`, or
/// `type: external` (a program on the line protocol, `ExternalStrategy`). Every bad key is an error naming
/// it (`<source>: trading.execution.latency: …`), before anything runs.
public enum TradingSetup {
    /// The node for `config.trading`, or nil when the config has no trading section. External strategies
    /// are started here (one process each, per run).
    public static func node(for config: PipelineConfig, source: String) throws -> TradingNode? {
        guard let section = config.trading else { return nil }
        let tradingConfig = try self.config(section, timeframes: config.timeframes, source: source)
        var strategies: [Strategy] = []
        for (index, entry) in section.strategies.enumerated() {
            let key = "trading.strategies[\(index)]"
            var strategy: Strategy
            do {
                if entry.type == "external" {
                    var parameters = entry.parameters
                    guard let command = parameters.removeValue(forKey: "command"), !command.isEmpty else {
                        throw ConfigError(source: source, key: "\(key).command",
                                          message: "an external strategy needs command: \"program args…\"")
                    }
                    var timeout: Int64 = 10_000_000_000
                    if let text = parameters.removeValue(forKey: "reply_timeout") {
                        guard let nanos = parseDuration(text), nanos > 0 else {
                            throw ConfigError(source: source, key: "\(key).reply_timeout", message: "expected a duration like 10s, got \"\(text)\"")
                        }
                        timeout = nanos
                    }
                    strategy = try ExternalStrategy(name: entry.name,
                                                    command: command.split(separator: " ").map(String.init),
                                                    parameters: parameters, replyTimeoutNanoseconds: timeout)
                } else {
                    strategy = try StrategyRegistry.make(entry.type, parameters: entry.parameters, name: entry.name)
                }
            } catch let error as StrategyConfigError {
                let at = error.key == "name" ? "\(key).type" : error.key == "command" ? "\(key).command" : "\(key).\(error.key)"
                throw ConfigError(source: source, key: at, message: error.message)
            }
            if !entry.symbols.isEmpty { strategy = SymbolScopedStrategy(strategy, patterns: entry.symbols) }
            strategies.append(strategy)
        }
        return TradingNode(config: tradingConfig, strategies: strategies)
    }

    /// Ends the node's external strategies (each gets `end` and exits) and returns why any of them stopped
    /// taking part during the run (empty: none failed).
    public static func stop(_ node: TradingNode) -> [String] {
        var failures: [String] = []
        for strategy in node.engine.strategies {
            let inner = (strategy as? SymbolScopedStrategy)?.inner ?? strategy
            guard let external = inner as? ExternalStrategy else { continue }
            external.stop()
            if let failure = external.failure { failures.append(failure) }
        }
        return failures
    }

    /// The account and the simulated venue from the section.
    public static func config(_ section: TradingSection, timeframes: [Timeframe], source: String) throws -> TradingConfig {
        func bad(_ key: String, _ message: String) -> ConfigError {
            ConfigError(source: source, key: "trading.execution.\(key)", message: message)
        }
        func number(_ key: String, _ text: String) throws -> Double {
            guard let value = Double(text), value.isFinite, value >= 0 else { throw bad(key, "expected a number ≥ 0, got \"\(text)\"") }
            return value
        }
        var execution = ExecutionConfig()
        for key in section.execution.keys.sorted() {
            let text = section.execution[key]!
            switch key {
            case "latency":
                guard let nanos = parseDuration(text) else { throw bad(key, "expected a duration like 0, 250ms, 1s, got \"\(text)\"") }
                execution.latencyNanos = nanos
            case "fee_bps": execution.feeBps = try number(key, text)
            case "fee_per_unit": execution.feePerUnit = try number(key, text)
            case "slippage_bps":
                let value = try number(key, text)
                execution.slippage = value == 0 ? .none : .bps(value)
            case "slippage":
                let value = try number(key, text)
                execution.slippage = value == 0 ? .none : .fixed(value)
            case "fill_on_touch":
                switch text.lowercased() {
                case "true", "yes", "on": execution.fillOnTouch = true
                case "false", "no", "off": execution.fillOnTouch = false
                default: throw bad(key, "expected true or false, got \"\(text)\"")
                }
            case "open_orders_max":
                guard let value = Int(text), value > 0 else { throw bad(key, "expected a positive integer, got \"\(text)\"") }
                execution.openOrdersMax = value
            default:
                throw bad(key, "unknown key (allowed here: fee_bps, fee_per_unit, fill_on_touch, latency, open_orders_max, slippage, slippage_bps)")
            }
        }
        if section.execution["slippage"] != nil && section.execution["slippage_bps"] != nil {
            throw bad("slippage", "give slippage (price units) or slippage_bps, not both")
        }
        let mark = section.markTimeframe ?? timeframes.min() ?? Timeframe(seconds: 60)
        return TradingConfig(initialCash: section.cash, execution: execution, markTimeframe: mark)
    }
}
