import ArgumentParser
import Foundation
import TapeDiff

/// `tape diff RUN_A RUN_B`: compares two run folders per symbol and kind (TapeDiff does the work).
struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Compare two run folders output by output, per symbol and kind.",
        discussion: """
            Per-symbol digests first: when every symbol's digest is equal in both summary.json files the \
            runs are equal and no CSV is read. Otherwise the CSVs of the symbols whose digests differ are \
            compared row by row (rows matched by time + timeframe/rule): per kind and symbol, the count of \
            differing rows and the first --max-rows of them, A vs B. Symbols with outputs in one run only \
            are listed. Exit codes: 0 equal; 1 the runs differ; 4 a path is not a run folder (no readable \
            summary.json); 64 bad command line.
            """)

    @Argument(help: "The first run folder (A).")
    var runA: String

    @Argument(help: "The second run folder (B).")
    var runB: String

    @Option(help: "Differing rows shown per kind and symbol (0 ... \(RunDiff.maxRowsLimit)).")
    var maxRows: Int = 5

    @Flag(help: "Print the comparison as JSON (snake_case keys) instead of text.")
    var json = false

    /// `tape diff` exits 1 when the runs differ (as diff(1) does).
    static let differExitCode: Int32 = 1

    func validate() throws {
        guard (0...RunDiff.maxRowsLimit).contains(maxRows) else {
            throw ValidationError("--max-rows \(maxRows): expected 0 ... \(RunDiff.maxRowsLimit)")
        }
    }

    mutating func run() throws {
        let folderA: RunFolder
        let folderB: RunFolder
        do {
            folderA = try RunFolder(path: runA)
            folderB = try RunFolder(path: runB)
        } catch let error as NotARunFolder {
            fail(error.description, code: 4)
        }
        let comparison = RunDiff.compare(folderA, folderB, maxRows: maxRows)
        print(json ? try comparison.jsonText() : comparison.text(), terminator: "")
        if !comparison.equal { throw ExitCode(Self.differExitCode) }
    }
}
