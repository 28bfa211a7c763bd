/// The vendor protocols the simulator speaks. Each is served at the vendor's own paths, so a connector
/// pointed at the simulator differs from one pointed at the vendor only in scheme, host and port.
public enum FeedProtocol: String, Sendable, CaseIterable {
    /// Binance combined streams over WebSocket (`/stream?streams=…`), spot, USDⓈ-M and COIN-M alike.
    case binance
    /// Polygon.io / Massive stocks WebSocket (`/stocks`).
    case polygon
    /// Finage WebSocket (`/?token=…`).
    case finage
    /// Alpha Vantage REST (`/query?function=…`).
    case alphavantage
    /// Financial Modeling Prep REST (`/api/v3/…`, `/stable/…`).
    case fmp

    public var isWebSocket: Bool {
        switch self {
        case .binance, .polygon, .finage: return true
        case .alphavantage, .fmp: return false
        }
    }

    /// Whether this protocol serves bars only (REST polling): its recordings' times shift by whole
    /// minutes, so bars stay on minute boundaries.
    public var servesBarsOnly: Bool { !isWebSocket }
}
