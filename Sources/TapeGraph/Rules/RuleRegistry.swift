/// The rules the graph runs, in the order they run at one instant (price before volume at a bar
/// close, as documented in docs/graph.md). A new rule adds one line here.
enum RuleRegistry {
    static func rules(for config: PipelineConfig) -> [AnomalyRule] {
        var rules: [AnomalyRule] = []
        if config.priceSpike.enabled { rules.append(PriceSpikeRule(config.priceSpike)) }
        if config.volumeSpike.enabled { rules.append(VolumeSpikeRule(config.volumeSpike)) }
        if config.badTick.enabled { rules.append(BadTickRule(config.badTick)) }
        if config.staleFeed.enabled { rules.append(StaleFeedRule(config.staleFeed, sessions: config.sessions)) }
        return rules
    }
}
