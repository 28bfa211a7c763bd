import Foundation
import TapeCore
import TapeFeeds
import TapeLive

/// Binance combined streams: `GET <base>/stream?streams=<stream>/<stream>…`, each message
/// `{"stream":"btcusdt@trade","data":{…}}`; the server pings, the client answers (Hummingbird does).
/// https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams (spot, base
/// `wss://stream.binance.com:9443`), https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams
/// (USDⓈ-M, `wss://fstream.binance.com`), https://developers.binance.com/docs/derivatives/coin-margined-futures/websocket-market-streams
/// (COIN-M, `wss://dstream.binance.com`). Streams: `<symbol lower>@trade`, `@bookTicker`, `@aggTrade`.
public struct BinanceVendor: WebSocketVendor {
    public let streams: [String]
    public init(streams: [String]) {
        precondition(!streams.isEmpty, "Binance needs at least one stream")
        // As given: symbols are lower case, stream kinds are case-sensitive (`bookTicker`).
        self.streams = streams
    }

    public static func defaultBaseURL(venue: String) -> String {
        switch venue {
        case "usdm": return "wss://fstream.binance.com"
        case "cm": return "wss://dstream.binance.com"
        default: return "wss://stream.binance.com:9443"
        }
    }

    public func url(base: String) -> String { "\(base)/stream?streams=\(streams.joined(separator: "/"))" }
    public func openingMessages() -> [String] { [] }
    public var needsHandshake: Bool { false }
    public func inspect(_ message: UnsafeRawBufferPointer) -> HandshakeStep { .done(send: []) }
}

/// Polygon/Massive stocks WebSocket: `<base>/stocks`; the server greets with
/// `[{"ev":"status","status":"connected",…}]`; the client sends `{"action":"auth","params":"<key>"}`, the
/// server answers status `auth_success` (or `auth_failed`), then the client sends
/// `{"action":"subscribe","params":"T.AAPL,Q.AAPL"}`. Events come as JSON arrays (`ev` `T`, `Q`, `AM`).
/// https://polygon.io/docs/stocks/ws_getting-started (now https://massive.com/docs/websocket/stocks/overview),
/// base `wss://socket.polygon.io` (`wss://socket.massive.com`; delayed data: `wss://delayed.polygon.io`).
public struct PolygonVendor: WebSocketVendor {
    public let key: String
    /// Subscription params, e.g. `T.AAPL`, `Q.AAPL`, `AM.*`.
    public let channels: [String]
    public init(key: String, channels: [String]) {
        precondition(!channels.isEmpty, "Polygon needs at least one channel")
        self.key = key
        self.channels = channels
    }

    public static let defaultBaseURL = "wss://socket.polygon.io"

    public func url(base: String) -> String { "\(base)/stocks" }
    public func openingMessages() -> [String] {
        [#"{"action":"auth","params":"\#(JSONText.escaped(key))"}"#]
    }
    public var needsHandshake: Bool { true }

    public func inspect(_ message: UnsafeRawBufferPointer) -> HandshakeStep {
        let text = String(decoding: message.prefix(4096), as: UTF8.self)
        if text.contains("\"auth_success\"") {
            return .done(send: [#"{"action":"subscribe","params":"\#(channels.joined(separator: ","))"}"#])
        }
        if text.contains("\"auth_failed\"") || text.contains("\"auth_timeout\"") {
            return .fatal("authentication refused: \(MessageText.escaped(String(text.prefix(200))))")
        }
        return .waiting
    }
}

/// Finage WebSocket (one server per market: stocks, crypto, forex): connect to
/// `wss://{subdomain}.finage.ws:{port}/?token=<socket key>`; the server sends
/// `{"status_code":200,"message":"authorizing",…}` then `…"connected to the adapter"…`, or a 401
/// (`invalid socket key`) and closes; the client subscribes with `{"action":"subscribe","symbols":"AAPL,TSLA"}`.
/// Events: one JSON object each (`FinageDecoder`). https://finage.co.uk/docs/websocket
public struct FinageVendor: WebSocketVendor {
    public let key: String
    public let symbols: [String]
    public init(key: String, symbols: [String]) {
        precondition(!symbols.isEmpty, "Finage needs at least one symbol")
        self.key = key
        self.symbols = symbols
    }

    public func url(base: String) -> String {
        let token = key.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? ""
        return "\(base)/?token=\(token)"
    }
    public func openingMessages() -> [String] { [] }
    public var needsHandshake: Bool { true }

    public func inspect(_ message: UnsafeRawBufferPointer) -> HandshakeStep {
        let text = String(decoding: message.prefix(4096), as: UTF8.self)
        if text.contains("\"status_code\":401") || text.contains("\"status_code\": 401") {
            return .fatal("authentication refused: \(MessageText.escaped(String(text.prefix(200))))")
        }
        if text.contains("connected to the adapter") || text.contains("Connected to the") {
            return .done(send: [#"{"action":"subscribe","symbols":"\#(symbols.joined(separator: ","))"}"#])
        }
        return .waiting
    }
}

/// JSON string escaping for the few texts a connector sends.
enum JSONText {
    static func escaped(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case _ where scalar.value < 0x20: result += String(format: "\\u%04x", scalar.value)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}
