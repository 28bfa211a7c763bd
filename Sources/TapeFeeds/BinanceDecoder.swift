import TapeCore

/// Decodes Binance combined-stream messages, spot and futures (USDⓈ-M, COIN-M):
/// `{"stream":"<sym>@trade"|"<sym>@bookTicker"|"<sym>@depth…","data":{…}}`.
///
/// - `@trade` → `.trade`: eventTime = `T` (trade time, ms→ns; `E` if `T` is absent), sequence = `t`,
///   price = `p`, size = `q`, side = 2 (sell aggressor) when `m` (buyer is maker) is true, else 1.
/// - `@bookTicker` → `.quote`: bid/bidSize/ask/askSize = `b`/`B`/`a`/`A`, sequence = `u`;
///   eventTime = `T` (futures), else `E`, else (spot: no exchange time) the receive time.
/// - `@depth…` → skipped `depth` (the whole message is still scanned: broken JSON is malformed, not
///   a skip); a line that is not a stream message (REST snapshot
///   `{"lastUpdateId":…}`) → skipped `non_stream`; other streams → `unknown_message`; broken JSON or a
///   missing/unparsable field → malformed.
/// Symbol: `data.s` (else the stream name, upper-cased), as `venue:SYMBOL` when a venue is given; a symbol
/// that is not valid UTF-8 text is malformed (`bad_symbol`). `T`/`E` (ms) must convert to a time inside
/// `TimeUtil`'s accepted range, else `bad_timestamp`.
public struct BinanceDecoder: WireDecoder {
    public var namer: SymbolNamer

    public init(symbols: SymbolTable, venue: String?) {
        namer = SymbolNamer(symbols: symbols, venue: venue)
    }

    /// The venue a Binance capture's file name implies: `spot-…` → `spot`, `usdm-…` → `usdm`,
    /// `cm-…` → `cm` (directory part ignored); nil otherwise.
    public static func venue(fromFileName path: String) -> String? {
        let base = path.split(separator: "/").last.map(String.init) ?? path
        for v in ["spot", "usdm", "cm"] where base.hasPrefix(v + "-") { return v }
        return nil
    }

    private enum Stream { case trade, quote }

    public mutating func decode(_ message: UnsafeRawBufferPointer, receiveTime: Nanos,
                                into out: inout [MarketEvent]) -> DecodeOutcome {
        guard let base = message.baseAddress, message.count > 0 else {
            return .malformed(reason: .malformedLine, detail: "empty message")
        }
        let p = base.assumingMemoryBound(to: UInt8.self)
        var sc = JSONScanner(p, message.count)
        guard sc.beginObject() else { return .malformed(reason: .malformedLine, detail: "not a JSON object") }
        var streamStart = -1, streamLen = 0
        var dataStart = -1
        var kind: Stream? = nil
        var skip: DecodeOutcome? = nil
        var f = Fields()
        var haveFields = false
        while let k = sc.nextKey() {
            // Binance sends `stream` first: the data object of a trade/bookTicker is then read in
            // place, in one pass (no skip-then-rescan).
            if kind != nil && !haveFields && sc.equals(k.start, k.count, "data") && sc.peek() == UInt8(ascii: "{") {
                var d = JSONScanner(p, message.count, start: sc.i)
                guard Self.readFields(&d, &f) else {
                    return .malformed(reason: .malformedLine, detail: "bad JSON in data near byte \(d.i)")
                }
                sc.i = d.i
                haveFields = true
                continue
            }
            guard let v = sc.value() else { break }
            if sc.equals(k.start, k.count, "stream") && v.kind == .string {
                streamStart = v.start; streamLen = v.count
                switch Self.classify(p, v.start, v.count) {
                case .some(let c): kind = c; skip = nil
                case .none:
                    kind = nil
                    var at = v.start
                    while at < v.start + v.count && p[at] != UInt8(ascii: "@") { at += 1 }
                    let ks = at + 1, kl = v.start + v.count - ks
                    skip = kl >= 5 && sc.equals(ks, 5, "depth") ? .skipped(.depth)
                        : .unknown(detail: "stream \(sc.text(v.start, v.count))")
                }
            } else if sc.equals(k.start, k.count, "data") && v.kind == .object { dataStart = v.start }
        }
        if sc.failed || !sc.atEnd() { return .malformed(reason: .malformedLine, detail: "bad JSON near byte \(sc.i)") }
        if streamStart < 0 { return .skipped(.nonStream) }
        if let s = skip { return s }
        guard let kind = kind else { return .unknown(detail: "stream \(sc.text(streamStart, streamLen))") }
        if !haveFields {
            if dataStart < 0 { return .malformed(reason: .malformedLine, detail: "stream message without a data object") }
            var d = JSONScanner(p, message.count, start: dataStart)
            guard Self.readFields(&d, &f) else {
                return .malformed(reason: .malformedLine, detail: "bad JSON in data near byte \(d.i)")
            }
        }
        let d = sc
        let (E, T, t, pp, q, m, s, b, B, a, A, u) = (f.E, f.T, f.t, f.p, f.q, f.m, f.s, f.b, f.B, f.a, f.A, f.u)
        var at = streamStart
        while at < streamStart + streamLen && p[at] != UInt8(ascii: "@") { at += 1 }

        let symbol: SymbolID
        if let s = s, s.kind == .string, s.count > 0 { symbol = namer.intern(p + s.start, s.count) }
        else if at > streamStart { symbol = namer.intern(p + streamStart, at - streamStart, upper: true) }
        else { return .malformed(reason: .malformedLine, detail: "no symbol") }
        if symbol == 0 { return Self.badSymbol(p, s, streamStart, at) }

        var eventTime = receiveTime
        if let tv = T ?? E {
            guard let ms = d.int(tv), ms > 0, let nanos = TimeUtil.acceptedNanos(ms, unitNanos: 1_000_000) else {
                return .malformed(reason: .badTimestamp, detail: "bad exchange time \(d.text(tv.start, tv.count)) "
                                  + "(ms; accepted \(TimeUtil.acceptedRangeText))")
            }
            eventTime = nanos
        }
        switch kind {
        case .trade:
            guard let tv = t, let id = d.int(tv) else { return Self.missing("t", t, d) }
            guard let pv = pp, let price = d.double(pv) else { return Self.bad("p", pp, d) }
            guard let qv = q, let size = d.double(qv) else { return Self.bad("q", q, d) }
            if T == nil && E == nil { return .malformed(reason: .badTimestamp, detail: "trade without T/E time") }
            var side: UInt8 = 0
            if let mv = m, mv.kind == .bool { side = mv.isTrue ? 2 : 1 }
            out.append(MarketEvent(eventTime: eventTime, receiveTime: receiveTime, sequence: id, symbol: symbol,
                                   kind: .trade, side: side, price: price, size: size))
        case .quote:
            guard let uv = u, let id = d.int(uv) else { return Self.missing("u", u, d) }
            guard let bv = b, let bid = d.double(bv) else { return Self.bad("b", b, d) }
            guard let Bv = B, let bidSize = d.double(Bv) else { return Self.bad("B", B, d) }
            guard let av = a, let ask = d.double(av) else { return Self.bad("a", a, d) }
            guard let Av = A, let askSize = d.double(Av) else { return Self.bad("A", A, d) }
            out.append(MarketEvent(eventTime: eventTime, receiveTime: receiveTime, sequence: id, symbol: symbol,
                                   kind: .quote, bid: bid, bidSize: bidSize, ask: ask, askSize: askSize))
        }
        return .decoded(count: 1)
    }

    /// Fields of `data` Tape reads (single-letter keys).
    private struct Fields {
        var E: JSONScanner.Value? = nil, T: JSONScanner.Value? = nil, t: JSONScanner.Value? = nil
        var p: JSONScanner.Value? = nil, q: JSONScanner.Value? = nil, m: JSONScanner.Value? = nil
        var s: JSONScanner.Value? = nil, b: JSONScanner.Value? = nil, B: JSONScanner.Value? = nil
        var a: JSONScanner.Value? = nil, A: JSONScanner.Value? = nil, u: JSONScanner.Value? = nil
    }

    /// Reads one object (the scanner is at its `{`) into `f`; false on bad JSON.
    @inline(__always)
    private static func readFields(_ d: inout JSONScanner, _ f: inout Fields) -> Bool {
        guard d.beginObject() else { return false }
        while let k = d.nextKey() {
            guard let v = d.value() else { return false }
            if k.count != 1 { continue }
            switch d.p[k.start] {
            case UInt8(ascii: "E"): f.E = v
            case UInt8(ascii: "T"): f.T = v
            case UInt8(ascii: "t"): f.t = v
            case UInt8(ascii: "p"): f.p = v
            case UInt8(ascii: "q"): f.q = v
            case UInt8(ascii: "m"): f.m = v
            case UInt8(ascii: "s"): f.s = v
            case UInt8(ascii: "b"): f.b = v
            case UInt8(ascii: "B"): f.B = v
            case UInt8(ascii: "a"): f.a = v
            case UInt8(ascii: "A"): f.A = v
            case UInt8(ascii: "u"): f.u = v
            default: break
            }
        }
        return !d.failed
    }

    /// trade / bookTicker from the stream name, nil for anything else.
    @inline(__always)
    private static func classify(_ p: UnsafePointer<UInt8>, _ start: Int, _ count: Int) -> Stream? {
        var at = start
        let end = start + count
        while at < end && p[at] != UInt8(ascii: "@") { at += 1 }
        let ks = at + 1, kl = end - ks
        if kl == 5 && p[ks] == UInt8(ascii: "t") && p[ks + 1] == UInt8(ascii: "r") && p[ks + 2] == UInt8(ascii: "a")
            && p[ks + 3] == UInt8(ascii: "d") && p[ks + 4] == UInt8(ascii: "e") { return .trade }
        if kl == 10 && p[ks] == UInt8(ascii: "b") && p[ks + 1] == UInt8(ascii: "o") && p[ks + 4] == UInt8(ascii: "T")
            && p[ks + 9] == UInt8(ascii: "r") {
            let w: StaticString = "bookTicker"
            for j in 0..<10 where p[ks + j] != w.utf8Start[j] { return nil }
            return .quote
        }
        return nil
    }

    /// The symbol bytes (`data.s`, else the stream name) escaped, as a `bad_symbol` outcome.
    @inline(never)
    private static func badSymbol(_ p: UnsafePointer<UInt8>, _ s: JSONScanner.Value?, _ streamStart: Int,
                                  _ at: Int) -> DecodeOutcome {
        let bytes = if let s, s.kind == .string, s.count > 0 {
            UnsafeRawBufferPointer(start: p + s.start, count: s.count)
        } else {
            UnsafeRawBufferPointer(start: p + streamStart, count: at - streamStart)
        }
        return .malformed(reason: .badSymbol, detail: "symbol \(SymbolTable.escaped(bytes)) is not UTF-8 text without control bytes")
    }

    private static func missing(_ f: String, _ v: JSONScanner.Value?, _ d: JSONScanner) -> DecodeOutcome {
        guard let v = v else { return .malformed(reason: .malformedLine, detail: "missing field \(f)") }
        return .malformed(reason: .malformedLine, detail: "bad id \(f)=\(d.text(v.start, v.count))")
    }

    private static func bad(_ f: String, _ v: JSONScanner.Value?, _ d: JSONScanner) -> DecodeOutcome {
        guard let v = v else { return .malformed(reason: .malformedLine, detail: "missing field \(f)") }
        return .malformed(reason: .badNumber, detail: "bad number \(f)=\"\(d.text(v.start, v.count))\"")
    }
}
