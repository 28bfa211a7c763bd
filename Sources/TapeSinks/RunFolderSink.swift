import TapeCore
import TapeGraph
import TapeIO

/// Writes the graph's outputs into the run folder: `bars.csv`, `indicators.csv`, `anomalies.csv`,
/// `late_ticks.csv` (always, with headers) and `predictions.csv` (when a model ran), one row per
/// emitted output in emission order — which is deterministic (bar-close time, then symbol id, then
/// timeframe) — with the fixed columns of `GraphOutput.csvHeaders`.
///
/// Failure: the first write error of any file (full disk: `<dir>/bars.csv: write failed: No space left
/// on device`) is kept in `failure`; the engine checks it and stops the run. Durability: `flush()` hands
/// every row to the kernel; `close()` also `fsync`s each file once.
///
/// Not thread-safe: one thread emits (the engine's, or an `AsyncSink` worker's).
public final class RunFolderSink: EngineSink {
    private let symbols: SymbolTable
    private var formatter = OutputLineFormatter()
    /// Indexed by `OutputKind.rawValue`; nil until the kind's file is opened.
    private var files: [BufferedFile?] = Array(repeating: nil, count: OutputKind.allCases.count)
    /// A file that could not be created while running (the only failure not kept by a `BufferedFile`).
    private var createFailure: (any Error)? = nil
    public let directory: String

    /// `withTrading`: orders.csv, fills.csv, positions.csv and equity.csv too (with headers, even empty).
    public init(directory: String, symbols: SymbolTable, withPredictions: Bool, withTrading: Bool = false) throws {
        self.directory = directory
        self.symbols = symbols
        var kinds: [OutputKind] = [.bars, .indicators, .anomalies, .lateTicks]
        if withPredictions { kinds.append(.predictions) }
        if withTrading { kinds += OutputKind.trading }
        for kind in kinds { files[kind.rawValue] = try openFile(kind) }
    }

    private func openFile(_ kind: OutputKind) throws -> BufferedFile {
        let file = try BufferedFile(path: "\(directory)/\(kind.name).csv")
        file.writeLine(kind.csvHeader)
        return file
    }

    public var name: String { "run-folder" }

    public func emit(_ output: GraphOutput) {
        formatter.format(output, symbols: symbols)
        formatter.withRow { write(row: $0, kind: formatter.kind) }
    }

    /// Appends one formatted CSV row (with its newline, from `OutputLineFormatter`) to its kind's file.
    public func write(row: UnsafeRawBufferPointer, kind: OutputKind) {
        assert(row.last == UInt8(ascii: "\n"), "a row ends with its newline")
        if let file = files[kind.rawValue] {
            file.write(bytes: row)
            return
        }
        guard createFailure == nil else { return }
        do {
            let file = try openFile(kind)
            file.write(bytes: row)
            files[kind.rawValue] = file
        } catch {
            createFailure = error
        }
    }

    /// The first failure: a file that could not be created, else the first file (in kind order) whose
    /// writes failed.
    public var failure: (any Error)? {
        if let createFailure { return createFailure }
        for case let file? in files { if let error = file.writeError { return error } }
        return nil
    }

    public func flush() throws {
        for case let file? in files { try file.flush() }
        if let failure { throw failure }
    }

    /// Flushes, `fsync`s and closes every file (all of them, even after a failure); idempotent.
    public func close() throws {
        var first: (any Error)? = createFailure
        for case let file? in files {
            do { try file.close() } catch { if first == nil { first = error } }
        }
        if let first { throw first }
    }
}

/// The run's own outputs — digest (global and per symbol) and run-folder CSVs — from one formatting of
/// each output: the line is formatted once into a reused buffer, the digest hashes it and the folder
/// writes its row. Same bytes as `DigestSink` and `RunFolderSink` each formatting for themselves.
public final class RunOutputSink: EngineSink {
    public let digest: DigestSink
    public let folder: RunFolderSink
    private let symbols: SymbolTable
    private var formatter = OutputLineFormatter()

    public init(symbols: SymbolTable, digest: DigestSink, folder: RunFolderSink) {
        self.symbols = symbols
        self.digest = digest
        self.folder = folder
    }

    public var name: String { folder.name }
    public var failure: (any Error)? { folder.failure }

    public func emit(_ output: GraphOutput) {
        formatter.format(output, symbols: symbols)
        formatter.withLine { digest.consume(line: $0, kind: formatter.kind, symbol: formatter.symbol) }
        formatter.withRow { folder.write(row: $0, kind: formatter.kind) }
    }

    public func flush() throws { try folder.flush() }
    public func close() throws { try folder.close() }
}
