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
    case lineTooLong = "line_too_long"             // a line longer than --max-line-bytes (skipped)
    case readError = "read_error"                  // read(2) failed mid-input: the rest is not read

    public static func < (a: RejectReason, b: RejectReason) -> Bool { a.rawValue < b.rawValue }
}

/// One rejected input record.
public struct Reject: Sendable {
    public var file: String
    public var line: Int
    public var reason: RejectReason
    public var detail: String
    /// `file` and `detail` are kept with their control bytes escaped (`MessageText.escaped`): a reject
    /// is one line on stderr and one row of `rejects.csv.gz`, whatever bytes the input held.
    public init(file: String, line: Int, reason: RejectReason, detail: String) {
        self.file = MessageText.escaped(file)
        self.line = line
        self.reason = reason
        self.detail = MessageText.escaped(detail)
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

/// Text from an input, made safe for a one-line message (stderr, `rejects.csv.gz`, an error): control
/// bytes (C0, DEL, C1) are written as `\xNN`, so a NUL cannot cut a message and a newline cannot split
/// it. The one escaping function for messages.
public enum MessageText {
    public static func escaped(_ text: String) -> String {
        if !text.unicodeScalars.contains(where: isControl) { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 16)
        for scalar in text.unicodeScalars {
            if isControl(scalar) { out += "\\x" + hexByte(UInt8(scalar.value)) }
            else { out.unicodeScalars.append(scalar) }
        }
        return out
    }

    /// Bytes as space-separated lowercase hex (`1f 8c 08`).
    public static func hex<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        bytes.map(hexByte).joined(separator: " ")
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (scalar.value >= 0x7F && scalar.value < 0xA0)
    }

    private static func hexByte(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
    }
}
