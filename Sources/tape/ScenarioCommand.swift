import ArgumentParser
import Foundation
import TapeScenarios

/// `tape scenario run [paths…]` / `tape scenario bless NAME`: regression scenarios on real data.
/// Thin wrappers over `ScenarioRunner` (TapeScenarios). See docs/scenarios.md.
struct ScenarioCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scenario",
        abstract: "Run regression scenarios (scenarios/*.yaml) or re-bless their goldens.",
        subcommands: [ScenarioRunCommand.self, ScenarioBlessCommand.self])
}

struct ScenarioLocation: ParsableArguments {
    @Option(help: "Repo root: scenario paths (recordings, model) are relative to it.")
    var root: String = "."
    @Option(help: "Scenario folder.")
    var dir: String = "scenarios"
    @Option(help: "Where the scenario run folders go (<work>/<name>/).")
    var work: String = "reports/scenarios"

    func runner(parallel: Int) -> ScenarioRunner {
        var r = ScenarioRunner(root: root, workDir: work)
        r.parallelism = parallel
        return r
    }

    /// A scenario argument: a path to a .yaml, or a bare name looked up in `dir`.
    func resolve(_ s: String) -> String {
        if s.hasSuffix(".yaml") || s.hasSuffix(".yml") || s.contains("/") { return s }
        return (dir as NSString).appendingPathComponent(s + ".yaml")
    }
}

struct ScenarioRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run scenarios (all of scenarios/*.yaml by default); exit 1 if any fails.")

    @Argument(help: "Scenario files or names (default: every scenarios/*.yaml).")
    var paths: [String] = []
    @OptionGroup var loc: ScenarioLocation
    @Option(help: "JUnit XML output.")
    var junit: String = "reports/scenarios/junit.xml"
    @Option(help: "Scenarios run at the same time.")
    var parallel: Int = 2

    mutating func run() throws {
        let files = paths.isEmpty ? ScenarioRunner.discover(loc.dir) : paths.map(loc.resolve)
        guard !files.isEmpty else { fail("no scenarios found in \(loc.dir)", code: 4) }
        let results = loc.runner(parallel: parallel).run(files: files)
        print(ScenarioRunner.table(results), terminator: "")
        try ScenarioRunner.writeJUnit(results, to: junit)
        print("junit           \(junit)")
        if results.contains(where: { $0.status != .passed }) { throw ExitCode(1) }
    }
}

struct ScenarioBlessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bless",
        abstract: "Run a scenario and rewrite its goldens (scenarios/<name>/expected/). Review the git diff before committing.")

    @Argument(help: "Scenario names or files.")
    var names: [String]
    @OptionGroup var loc: ScenarioLocation

    mutating func run() throws {
        let r = loc.runner(parallel: 1)
        var bad = false
        for n in names {
            let res = r.bless(file: loc.resolve(n))
            if res.status == .blessed {
                print("blessed \(res.name)  digest \(res.digest)  (\(String(format: "%.2f", res.seconds)) s)")
            } else {
                bad = true
                FileHandle.standardError.write(("tape: bless \(n): " + res.failures.joined(separator: "\n") + "\n").data(using: .utf8)!)
            }
        }
        if bad { throw ExitCode(1) }
    }
}
