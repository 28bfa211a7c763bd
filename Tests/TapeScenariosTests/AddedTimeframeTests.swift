import Foundation
import XCTest
import TapeTestSupport
import TapeScenarios

/// `tape train --timeframe` and a scenario's `model.train.timeframe` add a timeframe the config does
/// not have. Both must reach the same config (timeframes sorted, so the same emission order) and
/// `config_hash` must be the hash of that final config, not of the config before the timeframe was
/// added. The reference is a plain replay whose config file names the four timeframes.
final class AddedTimeframeTests: XCTestCase {
    let bars = (repoRoot as NSString).appendingPathComponent("../shared/data/bars/btc-perp-20211231-20220201_1m.csv.gz")
    let tape = (repoRoot as NSString).appendingPathComponent(".build/release/tape")
    let slice = ["--from", "2022-01-03T00:00:00Z", "--to", "2022-01-04T00:00:00Z"]

    /// Runs the built binary in `directory` (so that the repo's config/pipeline.yaml is not read).
    func runTape(_ arguments: [String], in directory: String) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tape)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }

    func summary(_ runDirectory: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: runDirectory + "/summary.json"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    func timeframes(_ summary: [String: Any]) -> [String]? {
        (summary["graph"] as? [String: Any])?["timeframes"] as? [String]
    }

    func testTrainAndScenarioAddATimeframeTheSameWayAndHashTheFinalConfig() throws {
        try requireOrSkip(FileManager.default.fileExists(atPath: bars), "real data at \(bars)")
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        let directory = tempDir("added-timeframe")

        // Scenario path (in process).
        let yaml = directory + "/two-minutes.yaml"
        try """
        recordings: [\(bars)]
        from: 2022-01-03T00:00:00Z
        to: 2022-01-04T00:00:00Z
        model:
          train: {timeframe: 2m, horizon: 1, rounds: 5, folds: 2, predict: false}

        """.write(toFile: yaml, atomically: true, encoding: .utf8)
        let runner = ScenarioRunner(root: repoRoot, workDir: directory + "/work")
        let scenarioRun = try runner.execute(try ScenarioFile.load(path: yaml))
        let fromScenario = try summary(scenarioRun.runDir)

        // Train path (the CLI, its own process).
        let trainArguments = ["train", bars] + slice + ["--timeframe", "2m", "--rounds", "5", "--folds", "2",
                                                         "--quiet", "--no-report", "--out", directory + "/train"]
        XCTAssertEqual(try runTape(trainArguments, in: directory), 0)
        let fromTrain = try summary(directory + "/train")

        // References: the four timeframes written in a config file, and the defaults.
        try "timeframes: [15m, 1m, 5m, 2m]\n".write(toFile: directory + "/four.yaml", atomically: true, encoding: .utf8)
        let replay = ["replay", bars] + slice + ["--quiet", "--no-report"]
        XCTAssertEqual(try runTape(replay + ["--config", directory + "/four.yaml", "--out", directory + "/four"],
                                   in: directory), 0)
        XCTAssertEqual(try runTape(replay + ["--out", directory + "/defaults"], in: directory), 0)
        let reference = try summary(directory + "/four")
        let defaults = try summary(directory + "/defaults")

        // The defaults are 1m, 5m, 15m (config/pipeline.yaml); 2m goes in its sorted place.
        let expected = ["1m", "2m", "5m", "15m"]
        XCTAssertEqual(timeframes(reference), expected)
        XCTAssertEqual(timeframes(fromTrain), expected, "tape train")
        XCTAssertEqual(timeframes(fromScenario), expected, "scenario")
        XCTAssertEqual(timeframes(defaults), ["1m", "5m", "15m"])

        let referenceHash = try XCTUnwrap(reference["config_hash"] as? String)
        XCTAssertEqual(fromTrain["config_hash"] as? String, referenceHash, "tape train: config_hash")
        XCTAssertEqual(fromScenario["config_hash"] as? String, referenceHash, "scenario: config_hash")
        XCTAssertNotEqual(defaults["config_hash"] as? String, referenceHash, "adding a timeframe changes the hash")

        // Same config, same input: the same outputs in the same order.
        let referenceDigest = try XCTUnwrap(reference["digest"] as? String)
        XCTAssertEqual(fromTrain["digest"] as? String, referenceDigest, "tape train: emission order")
        XCTAssertEqual(fromScenario["digest"] as? String, referenceDigest, "scenario: emission order")
    }
}
