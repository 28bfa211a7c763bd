import TapeCore

/// What an Alpha Vantage body says instead of data. Alpha Vantage answers HTTP 200 to throttled and
/// failed calls, with one top-level key:
/// - `{"Note": "Thank you for using Alpha Vantage! Our standard API call frequency is …"}` — throttled;
/// - `{"Information": "… rate limit is 25 requests per day …"}` — throttled (daily limit, premium
///   endpoint);
/// - `{"Error Message": "Invalid API call. …"}` / `"… the parameter apikey is invalid or missing …"`.
/// Documented at https://www.alphavantage.co/documentation/ and, for the throttle notes,
/// https://www.alphavantage.co/support/ (seen through https://v50.ai/skills/alpha-vantage).
public enum AlphaVantageNotice: Sendable, Equatable {
    case note(String)
    case information(String)
    case errorMessage(String)

    /// True for an `Error Message` about the API key (a bad or missing key): retrying cannot help.
    public var isAboutAPIKey: Bool {
        guard case .errorMessage(let text) = self else { return false }
        return text.lowercased().contains("apikey") || text.lowercased().contains("api key")
    }

    public var text: String {
        switch self {
        case .note(let text), .information(let text), .errorMessage(let text): return text
        }
    }
}

/// Decodes Alpha Vantage REST bodies (one whole HTTP response body = one wire message; newlines in it
/// were replaced by spaces when it was received):
///
/// - `TIME_SERIES_INTRADAY&interval=1min` (https://www.alphavantage.co/documentation/#intraday):
///   `{"Meta Data": {"1. Information": …, "2. Symbol": "IBM", "3. Last Refreshed": …, "4. Interval":
///   "1min", "5. Output Size": "Compact", "6. Time Zone": "US/Eastern"}, "Time Series (1min)":
///   {"2024-01-05 19:59:00": {"1. open": "161.1", "2. high": …, "3. low": …, "4. close": …,
///   "5. volume": "1200"}, …}}` — keys newest first, times are bar OPEN times in the Meta Data's zone.
///   → `.bar` events by `PolledBars` (never twice, complete bars only, oldest first).
/// - `GLOBAL_QUOTE` (https://www.alphavantage.co/documentation/#latestprice):
///   `{"Global Quote": {"01. symbol": "IBM", "02. open": …, "03. high": …, "04. low": …, "05. price":
///   "161.2", "06. volume": "3123456", "07. latest trading day": "2024-01-05", "08. previous close": …,
///   "09. change": …, "10. change percent": "0.1%"}}` → one `.trade` snapshot: price = `05. price`,
///   size = day volume traded since the previous snapshot of that day (the whole `06. volume` for the
///   day's first), eventTime = receiveTime (the body has no intraday time); nothing when the volume did
///   not grow (skipped `repeated`). An empty `{"Global Quote": {}}` (unknown symbol) → skipped `other`.
/// - `{"Note": …}` / `{"Information": …}` (throttled) → skipped `status`; `{"Error Message": …}` →
///   malformed, detail `Error Message: <text>`.
///
/// A bar or quote with a missing or unparsable field makes the whole message malformed (nothing from
/// it is delivered). Symbols are `venue:SYMBOL` with the namer's venue, SYMBOL from the body.
public struct AlphaVantageDecoder: WireDecoder {
    public var namer: SymbolNamer
    public var bars = PolledBars()

    public init(symbols: SymbolTable, venue: String?) {
        namer = SymbolNamer(symbols: symbols, venue: venue)
    }

    /// The throttle / error notice a body holds at its top level, if any (used by the poller too).
    public static func notice(in body: UnsafeRawBufferPointer) -> AlphaVantageNotice? {
        guard let base = body.baseAddress, body.count > 0 else { return nil }
        var scanner = JSONScanner(base.assumingMemoryBound(to: UInt8.self), body.count)
        guard scanner.beginObject() else { return nil }
        while let key = scanner.nextKey() {
            guard let value = scanner.value() else { return nil }
            guard value.kind == .string else { continue }
            let text = scanner.text(value.start, value.count)
            if scanner.equals(key.start, key.count, "Note") { return .note(text) }
            if scanner.equals(key.start, key.count, "Information") { return .information(text) }
            if scanner.equals(key.start, key.count, "Error Message") { return .errorMessage(text) }
        }
        return nil
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
        typealias Value = JSONScanner.Value
        var metaData: Value? = nil, series: Value? = nil, quote: Value? = nil
        var notice: AlphaVantageNotice? = nil
        var otherSeries: String? = nil
        guard scanner.beginObject() else { return .malformed(reason: .malformedLine, detail: "not a JSON object") }
        while let key = scanner.nextKey() {
            guard let value = scanner.value() else { break }
            if scanner.equals(key.start, key.count, "Meta Data") {
                metaData = value
            } else if scanner.equals(key.start, key.count, "Time Series (1min)") {
                series = value
            } else if scanner.equals(key.start, key.count, "Global Quote") {
                quote = value
            } else if value.kind == .string && notice == nil && scanner.equals(key.start, key.count, "Note") {
                notice = .note(scanner.text(value.start, value.count))
            } else if value.kind == .string && notice == nil && scanner.equals(key.start, key.count, "Information") {
                notice = .information(scanner.text(value.start, value.count))
            } else if value.kind == .string && notice == nil && scanner.equals(key.start, key.count, "Error Message") {
                notice = .errorMessage(scanner.text(value.start, value.count))
            } else if Self.hasPrefix(scanner, key, "Time Series (") {
                otherSeries = scanner.text(key.start, key.count)
            }
        }
        if scanner.failed || !scanner.atEnd() {
            return .malformed(reason: .malformedLine, detail: "bad JSON near byte \(scanner.i)")
        }
        if let notice {
            if case .errorMessage(let text) = notice {
                return .malformed(reason: .malformedLine, detail: "Error Message: \(text)")
            }
            return .skipped(.status)
        }
        if let series {
            guard let metaData, metaData.kind == .object, series.kind == .object else {
                return .malformed(reason: .malformedLine, detail: "Time Series (1min) without a Meta Data object")
            }
            return decodeSeries(bytes, metaData: metaData, series: series, receiveTime: receiveTime, into: &out)
        }
        if let quote {
            guard quote.kind == .object else {
                return .malformed(reason: .malformedLine, detail: "Global Quote is not an object")
            }
            return decodeQuote(bytes, quote: quote, receiveTime: receiveTime, into: &out)
        }
        if let otherSeries { return .unknown(detail: "\(otherSeries): only 1min bars are read") }
        return .unknown(detail: "no Time Series (1min), Global Quote, Note, Information or Error Message")
    }

    private static func hasPrefix(_ scanner: JSONScanner, _ key: (start: Int, count: Int), _ prefix: StaticString)
        -> Bool
    {
        key.count >= prefix.utf8CodeUnitCount && scanner.equals(key.start, prefix.utf8CodeUnitCount, prefix)
    }

    static func text(_ bytes: UnsafePointer<UInt8>, _ start: Int, _ count: Int) -> String {
        String(decoding: UnsafeBufferPointer(start: bytes + start, count: count), as: UTF8.self)
    }

    private static func hasSuffix(_ scanner: JSONScanner, _ key: (start: Int, count: Int), _ suffix: StaticString)
        -> Bool
    {
        let length = suffix.utf8CodeUnitCount
        return key.count >= length && scanner.equals(key.start + key.count - length, length, suffix)
    }

    private mutating func decodeSeries(
        _ bytes: UnsafePointer<UInt8>, metaData: JSONScanner.Value,
        series: JSONScanner.Value, receiveTime: Nanos,
        into out: inout [MarketEvent]
    ) -> DecodeOutcome {
        // Meta Data: the symbol and the time zone (keys are numbered; matched by their name part).
        var meta = JSONScanner(bytes, metaData.start + metaData.count, start: metaData.start)
        var symbolValue: JSONScanner.Value? = nil, zoneValue: JSONScanner.Value? = nil
        guard meta.beginObject() else { return .malformed(reason: .malformedLine, detail: "bad Meta Data") }
        while let key = meta.nextKey() {
            guard let value = meta.value() else { break }
            if Self.hasSuffix(meta, key, ". Symbol") {
                symbolValue = value
            } else if Self.hasSuffix(meta, key, ". Time Zone") {
                zoneValue = value
            }
        }
        guard let symbolValue, symbolValue.kind == .string, symbolValue.count > 0 else {
            return .malformed(reason: .malformedLine, detail: "Meta Data without a Symbol")
        }
        guard let zoneValue, zoneValue.kind == .string else {
            return .malformed(reason: .malformedLine, detail: "Meta Data without a Time Zone")
        }
        let zoneBytes = UnsafeRawBufferPointer(start: bytes + zoneValue.start, count: zoneValue.count)
        guard let zone = VendorTimeZone.named(zoneBytes) else {
            return .malformed(reason: .badTimestamp, detail: "unsupported Time Zone \(SymbolTable.escaped(zoneBytes))")
        }
        let symbol = namer.intern(bytes + symbolValue.start, symbolValue.count)
        if symbol == 0 {
            let text = SymbolTable.escaped(
                UnsafeRawBufferPointer(start: bytes + symbolValue.start, count: symbolValue.count))
            return .malformed(reason: .badSymbol, detail: "Symbol \(text) is not UTF-8 text without control bytes")
        }
        bars.beginMessage()
        var entries = JSONScanner(bytes, series.start + series.count, start: series.start)
        guard entries.beginObject() else { return .malformed(reason: .malformedLine, detail: "bad Time Series (1min)") }
        while let key = entries.nextKey() {
            guard let value = entries.value() else { break }
            guard let local = TimeUtil.parseDateTime(bytes + key.start, key.count) else {
                return .malformed(reason: .badTimestamp, detail: "bar time \(entries.text(key.start, key.count))")
            }
            // The bar's time as text: built only for a message (error paths).
            var time: String { Self.text(bytes, key.start, key.count) }
            guard value.kind == .object else {
                return .malformed(reason: .malformedLine, detail: "bar \(time) is not an object")
            }
            var fields = JSONScanner(bytes, value.start + value.count, start: value.start)
            var open: Double? = nil, high: Double? = nil, low: Double? = nil, close: Double? = nil
            var volume = Double.nan
            _ = fields.beginObject()
            while let field = fields.nextKey() {
                guard let number = fields.value() else { break }
                if fields.equals(field.start, field.count, "1. open") {
                    open = fields.double(number) ?? .signalingNaN
                } else if fields.equals(field.start, field.count, "2. high") {
                    high = fields.double(number) ?? .signalingNaN
                } else if fields.equals(field.start, field.count, "3. low") {
                    low = fields.double(number) ?? .signalingNaN
                } else if fields.equals(field.start, field.count, "4. close") {
                    close = fields.double(number) ?? .signalingNaN
                } else if fields.equals(field.start, field.count, "5. volume") {
                    volume = fields.double(number) ?? .signalingNaN
                }
            }
            if fields.failed { return .malformed(reason: .malformedLine, detail: "bad JSON in bar \(time)") }
            guard let open, let high, let low, let close else {
                return .malformed(
                    reason: .malformedLine, detail: "bar \(time) lacks 1. open, 2. high, 3. low or 4. close")
            }
            if let name = PolledBars.firstBadNumber(
                open, high, low, close, volume, names: ("1. open", "2. high", "3. low", "4. close", "5. volume"))
            {
                return .malformed(reason: .badNumber, detail: "bar \(time): bad \(name)")
            }
            let openTime = zone.utc(fromLocal: local)
            guard TimeUtil.isAccepted(openTime + TimeUtil.nsPerMinute) else {
                return .malformed(
                    reason: .badTimestamp, detail: "bar time \(time) (accepted \(TimeUtil.acceptedRangeText))")
            }
            bars.add(.init(openTime: openTime, open: open, high: high, low: low, close: close, volume: volume))
        }
        if entries.failed { return .malformed(reason: .malformedLine, detail: "bad JSON in Time Series (1min)") }
        let count = bars.emit(symbol: symbol, receiveTime: receiveTime, into: &out)
        return count > 0 ? .decoded(count: count) : .skipped(.repeated)
    }

    private mutating func decodeQuote(
        _ bytes: UnsafePointer<UInt8>, quote: JSONScanner.Value, receiveTime: Nanos,
        into out: inout [MarketEvent]
    ) -> DecodeOutcome {
        var fields = JSONScanner(bytes, quote.start + quote.count, start: quote.start)
        var symbolValue: JSONScanner.Value? = nil, dayValue: JSONScanner.Value? = nil
        var price: Double? = nil, volume: Double? = nil
        var keys = 0
        _ = fields.beginObject()
        while let key = fields.nextKey() {
            guard let value = fields.value() else { break }
            keys += 1
            if Self.hasSuffix(fields, key, ". symbol") {
                symbolValue = value
            } else if Self.hasSuffix(fields, key, ". price") {
                price = fields.double(value)
            } else if Self.hasSuffix(fields, key, ". volume") {
                volume = fields.double(value)
            } else if Self.hasSuffix(fields, key, ". latest trading day") {
                dayValue = value
            }
        }
        if fields.failed { return .malformed(reason: .malformedLine, detail: "bad JSON in Global Quote") }
        if keys == 0 { return .skipped(.other) }
        guard let symbolValue, symbolValue.kind == .string, symbolValue.count > 0 else {
            return .malformed(reason: .malformedLine, detail: "Global Quote without 01. symbol")
        }
        guard let price else { return .malformed(reason: .badNumber, detail: "Global Quote: missing or bad 05. price") }
        guard let volume else {
            return .malformed(reason: .badNumber, detail: "Global Quote: missing or bad 06. volume")
        }
        guard let dayValue, let dayStart = TimeUtil.parseDateTime(bytes + dayValue.start, dayValue.count) else {
            return .malformed(reason: .badTimestamp, detail: "Global Quote: missing or bad 07. latest trading day")
        }
        let symbol = namer.intern(bytes + symbolValue.start, symbolValue.count)
        if symbol == 0 {
            let text = SymbolTable.escaped(
                UnsafeRawBufferPointer(start: bytes + symbolValue.start, count: symbolValue.count))
            return .malformed(reason: .badSymbol, detail: "01. symbol \(text) is not UTF-8 text without control bytes")
        }
        let day = dayStart / VendorTimeZone.dayNanos
        guard let size = bars.volumeSincePreviousSnapshot(symbol: symbol, day: day, dayVolume: volume) else {
            return .skipped(.repeated)
        }
        out.append(.trade(eventTime: receiveTime, receiveTime: receiveTime, symbol: symbol, price: price, size: size))
        return .decoded(count: 1)
    }
}
