import TapeGraph

/// A strategy's configuration could not be used: names the strategy and the key.
public struct StrategyConfigError: Error, CustomStringConvertible, Equatable {
    public var strategy: String
    public var key: String
    public var message: String

    public init(strategy: String, key: String, message: String) {
        self.strategy = strategy
        self.key = key
        self.message = message
    }

    public var description: String { "strategy \(strategy): \(key): \(message)" }
}

/// Reads a strategy's `key: value` parameters (as YAML gives them, values as text), validating each and
/// refusing keys the strategy does not know.
///
///     var parameters = StrategyParameters(strategy: "rsi_mean_reversion", values: ["lower": "25"])
///     let lower = try parameters.double("lower", default: 30, range: 0...100)
///     try parameters.finish()                       // throws naming any key left unread
public struct StrategyParameters {
    public let strategy: String
    private let values: [String: String]
    private var read: Set<String> = []

    public init(strategy: String, values: [String: String]) {
        self.strategy = strategy
        self.values = values
    }

    private func error(_ key: String, _ message: String) -> StrategyConfigError {
        StrategyConfigError(strategy: strategy, key: key, message: message)
    }

    public mutating func double(_ key: String, default value: Double,
                                range: ClosedRange<Double> = -Double.greatestFiniteMagnitude...Double.greatestFiniteMagnitude)
        throws -> Double {
        read.insert(key)
        guard let text = values[key] else { return value }
        guard let parsed = Double(trimmed(text)), parsed.isFinite else {
            throw error(key, "expected a number, got \"\(text)\"")
        }
        guard range.contains(parsed) else {
            throw error(key, "\(text) is outside \(range.lowerBound)...\(range.upperBound)")
        }
        return parsed
    }

    public mutating func positiveDouble(_ key: String, default value: Double) throws -> Double {
        let parsed = try double(key, default: value)
        guard parsed > 0 else { throw error(key, "expected a positive number, got \(parsed)") }
        return parsed
    }

    public mutating func bool(_ key: String, default value: Bool) throws -> Bool {
        read.insert(key)
        guard let text = values[key] else { return value }
        switch text.lowercased() {
        case "true", "yes", "1": return true
        case "false", "no", "0": return false
        default: throw error(key, "expected true or false, got \"\(text)\"")
        }
    }

    public mutating func timeframe(_ key: String, default value: Timeframe) throws -> Timeframe {
        read.insert(key)
        guard let text = values[key] else { return value }
        guard let parsed = Timeframe(text) else { throw error(key, "expected a timeframe like 1m or 5m, got \"\(text)\"") }
        return parsed
    }

    /// Throws naming the first (in name order) key that was never read.
    public func finish() throws {
        if let unknown = values.keys.filter({ !read.contains($0) }).sorted().first {
            throw error(unknown, "unknown key (known: \(read.sorted().joined(separator: ", ")))")
        }
    }
}

/// `text` without leading and trailing spaces and tabs.
private func trimmed(_ text: String) -> String {
    var characters = Substring(text)
    while let first = characters.first, first == " " || first == "\t" { characters.removeFirst() }
    while let last = characters.last, last == " " || last == "\t" { characters.removeLast() }
    return String(characters)
}
