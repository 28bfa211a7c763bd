import Foundation
import TapeCore
import TapeClock
import TapeHTTP

/// How one attempt to deliver a message ended.
enum DeliveryOutcome: Equatable {
    case delivered
    /// Worth another attempt (5xx, 429, no connection, timeout); `retryAfterNanoseconds` when the
    /// server said how long to wait.
    case retryable(String, retryAfterNanoseconds: Int64?)
    /// Sending again cannot help (4xx other than 429, a refused login, a malformed URL).
    case permanent(String)
}

/// One destination. Used on the sender's thread only (its client is not shared).
protocol AlertChannel: AnyObject {
    var name: String { get }
    /// `host[:port]`, for log lines (never a path, a key or a password).
    var peer: String { get }
    func deliver(_ message: AlertMessage) -> DeliveryOutcome
}

/// Slack incoming webhook: `POST <webhook URL>` with `{"text": "…"}` (api.slack.com/messaging/webhooks).
final class SlackChannel: AlertChannel {
    let name = "slack"
    let webhookURL: String
    let timeoutMilliseconds: Int
    private var client: HTTPClient?

    init(webhookURL: String, timeoutMilliseconds: Int) {
        self.webhookURL = webhookURL
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    var peer: String { HTTPClient.host(of: webhookURL) }

    /// The request body (JSON, one `text` field).
    static func body(_ message: AlertMessage) -> [UInt8] {
        Array(JSONValue.object([("text", .string(message.slackText))]).renderCompact().utf8)
    }

    func deliver(_ message: AlertMessage) -> DeliveryOutcome {
        do {
            if client == nil {
                client = try HTTPClient(timeoutMilliseconds: timeoutMilliseconds, bodyBytesMax: 64 << 10)
            }
            // The webhook's path is its secret: errors name the host only, and the URL is redacted.
            let response = try client!.post(webhookURL, body: SlackChannel.body(message),
                                            headers: ["Content-Type: application/json"], redacting: webhookURL)
            switch response.status {
            case 200..<300:
                return .delivered
            case 429, 500..<600:
                return .retryable("HTTP \(response.status)",
                                  retryAfterNanoseconds: response.retryAfterSeconds.map { Int64($0) * 1_000_000_000 })
            default:
                let text = String(decoding: response.body.prefix(200), as: UTF8.self)
                return .permanent("HTTP \(response.status): \(Redaction.redact(text, secret: webhookURL))")
            }
        } catch let error as HTTPError {
            client = nil  // a fresh connection next time
            return .retryable(error.description, retryAfterNanoseconds: nil)
        } catch {
            client = nil
            return .retryable("\(error)", retryAfterNanoseconds: nil)
        }
    }
}

/// Email over SMTP (libcurl through `MailClient`): one plain-text message to every recipient.
final class EmailChannel: AlertChannel {
    let name = "email"
    let server: MailServer
    let from: String
    let to: [String]
    let timeoutMilliseconds: Int
    private var client: MailClient?
    private var sequence = 0

    init(server: MailServer, from: String, to: [String], timeoutMilliseconds: Int) {
        self.server = server
        self.from = from
        self.to = to
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    var peer: String { server.host }

    func deliver(_ message: AlertMessage) -> DeliveryOutcome {
        sequence += 1
        let now = WallClock.nanos()
        let domain = from.split(separator: "@").last.map(String.init) ?? "tape"
        let mail = MailMessage(from: from, to: to, subject: message.subject, body: message.body,
                               dateSeconds: Int(now / 1_000_000_000),
                               messageID: "tape-\(now)-\(getpid())-\(sequence)@\(domain)")
        do {
            if client == nil { client = try MailClient(timeoutMilliseconds: timeoutMilliseconds) }
            try client!.send(server, from: from, to: to, message: mail.bytes)
            return .delivered
        } catch let error as MailError {
            client = nil
            if error.isPermanent { return .permanent(error.description) }
            return .retryable(error.description, retryAfterNanoseconds: nil)
        } catch {
            client = nil
            return .retryable("\(error)", retryAfterNanoseconds: nil)
        }
    }
}
