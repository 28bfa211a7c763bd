import Foundation
import TapeCore

/// The result of `RunDiff.compare`: what differs between run A and run B, per symbol and kind.
/// `text()` is what `tape diff` prints; `jsonText()` what `tape diff --json` prints (snake_case keys).
public struct RunComparison: Codable, Sendable, Equatable {
    public var runA: String
    public var runB: String
    /// True when every symbol of either run has outputs in both, with equal per-symbol digests.
    public var equal = false
    /// True when the per-symbol digests alone decided equality (no CSV was read).
    public var digestsEqual = false
    /// The global digests (which also change with the interleaving of symbols; not used to decide).
    public var globalDigestEqual = false
    public var symbolsInBoth = 0
    /// Symbols with outputs in A only / in B only, with their output counts.
    public var onlyInA: [SymbolPresence] = []
    public var onlyInB: [SymbolPresence] = []
    /// Symbols in both runs whose per-symbol digests differ.
    public var differingSymbols: [String] = []
    /// Per kind and symbol: the differing rows (count and the first ones).
    public var kinds: [KindDifference] = []
    /// Facts from the summaries that may explain a difference (other inputs, config, a stopped run).
    public var notes: [String] = []

    public init(runA: String, runB: String) {
        self.runA = runA
        self.runB = runB
    }

    /// The report `tape diff` prints.
    public func text() -> String {
        var lines = ["A: \(runA)", "B: \(runB)"]
        let onlyCount = onlyInA.count + onlyInB.count
        lines.append("symbols: \(symbolsInBoth) in both, \(onlyInA.count) in A only, \(onlyInB.count) in B only")
        for presence in onlyInA { lines.append("only in A: \(presence.symbol) (\(presence.outputs) outputs)") }
        for presence in onlyInB { lines.append("only in B: \(presence.symbol) (\(presence.outputs) outputs)") }
        for difference in kinds {
            lines.append("\(difference.kind) \(difference.symbol): \(difference.differingRows) differing rows "
                         + "(A \(difference.rowsA) rows, B \(difference.rowsB) rows)")
            for row in difference.rows {
                let columns = row.columns.isEmpty ? "" : " [\(row.columns.joined(separator: ", "))]"
                lines.append("  \(row.key)\(columns)")
                lines.append("    A: \(row.rowA ?? "(none)")")
                lines.append("    B: \(row.rowB ?? "(none)")")
            }
            let hidden = difference.differingRows - difference.rows.count
            if hidden > 0 { lines.append("  … \(hidden) more") }
        }
        for note in notes { lines.append("note: \(note)") }
        if equal {
            let global = globalDigestEqual ? "" : " (global digests differ: symbols interleaved differently)"
            lines.append("equal: per-symbol digests of \(symbolsInBoth) symbols are equal, CSVs not read\(global)")
        } else {
            lines.append("differ: \(differingSymbols.count) symbols with different outputs, "
                         + "\(onlyCount) present in one run only")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Pretty JSON, keys sorted and snake_case, trailing newline.
    public func jsonText() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try encoder.encode(self), as: UTF8.self) + "\n"
    }
}

/// A symbol with outputs in one run only.
public struct SymbolPresence: Codable, Sendable, Equatable {
    public var symbol: String
    public var outputs: Int
}

/// The differing rows of one kind (`bars`, `indicators`, …) for one symbol.
public struct KindDifference: Codable, Sendable, Equatable {
    public var kind: String
    public var symbol: String
    public var rowsA: Int
    public var rowsB: Int
    /// Rows that differ, or are present in one run only (matched by time + timeframe/rule).
    public var differingRows: Int
    /// The first `maxRows` of them, by time.
    public var rows: [RowDifference]
}

/// One differing row: its key (`<time_ns> <symbol> <timeframe|rule>`), the CSV row in each run (nil
/// when absent from that run) and the names of the columns whose values differ.
public struct RowDifference: Codable, Sendable, Equatable {
    public var key: String
    public var rowA: String?
    public var rowB: String?
    public var columns: [String]

    init(key: String, rowA: [String]?, rowB: [String]?, header: [String]) {
        self.key = key
        self.rowA = rowA.map(RowDifference.csvLine)
        self.rowB = rowB.map(RowDifference.csvLine)
        var differing: [String] = []
        if let rowA, let rowB {
            for (index, name) in header.enumerated() where index < rowA.count && index < rowB.count {
                if rowA[index] != rowB[index] { differing.append(name) }
            }
        }
        columns = differing
    }

    /// The row as its CSV line (quoted where a field needs it).
    static func csvLine(_ fields: [String]) -> String { fields.map(CSV.field).joined(separator: ",") }
}
