import XCTest
import TapeScenarios
import TapeRecordings

final class ScenarioFileTests: XCTestCase {
    func testParsesKeys() throws {
        let s = try ScenarioFile.parse(yaml: """
        recordings:
          - ../shared/data/a.gz
          - ../shared/data/b.gz
        symbols: [BTCUSDT]
        config:
          anomalies:
            stale_feed:
              after: 5s
        damage:
          truncate_at_fraction: 0.6
        """, path: "scenarios/merge.yaml")
        XCTAssertEqual(s.name, "merge")
        XCTAssertEqual(s.recordings, ["../shared/data/a.gz", "../shared/data/b.gz"])
        XCTAssertEqual(s.symbols, ["BTCUSDT"])
        XCTAssertEqual(s.damage?.truncateAtFraction, 0.6)
        XCTAssertTrue(s.configOverrides.contains("after: 5s"))
    }

    /// Bar files: `bar_time`, `bar_length`, `columns`, checked as the command-line options are.
    func testBarFileKeys() throws {
        let s = try ScenarioFile.parse(yaml: """
        recordings: ../shared/data/bars/x.csv.gz
        bar_time: close
        bar_length: 5m
        columns: time=Date,open=3
        """, path: "scenarios/bars.yaml")
        XCTAssertEqual(s.bars, BarOptions(anchor: .close, lengthNanos: 300_000_000_000,
                                          columns: [.time: .name("Date"), .open: .number(3)]))
        let badLength = "recordings: a.gz\nbar_length: 5 minutes\n"
        XCTAssertThrowsError(try ScenarioFile.parse(yaml: badLength, path: "b.yaml")) { e in
            XCTAssertTrue("\(e)".contains("bar_length"), "\(e)")
            XCTAssertTrue("\(e)".contains("expected a positive number and a unit"), "\(e)")
        }
    }

    func testBadKeyNamesFileAndKey() {
        XCTAssertThrowsError(try ScenarioFile.parse(yaml: "recordings: a.gz\nrecordngs: b\n", path: "scenarios/x.yaml")) { e in
            XCTAssertTrue("\(e)".contains("scenarios/x.yaml"))
            XCTAssertTrue("\(e)".contains("recordngs"))
        }
        XCTAssertThrowsError(try ScenarioFile.parse(yaml: "recordings: a.gz\ndamage:\n  truncate_at_fraction: 2\n", path: "y.yaml")) { e in
            XCTAssertTrue("\(e)".contains("damage.truncate_at_fraction"))
        }
        XCTAssertThrowsError(try ScenarioFile.parse(yaml: "format: x\n", path: "z.yaml")) { e in
            XCTAssertTrue("\(e)".contains("recordings"))
        }
    }
}
