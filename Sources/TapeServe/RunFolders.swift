import Foundation
import TapeCore

/// Run folders on disk (`tape serve --runs-dir`, default `reports/`): every sub-folder holding a
/// `summary.json` is a run, named by its folder. Runs written with `--store postgres://…` are also in
/// `tape_runs` (`/api/v1/runs`); these are the ones a replay without a store left behind. Read on a store
/// thread (file I/O blocks), never on the event loop; a summary larger than `summaryBytesMax` is refused.
struct RunFolders: Sendable {
    let directory: String
    static let summaryBytesMax = 16 << 20

    /// Folder names holding a summary.json, in name order, after `after`, at most `limit` + 1 (the caller
    /// pages), each with the summary's headline fields.
    func list(after: String?, limit: Int) -> [JSONValue] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { name in !name.hasPrefix(".") && (after.map { name > $0 } ?? true) }
            .sorted()
        var items: [JSONValue] = []
        for name in names {
            guard items.count <= limit else { break }
            guard let summary = summary(name) else { continue }
            items.append(.object([("name", .string(name))] + Self.headline(summary)))
        }
        return items
    }

    /// The parsed summary.json of folder `name`, or nil (no such folder or file, not JSON, too large).
    func summary(_ name: String) -> JSONValue? {
        guard Self.isFolderName(name) else { return nil }
        let path = directory + "/" + name + "/summary.json"
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              let size = attributes[.size] as? Int, size <= Self.summaryBytesMax,
              let data = FileManager.default.contents(atPath: path),
              let value = try? JSONDecoder().decode(JSONValue.self, from: data), case .object = value else { return nil }
        return value
    }

    /// One path component: no separator, not `.` or `..`, printable ASCII.
    static func isFolderName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && name.utf8.count <= 255
            && name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") }
    }

    /// `digest`, counts, `stop`, `exit_code` and the stores' `run_id` of a summary, null when absent.
    static func headline(_ summary: JSONValue) -> [(String, JSONValue)] {
        guard case .object(let members) = summary else { return [] }
        func member(_ key: String) -> JSONValue { members.first { $0.0 == key }?.1 ?? .null }
        var runID: JSONValue = .null
        if case .object(let stores) = member("stores"), let id = stores.first(where: { $0.0 == "run_id" })?.1 {
            runID = id
        }
        return [("digest", member("digest")), ("ticks_in", member("ticks_in")),
                ("ticks_delivered", member("ticks_delivered")), ("events_out", member("events_out")),
                ("wall_seconds", member("wall_seconds")), ("stop", member("stop")), ("exit_code", member("exit_code")),
                ("run_id", runID)]
    }
}
