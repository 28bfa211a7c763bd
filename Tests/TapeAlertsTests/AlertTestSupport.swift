import Foundation
import XCTest
import TapeTestSupport

/// A loopback receiver of alert_receiver.py (`webhook` or `smtp`), started by a test and stopped at its
/// end. What it received is read back from its record file (one JSON object a line).
final class LoopbackReceiver {
    let process = Process()
    let port: Int
    let recordPath: String

    init(_ kind: String, arguments: [String] = []) throws {
        // The python3 on PATH: the one scripts/setup.sh installs the PyPI packages into.
        let env = "/usr/bin/env"
        let check = Process()
        check.executableURL = URL(fileURLWithPath: env)
        check.arguments = ["python3", "-c", kind == "smtp" ? "import aiosmtpd" : "import http.server"]
        check.standardError = FileHandle.nullDevice
        try check.run()
        check.waitUntilExit()
        try requireOrSkip(check.terminationStatus == 0,
                          kind == "smtp" ? "python3 with PyPI aiosmtpd (scripts/setup.sh installs it)" : "python3")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("alert_receiver.py")
        recordPath = NSTemporaryDirectory() + "tape-alerts-\(kind)-\(UUID().uuidString).jsonl"
        process.executableURL = URL(fileURLWithPath: env)
        process.arguments = ["python3", script.path, kind, "--record", recordPath] + arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        port = try announcedPort(output, of: process, what: "alert_receiver.py \(kind)")
    }

    /// Every record so far.
    var records: [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: recordPath) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }
    }

    /// Waits until `count` records arrived (or `seconds` passed); returns them.
    func waitFor(_ count: Int, seconds: Double = 10) -> [[String: Any]] {
        let deadline = Date().addingTimeInterval(seconds)
        var current = records
        while current.count < count && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.05)
            current = records
        }
        return current
    }

    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: recordPath)
    }
}

/// One Slack post or email as the receivers recorded it, read back into its fields.
struct ReceivedAlert: Equatable, CustomStringConvertible {
    var title: String
    var fields: [String: String]

    var isSummary: Bool { title.contains("[summary]") }
    var rule: String { fields["rule"] ?? "" }
    var subject: String { fields["symbol"] ?? fields["subject"] ?? "" }
    var severity: String { fields["severity"] ?? "" }
    /// The integer ns inside `time: ISO (N ns, stream time)`.
    var timeNanos: Int64? {
        guard let text = fields["time"], let open = text.firstIndex(of: "(") else { return nil }
        return Int64(text[text.index(after: open)...].prefix { $0.isNumber })
    }
    var repeatsBefore: Int { fields["repeats"].flatMap { Int($0.prefix { $0.isNumber }) } ?? 0 }
    var description: String { "\(title) \(fields)" }

    /// `title` line, then `key: value` lines.
    init(title: String, lines: [Substring]) {
        self.title = title
        fields = [:]
        for line in lines {
            guard let colon = line.range(of: ": ") else { continue }
            fields[String(line[..<colon.lowerBound])] = String(line[colon.upperBound...])
        }
    }

    /// A webhook record: the body is `{"text": "*tape …*\nkey: value\n…"}`.
    static func slack(_ record: [String: Any]) -> ReceivedAlert? {
        guard let body = record["body"] as? String,
              let json = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any],
              let text = json["text"] as? String else { return nil }
        let lines = text.split(separator: "\n")
        guard let first = lines.first else { return nil }
        return ReceivedAlert(title: String(first), lines: Array(lines.dropFirst()))
    }

    /// An SMTP record: headers, a blank line, the body.
    static func email(_ record: [String: Any]) -> (alert: ReceivedAlert, headers: [String: String])? {
        guard let data = record["data"] as? String, let split = data.range(of: "\r\n\r\n") else { return nil }
        var headers: [String: String] = [:]
        for line in data[..<split.lowerBound].components(separatedBy: "\r\n") {
            guard let colon = line.range(of: ": ") else { continue }
            headers[String(line[..<colon.lowerBound])] = String(line[colon.upperBound...])
        }
        let body = data[split.upperBound...].split(separator: "\r\n")
        return (ReceivedAlert(title: headers["Subject"] ?? "", lines: Array(body)), headers)
    }
}

enum AlertTestData {
    /// ../shared/data/<relative> beside the package (skips locally, fails under CI=true when missing).
    static func shared(_ relative: String) throws -> String {
        let path = packageRoot().appendingPathComponent("../shared/data/" + relative).standardizedFileURL.path
        try requireOrSkip(FileManager.default.fileExists(atPath: path), "real data at \(path) (../shared/data)")
        return path
    }

    /// The built `tape` (`swift build -c release`).
    static func tapeBinary() throws -> String {
        let path = packageRoot().appendingPathComponent(".build/release/tape").path
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: path), "the built tape at \(path)")
        return path
    }

    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "tape-alerts-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Runs a command to its end; returns the exit status and stderr.
    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:])
        throws -> (status: Int32, standardError: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.currentDirectoryURL = packageRoot()
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let data = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

/// Rows of a run folder's anomalies.csv (`symbol,time_ns,rule,value,threshold,severity`), read here
/// without Tape's readers: the independent side of the comparison.
struct AnomalyRow {
    var symbol: String
    var time: Int64
    var rule: String
    var value: Double
    var threshold: Double
    var severity: String

    static func read(_ path: String) throws -> [AnomalyRow] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var lines = text.split(separator: "\n")
        XCTAssertEqual(lines.first, "symbol,time_ns,rule,value,threshold,severity")
        lines.removeFirst()
        return lines.map { line in
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            return AnomalyRow(symbol: fields[0], time: Int64(fields[1])!, rule: fields[2], value: Double(fields[3])!,
                              threshold: Double(fields[4])!, severity: fields[5])
        }
    }
}

/// What one channel should send for these rows under per-rule thresholds and a de-duplication window:
/// written from the documented rule (docs/alerts.md), not from the library's code.
func expectedAlerts(_ rows: [AnomalyRow], thresholds: [String: String], windowNanos: Int64)
    -> (sent: [(row: AnomalyRow, repeatsBefore: Int)], pendingRepeats: Int) {
    let rank = ["info": 0, "warning": 1, "critical": 2]
    var windows: [String: (start: Int64, rank: Int, repeats: Int)] = [:]
    var sent: [(row: AnomalyRow, repeatsBefore: Int)] = []
    for row in rows {
        guard let minimum = thresholds[row.rule], rank[row.severity]! >= rank[minimum]! else { continue }
        let key = row.rule + " " + row.symbol
        if let window = windows[key], row.time < window.start + windowNanos, rank[row.severity]! <= window.rank {
            windows[key]!.repeats += 1
            continue
        }
        sent.append((row: row, repeatsBefore: windows[key]?.repeats ?? 0))
        windows[key] = (row.time, rank[row.severity]!, 0)
    }
    return (sent, windows.values.reduce(0) { $0 + $1.repeats })
}
