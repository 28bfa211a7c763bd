import TapeCore
import TapeIO
import TapeSources

// Row decoders of the CSV formats. Columns are looked up by name; see docs/formats.md.

/// OHLC(V) bar files as vendors and platforms write them. `BarLayoutDetector` decides the layout once
/// per input (columns by name or position, separator, time format, bar time and length: see
/// `BarLayout`); every row is then read with it, without allocating. The canonical layout is
/// `timestamp,open,high,low,close[,volume]` with the bar's OPEN time (`2021-12-31 23:01:00.000000`,
/// `2012-02-01 00:00:00+00:00`, ISO-8601, or integer epoch s/ms/µs/ns, told apart by magnitude: below
/// 1e11 s, below 1e14 ms, below 1e17 µs, else ns — decided on the first row, stated).
/// Event time = receive time = the bar's end: the row time plus the bar length (`--bar-time open`, the
/// default) or the row time (`--bar-time close`); both must be inside `TimeUtil`'s accepted range,
/// else the row is a `bad_timestamp` reject. A row in another recognised time style than the first
/// row's is read too (an integer by its own magnitude).
public struct BarRowDecoder: CSVRowDecoder {
    public static let format = RecordingFormat.bars
    public static let checkDuplicates = false
    public static var sampleLinesMax: Int { BarLayoutDetector.sampleLinesMax }
    /// What was decided about the input (summary.json, stderr).
    public let layout: InputLayout?
    let timeColumn, open, high, low, close: Int
    /// -1 when absent.
    let timeOfDayColumn, volumeColumn, symbolColumn: Int
    let timeName, openName, highName, lowName, closeName, volumeName, symbolName: String
    /// ns per unit of an epoch-time file; 0 for calendar text.
    let fileEpochUnitNanos: Int64
    /// Calendar dates are `YYYY-MM-DD`: `TimeUtil.parseDateTime` reads them first, as Tape always has.
    let isoDate: Bool
    /// Added to a row's time to make the bar's end: the bar length (bar time open) or 0 (close).
    let endOffsetNanos: Nanos
    /// The instrument of every row when no column names it.
    let symbol: SymbolID
    var names: SymbolNamer

    /// A bar file whose layout is detected from the first line and the sample after it.
    public static func make(firstLine: UnsafeRawBufferPointer, sample: [[UInt8]], options: ReaderOptions,
                            path: String) throws -> (BarRowDecoder, CSVShape) {
        let layout: BarLayout
        do { layout = try BarLayoutDetector.detect(firstLine: Array(firstLine), sample: sample, options: options.bars) }
        catch let error as BarLayoutError { throw HeaderMismatch(error.description) }
        let shape = CSVShape(separator: layout.separator, fieldCount: layout.fieldCount,
                             firstLineIsData: !layout.hasHeader)
        return (BarRowDecoder(layout: layout, options: options, path: path), shape)
    }

    /// A comma header without rows to look at (the time format is then taken row by row).
    public init(header: [String], options: ReaderOptions, path: String) throws {
        let firstLine = Array(header.joined(separator: ",").utf8)
        do {
            self.init(layout: try BarLayoutDetector.detect(firstLine: firstLine, sample: [], options: options.bars),
                      options: options, path: path)
        } catch let error as BarLayoutError { throw HeaderMismatch(error.description) }
    }

    public init(layout: BarLayout, options: ReaderOptions, path: String) {
        timeColumn = layout.time
        timeOfDayColumn = layout.timeOfDay ?? -1
        open = layout.open; high = layout.high; low = layout.low; close = layout.close
        volumeColumn = layout.volume ?? -1
        symbolColumn = layout.symbol ?? -1
        let columnNames = layout.names
        timeName = columnNames[layout.time]
        openName = columnNames[layout.open]; highName = columnNames[layout.high]
        lowName = columnNames[layout.low]; closeName = columnNames[layout.close]
        volumeName = layout.volume.map { columnNames[$0] } ?? "volume"
        symbolName = layout.symbol.map { columnNames[$0] } ?? "symbol"
        switch layout.timeFormat {
        case .epoch(let unit): fileEpochUnitNanos = unit; isoDate = false
        case .calendar(_, let iso): fileEpochUnitNanos = 0; isoDate = iso
        case .unknown: fileEpochUnitNanos = 0; isoDate = true
        }
        endOffsetNanos = layout.anchor == .open ? layout.lengthNanos : 0
        names = SymbolNamer(symbols: options.symbols, venue: options.venue)
        if layout.symbol == nil {
            var name = options.symbol ?? BarRowDecoder.symbol(fromFileName: path)
            if let venue = options.venue { name = venue + ":" + name }
            symbol = options.symbols.intern(name)
            self.layout = layout.statement(symbol: name, symbolSource: options.symbol != nil ? "--symbol" : "file name")
        } else {
            symbol = 0
            self.layout = layout.statement(symbol: nil, symbolSource: symbolName)
        }
        precondition(endOffsetNanos >= 0 && endOffsetNanos <= TimeUtil.durationNanosMax, "a bar length within 366 days")
    }

    /// The instrument named by a bar file: the part of the file name before the first `.` and `_`,
    /// split on `-`, without tokens that are numbers (dates), timeframes (`1m`, `m1`) or `bid`/`ask`,
    /// upper-cased: `btc-perp-20211231-20220201_1m.csv.gz` → `BTC-PERP`,
    /// `fxcm-gbpusd-m1-bid-2012.csv.gz` → `FXCM-GBPUSD`.
    public static func symbol(fromFileName path: String) -> String {
        let base = path.split(separator: "/").last.map(String.init) ?? path
        let stem = base.split(separator: ".").first.map(String.init) ?? base
        let first = stem.split(separator: "_").first.map(String.init) ?? stem
        let tokens = first.split(separator: "-").map { String($0) }.filter { t in
            let lower = t.lowercased()
            if t.allSatisfy({ $0.isNumber }) { return false }
            if ["bid", "ask", "mid", "bars", "bar", "ohlc", "ohlcv"].contains(lower) { return false }
            // timeframes: 1m, 15m, 1h, m1, h1, 30s
            if lower.count <= 4, let u = lower.last, "smhd".contains(u), Int(lower.dropLast()) != nil { return false }
            if lower.count <= 4, let u = lower.first, "smhd".contains(u), Int(lower.dropFirst()) != nil { return false }
            return true
        }
        let name = tokens.joined(separator: "-").uppercased()
        return name.isEmpty ? "BARS" : name
    }

    public mutating func decode(_ row: CSVRow, line: Int, into e: inout MarketEvent) -> RowResult {
        var end: Nanos
        switch readTime(row) {
        case .time(let time): end = time
        case .malformed: return badTime(row, timeColumn, timeName)
        case .outside: return outOfRangeTime(row, timeColumn, timeName)
        }
        guard let op = row.double(open) else { return badNumber(row, open, openName) }
        guard let hi = row.double(high) else { return badNumber(row, high, highName) }
        guard let lo = row.double(low) else { return badNumber(row, low, lowName) }
        guard let cl = row.double(close) else { return badNumber(row, close, closeName) }
        var volume = Double.nan
        if volumeColumn >= 0 && !row.isEmpty(volumeColumn) {
            guard let value = row.double(volumeColumn) else { return badNumber(row, volumeColumn, volumeName) }
            volume = value
        }
        var rowSymbol = symbol
        if symbolColumn >= 0 {
            guard !row.isEmpty(symbolColumn) else { return .reject(.malformedLine, "empty \(symbolName)") }
            rowSymbol = names.intern(row.bytes(symbolColumn))
            guard rowSymbol != 0 else { return badSymbol(row, symbolColumn, symbolName) }
        }
        // The bar is known at its end. An accepted time plus at most 366 days cannot overflow.
        end += endOffsetNanos
        guard TimeUtil.isAccepted(end) else { return outOfRangeTime(row, timeColumn, timeName) }
        e = .bar(endTime: end, receiveTime: end, symbol: rowSymbol, open: op, high: hi, low: lo, close: cl,
                 volume: volume, sequence: Int64(line))
        return .event
    }

    /// A row's time as read: ns, not a time, or a time outside the accepted range.
    enum TimeRead {
        case time(Nanos)
        case malformed
        case outside
    }

    /// The row's time in the layout's format; another recognised style is read on the slow path.
    @inline(__always)
    func readTime(_ row: CSVRow) -> TimeRead {
        let bytes = row.bytes(timeColumn)
        guard bytes.count > 0 else { return .malformed }
        let text = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        if timeOfDayColumn >= 0 {
            let timeBytes = row.bytes(timeOfDayColumn)
            guard timeBytes.count > 0, let instant = BarTimeText.parse(
                date: text, bytes.count, time: timeBytes.baseAddress!.assumingMemoryBound(to: UInt8.self),
                timeBytes.count) else { return .malformed }
            guard let time = BarTimeText.accepted(instant) else { return .outside }
            return .time(time)
        }
        if fileEpochUnitNanos > 0 {
            if let integer = row.int(timeColumn) {
                guard let time = TimeUtil.acceptedNanos(integer, unitNanos: fileEpochUnitNanos) else { return .outside }
                return .time(time)
            }
        } else if isoDate {
            if let time = TimeUtil.parseDateTime(text, bytes.count) { return .time(time) }
        } else if let instant = BarTimeText.parse(text, bytes.count) {
            guard let time = BarTimeText.accepted(instant) else { return .outside }
            return .time(time)
        }
        return Self.readAnyTime(row, timeColumn)
    }

    /// Any recognised time: an integer epoch time by its own magnitude, or calendar text.
    @inline(never)
    static func readAnyTime(_ row: CSVRow, _ column: Int) -> TimeRead {
        let bytes = row.bytes(column)
        if let instant = BarTimeText.parse(bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), bytes.count) {
            guard let time = BarTimeText.accepted(instant) else { return .outside }
            return .time(time)
        }
        if let integer = row.int(column) {
            guard let time = TimeUtil.acceptedNanos(integer, unitNanos: epochUnitNanos(integer)) else {
                return .outside
            }
            return .time(time)
        }
        return .malformed
    }

    /// ns per unit of an integer epoch time, by magnitude: s below 1e11 (year 5138), ms below 1e14,
    /// µs below 1e17, else ns.
    static func epochUnitNanos(_ value: Int64) -> Int64 {
        let magnitude = value.magnitude
        if magnitude >= 100_000_000_000_000_000 { return 1 }
        if magnitude >= 100_000_000_000_000 { return 1_000 }
        if magnitude >= 100_000_000_000 { return 1_000_000 }
        return 1_000_000_000
    }
}

/// Tape tick CSV: `event_time_ns,receive_time_ns,symbol,kind,price,size,bid,bid_size,ask,ask_size,exchange,conditions,sequence`.
public struct TickRowDecoder: CSVRowDecoder {
    public static let format = RecordingFormat.tickCSV
    public static let checkDuplicates = true
    public static let header = "event_time_ns,receive_time_ns,symbol,kind,price,size,bid,bid_size,ask,ask_size,exchange,conditions,sequence"
    let et, rt, sym, kind, price, size, bid, bidSize, ask, askSize, exch, cond, seq: Int
    var names: SymbolNamer
    let table: SymbolTable

    public init(header: [String], options: ReaderOptions, path: String) throws {
        et = try Self.column(header, "event_time_ns"); rt = try Self.column(header, "receive_time_ns")
        sym = try Self.column(header, "symbol"); kind = try Self.column(header, "kind")
        price = try Self.column(header, "price"); size = try Self.column(header, "size")
        bid = try Self.column(header, "bid"); bidSize = try Self.column(header, "bid_size")
        ask = try Self.column(header, "ask"); askSize = try Self.column(header, "ask_size")
        exch = try Self.column(header, "exchange"); cond = try Self.column(header, "conditions")
        seq = try Self.column(header, "sequence")
        names = SymbolNamer(symbols: options.symbols, venue: options.venue)
        table = options.symbols
    }

    public mutating func decode(_ row: CSVRow, line: Int, into e: inout MarketEvent) -> RowResult {
        guard let ev = row.int(et) else { return badTime(row, et, "event_time_ns") }
        guard let rv = row.int(rt) else { return badTime(row, rt, "receive_time_ns") }
        guard TimeUtil.isAccepted(ev) else { return outOfRangeTime(row, et, "event_time_ns") }
        guard TimeUtil.isAccepted(rv) else { return outOfRangeTime(row, rt, "receive_time_ns") }
        let k = row.bytes(kind)
        if k.elementsEqual("tick".utf8) {
            guard ev == rv else { return .reject(.malformedLine, "clock tick with event time \(ev) != receive time \(rv)") }
            e = .clockTick(at: rv, sequence: row.isEmpty(seq) ? Int64(line) : (row.int(seq) ?? Int64(line)))
            return .event
        }
        guard !row.isEmpty(sym) else { return .reject(.malformedLine, "empty symbol") }
        let isTrade = k.count == 5 && k[0] == UInt8(ascii: "t")
        let isQuote = k.count == 5 && k[0] == UInt8(ascii: "q")
        guard isTrade || isQuote else {
            return .reject(.malformedLine, "kind '\(row.string(kind))' is not trade, quote or tick")
        }
        e.eventTime = ev; e.receiveTime = rv
        e.symbol = names.intern(row.bytes(sym))
        guard e.symbol != 0 else { return badSymbol(row, sym, "symbol") }
        e.sequence = row.isEmpty(seq) ? Int64(line) : (row.int(seq) ?? Int64(line))
        guard internText(row, exch, table, into: &e.exchange) else { return badSymbol(row, exch, "exchange") }
        guard internText(row, cond, table, into: &e.conditions) else { return badSymbol(row, cond, "conditions") }
        if isTrade {
            e.kind = .trade
            guard let p = row.double(price) else { return badNumber(row, price, "price") }
            guard let s = row.double(size) else { return badNumber(row, size, "size") }
            e.price = p; e.size = s
        } else {
            e.kind = .quote
            guard let b = row.double(bid) else { return badNumber(row, bid, "bid") }
            guard let a = row.double(ask) else { return badNumber(row, ask, "ask") }
            e.bid = b; e.ask = a
            e.bidSize = row.double(bidSize) ?? .nan; e.askSize = row.double(askSize) ?? .nan
        }
        return .event
    }
}

/// Polygon/Massive stocks trades flat file (ns timestamps). Event time = participant_timestamp
/// (sip_timestamp when empty), receive time = sip_timestamp; sequence = sequence_number.
public struct PolygonTradeRowDecoder: CSVRowDecoder {
    public static let format = RecordingFormat.polygonTrades
    public static let checkDuplicates = true
    let ticker, price, size, sip, part, exch, cond, seq: Int
    var names: SymbolNamer
    let table: SymbolTable
    public init(header: [String], options: ReaderOptions, path: String) throws {
        ticker = try Self.column(header, "ticker"); price = try Self.column(header, "price")
        size = try Self.column(header, "size"); sip = try Self.column(header, "sip_timestamp")
        part = try Self.column(header, "participant_timestamp"); exch = try Self.column(header, "exchange")
        cond = try Self.column(header, "conditions"); seq = try Self.column(header, "sequence_number")
        names = SymbolNamer(symbols: options.symbols, venue: options.venue); table = options.symbols
    }
    public mutating func decode(_ row: CSVRow, line: Int, into e: inout MarketEvent) -> RowResult {
        guard let s = row.int(sip) else { return badTime(row, sip, "sip_timestamp") }
        guard TimeUtil.isAccepted(s) else { return outOfRangeTime(row, sip, "sip_timestamp") }
        let p = row.isEmpty(part) ? s : (row.int(part) ?? s)
        guard TimeUtil.isAccepted(p) else { return outOfRangeTime(row, part, "participant_timestamp") }
        let symbol = names.intern(row.bytes(ticker))
        guard symbol != 0 else { return badSymbol(row, ticker, "ticker") }
        guard let px = row.double(price) else { return badNumber(row, price, "price") }
        guard let sz = row.double(size) else { return badNumber(row, size, "size") }
        e = .trade(eventTime: p, receiveTime: s, symbol: symbol, price: px, size: sz,
                   sequence: row.int(seq) ?? Int64(line))
        guard internText(row, exch, table, into: &e.exchange) else { return badSymbol(row, exch, "exchange") }
        guard internText(row, cond, table, into: &e.conditions) else { return badSymbol(row, cond, "conditions") }
        return .event
    }
}

/// Polygon/Massive stocks quotes flat file.
public struct PolygonQuoteRowDecoder: CSVRowDecoder {
    public static let format = RecordingFormat.polygonQuotes
    public static let checkDuplicates = true
    let ticker, bp, bs, ap, asz, sip, part, exch, cond, seq: Int
    var names: SymbolNamer
    let table: SymbolTable
    public init(header: [String], options: ReaderOptions, path: String) throws {
        ticker = try Self.column(header, "ticker"); bp = try Self.column(header, "bid_price")
        bs = try Self.column(header, "bid_size"); ap = try Self.column(header, "ask_price")
        asz = try Self.column(header, "ask_size"); sip = try Self.column(header, "sip_timestamp")
        part = try Self.column(header, "participant_timestamp"); exch = try Self.column(header, "bid_exchange")
        cond = try Self.column(header, "conditions"); seq = try Self.column(header, "sequence_number")
        names = SymbolNamer(symbols: options.symbols, venue: options.venue); table = options.symbols
    }
    public mutating func decode(_ row: CSVRow, line: Int, into e: inout MarketEvent) -> RowResult {
        guard let s = row.int(sip) else { return badTime(row, sip, "sip_timestamp") }
        guard TimeUtil.isAccepted(s) else { return outOfRangeTime(row, sip, "sip_timestamp") }
        let p = row.isEmpty(part) ? s : (row.int(part) ?? s)
        guard TimeUtil.isAccepted(p) else { return outOfRangeTime(row, part, "participant_timestamp") }
        let symbol = names.intern(row.bytes(ticker))
        guard symbol != 0 else { return badSymbol(row, ticker, "ticker") }
        guard let b = row.double(bp) else { return badNumber(row, bp, "bid_price") }
        guard let a = row.double(ap) else { return badNumber(row, ap, "ask_price") }
        e = .quote(eventTime: p, receiveTime: s, symbol: symbol, bid: b,
                   bidSize: row.double(bs) ?? .nan, ask: a, askSize: row.double(asz) ?? .nan, sequence: row.int(seq) ?? Int64(line))
        guard internText(row, exch, table, into: &e.exchange) else { return badSymbol(row, exch, "bid_exchange") }
        guard internText(row, cond, table, into: &e.conditions) else { return badSymbol(row, cond, "conditions") }
        return .event
    }
}

/// Polygon/Massive minute aggregates flat file: one `.bar` per row, event = receive = window_start + 1 min.
public struct PolygonMinuteAggRowDecoder: CSVRowDecoder {
    public static let format = RecordingFormat.polygonMinuteAggs
    public static let checkDuplicates = false
    let ticker, vol, o, c, h, l, ws: Int
    var names: SymbolNamer
    public init(header: [String], options: ReaderOptions, path: String) throws {
        ticker = try Self.column(header, "ticker"); vol = try Self.column(header, "volume")
        o = try Self.column(header, "open"); c = try Self.column(header, "close"); h = try Self.column(header, "high")
        l = try Self.column(header, "low"); ws = try Self.column(header, "window_start")
        names = SymbolNamer(symbols: options.symbols, venue: options.venue)
    }
    public mutating func decode(_ row: CSVRow, line: Int, into e: inout MarketEvent) -> RowResult {
        guard let start = row.int(ws) else { return badTime(row, ws, "window_start") }
        // The end (start + 1 min) must be accepted too: checked on the start, one minute inside the range.
        guard TimeUtil.isAccepted(start), start <= TimeUtil.acceptedNanosMax - TimeUtil.nsPerMinute else {
            return outOfRangeTime(row, ws, "window_start")
        }
        let symbol = names.intern(row.bytes(ticker))
        guard symbol != 0 else { return badSymbol(row, ticker, "ticker") }
        guard let op = row.double(o) else { return badNumber(row, o, "open") }
        guard let hi = row.double(h) else { return badNumber(row, h, "high") }
        guard let lo = row.double(l) else { return badNumber(row, l, "low") }
        guard let cl = row.double(c) else { return badNumber(row, c, "close") }
        guard let v = row.double(vol) else { return badNumber(row, vol, "volume") }
        let end = start + TimeUtil.nsPerMinute
        e = .bar(endTime: end, receiveTime: end, symbol: symbol, open: op, high: hi, low: lo,
                 close: cl, volume: v, sequence: Int64(line))
        return .event
    }
}

/// tardis.dev `trades` CSV (µs): event = timestamp, receive = local_timestamp, symbol
/// `<exchange>:<symbol>`, side buy → 1, sell → 2; both times (µs) must be inside the accepted range. `id` is a
/// string at some exchanges: it is the
/// sequence when numeric, else the line number (and no duplicate check applies to it).
public struct TardisTradeRowDecoder: CSVRowDecoder {
    public static let format = RecordingFormat.tardisTrades
    public static let checkDuplicates = false
    let exch, sym, ts, lts, id, side, price, amount: Int
    var names: SymbolNamer
    public init(header: [String], options: ReaderOptions, path: String) throws {
        exch = try Self.column(header, "exchange"); sym = try Self.column(header, "symbol")
        ts = try Self.column(header, "timestamp"); lts = try Self.column(header, "local_timestamp")
        id = try Self.column(header, "id"); side = try Self.column(header, "side")
        price = try Self.column(header, "price"); amount = try Self.column(header, "amount")
        names = SymbolNamer(symbols: options.symbols, venue: options.venue)
    }
    public mutating func decode(_ row: CSVRow, line: Int, into e: inout MarketEvent) -> RowResult {
        guard let t = row.int(ts) else { return badTime(row, ts, "timestamp") }
        guard let lt = row.int(lts) else { return badTime(row, lts, "local_timestamp") }
        guard let eventTime = TimeUtil.acceptedNanos(t, unitNanos: 1_000) else {
            return outOfRangeTime(row, ts, "timestamp")
        }
        guard let receiveTime = TimeUtil.acceptedNanos(lt, unitNanos: 1_000) else {
            return outOfRangeTime(row, lts, "local_timestamp")
        }
        let symbol = names.intern(row.bytes(sym), venue: row.bytes(exch))
        guard symbol != 0 else { return badSymbol(row, sym, "symbol") }
        guard let p = row.double(price) else { return badNumber(row, price, "price") }
        guard let q = row.double(amount) else { return badNumber(row, amount, "amount") }
        let sd = row.bytes(side)
        let s: UInt8 = sd.count > 0 && sd[0] == UInt8(ascii: "b") ? 1 : sd.count > 0 && sd[0] == UInt8(ascii: "s") ? 2 : 0
        e = .trade(eventTime: eventTime, receiveTime: receiveTime, symbol: symbol, price: p, size: q,
                   sequence: row.int(id) ?? Int64(line), side: s)
        return .event
    }
}
