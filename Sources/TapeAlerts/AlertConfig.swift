import Foundation
import TapeCore
import TapeGraph
import Yams

/// `--alerts config/alerts.yaml`: where alerts go and which ones (docs/alerts.md). Secrets — the Slack
/// webhook URL, the SMTP password — are never in the file: the file names the environment variables
/// that hold them.
///
/// ```yaml
/// channels:
///   slack: {webhook_url_env: TAPE_SLACK_WEBHOOK_URL}
///   email: {smtp_url: "smtp://mail.example.com:587", from: tape@example.com, to: [oncall@example.com],
///           username_env: TAPE_SMTP_USER, password_env: TAPE_SMTP_PASSWORD}
/// rules:
///   price_spike: {slack: warning, email: critical}
///   "*": {slack: critical}
/// dedupe_window: 10m
/// rate_limit: {burst: 5, per_minute: 6}
/// ```
public struct AlertConfig: Sendable, Equatable {
    /// One channel's settings (`slack` or `email`).
    public enum Channel: Sendable, Equatable {
        case slack(webhookURL: String)
        case email(server: MailServerSettings, from: String, to: [String])

        public var name: String {
            switch self {
            case .slack: return "slack"
            case .email: return "email"
            }
        }
    }

    /// `smtp://` or `smtps://` URL with credentials read from the environment.
    public struct MailServerSettings: Sendable, Equatable {
        public var url: String
        public var username: String?
        public var password: String?
    }

    /// Channels in the order configured (at most one of each kind).
    public var channels: [Channel]
    /// Per rule (anomaly rule or fault name; `*` for every rule not listed): per channel name, the lowest
    /// severity sent. A rule or channel not named is off.
    public var thresholds: [String: [String: Severity]]
    /// Within this long after an alert of a rule and subject was sent to a channel, more of the same
    /// (no higher severity) are counted, not sent; the next one sent carries the count.
    public var dedupeWindowNanoseconds: Int64 = 10 * 60 * 1_000_000_000
    /// Token bucket per channel: at most `burst` at once, refilled at `perMinute`.
    public var rateLimitBurst = 5
    public var rateLimitPerMinute = 6.0
    /// Attempts per message (the first included) for 5xx, 429 and connection errors.
    public var attemptsMax = 4
    public var backoffInitialNanoseconds: Int64 = 500_000_000
    public var backoffMaxNanoseconds: Int64 = 10_000_000_000
    /// Messages waiting to be sent, all channels together; beyond it a message is dropped and counted.
    public var queueCapacity = 1_000
    /// One request (connect + send + answer) ends after this long.
    public var requestTimeoutNanoseconds: Int64 = 5_000_000_000
    /// At the end of a run, the sender gets at most this long to finish what is queued.
    public var closeWaitNanoseconds: Int64 = 2_000_000_000
    /// Added to every message: which Tape this is (e.g. `prod-eu`); default the host name.
    public var source: String

    public static let anyRule = "*"

    /// The lowest severity of `rule` sent to `channel`, nil when off.
    public func threshold(rule: String, channel: String) -> Severity? {
        (thresholds[rule] ?? thresholds[AlertConfig.anyRule])?[channel]
    }

    public init(channels: [Channel], thresholds: [String: [String: Severity]], source: String) {
        self.channels = channels
        self.thresholds = thresholds
        self.source = source
    }

    /// Reads and checks a config file; `environment` supplies the secrets the file names.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(AlertConfigError) -> AlertConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AlertConfigError(path: path, key: "", message: "cannot read the file")
        }
        return try parse(yaml: String(decoding: data, as: UTF8.self), path: path, environment: environment)
    }

    public static func parse(yaml: String, path: String = "alerts", environment: [String: String])
        throws(AlertConfigError) -> AlertConfig {
        var reader = Reader(path: path, environment: environment)
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: yaml) else {
                throw AlertConfigError(path: path, key: "", message: "empty file")
            }
            root = node
        } catch let error as AlertConfigError {
            throw error
        } catch {
            throw AlertConfigError(path: path, key: "", message: "not valid YAML: \(error)")
        }
        return try reader.config(root)
    }
}

/// A config that cannot be used: names the file, the key and what was expected.
public struct AlertConfigError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var key: String
    public var message: String
    public var description: String { key.isEmpty ? "\(path): \(message)" : "\(path): \(key): \(message)" }
}

private struct Reader {
    let path: String
    let environment: [String: String]

    func fail(_ key: String, _ message: String) -> AlertConfigError {
        AlertConfigError(path: path, key: key, message: message)
    }

    func mapping(_ node: Node, _ key: String, allowed: Set<String>) throws(AlertConfigError) -> [(String, Node)] {
        guard let mapping = node.mapping else { throw fail(key, "expected a mapping") }
        var pairs: [(String, Node)] = []
        for (keyNode, value) in mapping {
            guard let name = keyNode.string else { throw fail(key, "keys are strings") }
            let full = key.isEmpty ? name : "\(key).\(name)"
            if !allowed.isEmpty && !allowed.contains(name) {
                throw fail(full, "unknown key (expected one of \(allowed.sorted().joined(separator: ", ")))")
            }
            pairs.append((name, value))
        }
        return pairs
    }

    func string(_ node: Node, _ key: String) throws(AlertConfigError) -> String {
        guard let text = node.string, !text.isEmpty else { throw fail(key, "expected a non-empty string") }
        return text
    }

    /// The value of the environment variable the file names (`…_env: NAME`).
    func secret(_ node: Node, _ key: String) throws(AlertConfigError) -> String {
        let name = try string(node, key)
        guard let value = environment[name], !value.isEmpty else {
            throw fail(key, "environment variable \(name) is not set")
        }
        return value
    }

    func integer(_ node: Node, _ key: String, _ range: ClosedRange<Int>) throws(AlertConfigError) -> Int {
        guard let value = node.int, range.contains(value) else {
            throw fail(key, "expected an integer in \(range.lowerBound) ... \(range.upperBound)")
        }
        return value
    }

    func number(_ node: Node, _ key: String, _ range: ClosedRange<Double>) throws(AlertConfigError) -> Double {
        guard let value = node.float, range.contains(value) else {
            let bounds = "\(Numbers.format(range.lowerBound)) ... \(Numbers.format(range.upperBound))"
            throw fail(key, "expected a number in \(bounds)")
        }
        return value
    }

    func duration(_ node: Node, _ key: String, max: Int64 = 7 * 86_400_000_000_000) throws(AlertConfigError) -> Int64 {
        guard let text = node.string, let value = parseDuration(text), value >= 0, value <= max else {
            throw fail(key, "expected a duration such as 500ms, 30s, 10m, 1h (at most 7 days)")
        }
        return value
    }

    mutating func config(_ root: Node) throws(AlertConfigError) -> AlertConfig {
        let host = ProcessInfo.processInfo.hostName
        var config = AlertConfig(channels: [], thresholds: [:], source: host.isEmpty ? "tape" : host)
        let keys: Set<String> = ["channels", "rules", "dedupe_window", "rate_limit", "retries", "queue_capacity",
                                 "request_timeout", "close_wait", "source"]
        for (key, value) in try mapping(root, "", allowed: keys) {
            switch key {
            case "channels": config.channels = try channels(value)
            case "rules": config.thresholds = try rules(value)
            case "dedupe_window": config.dedupeWindowNanoseconds = try duration(value, key)
            case "rate_limit":
                for (name, item) in try mapping(value, key, allowed: ["burst", "per_minute"]) {
                    let full = "\(key).\(name)"
                    if name == "burst" { config.rateLimitBurst = try integer(item, full, 1...10_000) }
                    if name == "per_minute" { config.rateLimitPerMinute = try number(item, full, 0.01...10_000) }
                }
            case "retries":
                for (name, item) in try mapping(value, key, allowed: ["attempts", "initial_backoff", "max_backoff"]) {
                    let full = "\(key).\(name)"
                    if name == "attempts" {
                        config.attemptsMax = try integer(item, full, 1...20)
                        continue
                    }
                    let wait = try duration(item, full)
                    if name == "initial_backoff" {
                        config.backoffInitialNanoseconds = max(1_000_000, wait)
                    } else {
                        config.backoffMaxNanoseconds = max(1_000_000, wait)
                    }
                }
                if config.backoffMaxNanoseconds < config.backoffInitialNanoseconds {
                    throw fail(key, "max_backoff is below initial_backoff")
                }
            case "queue_capacity": config.queueCapacity = try integer(value, key, 1...1_000_000)
            case "request_timeout":
                config.requestTimeoutNanoseconds = try duration(value, key, max: 300_000_000_000)
                if config.requestTimeoutNanoseconds < 1_000_000 { throw fail(key, "at least 1ms") }
            case "close_wait": config.closeWaitNanoseconds = try duration(value, key, max: 300_000_000_000)
            default: config.source = try string(value, key)
            }
        }
        guard !config.channels.isEmpty else { throw fail("channels", "name at least one channel (slack, email)") }
        let names = Set(config.channels.map(\.name))
        for (rule, perChannel) in config.thresholds {
            for channel in perChannel.keys where !names.contains(channel) {
                let have = names.sorted().joined(separator: ", ")
                throw fail("rules.\(rule).\(channel)", "no such channel under channels (have \(have))")
            }
        }
        return config
    }

    func channels(_ node: Node) throws(AlertConfigError) -> [AlertConfig.Channel] {
        var channels: [AlertConfig.Channel] = []
        for (name, value) in try mapping(node, "channels", allowed: ["slack", "email"]) {
            let key = "channels.\(name)"
            if name == "slack" {
                var url: String? = nil
                for (field, item) in try mapping(value, key, allowed: ["webhook_url_env"]) {
                    url = try secret(item, "\(key).\(field)")
                }
                guard let url else { throw fail(key, "webhook_url_env names the variable holding the webhook URL") }
                guard url.hasPrefix("https://") || url.hasPrefix("http://") else {
                    throw fail("\(key).webhook_url_env",
                               "the webhook URL must start with https:// (or http:// on loopback)")
                }
                channels.append(.slack(webhookURL: url))
            } else {
                var server = AlertConfig.MailServerSettings(url: "")
                var from = ""
                var to: [String] = []
                let allowed: Set<String> = ["smtp_url", "smtp_url_env", "from", "to", "username_env", "password_env"]
                for (field, item) in try mapping(value, key, allowed: allowed) {
                    let full = "\(key).\(field)"
                    switch field {
                    case "smtp_url": server.url = try string(item, full)
                    case "smtp_url_env": server.url = try secret(item, full)
                    case "from": from = try string(item, full)
                    case "to":
                        if let single = item.string { to = [single] } else {
                            guard let list = item.sequence else { throw fail(full, "expected an address or a list") }
                            for address in list { to.append(try string(address, full)) }
                        }
                    case "username_env": server.username = try secret(item, full)
                    default: server.password = try secret(item, full)
                    }
                }
                let lower = server.url.lowercased()
                guard lower.hasPrefix("smtp://") || lower.hasPrefix("smtps://") else {
                    throw fail(key, "smtp_url (or smtp_url_env) must be smtp://host:port or smtps://host:port")
                }
                guard lower.firstIndex(of: "@") == nil else {
                    throw fail(key, "no credentials in smtp_url: use username_env and password_env")
                }
                guard from.contains("@") else { throw fail("\(key).from", "expected an address") }
                guard !to.isEmpty, to.count <= 100, to.allSatisfy({ $0.contains("@") }) else {
                    throw fail("\(key).to", "expected 1 ... 100 addresses")
                }
                if (server.username == nil) != (server.password == nil) {
                    throw fail(key, "give both username_env and password_env, or neither")
                }
                channels.append(.email(server: server, from: from, to: to))
            }
        }
        return channels
    }

    func rules(_ node: Node) throws(AlertConfigError) -> [String: [String: Severity]] {
        var rules: [String: [String: Severity]] = [:]
        for (rule, value) in try mapping(node, "rules", allowed: []) {
            var perChannel: [String: Severity] = [:]
            for (channel, item) in try mapping(value, "rules.\(rule)", allowed: []) {
                let key = "rules.\(rule).\(channel)"
                let text = try string(item, key)
                if text == "off" { continue }
                guard let severity = Severity(rawValue: text) else {
                    throw fail(key, "expected info, warning, critical or off")
                }
                perChannel[channel] = severity
            }
            rules[rule] = perChannel
        }
        return rules
    }
}
