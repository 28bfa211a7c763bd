/// Why an input record was not delivered to the graph. The raw value is the name used in
/// `summary.json` (`ticks_rejected_by_reason`) and in `rejects.csv.gz`.
public enum RejectReason: String, Sendable, CaseIterable, Comparable {
    case malformedLine = "malformed_line"          // garbage, short line, wrong field count, bad JSON
    case badTimestamp = "bad_timestamp"            // missing/non-numeric/out-of-range time
    case badNumber = "bad_number"                  // non-numeric price or size
    case nanValue = "nan_value"                    // NaN/Inf price or size
    case negativeValue = "negative_value"          // negative price or size
    case zeroValue = "zero_value"                  // zero price (or zero size on a trade)
    case crossedQuote = "crossed_quote"            // bid > ask
    case timeBackwards = "time_backwards"          // receive time went back more than the tolerance
    case timeJump = "time_jump"                    // receive time jumped forward beyond the limit, unconfirmed
    case duplicate = "duplicate"                   // same source sequence seen again
    case unknownHeader = "unknown_header"          // CSV header not recognised / unusable
    case truncatedGzip = "truncated_gzip"          // file ends inside a gzip member
    case corruptGzip = "corrupt_gzip"              // a damaged deflate block
    case unknownMessage = "unknown_message"        // valid JSON of a kind the decoder does not know
    case outOfRange = "out_of_range"               // bar with high < low etc.
    case badSymbol = "bad_symbol"                  // symbol bytes not valid UTF-8 (or a control byte)

    public static func < (a: RejectReason, b: RejectReason) -> Bool { a.rawValue < b.rawValue }
}

/// One rejected input record.
public struct Reject: Sendable {
    public var file: String
    public var line: Int
    public var reason: RejectReason
    public var detail: String
    public init(file: String, line: Int, reason: RejectReason, detail: String) {
        self.file = file; self.line = line; self.reason = reason; self.detail = detail
    }
    /// `file:line: reason: detail` — the one message a person reads.
    public var message: String { "\(file):\(line): \(reason.rawValue): \(detail)" }
}

/// Where readers report rejects. The replay driver's implementation counts them per reason, keeps
/// them in `rejects.csv.gz` and prints the first few of each kind.
public protocol RejectHandler: AnyObject {
    func reject(_ r: Reject)
    /// Records that were deliberately not used (e.g. depth messages, non-stream lines): counted, not rejects.
    func skipped(_ what: String, count: Int)
}

/// A simple in-memory handler (tests, small tools).
public final class RejectCollector: RejectHandler, @unchecked Sendable {
    public private(set) var rejects: [Reject] = []
    public private(set) var skips: [String: Int] = [:]
    public init() {}
    public func reject(_ r: Reject) { rejects.append(r) }
    public func skipped(_ what: String, count: Int) { skips[what, default: 0] += count }
    public func count(_ reason: RejectReason) -> Int { rejects.filter { $0.reason == reason }.count }
}
