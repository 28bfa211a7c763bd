import TapeCore
import TapeGraph
import TapeIO

/// Writes the graph's outputs into the run folder: `bars.csv`, `indicators.csv`, `anomalies.csv`,
/// `late_ticks.csv` (always, with headers) and `predictions.csv` (when a model ran), one row per
/// emitted output in emission order — which is deterministic (bar-close time, then symbol id, then
/// timeframe) — with the fixed columns of `GraphOutput.csvHeaders`.
public final class RunFolderSink: GraphSink {
    private let symbols: SymbolTable
    private var files: [String: BufferedFile] = [:]
    public let directory: String

    public init(directory: String, symbols: SymbolTable, withPredictions: Bool) throws {
        self.directory = directory
        self.symbols = symbols
        var kinds = ["bars", "indicators", "anomalies", "late_ticks"]
        if withPredictions { kinds.append("predictions") }
        for k in kinds {
            let f = try BufferedFile(path: "\(directory)/\(k).csv")
            f.writeLine(GraphOutput.csvHeaders[k]!)
            files[k] = f
        }
    }

    public func emit(_ output: GraphOutput) {
        let k = output.kindName
        if files[k] == nil, let f = try? BufferedFile(path: "\(directory)/\(k).csv") {
            f.writeLine(GraphOutput.csvHeaders[k]!)
            files[k] = f
        }
        files[k]?.writeLine(output.csvRow(symbols: symbols))
    }

    public func close() { for f in files.values { f.close() } }
}
