import Foundation
import Yams

public struct ScenarioError: Error, CustomStringConvertible {
    public var file: String
    public var key: String
    public var message: String
    public init(file: String, key: String, message: String) { self.file = file; self.key = key; self.message = message }
    public var description: String { "\(file): \(key.isEmpty ? "" : "key '\(key)': ")\(message)" }
}

/// Deterministic damage applied to a copy of the input at run time (never in the repo).
public struct DamageSpec: Sendable, Equatable {
    public var truncateAtFraction: Double? = nil
    public var injectGarbageEvery: Int? = nil
    public init() {}
}

/// A parsed `scenarios/<name>.yaml`.
public struct ScenarioFile: Sendable {
    public var name: String
    public var path: String
    public var recordings: [String]
    public var format: String? = nil
    public var from: String? = nil
    public var to: String? = nil
    public var symbols: [String]? = nil
    /// Partial pipeline config (raw YAML text) merged over the defaults.
    public var configOverrides: String = ""
    public var damage: DamageSpec? = nil
    public var expectedDigest: String? = nil

    public static let knownKeys: Set<String> = ["name", "description", "recordings", "format", "from", "to", "symbols",
                                                "config", "model", "damage", "expect"]

    public static func load(path: String) throws -> ScenarioFile {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ScenarioError(file: path, key: "", message: "cannot read file")
        }
        return try parse(yaml: text, path: path)
    }

    public static func parse(yaml: String, path: String) throws -> ScenarioFile {
        let node: Node?
        do { node = try Yams.compose(yaml: yaml) } catch { throw ScenarioError(file: path, key: "", message: "not valid YAML: \(error)") }
        guard let map = node?.mapping else { throw ScenarioError(file: path, key: "", message: "top level must be a mapping") }
        var dict: [String: Node] = [:]
        for (k, v) in map {
            guard let ks = k.string else { throw ScenarioError(file: path, key: "\(k)", message: "keys must be strings") }
            guard knownKeys.contains(ks) else {
                throw ScenarioError(file: path, key: ks, message: "unknown key (known: \(knownKeys.sorted().joined(separator: ", ")))")
            }
            dict[ks] = v
        }
        let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        let name = dict["name"]?.string ?? stem
        var recs: [String] = []
        switch dict["recordings"] {
        case .some(.scalar(let s)): recs = [s.string]
        case .some(.sequence(let seq)):
            for (i, n) in seq.enumerated() {
                guard let s = n.string else { throw ScenarioError(file: path, key: "recordings[\(i)]", message: "must be a path string") }
                recs.append(s)
            }
        case .none: throw ScenarioError(file: path, key: "recordings", message: "required (a path or a list of paths)")
        default: throw ScenarioError(file: path, key: "recordings", message: "must be a path or a list of paths")
        }
        if recs.isEmpty { throw ScenarioError(file: path, key: "recordings", message: "at least one recording") }
        var s = ScenarioFile(name: name, path: path, recordings: recs)
        s.format = dict["format"]?.string
        s.from = dict["from"]?.string
        s.to = dict["to"]?.string
        if let sy = dict["symbols"] {
            guard let seq = sy.sequence else { throw ScenarioError(file: path, key: "symbols", message: "must be a list") }
            s.symbols = try seq.enumerated().map { i, n in
                guard let v = n.string else { throw ScenarioError(file: path, key: "symbols[\(i)]", message: "must be a string") }
                return v
            }
        }
        if let c = dict["config"] {
            guard c.mapping != nil else { throw ScenarioError(file: path, key: "config", message: "must be a mapping (partial pipeline config)") }
            s.configOverrides = try Yams.serialize(node: c)
        }
        if let d = dict["damage"] {
            guard let m = d.mapping else { throw ScenarioError(file: path, key: "damage", message: "must be a mapping") }
            var spec = DamageSpec()
            for (k, v) in m {
                switch k.string {
                case "truncate_at_fraction":
                    guard let f = v.float, f > 0, f < 1 else { throw ScenarioError(file: path, key: "damage.truncate_at_fraction", message: "must be a number in (0,1)") }
                    spec.truncateAtFraction = f
                case "inject_garbage_every":
                    guard let n = v.int, n > 0 else { throw ScenarioError(file: path, key: "damage.inject_garbage_every", message: "must be a positive integer") }
                    spec.injectGarbageEvery = n
                default: throw ScenarioError(file: path, key: "damage.\(k.string ?? "?")", message: "unknown damage key")
                }
            }
            s.damage = spec
        }
        if let e = dict["expect"] {
            guard let m = e.mapping else { throw ScenarioError(file: path, key: "expect", message: "must be a mapping") }
            s.expectedDigest = m["digest"]?.string
        }
        return s
    }
}
