/// The built-in strategies by name. A new strategy is one file (a class implementing `Strategy` with an
/// `init(parameters:)`) and one line in `factories`.
public enum StrategyRegistry {
    public typealias Factory = @Sendable (_ parameters: [String: String], _ name: String?) throws -> Strategy

    /// In name order.
    public static let factories: [(name: String, make: Factory)] = [
        (BollingerBreakoutStrategy.registryName, { try BollingerBreakoutStrategy(parameters: $0, name: $1) }),
        (MACDCrossStrategy.registryName, { try MACDCrossStrategy(parameters: $0, name: $1) }),
        (ModelThresholdStrategy.registryName, { try ModelThresholdStrategy(parameters: $0, name: $1) }),
        (RSIMeanReversionStrategy.registryName, { try RSIMeanReversionStrategy(parameters: $0, name: $1) }),
    ]

    public static var names: [String] { factories.map(\.name) }

    /// Builds the strategy `name` from its parameters; throws `StrategyConfigError` naming an unknown strategy
    /// or a bad key.
    /// `instanceName`: the strategy's name in the run (orders' tag, snapshot block); default its registry name.
    public static func make(_ name: String, parameters: [String: String] = [:], name instanceName: String? = nil) throws -> Strategy {
        guard let factory = factories.first(where: { $0.name == name }) else {
            throw StrategyConfigError(strategy: name, key: "name",
                                      message: "unknown strategy (known: \(names.joined(separator: ", ")))")
        }
        return try factory.make(parameters, instanceName)
    }
}
