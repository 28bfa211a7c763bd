import Foundation
import TapeSinks

/// Files that a run folder holds and that are never inputs (`tape replay DIR` on a run folder, or a
/// folder of recordings with a run folder's leftovers in it).
public let runFolderFileNames: Set<String> = [
    "rejects.csv.gz", "summary.json", "bars.csv", "indicators.csv", "anomalies.csv", "late_ticks.csv",
    "predictions.csv", "index.html", "summary.csv", "evaluation.csv", "training.json", TickSeriesSink.fileName,
]

/// Replaces each folder among `paths` by the recordings in it, in name order: files ending `.gz`,
/// `.csv` or `.txt`, not hidden, not a run folder's own files (`runFolderFileNames`), not in
/// sub-folders. A folder without any is `UnusableInput` naming it and what it holds.
public func expandRecordingFolders(_ paths: [String]) throws -> [String] {
    var expanded: [String] = []
    for path in paths {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            expanded.append(path)
            continue
        }
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: path) } catch {
            throw UnusableInput("\(path): cannot list the folder: \(error.localizedDescription)")
        }
        let recordings = names.filter { name in
            !name.hasPrefix(".") && !runFolderFileNames.contains(name)
                && [".gz", ".csv", ".txt"].contains(where: { name.hasSuffix($0) })
                && !isFolder("\(path)/\(name)")
        }.sorted()
        guard !recordings.isEmpty else {
            let seen = names.sorted().prefix(5).joined(separator: ", ")
            throw UnusableInput("\(path): no recordings in the folder (.gz, .csv, .txt files; a run folder's own files are "
                                + "never inputs)" + (names.isEmpty ? "" : "; it holds: \(seen)\(names.count > 5 ? ", …" : "")"))
        }
        let base = path.hasSuffix("/") ? String(path.dropLast()) : path
        expanded += recordings.map { "\(base)/\($0)" }
    }
    return expanded
}

private func isFolder(_ path: String) -> Bool {
    var isDirectory: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
}
