import Foundation
import CCurl

/// A mail transfer that did not complete (no connection, refused sender or recipient, login denied,
/// timeout). Names the server (`host[:port]`), never the user or the password.
public struct MailError: Error, Sendable, CustomStringConvertible {
    public var host: String
    public var message: String
    /// libcurl's code (`CURLE_…`), for the caller's retry decision (`isPermanent`).
    public var code: Int
    public init(host: String, message: String, code: Int) {
        self.host = host
        self.message = message
        self.code = code
    }
    public var description: String { "SMTP \(host): \(message)" }

    /// Sending again cannot help: a malformed URL, an unsupported protocol, the login refused, a server
    /// without the TLS that credentials require.
    public var isPermanent: Bool {
        [Int(CURLE_URL_MALFORMAT.rawValue), Int(CURLE_UNSUPPORTED_PROTOCOL.rawValue),
         Int(CURLE_LOGIN_DENIED.rawValue), Int(CURLE_USE_SSL_FAILED.rawValue)].contains(code)
    }
}

/// One mail server's address and credentials: `smtp://host:port` (STARTTLS when offered, required as
/// soon as credentials are given, so a password never crosses the network in clear) or
/// `smtps://host:port` (TLS from the first byte).
public struct MailServer: Sendable {
    public var url: String
    public var username: String?
    public var password: String?
    public init(url: String, username: String? = nil, password: String? = nil) {
        self.url = url
        self.username = username
        self.password = password
    }
    public var host: String { HTTPClient.host(of: url) }
}

/// Sends one message over SMTP with libcurl (this module is the only code touching it): `MAIL FROM`,
/// one `RCPT TO` per recipient, the message uploaded as given (RFC 5322 text with CRLF line ends; see
/// `MailMessage`). Blocking; one client per thread that uses it.
///
/// ```swift
/// let mail = try MailClient(timeoutMilliseconds: 10_000)
/// try mail.send(MailServer(url: "smtp://127.0.0.1:2525"), from: "tape@example.com",
///               to: ["oncall@example.com"], message: MailMessage(…).bytes)
/// ```
///
/// Contract: returns when the server accepted the message for every recipient; otherwise throws a
/// `MailError` naming the server, with the password removed from its text. Each transfer ends after
/// `timeoutMilliseconds` (connect + dialogue + upload).
public final class MailClient {
    public let timeoutMilliseconds: Int
    /// Recipients per message, at most.
    public static let recipientsMax = 100
    /// A message larger than this is refused before connecting.
    public static let messageBytesMax = 1 << 20

    private let handle: UnsafeMutableRawPointer
    private let errorText: UnsafeMutablePointer<CChar>

    public init(timeoutMilliseconds: Int = 10_000) throws {
        precondition(timeoutMilliseconds > 0, "MailClient timeout must be positive")
        precondition(HTTPClient.curlReady, "curl_global_init failed")
        guard let handle = curl_easy_init() else {
            throw MailError(host: "-", message: "curl_easy_init failed", code: -1)
        }
        self.handle = handle
        self.timeoutMilliseconds = timeoutMilliseconds
        errorText = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorText.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    }

    deinit {
        curl_easy_cleanup(handle)
        errorText.deallocate()
    }

    /// Sends `message` (the whole RFC 5322 text) from `from` to every address of `to` (bare addresses,
    /// `name@host`; at least one, at most `recipientsMax`).
    public func send(_ server: MailServer, from: String, to: [String], message: [UInt8]) throws(MailError) {
        let host = server.host
        guard !to.isEmpty, to.count <= MailClient.recipientsMax else {
            throw MailError(host: host, message: "\(to.count) recipients (1 ... \(MailClient.recipientsMax))", code: -1)
        }
        guard message.count <= MailClient.messageBytesMax else {
            let limit = MailClient.messageBytesMax
            throw MailError(host: host, message: "message of \(message.count) bytes (at most \(limit))", code: -1)
        }
        let forbidden: Set<Character> = ["\r", "\n", "<", ">"]
        for address in [from] + to where address.contains(where: { forbidden.contains($0) }) {
            throw MailError(host: host, message: "an address holds a line break or an angle bracket", code: -1)
        }
        curl_easy_reset(handle)
        errorText[0] = 0
        var recipients: UnsafeMutablePointer<curl_slist>? = nil
        for address in to {
            guard let appended = curl_slist_append(recipients, "<\(address)>") else {
                curl_slist_free_all(recipients)
                throw MailError(host: host, message: "curl_slist_append failed", code: -1)
            }
            recipients = appended
        }
        let reader = UploadReader(message)
        defer {
            _ = tape_curl_setopt_pointer(handle, CURLOPT_MAIL_RCPT, nil)
            _ = tape_curl_setopt_pointer(handle, CURLOPT_READDATA, nil)
            curl_slist_free_all(recipients)
        }
        let context = Unmanaged.passUnretained(reader).toOpaque()
        let useTLS = server.url.lowercased().hasPrefix("smtps://") || server.username != nil
            ? Int(CURLUSESSL_ALL.rawValue) : Int(CURLUSESSL_TRY.rawValue)
        var code = server.url.withCString { tape_curl_setopt_pointer(handle, CURLOPT_URL, $0) }
        let options: [(CURLoption, Int)] = [
            (CURLOPT_NOSIGNAL, 1), (CURLOPT_UPLOAD, 1), (CURLOPT_INFILESIZE, message.count),
            (CURLOPT_TIMEOUT_MS, timeoutMilliseconds), (CURLOPT_CONNECTTIMEOUT_MS, timeoutMilliseconds),
            (CURLOPT_USE_SSL, useTLS),
        ]
        for (option, value) in options where code == CURLE_OK { code = tape_curl_setopt_long(handle, option, value) }
        if code == CURLE_OK { code = tape_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorText) }
        if code == CURLE_OK {
            code = "<\(from)>".withCString { tape_curl_setopt_pointer(handle, CURLOPT_MAIL_FROM, $0) }
        }
        if code == CURLE_OK { code = tape_curl_setopt_pointer(handle, CURLOPT_MAIL_RCPT, recipients) }
        if code == CURLE_OK { code = tape_curl_setopt_callback(handle, CURLOPT_READFUNCTION, mailClientRead) }
        if code == CURLE_OK { code = tape_curl_setopt_pointer(handle, CURLOPT_READDATA, context) }
        if code == CURLE_OK, let username = server.username {
            code = username.withCString { tape_curl_setopt_pointer(handle, CURLOPT_USERNAME, $0) }
        }
        if code == CURLE_OK, let password = server.password {
            code = password.withCString { tape_curl_setopt_pointer(handle, CURLOPT_PASSWORD, $0) }
        }
        if code == CURLE_OK { code = curl_easy_perform(handle) }
        // The password is not kept in the handle between messages.
        _ = tape_curl_setopt_pointer(handle, CURLOPT_PASSWORD, nil)
        if code != CURLE_OK {
            let detail = String(cString: errorText)
            let text = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
            let message = Redaction.redact(text, secret: server.password) + " (curl \(code.rawValue))"
            throw MailError(host: host, message: message, code: Int(code.rawValue))
        }
        assert(reader.offset == message.count, "a sent message was read whole")
    }
}

/// The bytes of one upload and how far libcurl has read them.
final class UploadReader {
    let bytes: [UInt8]
    var offset = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }
}

private let mailClientRead: tape_curl_data_callback = { buffer, size, count, context in
    let reader = Unmanaged<UploadReader>.fromOpaque(context!).takeUnretainedValue()
    let room = size * count
    let length = min(room, reader.bytes.count - reader.offset)
    guard length > 0, let buffer else { return 0 }
    reader.bytes.withUnsafeBytes { source in
        UnsafeMutableRawPointer(buffer).copyMemory(from: source.baseAddress! + reader.offset, byteCount: length)
    }
    reader.offset += length
    return length
}

/// One plain-text message in RFC 5322 form: `From`, `To`, `Subject` (RFC 2047 encoded when not ASCII),
/// `Date`, `Message-ID`, MIME headers for UTF-8 text, a blank line, the body with CRLF line ends and
/// dot-stuffing left to libcurl (it escapes a leading `.` itself).
public struct MailMessage: Sendable {
    public var from: String
    public var to: [String]
    public var subject: String
    public var body: String
    /// Seconds since the Unix epoch, for the `Date` header.
    public var dateSeconds: Int
    public var messageID: String

    public init(from: String, to: [String], subject: String, body: String, dateSeconds: Int, messageID: String) {
        self.from = from
        self.to = to
        self.subject = subject
        self.body = body
        self.dateSeconds = dateSeconds
        self.messageID = messageID
    }

    public var bytes: [UInt8] {
        var lines = [
            "From: <\(from)>",
            "To: " + to.map { "<\($0)>" }.joined(separator: ", "),
            "Subject: " + MailMessage.encodedHeader(MailMessage.oneLine(subject)),
            "Date: " + MailMessage.rfc5322Date(dateSeconds),
            "Message-ID: <\(messageID)>",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 8bit",
            "",
        ]
        lines += body.split(separator: "\n", omittingEmptySubsequences: false).map {
            String($0.hasSuffix("\r") ? $0.dropLast() : $0)
        }
        return Array((lines.joined(separator: "\r\n") + "\r\n").utf8)
    }

    static func oneLine(_ text: String) -> String {
        String(text.map { $0 == "\r" || $0 == "\n" ? " " : $0 })
    }

    /// ASCII as is; anything else as one RFC 2047 base64 word.
    static func encodedHeader(_ text: String) -> String {
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return text }
        return "=?utf-8?B?" + Data(text.utf8).base64EncodedString() + "?="
    }

    static func rfc5322Date(_ seconds: Int) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let weekday = days[Int(parts.tm_wday)], month = months[Int(parts.tm_mon)]
        let day = "\(weekday), \(two(parts.tm_mday)) \(month) \(parts.tm_year + 1900)"
        return day + " \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) +0000"
    }
}
