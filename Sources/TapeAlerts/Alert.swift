import TapeCore
import TapeGraph
import TapeSinks

extension Severity {
    /// info < warning < critical.
    var rank: Int {
        switch self {
        case .info: return 0
        case .warning: return 1
        case .critical: return 2
        }
    }
}

/// One thing to tell people: an anomaly the graph emitted, or a pipeline fault.
///
/// `time` is what de-duplication counts windows in: the anomaly's stream time (its receive clock, so a
/// replay at any speed de-duplicates as live did), or the wall time a fault was seen.
public struct Alert: Sendable, Equatable {
    public enum Kind: String, Sendable { case anomaly, fault }

    public var kind: Kind
    /// The anomaly rule (`price_spike`, …) or the fault (`feed_disconnected`, …).
    public var rule: String
    /// The symbol (`spot:BTCUSDT`), the feed, the store, `topic[partition]`.
    public var subject: String
    public var severity: Severity
    /// ns since the Unix epoch: stream time (anomalies) or wall time (faults).
    public var time: Nanos
    /// The rule's measured value and its threshold (anomalies).
    public var value: Double?
    public var threshold: Double?
    /// One line for people (faults).
    public var detail: String?

    public init(anomaly: AnomalyOutput, symbol: String) {
        kind = .anomaly
        rule = anomaly.rule
        subject = symbol
        severity = anomaly.severity
        time = anomaly.time
        value = anomaly.value
        threshold = anomaly.threshold
        detail = nil
    }

    public init(fault: PipelineFault, time: Nanos) {
        kind = .fault
        rule = fault.rule
        subject = fault.subject
        severity = fault.severity
        self.time = time
        value = nil
        threshold = nil
        detail = fault.detail
    }
}

/// The text of one message: an alert (with how many like it were de-duplicated before it), or a
/// summary of what was held back. Both channels render the same words.
public struct AlertMessage: Sendable, Equatable {
    public enum Content: Sendable, Equatable {
        case alert(Alert, repeatsBefore: Int)
        /// Alerts the rate limit held back (per rule), and repeats de-duplicated but not yet told (per
        /// rule and subject) when the run ends.
        case summary(suppressedByRule: [String: Int], pendingRepeats: [String: Int])
    }

    public var content: Content
    /// Where this Tape runs (`AlertConfig.source`).
    public var source: String

    public init(_ content: Content, source: String) {
        self.content = content
        self.source = source
    }

    /// One line: `[critical] price_spike spot:BTCUSDT: value 0.0123, threshold 0.01, at 2024-…Z`.
    public var title: String {
        switch content {
        case .alert(let alert, _):
            return "[\(alert.severity.rawValue)] \(alert.rule) \(alert.subject)"
        case .summary(let suppressed, let pending):
            var parts: [String] = []
            let suppressedCount = suppressed.values.reduce(0, +)
            if suppressedCount > 0 { parts.append("\(suppressedCount) suppressed by the rate limit") }
            let pendingCount = pending.values.reduce(0, +)
            if pendingCount > 0 { parts.append("\(pendingCount) repeats de-duplicated") }
            return "[summary] " + parts.joined(separator: ", ")
        }
    }

    /// The lines after the title.
    public var lines: [String] {
        switch content {
        case .alert(let alert, let repeats):
            var lines: [String] = []
            lines.append("rule: \(alert.rule)")
            lines.append("\(alert.kind == .anomaly ? "symbol" : "subject"): \(alert.subject)")
            lines.append("severity: \(alert.severity.rawValue)")
            if let value = alert.value { lines.append("value: \(Numbers.format(value))") }
            if let threshold = alert.threshold { lines.append("threshold: \(Numbers.format(threshold))") }
            if let detail = alert.detail { lines.append("detail: \(detail)") }
            let clock = alert.kind == .anomaly ? "stream" : "wall"
            lines.append("time: \(TimeUtil.iso(alert.time)) (\(alert.time) ns, \(clock) time)")
            if repeats > 0 {
                lines.append("repeats: \(repeats) more of this rule and subject were de-duplicated "
                             + "in the previous window")
            }
            lines.append("source: \(source)")
            return lines
        case .summary(let suppressed, let pending):
            var lines: [String] = []
            if !suppressed.isEmpty {
                lines.append("suppressed by the rate limit: " + AlertMessage.counts(suppressed))
            }
            if !pending.isEmpty {
                lines.append("de-duplicated since their last alert: " + AlertMessage.counts(pending))
            }
            lines.append("source: \(source)")
            return lines
        }
    }

    /// `a 3, b 1`, largest first, at most 20 named and the rest summed.
    static func counts(_ counts: [String: Int]) -> String {
        let sorted = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        var parts = sorted.prefix(20).map { "\($0.key) \($0.value)" }
        if sorted.count > 20 {
            let rest = sorted.dropFirst(20).reduce(0) { $0 + $1.value }
            parts.append("\(sorted.count - 20) more (\(rest))")
        }
        return parts.joined(separator: ", ")
    }

    /// The Slack text: title in bold, then the lines.
    public var slackText: String {
        (["*tape \(title)*"] + lines).joined(separator: "\n")
    }

    /// The email subject.
    public var subject: String { "tape " + title }

    /// The email body.
    public var body: String { (lines + [""]).joined(separator: "\n") }
}
