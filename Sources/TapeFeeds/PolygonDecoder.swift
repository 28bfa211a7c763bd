import TapeCore

/// Decodes Polygon.io / Massive stocks WebSocket messages: a JSON array of objects (a single object is
/// accepted too), each with `ev`:
/// - `"T"` trade → `.trade`: symbol `sym`, price `p`, size `s`, eventTime = `t` (SIP time, ms→ns),
///   sequence = `q` (sequence number), exchange = interned text of `x`, conditions = interned text of
///   `c` (the array's contents, e.g. `0,12`); side 0 (Polygon does not give the aggressor).
/// - `"Q"` quote → `.quote`: `bp`/`bs`/`ap`/`as`, eventTime = `t` (ms→ns), sequence = `q`,
///   exchange = interned `bx`.
/// - `"status"` → skipped `status`; other `ev` (aggregates `A`/`AM`, …) → skipped `other`.
/// A message with several elements yields several events; if any element is broken the whole message
/// is malformed and nothing from it is delivered.
public struct PolygonDecoder: WireDecoder {
    public var namer: SymbolNamer

    public init(symbols: SymbolTable, venue: String?) {
        namer = SymbolNamer(symbols: symbols, venue: venue)
    }

    private enum One { case event, status, other }

    public mutating func decode(_ message: UnsafeRawBufferPointer, receiveTime: Nanos,
                                into out: inout [MarketEvent]) -> DecodeOutcome {
        guard let base = message.baseAddress, message.count > 0 else {
            return .malformed(reason: .malformedLine, detail: "empty message")
        }
        let p = base.assumingMemoryBound(to: UInt8.self)
        let start = out.count
        var sc = JSONScanner(p, message.count)
        var events = 0, statuses = 0, others = 0
        var result: DecodeOutcome? = nil
        func one(_ s: inout JSONScanner, _ v: JSONScanner.Value) -> DecodeOutcome? {
            guard v.kind == .object else { return .malformed(reason: .malformedLine, detail: "array element is not an object") }
            var o = JSONScanner(p, v.start + v.count, start: v.start)
            switch element(&o, receiveTime, &out) {
            case .failure(let f): return f.outcome
            case .success(.event): events += 1
            case .success(.status): statuses += 1
            case .success(.other): others += 1
            }
            return nil
        }
        if sc.take(UInt8(ascii: "[")) {
            if !sc.take(UInt8(ascii: "]")) {
                while result == nil {
                    guard let v = sc.value() else { result = .malformed(reason: .malformedLine, detail: "bad JSON near byte \(sc.i)"); break }
                    if let r = one(&sc, v) { result = r; break }
                    if sc.take(UInt8(ascii: ",")) { continue }
                    if sc.take(UInt8(ascii: "]")) { break }
                    result = .malformed(reason: .malformedLine, detail: "bad JSON near byte \(sc.i)")
                }
            }
        } else if let v = sc.value(), v.kind == .object {
            result = one(&sc, v)
        } else {
            result = .malformed(reason: .malformedLine, detail: "not a JSON array or object")
        }
        if result == nil && !sc.atEnd() { result = .malformed(reason: .malformedLine, detail: "trailing bytes at \(sc.i)") }
        if let r = result {
            out.removeSubrange(start...)
            return r
        }
        if events > 0 { return .decoded(count: events) }
        if statuses > 0 { return .skipped(.status) }
        return others > 0 ? .skipped(.other) : .skipped(.nonStream)
    }

    private struct Failed: Error { var outcome: DecodeOutcome }

    private mutating func element(_ o: inout JSONScanner, _ receiveTime: Nanos, _ out: inout [MarketEvent]) -> Result<One, Failed> {
        typealias V = JSONScanner.Value
        var ev: V? = nil, sym: V? = nil, x: V? = nil, pr: V? = nil, s: V? = nil, c: V? = nil, t: V? = nil, q: V? = nil
        var bx: V? = nil, bp: V? = nil, bs: V? = nil, ap: V? = nil, asz: V? = nil
        guard o.beginObject() else { return .failure(Failed(outcome: .malformed(reason: .malformedLine, detail: "bad object"))) }
        while let k = o.nextKey() {
            guard let v = o.value() else { break }
            if o.equals(k.start, k.count, "ev") { ev = v }
            else if o.equals(k.start, k.count, "sym") { sym = v }
            else if o.equals(k.start, k.count, "x") { x = v }
            else if o.equals(k.start, k.count, "p") { pr = v }
            else if o.equals(k.start, k.count, "s") { s = v }
            else if o.equals(k.start, k.count, "c") { c = v }
            else if o.equals(k.start, k.count, "t") { t = v }
            else if o.equals(k.start, k.count, "q") { q = v }
            else if o.equals(k.start, k.count, "bx") { bx = v }
            else if o.equals(k.start, k.count, "bp") { bp = v }
            else if o.equals(k.start, k.count, "bs") { bs = v }
            else if o.equals(k.start, k.count, "ap") { ap = v }
            else if o.equals(k.start, k.count, "as") { asz = v }
        }
        func fail(_ r: RejectReason, _ d: String) -> Result<One, Failed> { .failure(Failed(outcome: .malformed(reason: r, detail: d))) }
        if o.failed { return fail(.malformedLine, "bad JSON in element near byte \(o.i)") }
        guard let e = ev, e.kind == .string else { return fail(.malformedLine, "element without ev") }
        let isT = o.equals(e.start, e.count, "T"), isQ = o.equals(e.start, e.count, "Q")
        if !isT && !isQ { return .success(o.equals(e.start, e.count, "status") ? .status : .other) }
        guard let sv = sym, sv.kind == .string, sv.count > 0 else { return fail(.malformedLine, "missing sym") }
        guard let tv = t, let ms = o.int(tv), ms > 0,
              let eventTime = TimeUtil.acceptedNanos(ms, unitNanos: 1_000_000) else {
            return fail(.badTimestamp, "missing or bad t (ms; accepted \(TimeUtil.acceptedRangeText))")
        }
        let seq = q.flatMap { o.int($0) } ?? 0
        func num(_ v: V?, _ name: String) -> Double? { v.flatMap { o.double($0) } }
        let symbol = namer.intern(o.p + sv.start, sv.count)
        if symbol == 0 {
            let bytes = UnsafeRawBufferPointer(start: o.p + sv.start, count: sv.count)
            return fail(.badSymbol, "sym \(SymbolTable.escaped(bytes)) is not UTF-8 text without control bytes")
        }
        let ex = (isT ? x : bx).map { v in namer.symbols.intern(bytes: UnsafeRawBufferPointer(start: o.p + v.start, count: v.count)) } ?? 0
        if ex == 0, let v = isT ? x : bx, v.count > 0 {
            let bytes = UnsafeRawBufferPointer(start: o.p + v.start, count: v.count)
            return fail(.badSymbol, "exchange \(SymbolTable.escaped(bytes)) is not UTF-8 text without control bytes")
        }
        if isT {
            guard let price = num(pr, "p") else { return fail(.badNumber, "missing or bad p") }
            guard let size = num(s, "s") else { return fail(.badNumber, "missing or bad s") }
            var cond: SymbolID = 0
            if let cv = c, cv.kind == .array, cv.count > 2 {
                let bytes = UnsafeRawBufferPointer(start: o.p + cv.start + 1, count: cv.count - 2)
                cond = namer.symbols.intern(bytes: bytes)
                if cond == 0 {
                    let text = SymbolTable.escaped(bytes)
                    return fail(.badSymbol, "conditions \(text) are not UTF-8 text without control bytes")
                }
            }
            out.append(MarketEvent(eventTime: eventTime, receiveTime: receiveTime, sequence: seq, symbol: symbol,
                                   kind: .trade, side: 0, exchange: ex, conditions: cond, price: price, size: size))
        } else {
            guard let bid = num(bp, "bp"), let bidSize = num(bs, "bs"), let ask = num(ap, "ap"), let askSize = num(asz, "as")
            else { return fail(.badNumber, "missing or bad bp/bs/ap/as") }
            out.append(MarketEvent(eventTime: eventTime, receiveTime: receiveTime, sequence: seq, symbol: symbol,
                                   kind: .quote, exchange: ex, bid: bid, bidSize: bidSize, ask: ask, askSize: askSize))
        }
        return .success(.event)
    }
}
