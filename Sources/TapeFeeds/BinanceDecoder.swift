import TapeCore

/// Decodes Binance combined-stream messages, spot and futures (USDⓈ-M, COIN-M):
/// `{"stream":"<sym>@trade"|"<sym>@bookTicker"|"<sym>@depth…","data":{…}}`.
///
/// - `@trade` → `.trade`: eventTime = `T` (trade time, ms→ns; `E` if `T` is absent), sequence = `t`,
///   price = `p`, size = `q`, side = 2 (sell aggressor) when `m` (buyer is maker) is true, else 1.
/// - `@bookTicker` → `.quote`: bid/bidSize/ask/askSize = `b`/`B`/`a`/`A`, sequence = `u`;
///   eventTime = `T` (futures), else `E`, else (spot: no exchange time) the receive time.
/// - `@depth…` → skipped `depth` (when `stream` comes first, as Binance sends it, the rest of the
///   message is not scanned: a skipped message is not validated); a line that is not a stream message (REST snapshot
///   `{"lastUpdateId":…}`) → skipped `non_stream`; other streams → `unknown_message`; broken JSON or a
///   missing/unparsable field → malformed.
/// Symbol: `data.s` (else the stream name, upper-cased), as `venue:SYMBOL` when a venue is given.
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
        var dataStart = -1, dataLen = 0
        while let k = sc.nextKey() {
            guard let v = sc.value() else { break }
            if sc.equals(k.start, k.count, "stream") && v.kind == .string {
                streamStart = v.start; streamLen = v.count
                // Fast path: a depth stream is skipped without scanning its (large) data object.
                if dataStart < 0 && Self.isDepth(p, v.start, v.count) { return .skipped(.depth) }
            }
            else if sc.equals(k.start, k.count, "data") && v.kind == .object { dataStart = v.start; dataLen = v.count }
        }
        if sc.failed || !sc.atEnd() { return .malformed(reason: .malformedLine, detail: "bad JSON near byte \(sc.i)") }
        if streamStart < 0 { return .skipped(.nonStream) }
        // Stream kind: the part after the first '@'.
        var at = streamStart
        let streamEnd = streamStart + streamLen
        while at < streamEnd && p[at] != UInt8(ascii: "@") { at += 1 }
        let kindStart = at + 1
        let kindLen = streamEnd - kindStart
        let kind: Stream
        if kindLen >= 5 && sc.equals(kindStart, 5, "depth") { return .skipped(.depth) }
        else if sc.equals(kindStart, kindLen, "trade") { kind = .trade }
        else if sc.equals(kindStart, kindLen, "bookTicker") { kind = .quote }
        else { return .unknown(detail: "stream \(sc.text(streamStart, streamLen))") }
        if dataStart < 0 { return .malformed(reason: .malformedLine, detail: "stream message without a data object") }

        // Fields of `data` (single-letter keys, plus `s`).
        var E: JSONScanner.Value? = nil, T: JSONScanner.Value? = nil, t: JSONScanner.Value? = nil
        var pp: JSONScanner.Value? = nil, q: JSONScanner.Value? = nil, m: JSONScanner.Value? = nil
        var s: JSONScanner.Value? = nil, b: JSONScanner.Value? = nil, B: JSONScanner.Value? = nil
        var a: JSONScanner.Value? = nil, A: JSONScanner.Value? = nil, u: JSONScanner.Value? = nil
        var d = JSONScanner(p, dataStart + dataLen, start: dataStart)
        _ = d.beginObject()
        while let k = d.nextKey() {
            guard let v = d.value() else { break }
            if k.count != 1 { continue }
            switch p[k.start] {
            case UInt8(ascii: "E"): E = v
            case UInt8(ascii: "T"): T = v
            case UInt8(ascii: "t"): t = v
            case UInt8(ascii: "p"): pp = v
            case UInt8(ascii: "q"): q = v
            case UInt8(ascii: "m"): m = v
            case UInt8(ascii: "s"): s = v
            case UInt8(ascii: "b"): b = v
            case UInt8(ascii: "B"): B = v
            case UInt8(ascii: "a"): a = v
            case UInt8(ascii: "A"): A = v
            case UInt8(ascii: "u"): u = v
            default: break
            }
        }
        if d.failed { return .malformed(reason: .malformedLine, detail: "bad JSON in data near byte \(d.i)") }

        let symbol: SymbolID
        if let s = s, s.kind == .string, s.count > 0 { symbol = namer.intern(p + s.start, s.count) }
        else if at > streamStart { symbol = namer.intern(p + streamStart, at - streamStart, upper: true) }
        else { return .malformed(reason: .malformedLine, detail: "no symbol") }

        var eventTime = receiveTime
        if let tv = T ?? E {
            guard let ms = d.int(tv), ms > 0, ms < 9_000_000_000_000 else {
                return .malformed(reason: .badTimestamp, detail: "bad exchange time \(d.text(tv.start, tv.count))")
            }
            eventTime = ms * 1_000_000
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

    @inline(__always)
    private static func isDepth(_ p: UnsafePointer<UInt8>, _ start: Int, _ count: Int) -> Bool {
        var i = start
        let end = start + count
        while i < end && p[i] != UInt8(ascii: "@") { i += 1 }
        guard end - i > 5 else { return false }
        return p[i + 1] == UInt8(ascii: "d") && p[i + 2] == UInt8(ascii: "e") && p[i + 3] == UInt8(ascii: "p")
            && p[i + 4] == UInt8(ascii: "t") && p[i + 5] == UInt8(ascii: "h")
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
