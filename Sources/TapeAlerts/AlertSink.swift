import TapeCore
import TapeGraph
import TapeSinks
import TapeMetrics

/// The alerts' place among a run's sinks: every anomaly the graph emits becomes an `Alert` handed to
/// the `AlertService`, and the faults the run's parts report (`FaultListener`) are passed on. It never
/// fails a run and never waits: `failure` is always nil, `flush` returns at once.
///
/// ```swift
/// let service = AlertService(config: try AlertConfig.load(path: "config/alerts.yaml"), log: printer)
/// options.sinkFactories.append(AlertSink.factory(service: service, closesService: true))
/// ```
///
/// - `emit` (engine thread): anomalies only; the symbol's name is read from the run's table there.
/// - `watch`: a counter polled on the engine thread (`poll`, every `checkInterval` items or when idle);
///   each increase raises one fault (a store's `outages`, …).
/// - `close`: closes the service when this sink owns it (one run per process: replay, live, ingest);
///   `tape work` shares one service across its partitions and closes it itself.
public final class AlertSink: EngineSink, ReportingSink, FaultListener, @unchecked Sendable {
    public var name: String { "alerts" }
    public var failure: (any Error)? { nil }

    public let service: AlertService
    public let symbols: SymbolTable
    public let closesService: Bool

    private struct Watch {
        let rule: String
        let subject: String
        let severity: Severity
        let detail: String
        let counter: () -> Int
        var last: Int
    }
    private var watches: [Watch] = []
    private var closed = false

    public init(service: AlertService, symbols: SymbolTable, closesService: Bool) {
        self.service = service
        self.symbols = symbols
        self.closesService = closesService
    }

    /// Raises `rule` for `subject` each time `counter` (read on the engine thread) has grown since the
    /// previous poll.
    public func watch(rule: String, subject: String, severity: Severity, detail: String, counter: @escaping () -> Int) {
        watches.append(Watch(rule: rule, subject: subject, severity: severity, detail: detail, counter: counter,
                             last: 0))
    }

    public func emit(_ output: GraphOutput) {
        guard case .anomaly(let anomaly) = output else { return }
        service.submit(Alert(anomaly: anomaly, symbol: symbols.name(anomaly.symbol)))
    }

    public func fault(_ fault: PipelineFault) { service.fault(fault) }

    public func poll() {
        for index in watches.indices {
            let value = watches[index].counter()
            if value > watches[index].last {
                let watch = watches[index]
                service.fault(PipelineFault(rule: watch.rule, subject: watch.subject, severity: watch.severity,
                                            detail: "\(watch.detail) (\(value) so far)"))
            }
            watches[index].last = max(watches[index].last, value)
        }
    }

    public func flush() throws { poll() }

    public func close() throws {
        guard !closed else { return }
        closed = true
        poll()
        if closesService { service.close() }
    }

    public var report: JSONValue { service.report }

    /// For `ReplayOptions.sinkFactories` / `PartitionSettings.otherSinks`: one sink per run (or
    /// partition) around the one service. `configure` may add watches.
    public static func factory(service: AlertService, closesService: Bool,
                               configure: @escaping (AlertSink, RunContext) -> Void = { _, _ in })
        -> (RunContext) throws -> EngineSink {
        return { context in
            let sink = AlertSink(service: service, symbols: context.symbols, closesService: closesService)
            configure(sink, context)
            return sink
        }
    }
}
