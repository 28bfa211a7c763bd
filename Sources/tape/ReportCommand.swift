import ArgumentParser
import Foundation
import TapeReports

/// `tape report RUN_DIR`: writes `index.html` (self-contained) and `summary.csv` into a run folder.
/// A thin wrapper over `ReportWriter.write(runDir:)` (TapeReports). See docs/reports.md.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write index.html (offline, Chart.js inlined) and summary.csv into a run folder.")

    @Argument(help: "A run folder written by tape replay / train / scenario run.")
    var runDir: String

    mutating func run() throws {
        do {
            let path = try ReportWriter.write(runDir: runDir)
            print(path)
            print((runDir as NSString).appendingPathComponent("summary.csv"))
        } catch let e as ReportError {
            fail(e.description, code: 4)
        }
    }
}
