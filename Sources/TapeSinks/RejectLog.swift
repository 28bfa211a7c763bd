import Foundation
import TapeCore

import TapeIO
#if canImport(Glibc)
import Glibc
#endif

/// The run's reject handler: counts rejects per reason and skips per kind, keeps every reject in
/// `rejects.csv.gz` (`file,line,reason,detail`), and prints one clear message per reject to stderr —
/// the first `printLimit` per (file, reason), then one line saying how many more went to the file.
public final class RejectLog: RejectHandler {
    public private(set) var byReason: [String: Int] = [:]
    public private(set) var skips: [String: Int] = [:]
    public private(set) var total = 0
    private var printed: [String: Int] = [:]
    private let writer: LineWriter?
    private let printLimit: Int
    private let printer: (String) -> Void
    private let rejectsFileName: String

    public init(writer: LineWriter?, printLimit: Int = 5, rejectsFileName: String = "rejects.csv.gz",
                printer: @escaping (String) -> Void = { msg in fputs(msg + "\n", stderr) }) {
        self.writer = writer
        self.printLimit = printLimit
        self.printer = printer
        self.rejectsFileName = rejectsFileName
        writer?.writeLine("file,line,reason,detail")
    }

    public func reject(_ r: Reject) {
        total += 1
        byReason[r.reason.rawValue, default: 0] += 1
        writer?.writeLine("\(CSV.field(r.file)),\(r.line),\(r.reason.rawValue),\(CSV.field(r.detail))")
        let key = r.file + "\u{0}" + r.reason.rawValue
        let n = printed[key, default: 0]
        if n < printLimit { printer("tape: \(r.message)") }
        else if n == printLimit && printLimit > 0 { printer("tape: \(r.file): further \(r.reason.rawValue) rejects are not printed; see \(rejectsFileName)") }
        printed[key] = n + 1
    }

    public func skipped(_ what: String, count: Int) { skips[what, default: 0] += count }

    /// Short name for messages and the summary.
    public var name: String { "rejects" }
    /// The first failure writing `rejects.csv.gz`, if any (the engine checks it with the sinks).
    public var failure: (any Error)? { writer?.failure }
    public func flush() throws { try writer?.flush() }
    /// Closes `rejects.csv.gz` (member ended, `fsync`ed); idempotent. Throws the first failure.
    public func close() throws { try writer?.close() }
}
