import Foundation
import CCurl

/// One HTTP response: the status, the headers Tape uses, the body bytes.
public struct HTTPResponse: Sendable {
    public var status: Int
    /// `Retry-After` in seconds when the server sent one as a number (429, 503), else nil.
    public var retryAfterSeconds: Int?
    public var body: [UInt8]

    public init(status: Int, retryAfterSeconds: Int? = nil, body: [UInt8]) {
        self.status = status
        self.retryAfterSeconds = retryAfterSeconds
        self.body = body
    }
}

/// A transfer that did not produce a response (no connection, timeout, body too large). Names the
/// method and the host, never the URL's path, query string or user information (which may hold a key
/// or a password).
public struct HTTPError: Error, Sendable, CustomStringConvertible {
    /// `GET` or `POST`.
    public var method: String
    /// `host[:port]`.
    public var host: String
    public var message: String
    public init(method: String, host: String, message: String) {
        self.method = method
        self.host = host
        self.message = message
    }
    public var description: String { "\(method) \(host): \(message)" }
}

/// The one piece of code that touches libcurl: blocking GETs and POSTs on one reused easy handle
/// (connections are kept alive between requests). Not thread-safe: one client per thread that uses it.
///
/// ```swift
/// let client = try HTTPClient(timeoutMilliseconds: 5_000)
/// let response = try client.get("https://www.alphavantage.co/query?function=…", redacting: apiKey)
/// let written = try client.post("http://127.0.0.1:58086/write?db=tape", body: gzipped,
///                               headers: ["Content-Encoding: gzip"])
/// ```
///
/// Contract: every status is a response (the caller decides what 429, 401 or 500 means); only a
/// transfer that produced no response throws, with an `HTTPError` naming the method and the host, and
/// `secret` removed from its text. Redirects are not followed. Each request ends after
/// `timeoutMilliseconds` (connect + request + body).
public final class HTTPClient {
    /// The whole transfer (connect + request + body) ends after this long.
    public let timeoutMilliseconds: Int
    /// A body longer than this ends the transfer with an error (Alpha Vantage `outputsize=full` is a
    /// few MB; nothing Tape polls comes near this).
    public let bodyBytesMax: Int
    public static let bodyBytesMaxDefault = 32 << 20
    /// Request headers per request, at most; each at most `headerBytesMax` bytes.
    public static let headersMax = 32
    public static let headerBytesMax = 8 << 10

    private let handle: UnsafeMutableRawPointer
    private let errorText: UnsafeMutablePointer<CChar>
    private let buffer = TransferBuffer()

    public init(timeoutMilliseconds: Int = 10_000, bodyBytesMax: Int = HTTPClient.bodyBytesMaxDefault) throws {
        precondition(timeoutMilliseconds > 0 && bodyBytesMax > 0, "HTTPClient limits must be positive")
        precondition(HTTPClient.globalInit == CURLE_OK, "curl_global_init failed")
        guard let handle = curl_easy_init() else {
            throw HTTPError(method: "-", host: "-", message: "curl_easy_init failed")
        }
        self.handle = handle
        self.timeoutMilliseconds = timeoutMilliseconds
        self.bodyBytesMax = bodyBytesMax
        errorText = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorText.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        buffer.bodyBytesMax = bodyBytesMax
    }

    deinit {
        curl_easy_cleanup(handle)
        errorText.deallocate()
    }

    /// GETs `url`. Any status is a response; a transfer failure throws `HTTPError` naming the host, with
    /// `secret` (the API key) removed from its text.
    public func get(_ url: String, redacting secret: String? = nil) throws(HTTPError) -> HTTPResponse {
        try perform(method: "GET", url: url, body: nil, headers: [], secret: secret)
    }

    /// POSTs `body` to `url` with the given request headers (`"Content-Encoding: gzip"`, ...; at most
    /// `headersMax`, none with a line break). libcurl's `Expect: 100-continue` is turned off (one round
    /// trip per request). Any status is a response; a transfer failure throws `HTTPError` naming the
    /// host, with `secret` removed from its text.
    public func post(_ url: String, body: [UInt8], headers: [String] = [],
                     redacting secret: String? = nil) throws(HTTPError) -> HTTPResponse {
        try perform(method: "POST", url: url, body: body, headers: headers, secret: secret)
    }

    private func perform(method: String, url: String, body: [UInt8]?, headers: [String],
                         secret: String?) throws(HTTPError) -> HTTPResponse {
        let host = HTTPClient.host(of: url)
        guard headers.count <= HTTPClient.headersMax else {
            throw HTTPError(method: method, host: host, message: "\(headers.count) request headers (at most "
                            + "\(HTTPClient.headersMax))")
        }
        for header in headers where header.utf8.count > HTTPClient.headerBytesMax
            || header.contains(where: { $0 == "\r" || $0 == "\n" }) {
            throw HTTPError(method: method, host: host,
                            message: "a request header is too long or holds a line break")
        }
        buffer.reset()
        errorText[0] = 0
        // The header list lives until the transfer is over; the handle forgets it before it is freed.
        var headerList: UnsafeMutablePointer<curl_slist>? = nil
        for header in (body == nil ? headers : headers + ["Expect:"]) {
            guard let appended = curl_slist_append(headerList, header) else {
                curl_slist_free_all(headerList)
                throw HTTPError(method: method, host: host, message: "curl_slist_append failed")
            }
            headerList = appended
        }
        defer {
            _ = tape_curl_setopt_pointer(handle, CURLOPT_HTTPHEADER, nil)
            curl_slist_free_all(headerList)
        }
        let context = Unmanaged.passUnretained(buffer).toOpaque()
        var code = url.withCString { tape_curl_setopt_pointer(handle, CURLOPT_URL, $0) }
        let options: [(CURLoption, Int)] = [
            (CURLOPT_NOSIGNAL, 1), (CURLOPT_FOLLOWLOCATION, 0),
            (CURLOPT_TIMEOUT_MS, timeoutMilliseconds), (CURLOPT_CONNECTTIMEOUT_MS, timeoutMilliseconds),
        ]
        for (option, value) in options where code == CURLE_OK { code = tape_curl_setopt_long(handle, option, value) }
        if code == CURLE_OK { code = tape_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorText) }
        if code == CURLE_OK {
            code = tape_curl_setopt_pointer(handle, CURLOPT_USERAGENT, UnsafeRawPointer(HTTPClient.userAgent.utf8Start))
        }
        if code == CURLE_OK { code = tape_curl_setopt_pointer(handle, CURLOPT_HTTPHEADER, headerList) }
        if code == CURLE_OK { code = tape_curl_setopt_callback(handle, CURLOPT_WRITEFUNCTION, httpClientWrite) }
        if code == CURLE_OK { code = tape_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, context) }
        if code == CURLE_OK { code = tape_curl_setopt_callback(handle, CURLOPT_HEADERFUNCTION, httpClientHeader) }
        if code == CURLE_OK { code = tape_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, context) }
        if code != CURLE_OK { throw failure(method, host, code, secret) }
        if let body {
            // POSTFIELDS points into `body` for the duration of the transfer only; cleared afterwards so
            // the handle never holds a dangling pointer.
            code = body.withUnsafeBytes { bytes in
                var result = tape_curl_setopt_long(handle, CURLOPT_POST, 1)
                if result == CURLE_OK { result = tape_curl_setopt_long(handle, CURLOPT_POSTFIELDSIZE, bytes.count) }
                if result == CURLE_OK {
                    // An empty body still needs a non-null pointer, or libcurl reads from the read callback.
                    let start = bytes.baseAddress ?? UnsafeRawPointer(HTTPClient.userAgent.utf8Start)
                    result = tape_curl_setopt_pointer(handle, CURLOPT_POSTFIELDS, start)
                }
                if result == CURLE_OK { result = curl_easy_perform(handle) }
                _ = tape_curl_setopt_pointer(handle, CURLOPT_POSTFIELDS, nil)
                return result
            }
        } else {
            code = tape_curl_setopt_long(handle, CURLOPT_HTTPGET, 1)
            if code == CURLE_OK { code = curl_easy_perform(handle) }
        }
        if buffer.overflowed {
            throw HTTPError(method: method, host: host,
                            message: "body over \(bodyBytesMax) bytes (HTTPClient.bodyBytesMax)")
        }
        if code != CURLE_OK { throw failure(method, host, code, secret) }
        var status = 0
        code = tape_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        if code != CURLE_OK { throw failure(method, host, code, secret) }
        return HTTPResponse(status: status, retryAfterSeconds: buffer.retryAfterSeconds, body: buffer.body)
    }

    private func failure(_ method: String, _ host: String, _ code: CURLcode, _ secret: String?) -> HTTPError {
        let detail = String(cString: errorText)
        let text = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
        return HTTPError(method: method, host: host,
                         message: Redaction.redact(text, secret: secret) + " (curl \(code.rawValue))")
    }

    /// `host[:port]` of a URL (between `://` and the first `/`, `?` or `#`), never the query string.
    public static func host(of url: String) -> String {
        var rest = Substring(url)
        if let schemeEnd = rest.range(of: "://") { rest = rest[schemeEnd.upperBound...] }
        let end = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        let authority = rest[..<end]
        // Drop `user:password@` if present.
        if let at = authority.lastIndex(of: "@") { return String(authority[authority.index(after: at)...]) }
        return String(authority)
    }

    private static let userAgent: StaticString = "tape"
    /// libcurl's process-wide set-up, done once (a Swift static is initialised once, thread-safely).
    private static let globalInit: CURLcode = curl_global_init(Int(CURL_GLOBAL_DEFAULT))
    /// Whether libcurl's process-wide set-up succeeded (done on first use; `MailClient` shares it).
    static var curlReady: Bool { globalInit == CURLE_OK }
}

/// Body and the headers of one transfer; reused across transfers.
final class TransferBuffer {
    var body: [UInt8] = []
    var retryAfterSeconds: Int?
    var overflowed = false
    var bodyBytesMax = HTTPClient.bodyBytesMaxDefault

    func reset() {
        body.removeAll(keepingCapacity: true)
        retryAfterSeconds = nil
        overflowed = false
    }
}

private let httpClientWrite: tape_curl_data_callback = { data, size, count, context in
    let buffer = Unmanaged<TransferBuffer>.fromOpaque(context!).takeUnretainedValue()
    let length = size * count
    if buffer.body.count + length > buffer.bodyBytesMax {
        buffer.overflowed = true
        return 0  // ends the transfer (CURLE_WRITE_ERROR)
    }
    if let data, length > 0 {
        buffer.body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: length))
    }
    return length
}

private let httpClientHeader: tape_curl_data_callback = { data, size, count, context in
    let buffer = Unmanaged<TransferBuffer>.fromOpaque(context!).takeUnretainedValue()
    let length = size * count
    guard let data, length > 0 else { return length }
    let bytes = UnsafeRawBufferPointer(start: data, count: length)
    if bytes.starts(with: "HTTP/".utf8) { buffer.retryAfterSeconds = nil }  // a new response (after a 100)
    guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { return length }
    let name = String(decoding: bytes[..<colon], as: UTF8.self).lowercased()
    if name == "retry-after" {
        let value = bytes[(colon + 1)...].filter { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D && $0 != 0x0A }
        buffer.retryAfterSeconds = Int(String(decoding: value, as: UTF8.self))
    }
    return length
}
