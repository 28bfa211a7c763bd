import Foundation
import TapeFeeds
import TapeHTTP

/// Alpha Vantage polling (https://www.alphavantage.co/documentation/): `GET /query?function=…&apikey=…`.
/// Free tier: 5 calls per minute and 25 per day (`defaultLimits`). Throttled answers are HTTP 200 with a
/// `Note` or `Information` body: counted as throttle notes, backed off and retried. An `Error Message`
/// about the apikey stops the poller (`RESTPollerError.authenticationFailed`); another `Error Message`
/// (unknown symbol) is counted and not retried. Bodies are decoded by `AlphaVantageDecoder`.
public final class AlphaVantagePoller: RESTPoller, @unchecked Sendable {
    public enum Endpoint: Sendable {
        /// `function=TIME_SERIES_INTRADAY&interval=1min&outputsize=compact` (the last 100 bars).
        case intraday1min
        /// `function=GLOBAL_QUOTE`.
        case globalQuote
    }

    public static let defaultBaseURL = "https://www.alphavantage.co"
    public static let keyVariable = "ALPHAVANTAGE_API_KEY"
    public static let defaultLimits: [RateLimit] = [.perMinute(5), .perDay(25)]

    public let endpoint: Endpoint

    /// `apiKey` nil: `ALPHAVANTAGE_API_KEY`. Throws `missingAPIKey` when there is none.
    public convenience init(
        symbols: [String], endpoint: Endpoint, apiKey: String? = nil,
        baseURL: String = AlphaVantagePoller.defaultBaseURL,
        limits: [RateLimit] = AlphaVantagePoller.defaultLimits,
        roundIntervalNanoseconds: Int64 = 60_000_000_000, seed: UInt64 = 1,
        clock: RESTClock = .system, log: @escaping @Sendable (String) -> Void = RESTLog.standardError,
        deliver: @escaping @Sendable (_ body: UnsafeRawBufferPointer) -> Void
    ) throws {
        let key = RESTPollerSettings.apiKey(explicit: apiKey, variable: Self.keyVariable) ?? ""
        let settings = RESTPollerSettings(
            symbols: symbols, baseURL: baseURL, apiKey: key, limits: limits,
            roundIntervalNanoseconds: roundIntervalNanoseconds, seed: seed)
        try self.init(settings: settings, endpoint: endpoint, clock: clock, log: log, deliver: deliver)
    }

    /// Every setting explicit (tests: short backoff, a fake clock).
    public init(
        settings: RESTPollerSettings, endpoint: Endpoint, clock: RESTClock = .system,
        log: @escaping @Sendable (String) -> Void = RESTLog.standardError,
        deliver: @escaping @Sendable (_ body: UnsafeRawBufferPointer) -> Void
    ) throws {
        self.endpoint = endpoint
        let rules = VendorRules(
            vendor: "alphavantage", keyVariable: Self.keyVariable,
            url: { base, symbol, key in
                let query =
                    endpoint == .intraday1min
                    ? "function=TIME_SERIES_INTRADAY&symbol=\(symbol)&interval=1min&outputsize=compact"
                    : "function=GLOBAL_QUOTE&symbol=\(symbol)"
                return "\(base)/query?\(query)&apikey=\(RESTLog.queryEscaped(key))"
            },
            verdict: Self.verdict,
            frame: { _, body in body })
        try super.init(settings: settings, rules: rules, clock: clock, log: log, deliver: deliver)
    }

    static func verdict(_ response: HTTPResponse) -> PollVerdict {
        switch response.status {
        case 200:
            let notice = response.body.withUnsafeBytes { AlphaVantageDecoder.notice(in: $0) }
            switch notice {
            case nil: return .data
            case .note(let text)?, .information(let text)?: return .throttled(text)
            case let error? where error.isAboutAPIKey: return .authenticationFailed(error.text)
            case let error?: return .rejected("Error Message: \(error.text)")
            }
        case 429: return .tooManyRequests
        case 401, 403: return .authenticationFailed(RESTLog.bodyText(response.body))
        case 500...599: return .retryable(RESTLog.bodyText(response.body))
        default: return .rejected(RESTLog.bodyText(response.body))
        }
    }
}

/// Financial Modeling Prep polling: `GET /api/v3/historical-chart/1min/SYM?apikey=…` or
/// `GET /api/v3/quote/SYM?apikey=…` (https://site.financialmodelingprep.com/developer/docs). Limits are
/// per plan (`defaultLimits`: 300 per minute). HTTP 429 (and a 200 `Error Message` saying `Limit
/// Reach`) is backed off and retried; 401/403 stop the poller. A chart body does not name its symbol,
/// so it is delivered wrapped: `{"symbol":"SYM","historical_chart_1min":<body>}`. Bodies are decoded by
/// `FMPDecoder`.
public final class FMPPoller: RESTPoller, @unchecked Sendable {
    public enum Endpoint: Sendable {
        case historicalChart1min
        case quote
    }

    public static let defaultBaseURL = "https://financialmodelingprep.com"
    public static let keyVariable = "FMP_API_KEY"
    public static let defaultLimits: [RateLimit] = [.perMinute(300)]

    public let endpoint: Endpoint

    /// `apiKey` nil: `FMP_API_KEY`. Throws `missingAPIKey` when there is none.
    public convenience init(
        symbols: [String], endpoint: Endpoint, apiKey: String? = nil,
        baseURL: String = FMPPoller.defaultBaseURL, limits: [RateLimit] = FMPPoller.defaultLimits,
        roundIntervalNanoseconds: Int64 = 60_000_000_000, seed: UInt64 = 1,
        clock: RESTClock = .system, log: @escaping @Sendable (String) -> Void = RESTLog.standardError,
        deliver: @escaping @Sendable (_ body: UnsafeRawBufferPointer) -> Void
    ) throws {
        let key = RESTPollerSettings.apiKey(explicit: apiKey, variable: Self.keyVariable) ?? ""
        let settings = RESTPollerSettings(
            symbols: symbols, baseURL: baseURL, apiKey: key, limits: limits,
            roundIntervalNanoseconds: roundIntervalNanoseconds, seed: seed)
        try self.init(settings: settings, endpoint: endpoint, clock: clock, log: log, deliver: deliver)
    }

    public init(
        settings: RESTPollerSettings, endpoint: Endpoint, clock: RESTClock = .system,
        log: @escaping @Sendable (String) -> Void = RESTLog.standardError,
        deliver: @escaping @Sendable (_ body: UnsafeRawBufferPointer) -> Void
    ) throws {
        self.endpoint = endpoint
        let rules = VendorRules(
            vendor: "fmp", keyVariable: Self.keyVariable,
            url: { base, symbol, key in
                let path = endpoint == .historicalChart1min ? "historical-chart/1min" : "quote"
                return "\(base)/api/v3/\(path)/\(symbol)?apikey=\(RESTLog.queryEscaped(key))"
            },
            verdict: Self.verdict,
            frame: { symbol, body in
                guard endpoint == .historicalChart1min else { return body }
                var framed = Array("{\"symbol\":\"\(symbol)\",\"\(FMPDecoder.chartKey)\":".utf8)
                framed.reserveCapacity(framed.count + body.count + 1)
                framed.append(contentsOf: body)
                framed.append(UInt8(ascii: "}"))
                return framed
            })
        try super.init(settings: settings, rules: rules, clock: clock, log: log, deliver: deliver)
    }

    static func verdict(_ response: HTTPResponse) -> PollVerdict {
        switch response.status {
        case 200:
            // FMP's error bodies share Alpha Vantage's key: {"Error Message": "…"}.
            guard case .errorMessage(let text)? = response.body.withUnsafeBytes({ AlphaVantageDecoder.notice(in: $0) })
            else { return .data }
            if text.lowercased().contains("limit reach") { return .throttled(text) }
            if text.lowercased().contains("api key") || text.lowercased().contains("apikey") {
                return .authenticationFailed(text)
            }
            return .rejected("Error Message: \(text)")
        case 429: return .tooManyRequests
        case 401, 403: return .authenticationFailed(RESTLog.bodyText(response.body))
        case 500...599: return .retryable(RESTLog.bodyText(response.body))
        default: return .rejected(RESTLog.bodyText(response.body))
        }
    }
}

/// Logging and text helpers of the pollers.
public enum RESTLog {
    /// The default log: one line to standard error.
    public static let standardError: @Sendable (String) -> Void = { line in
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// A body as text for a message: its `Error Message` if it has one, else its first bytes.
    static func bodyText(_ body: [UInt8]) -> String {
        if case .errorMessage(let text)? = body.withUnsafeBytes({ AlphaVantageDecoder.notice(in: $0) }) { return text }
        return String(decoding: body.prefix(RESTPoller.detailCharactersMax), as: UTF8.self)
    }

    static func queryEscaped(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
