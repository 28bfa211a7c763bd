import Foundation
import TapeEngine

/// A run folder written by `tape replay` / `tape train` / a scenario: its path and its `summary.json`,
/// read with `RunSummary` (the one typed model of that file).
///
///     let folder = try RunFolder(path: "reports/replay-1")
///     print(folder.summary.digestsBySymbol.count)
public struct RunFolder: Sendable {
    /// The summary file every run folder holds.
    public static let summaryFileName = "summary.json"

    public let path: String
    public let summary: RunSummary

    /// Reads `<path>/summary.json`. Throws `NotARunFolder` naming the path when the folder does not
    /// exist, is not a directory, or has no readable, well-formed summary.
    public init(path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw NotARunFolder(path: path, reason: "no such folder")
        }
        guard isDirectory.boolValue else { throw NotARunFolder(path: path, reason: "not a folder") }
        let summaryPath = (path as NSString).appendingPathComponent(RunFolder.summaryFileName)
        guard FileManager.default.fileExists(atPath: summaryPath) else {
            throw NotARunFolder(path: path, reason: "no \(RunFolder.summaryFileName)")
        }
        guard let data = FileManager.default.contents(atPath: summaryPath) else {
            throw NotARunFolder(path: path, reason: "\(RunFolder.summaryFileName) cannot be read")
        }
        do {
            summary = try JSONDecoder().decode(RunSummary.self, from: data)
        } catch {
            throw NotARunFolder(path: path, reason: "\(RunFolder.summaryFileName) is not a run summary: "
                                + RunFolder.describe(error))
        }
        self.path = path
    }

    /// The path of one of the folder's files.
    public func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    /// A one-line account of a decoding error (the key that is missing or of the wrong type).
    static func describe(_ error: any Error) -> String {
        guard let decodingError = error as? DecodingError else { return "\(error)" }
        switch decodingError {
        case .keyNotFound(let key, _): return "missing key '\(key.stringValue)'"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return "wrong type at '\(path)'"
        case .dataCorrupted(let context): return "not JSON (\(context.debugDescription))"
        @unknown default: return "\(decodingError)"
        }
    }
}

/// A path given as a run folder is not one (`tape diff` exits 4 and prints this).
public struct NotARunFolder: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let reason: String
    public var description: String { "\(path): not a run folder: \(reason)" }
}
