import Crypto
import Foundation
import Yams

/// `config/serve.yaml`: who may read and write, and how fast (docs/serving.md).
///
/// ```yaml
/// auth:
///   read: open                 # open | key (every /api/v1 read then needs a key)
///   keys:                      # X-API-Key values, stored as SHA-256 hex: `tape serve hash-key KEY`
///     - {name: ops, sha256: "9f86d0…", scopes: [read, admin]}
/// rate_limits:
///   per_key: {rate_per_second: 100, burst: 200}
///   per_ip: {rate_per_second: 50, burst: 100}
/// ```
///
/// Keys are never stored in clear: a request's `X-API-Key` is hashed and looked up. A key without
/// `admin` in its scopes reads only (admin endpoints answer it 403).
public struct ServeConfig: Sendable, Equatable {
    public enum ReadAccess: String, Sendable, Equatable {
        case open, key
    }

    public struct APIKey: Sendable, Equatable {
        public var name: String
        /// SHA-256 of the key, lowercase hex.
        public var sha256: String
        public var admin: Bool
        public init(name: String, sha256: String, admin: Bool) {
            self.name = name
            self.sha256 = sha256
            self.admin = admin
        }
    }

    /// A token bucket: `ratePerSecond` tokens added per second, at most `burst` held.
    public struct Limit: Sendable, Equatable {
        public var ratePerSecond: Double
        public var burst: Double
        public init(ratePerSecond: Double, burst: Double) {
            precondition(ratePerSecond > 0 && burst >= 1, "a rate limit adds tokens and holds at least one")
            self.ratePerSecond = ratePerSecond
            self.burst = burst
        }
    }

    public var read: ReadAccess = .open
    public var keys: [APIKey] = []
    public var perKey = Limit(ratePerSecond: 100, burst: 200)
    public var perIP = Limit(ratePerSecond: 50, burst: 100)

    public init() {}

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// SHA-256 of a key, lowercase hex: what `keys[].sha256` holds.
    public static func hash(key: String) -> String {
        SHA256.hash(data: Data(key.utf8)).map { byte in
            let text = String(byte, radix: 16)
            return byte < 16 ? "0" + text : text
        }.joined()
    }

    public static func load(path: String) throws -> ServeConfig {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw Invalid(description: "cannot read: \(error.localizedDescription)")
        }
        return try parse(text)
    }

    public static func parse(_ text: String) throws -> ServeConfig {
        var config = ServeConfig()
        guard let loaded = try Yams.load(yaml: text) else { return config }
        guard let root = loaded as? [String: Any] else { throw Invalid(description: "expected a mapping at the top") }
        for key in root.keys where !["auth", "rate_limits"].contains(key) {
            throw Invalid(description: "\(key): unknown key (auth, rate_limits)")
        }
        if let auth = root["auth"] {
            guard let auth = auth as? [String: Any] else { throw Invalid(description: "auth: expected a mapping") }
            if let read = auth["read"] {
                guard let text = read as? String, let access = ReadAccess(rawValue: text) else {
                    throw Invalid(description: "auth.read: expected open or key")
                }
                config.read = access
            }
            if let keys = auth["keys"] {
                guard let list = keys as? [Any] else { throw Invalid(description: "auth.keys: expected a list") }
                for (index, item) in list.enumerated() {
                    guard let entry = item as? [String: Any], let name = entry["name"] as? String, !name.isEmpty,
                          let hash = (entry["sha256"] as? String)?.lowercased() else {
                        throw Invalid(description: "auth.keys[\(index)]: expected {name, sha256, scopes}")
                    }
                    guard hash.count == 64, hash.allSatisfy({ $0.isHexDigit }) else {
                        throw Invalid(description: "auth.keys[\(index)].sha256: expected 64 hex digits "
                                      + "(tape serve hash-key KEY prints them)")
                    }
                    let scopes = entry["scopes"] as? [String] ?? ["read"]
                    for scope in scopes where !["read", "admin"].contains(scope) {
                        throw Invalid(description: "auth.keys[\(index)].scopes: \(scope): expected read, admin")
                    }
                    config.keys.append(APIKey(name: name, sha256: hash, admin: scopes.contains("admin")))
                }
            }
        }
        if let limits = root["rate_limits"] {
            guard let limits = limits as? [String: Any] else {
                throw Invalid(description: "rate_limits: expected a mapping")
            }
            func limit(_ name: String, _ fallback: Limit) throws -> Limit {
                guard let value = limits[name] else { return fallback }
                func number(_ field: String) -> Double? {
                    (value as? [String: Any]).flatMap { entry in
                        (entry[field] as? Double) ?? (entry[field] as? Int).map(Double.init)
                    }
                }
                guard let rate = number("rate_per_second"), let burst = number("burst"),
                      rate > 0, rate <= 1_000_000, burst >= 1, burst <= 1_000_000 else {
                    throw Invalid(description: "rate_limits.\(name): expected {rate_per_second: > 0, burst: >= 1}")
                }
                return Limit(ratePerSecond: rate, burst: burst)
            }
            config.perKey = try limit("per_key", config.perKey)
            config.perIP = try limit("per_ip", config.perIP)
        }
        return config
    }
}
