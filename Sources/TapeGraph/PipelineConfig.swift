import TapeCore

/// The graph's configuration (`config/pipeline.yaml`). Defaults are the documented ones.
public struct PipelineConfig: Sendable, Equatable {
    public var timeframes: [Timeframe] = [Timeframe(seconds: 60), Timeframe(seconds: 300), Timeframe(seconds: 900)]
    public init() {}
}
