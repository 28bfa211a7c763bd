import TapeCore

/// Decodes Financial Modeling Prep REST bodies (one whole HTTP response body = one wire message;
/// newlines in it were replaced by spaces when it was received):
///
/// - 1-minute chart, `GET /api/v3/historical-chart/1min/AAPL`
///   (https://site.financialmodelingprep.com/developer/docs/stable/intraday-5-min — the 1min example URL
///   is on that page; fields as https://www.mcpbundles.com/tools/1-min-interval-stock-chart-d68):
///   an array newest first, `[{"date": "2024-01-05 15:59:00", "open": 181.9, "low": 181.8, "high":
///   182.0, "close": 181.95, "volume": 312345}, …]`; `date` is the bar's OPEN time in the exchange's
///   local time (`timeZone`, America/New_York for US stocks). The array does not name its symbol, so
///   `FMPPoller` delivers it wrapped: `{"symbol": "AAPL", "historical_chart_1min": <the body as
///   received>}` (a bare array is read with `defaultSymbol`). → `.bar` events by `PolledBars` (never
///   twice, complete bars only, oldest first).
/// - quote, `GET /api/v3/quote/AAPL` (https://site.financialmodelingprep.com/developer/docs#quote):
///   `[{"symbol": "AAPL", "price": 181.9, "volume": 51234567, "timestamp": 1704488399, …}]` → per
///   element one `.trade` snapshot: price = `price`, size = day volume traded since the previous
///   snapshot of that (exchange-local) day, the whole `volume` for the day's first; eventTime =
///   `timestamp` (s → ns); nothing when the volume did not grow (skipped `repeated`).
/// - `{"Error Message": "Invalid API KEY. …"}` → malformed, detail `Error Message: <text>`;
///   `[]` (unknown symbol) → skipped `other`.
///
/// A bar or quote with a missing or unparsable field makes the whole message malformed.
public struct FMPDecoder: WireDecoder {
    public var namer: SymbolNamer
    public var bars = PolledBars()
    /// The zone of `date` in chart bars.
    public let timeZone: VendorTimeZone
    /// Symbol of a bare chart array (not wrapped by the poller); nil: such a body is malformed.
    public let defaultSymbol: String?
    /// The key under which `FMPPoller` wraps a chart body.
    public static let chartKey = "historical_chart_1min"
    /// Scratch: the exchange-local day of each quote of the message being decoded.
    private var quoteDays: [Int64] = []

    public init(
        symbols: SymbolTable, venue: String?, timeZone: VendorTimeZone = .usEastern,
        defaultSymbol: String? = nil
    ) {
        namer = SymbolNamer(symbols: symbols, venue: venue)
        self.timeZone = timeZone
        self.defaultSymbol = defaultSymbol
    }

    public mutating func decode(
        _ message: UnsafeRawBufferPointer, receiveTime: Nanos,
        into out: inout [MarketEvent]
    ) -> DecodeOutcome {
        guard let base = message.baseAddress, message.count > 0 else {
            return .malformed(reason: .malformedLine, detail: "empty message")
        }
        let bytes = base.assumingMemoryBound(to: UInt8.self)
        var scanner = JSONScanner(bytes, message.count)
        guard let top = scanner.value(), scanner.atEnd() else {
            return .malformed(reason: .malformedLine, detail: "bad JSON near byte \(scanner.i)")
        }
        let start = out.count
        let outcome: DecodeOutcome
        if top.kind == .array {
            outcome = decodeArray(bytes, top, symbol: nil, receiveTime: receiveTime, into: &out)
        } else if top.kind == .object {
            outcome = decodeObject(bytes, top, receiveTime: receiveTime, into: &out)
        } else {
            outcome = .malformed(reason: .malformedLine, detail: "not a JSON array or object")
        }
        if case .decoded = outcome {} else { out.removeSubrange(start...) }
        return outcome
    }

    private mutating func decodeObject(
        _ bytes: UnsafePointer<UInt8>, _ object: JSONScanner.Value, receiveTime: Nanos,
        into out: inout [MarketEvent]
    ) -> DecodeOutcome {
        var scanner = JSONScanner(bytes, object.start + object.count, start: object.start)
        var symbolValue: JSONScanner.Value? = nil, chart: JSONScanner.Value? = nil
        _ = scanner.beginObject()
        while let key = scanner.nextKey() {
            guard let value = scanner.value() else { break }
            if scanner.equals(key.start, key.count, "symbol") {
                symbolValue = value
            } else if scanner.equals(key.start, key.count, "historical_chart_1min") {
                chart = value
            } else if scanner.equals(key.start, key.count, "Error Message") {
                return .malformed(
                    reason: .malformedLine, detail: "Error Message: \(scanner.text(value.start, value.count))")
            }
        }
        if scanner.failed { return .malformed(reason: .malformedLine, detail: "bad JSON near byte \(scanner.i)") }
        guard let chart else { return .unknown(detail: "object without \(Self.chartKey) or Error Message") }
        guard chart.kind == .array, let symbolValue, symbolValue.kind == .string, symbolValue.count > 0 else {
            return .malformed(reason: .malformedLine, detail: "\(Self.chartKey) envelope needs a symbol and an array")
        }
        let symbol = namer.intern(bytes + symbolValue.start, symbolValue.count)
        if symbol == 0 { return badSymbol(bytes, symbolValue) }
        return decodeArray(bytes, chart, symbol: symbol, receiveTime: receiveTime, into: &out)
    }

    private func badSymbol(_ bytes: UnsafePointer<UInt8>, _ value: JSONScanner.Value) -> DecodeOutcome {
        let text = SymbolTable.escaped(UnsafeRawBufferPointer(start: bytes + value.start, count: value.count))
        return .malformed(reason: .badSymbol, detail: "symbol \(text) is not UTF-8 text without control bytes")
    }

    /// An array of chart bars (all of `symbol`) or of quotes (each naming its symbol).
    private mutating func decodeArray(
        _ bytes: UnsafePointer<UInt8>, _ array: JSONScanner.Value, symbol chartSymbol: SymbolID?,
        receiveTime: Nanos, into out: inout [MarketEvent]
    ) -> DecodeOutcome {
        var scanner = JSONScanner(bytes, array.start + array.count, start: array.start)
        _ = scanner.take(UInt8(ascii: "["))
        if scanner.take(UInt8(ascii: "]")) { return .skipped(.other) }
        bars.beginMessage()
        quoteDays.removeAll(keepingCapacity: true)
        let start = out.count
        var isChart: Bool? = nil
        while true {
            guard let element = scanner.value(), element.kind == .object else {
                return .malformed(
                    reason: .malformedLine, detail: "array element is not an object near byte \(scanner.i)")
            }
            var fields = JSONScanner(bytes, element.start + element.count, start: element.start)
            var date: JSONScanner.Value? = nil, symbolValue: JSONScanner.Value? = nil,
                timestamp: JSONScanner.Value? = nil
            var open: Double? = nil, high: Double? = nil, low: Double? = nil, close: Double? = nil
            var price: Double? = nil, volume = Double.nan, volumeSeen = false
            _ = fields.beginObject()
            while let key = fields.nextKey() {
                guard let value = fields.value() else { break }
                if fields.equals(key.start, key.count, "date") {
                    date = value
                } else if fields.equals(key.start, key.count, "open") {
                    open = fields.double(value) ?? .signalingNaN
                } else if fields.equals(key.start, key.count, "high") {
                    high = fields.double(value) ?? .signalingNaN
                } else if fields.equals(key.start, key.count, "low") {
                    low = fields.double(value) ?? .signalingNaN
                } else if fields.equals(key.start, key.count, "close") {
                    close = fields.double(value) ?? .signalingNaN
                } else if fields.equals(key.start, key.count, "volume") {
                    volume = value.kind == .null ? .nan : (fields.double(value) ?? .signalingNaN)
                    volumeSeen = true
                } else if fields.equals(key.start, key.count, "symbol") {
                    symbolValue = value
                } else if fields.equals(key.start, key.count, "price") {
                    price = fields.double(value) ?? .signalingNaN
                } else if fields.equals(key.start, key.count, "timestamp") {
                    timestamp = value
                }
            }
            if fields.failed {
                return .malformed(reason: .malformedLine, detail: "bad JSON in element near byte \(fields.i)")
            }
            let elementIsChart = date != nil
            if isChart == nil { isChart = elementIsChart }
            if isChart != elementIsChart {
                return .malformed(reason: .malformedLine, detail: "array mixes chart bars and quotes")
            }
            if elementIsChart {
                guard let date, let local = TimeUtil.parseDateTime(bytes + date.start, date.count) else {
                    return .malformed(reason: .badTimestamp, detail: "bad date near byte \(fields.i)")
                }
                var time: String { AlphaVantageDecoder.text(bytes, date.start, date.count) }
                guard let open, let high, let low, let close else {
                    return .malformed(reason: .malformedLine, detail: "bar \(time) lacks open, high, low or close")
                }
                if let name = PolledBars.firstBadNumber(
                    open, high, low, close, volume, names: ("open", "high", "low", "close", "volume"))
                {
                    return .malformed(reason: .badNumber, detail: "bar \(time): bad \(name)")
                }
                let openTime = timeZone.utc(fromLocal: local)
                guard TimeUtil.isAccepted(openTime + TimeUtil.nsPerMinute) else {
                    return .malformed(
                        reason: .badTimestamp, detail: "bar time \(time) (accepted \(TimeUtil.acceptedRangeText))")
                }
                bars.add(.init(openTime: openTime, open: open, high: high, low: low, close: close, volume: volume))
            } else {
                guard let symbolValue, symbolValue.kind == .string, symbolValue.count > 0 else {
                    return .malformed(reason: .malformedLine, detail: "quote without symbol")
                }
                guard let price, !price.isSignalingNaN else {
                    return .malformed(reason: .badNumber, detail: "quote: bad price")
                }
                guard volumeSeen, !volume.isSignalingNaN else {
                    return .malformed(reason: .badNumber, detail: "quote: missing or bad volume")
                }
                guard let timestamp, let seconds = fields.int(timestamp), seconds > 0,
                    let eventTime = TimeUtil.acceptedNanos(seconds, unitNanos: TimeUtil.nsPerSecond)
                else {
                    return .malformed(reason: .badTimestamp, detail: "quote: missing or bad timestamp (s)")
                }
                let symbol = namer.intern(bytes + symbolValue.start, symbolValue.count)
                if symbol == 0 { return badSymbol(bytes, symbolValue) }
                let day = timeZone.local(fromUTC: eventTime) / VendorTimeZone.dayNanos
                // Size = the day volume for now; turned into the volume since the previous snapshot once the
                // whole message is known to be good (a broken element leaves the snapshot state untouched).
                out.append(
                    .trade(
                        eventTime: eventTime, receiveTime: receiveTime, symbol: symbol, price: price,
                        size: volume))
                quoteDays.append(day)
            }
            if scanner.take(UInt8(ascii: ",")) { continue }
            if scanner.take(UInt8(ascii: "]")) { break }
            return .malformed(reason: .malformedLine, detail: "bad JSON near byte \(scanner.i)")
        }
        if isChart == true {
            var symbol = chartSymbol ?? 0
            if chartSymbol == nil, let name = defaultSymbol {
                var text = name
                symbol = text.withUTF8 { namer.intern($0.baseAddress!, $0.count) }
            }
            guard symbol != 0 else {
                return .malformed(
                    reason: .malformedLine, detail: "chart bars without a symbol (no envelope, no defaultSymbol)")
            }
            let count = bars.emit(symbol: symbol, receiveTime: receiveTime, into: &out)
            return count > 0 ? .decoded(count: count) : .skipped(.repeated)
        }
        var kept = start
        for index in start..<out.count {
            var trade = out[index]
            let day = quoteDays[index - start]
            guard let size = bars.volumeSincePreviousSnapshot(symbol: trade.symbol, day: day, dayVolume: trade.size)
            else { continue }
            trade.size = size
            out[kept] = trade
            kept += 1
        }
        out.removeSubrange(kept...)
        return kept > start ? .decoded(count: kept - start) : .skipped(.repeated)
    }
}
