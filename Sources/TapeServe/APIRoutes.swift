import Foundation
import Hummingbird
import NIOCore
import TapeCore
import TapeGraph
import TapeRedis
import TapeStore

/// One registered route: method and path as written in the OpenAPI spec (`/api/v1/bars/{symbol}`).
public struct RouteKey: Hashable, Sendable, CustomStringConvertible {
    public let method: String
    public let path: String
    public var description: String { "\(method) \(path)" }
}

/// The REST API under `/api/v1` (docs/serving.md has the table): handlers only parse and check parameters,
/// run the store work on a store thread (`Stores.run`) and shape JSON. Every time is given twice: integer
/// ns (`…_ns`) and ISO-8601 UTC beside it (the same name without `_ns`).
struct APIRoutes {
    let stores: Stores
    let runFolders: RunFolders
    /// The in-process latest state (`LatestMemory`), when the updates subscription is live; nil otherwise.
    var memory: @Sendable () -> LatestMemory? = { nil }
    /// Told of lookups answered from `memory` (the cache-hit metric counts them as hits).
    var onMemoryHits: @Sendable (Int) -> Void = { _ in }

    /// Default and largest page sizes.
    static let limitDefault = 100
    static let limitMax = 1000
    /// The longest symbol accepted in a path or query (longer ones are 400, not a database lookup).
    static let symbolLengthMax = 64

    func register(on router: RouteTable) {
        router.get("/api/v1/symbols") { _, _ in try await self.symbols() }
        router.get("/api/v1/latest/{symbol}") { request, context in try await self.latest(request, context) }
        router.get("/api/v1/bars/{symbol}") { request, context in try await self.bars(request, context) }
        router.get("/api/v1/indicators/{symbol}") { request, context in try await self.indicators(request, context) }
        router.get("/api/v1/predictions/{symbol}") { request, context in try await self.predictions(request, context) }
        router.get("/api/v1/anomalies") { request, _ in try await self.anomalies(request) }
        router.get("/api/v1/orders") { request, _ in try await self.tradingPage(request, fills: false) }
        router.get("/api/v1/fills") { request, _ in try await self.tradingPage(request, fills: true) }
        router.get("/api/v1/positions") { request, _ in try await self.positions(request) }
        router.get("/api/v1/runs") { request, _ in try await self.runs(request, kind: nil) }
        router.get("/api/v1/sessions") { request, _ in try await self.runs(request, kind: "live") }
        router.get("/api/v1/runs/{run_id}") { _, context in try await self.run(context) }
        router.get("/api/v1/run-folders") { request, _ in try await self.listRunFolders(request) }
        router.get("/api/v1/run-folders/{name}") { _, context in try await self.runFolder(context) }
        router.post("/api/v1/admin/cache/invalidate") { request, _ in try await self.invalidate(request) }
    }

    // MARK: handlers

    func symbols() async throws -> Response {
        let rows = try await stores.run { session in try session.queries().symbols() }
        let items = rows.map { row -> JSONValue in
            .object([("symbol", .string(row[0] ?? "")), ("ticks", .int(Int64(row[1] ?? "") ?? 0))]
                    + Self.time("first_time", row[2]) + Self.time("last_time", row[3]))
        }
        return Self.json(.object([("items", .array(items))]))
    }

    func latest(_ request: Request, _ context: ServeContext) async throws -> Response {
        let symbol = try Self.symbol(context.parameters.get("symbol"))
        let query = request.uri.queryParameters
        let timeframe = try Self.timeframe(query.get("timeframe"))
        let layout = stores.layout
        // The in-process copy first (no store thread, no Redis round trip), when it holds every part.
        let memory = self.memory()
        let now = Stores.monotonicNanoseconds()
        if let memory {
            // The rendered answer while the symbol has not changed; else render it from the copy and keep it.
            if let bytes = memory.renderedLatest(symbol: symbol, timeframe: timeframe.description, now: now) {
                onMemoryHits(4)
                return Response(status: .ok, headers: [.contentType: "application/json"],
                                body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
            }
            if let held = memory.latest(symbol: symbol, timeframe: timeframe.description, now: now) {
                onMemoryHits(4)
                let bytes = Array(Self.latestJSON(symbol: symbol, timeframe: timeframe.description, trade: held.trade,
                                                  quote: held.quote, bar: held.bar, prediction: held.prediction)
                    .renderCompact().utf8)
                memory.storeRendered(symbol: symbol, timeframe: timeframe.description, bytes, from: held)
                return Response(status: .ok, headers: [.contentType: "application/json"],
                                body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
            }
        }
        // Redis first: a symbol whose latest state is cached costs no PostgreSQL query at all; PostgreSQL is
        // asked for what Redis misses and, when nothing is found anywhere, whether the symbol exists (404).
        let result = try await stores.run { session -> JSONValue in
            let trade = try session.latestTrade(symbol: symbol)
            let quote = try session.latestQuote(symbol: symbol)
            let bar = try session.latestBar(symbol: symbol, timeframe: timeframe)
            let predictionKey = layout.latestPrediction(symbol, timeframe)
            let prediction = try session.readThrough(key: predictionKey, timeframe: timeframe) {
                try session.queries().latestPrediction(symbol: symbol, timeframe: timeframe.description).map { row in
                    [("end_ns", row[0] ?? ""), ("prediction", Self.number(row[1]))]
                }
            }
            if trade == nil && quote == nil && bar == nil && prediction == nil,
               try !session.queries().hasSymbol(symbol) {
                throw Problem.notFound("unknown symbol '\(symbol)'")
            }
            memory?.remember(symbol: symbol, timeframe: timeframe.description,
                             .init(trade: trade, quote: quote, bar: bar, prediction: prediction),
                             now: Stores.monotonicNanoseconds())
            return Self.latestJSON(symbol: symbol, timeframe: timeframe.description, trade: trade, quote: quote,
                                   bar: bar, prediction: prediction)
        }
        return Self.json(result)
    }

    static func latestJSON(symbol: String, timeframe: String, trade: [String: String]?, quote: [String: String]?,
                           bar: [String: String]?, prediction: [String: String]?) -> JSONValue {
        .object([
            ("symbol", .string(symbol)), ("timeframe", .string(timeframe)),
            ("trade", trade.map(Self.trade) ?? .null), ("quote", quote.map(Self.quote) ?? .null),
            ("bar", bar.map { Self.bar(symbol: symbol, timeframe: timeframe, fields: $0) } ?? .null),
            ("prediction", prediction.map(Self.prediction) ?? .null),
        ])
    }

    func bars(_ request: Request, _ context: ServeContext) async throws -> Response {
        let series = try SeriesRequest(request, context)
        let rows = try await readSeries(series) { queries, series in
            try queries.bars(symbol: series.symbol, timeframe: series.timeframe.description, from: series.from,
                             to: series.to, after: series.after, limit: series.limit + 1)
        }
        return Self.page(rows, limit: series.limit, cursor: { String($0.start) }) { bar in
            Self.bar(symbol: series.symbol, timeframe: series.timeframe.description, fields: RedisLayout.barFields(
                start: bar.start, end: bar.end, open: bar.open, high: bar.high, low: bar.low, close: bar.close,
                volume: bar.volume, vwap: bar.vwap, trades: bar.trades, indicators: bar.indicators))
        }
    }

    func indicators(_ request: Request, _ context: ServeContext) async throws -> Response {
        let series = try SeriesRequest(request, context)
        let rows = try await readSeries(series) { queries, series in
            try queries.indicators(symbol: series.symbol, timeframe: series.timeframe.description, from: series.from,
                                   to: series.to, after: series.after, limit: series.limit + 1)
        }
        return Self.page(rows, limit: series.limit, cursor: { $0[0] ?? "" }) { row in
            var members = series.header + Self.time("end", row[0])
            for (offset, name) in RedisLayout.indicatorFields.enumerated() {
                members.append((name, Self.numberValue(row[1 + offset])))
            }
            members.append(("config_hash", .string(row[11] ?? "")))
            return .object(members)
        }
    }

    func predictions(_ request: Request, _ context: ServeContext) async throws -> Response {
        let series = try SeriesRequest(request, context)
        let rows = try await readSeries(series) { queries, series in
            try queries.predictions(symbol: series.symbol, timeframe: series.timeframe.description, from: series.from,
                                    to: series.to, after: series.after, limit: series.limit + 1)
        }
        return Self.page(rows, limit: series.limit, cursor: { $0[0] ?? "" }) { row in
            .object(series.header + Self.time("end", row[0])
                    + [("prediction", Self.numberValue(row[1])), ("config_hash", .string(row[2] ?? ""))])
        }
    }

    /// The parameters of one symbol's series read by time (bars, indicators, predictions), checked (400)
    /// before any store work: `symbol`, `timeframe`, `from`/`to`, `limit`, `cursor` (the last row's time, ns).
    struct SeriesRequest: Sendable {
        var symbol: String
        var timeframe: Timeframe
        var from: Nanos
        var to: Nanos
        var limit: Int
        var after: Nanos?

        init(_ request: Request, _ context: ServeContext) throws {
            symbol = try APIRoutes.symbol(context.parameters.get("symbol"))
            let query = request.uri.queryParameters
            timeframe = try APIRoutes.timeframe(query.get("timeframe"))
            (from, to) = try APIRoutes.range(query)
            limit = try APIRoutes.limit(query.get("limit"))
            after = try query.get("cursor").map { try APIRoutes.nanosecondsCursor($0) }
        }

        /// `symbol` and `timeframe`, the first members of every item.
        var header: [(String, JSONValue)] {
            [("symbol", .string(symbol)), ("timeframe", .string(timeframe.description))]
        }
    }

    /// Reads one page of a series (`read` asks for `limit + 1` rows) on a store thread; an empty page of an
    /// unknown symbol is a 404 (an empty page of a known one is an empty list).
    func readSeries<Row: Sendable>(_ series: SeriesRequest,
                                   _ read: @escaping @Sendable (StoreQueries, SeriesRequest) throws -> [Row])
        async throws -> [Row] {
        try await stores.run { session -> [Row] in
            let queries = try session.queries()
            let rows = try read(queries, series)
            if rows.isEmpty, try !queries.hasSymbol(series.symbol) {
                throw Problem.notFound("unknown symbol '\(series.symbol)'")
            }
            return rows
        }
    }

    /// `{"items": […], "next_cursor": …}` from `rows` read with `limit + 1` (keyset paging): the first `limit`
    /// as items, and the cursor of the last shown when there is more (else null).
    static func page<Row>(_ rows: [Row], limit: Int, cursor: (Row) -> String, item: (Row) -> JSONValue) -> Response {
        precondition(limit >= 1, "a page holds at least one row")
        let shown = rows.prefix(limit)
        var next: JSONValue = .null
        if rows.count > limit, let last = shown.last { next = .string(cursor(last)) }
        return json(.object([("items", .array(shown.map(item))), ("next_cursor", next)]))
    }

    func anomalies(_ request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        let symbol = try query.get("symbol").map { try Self.symbol($0) }
        let rule = try query.get("rule").map { try Self.word($0, name: "rule") }
        let severity = try query.get("severity").map { text -> String in
            guard ["info", "warning", "critical"].contains(text) else {
                throw Problem.badRequest("severity '\(text)': expected info, warning or critical")
            }
            return text
        }
        let (from, to) = try Self.range(query)
        let limit = try Self.limit(query.get("limit"))
        let after = try query.get("cursor").map { text -> StoreQueries.AnomalyPosition in
            let parts = try Self.cursorParts(text, count: 4)
            guard let time = Int64(parts[0]) else { throw Problem.badRequest("cursor: not one this API gave") }
            return StoreQueries.AnomalyPosition(timeNanoseconds: time, symbol: parts[1], rule: parts[2],
                                                configHash: parts[3])
        }
        let rows = try await stores.run { session -> [[String?]] in
            let queries = try session.queries()
            if let symbol, try !queries.hasSymbol(symbol) { throw Problem.notFound("unknown symbol '\(symbol)'") }
            return try queries.anomalies(symbol: symbol, rule: rule, severity: severity, from: from, to: to,
                                         after: after, limit: limit + 1)
        }
        let position = { (row: [String?]) in Self.cursor([row[1] ?? "", row[0] ?? "", row[2] ?? "", row[6] ?? ""]) }
        return Self.page(rows, limit: limit, cursor: position) { row in
            .object([("symbol", .string(row[0] ?? ""))] + Self.time("time", row[1])
                    + [("rule", .string(row[2] ?? "")), ("value", Self.numberValue(row[3])),
                       ("threshold", Self.numberValue(row[4])), ("severity", .string(row[5] ?? "")),
                       ("config_hash", .string(row[6] ?? ""))])
        }
    }

    // MARK: paper trading (docs/backtesting.md)

    /// `/api/v1/orders` and `/api/v1/fills`: a symbol's (or every symbol's) order changes or fills by time,
    /// paged on (time_ns, symbol, order_id, the row's number in its order, config_hash).
    func tradingPage(_ request: Request, fills isFills: Bool) async throws -> Response {
        let query = request.uri.queryParameters
        let symbol = try query.get("symbol").map { try Self.symbol($0) }
        let (from, to) = try Self.range(query)
        let limit = try Self.limit(query.get("limit"))
        let after = try query.get("cursor").map { text -> StoreQueries.TradingPosition in
            let parts = try Self.cursorParts(text, count: 5)
            guard let time = Int64(parts[0]), let order = Int64(parts[2]), let number = Int64(parts[3]) else {
                throw Problem.badRequest("cursor: not one this API gave")
            }
            return StoreQueries.TradingPosition(timeNanoseconds: time, symbol: parts[1], orderID: order, number: number,
                                                configHash: parts[4])
        }
        let rows = try await stores.run { session -> [[String?]] in
            let queries = try session.queries()
            if let symbol, try !queries.hasSymbol(symbol) { throw Problem.notFound("unknown symbol '\(symbol)'") }
            return isFills ? try queries.fills(symbol: symbol, from: from, to: to, after: after, limit: limit + 1)
                : try queries.orders(symbol: symbol, from: from, to: to, after: after, limit: limit + 1)
        }
        // Both column lists: symbol, time_ns, order_id, the number, …, config_hash, run_id.
        let position = { (row: [String?]) in
            Self.cursor([row[1] ?? "", row[0] ?? "", row[2] ?? "", row[3] ?? "", row[row.count - 2] ?? ""])
        }
        return Self.page(rows, limit: limit, cursor: position) { row in
            Self.tradingItem(row, data: isFills ? Self.fillData(row) : Self.orderData(row))
        }
    }

    /// `/api/v1/positions`: the latest position of each symbol (or of `symbol`), with the symbol's latest
    /// equity row.
    func positions(_ request: Request) async throws -> Response {
        let symbol = try request.uri.queryParameters.get("symbol").map { try Self.symbol($0) }
        let (positions, equity) = try await stores.run { session -> ([[String?]], [[String?]]) in
            let queries = try session.queries()
            if let symbol, try !queries.hasSymbol(symbol) { throw Problem.notFound("unknown symbol '\(symbol)'") }
            return (try queries.latestPositions(symbol: symbol), try queries.latestEquity(symbol: symbol))
        }
        var equityBySymbol: [String: [String?]] = [:]
        for row in equity { if let name = row[0] { equityBySymbol[name] = row } }
        let items = positions.map { row -> JSONValue in
            // Rows: StoreQueries.positionColumns.
            var members: [(String, JSONValue)] = [("symbol", .string(row[0] ?? ""))] + Self.time("time", row[1])
            members += [("order_id", Self.integerValue(row[2])), ("fill_number", Self.integerValue(row[3])),
                        ("quantity", Self.numberValue(row[4])), ("average_price", Self.numberValue(row[5])),
                        ("realized_pnl", Self.numberValue(row[6])), ("unrealized_pnl", Self.numberValue(row[7])),
                        ("fees", Self.numberValue(row[8])), ("mark_price", Self.numberValue(row[9])),
                        ("config_hash", .string(row[10] ?? "")), ("run_id", .string(row[11] ?? ""))]
            let equity = equityBySymbol[row[0] ?? ""].map { row -> JSONValue in
                // Rows: StoreQueries.equityColumns.
                .object(Self.time("time", row[1]) + [("cash", Self.numberValue(row[2])), ("equity", Self.numberValue(row[3])),
                                                      ("gross_exposure", Self.numberValue(row[4]))])
            }
            members.append(("equity", equity ?? .null))
            return .object(members)
        }
        return Self.json(.object([("items", .array(items))]))
    }

    /// An order change as the `orders` channel sends it (`RedisLayout.orderValues`), from a row of
    /// `StoreQueries.orderColumns`.
    static func orderData(_ row: [String?]) -> JSONValue {
        .object([("time_ns", integerValue(row[1])), ("order_id", integerValue(row[2])), ("sequence", integerValue(row[3])),
                 ("side", .string(row[4] ?? "")), ("type", .string(row[5] ?? "")), ("tif", .string(row[6] ?? "")),
                 ("quantity", numberValue(row[7])), ("limit_price", numberValue(row[8])),
                 ("stop_price", numberValue(row[9])), ("status", .string(row[10] ?? "")),
                 ("filled_quantity", numberValue(row[11])), ("tag", .string(row[12] ?? "")),
                 ("reason", .string(row[13] ?? ""))])
    }

    /// A fill as the `fills` channel sends it (`RedisLayout.fillValues`), from a row of
    /// `StoreQueries.fillColumns`.
    static func fillData(_ row: [String?]) -> JSONValue {
        .object([("time_ns", integerValue(row[1])), ("order_id", integerValue(row[2])),
                 ("fill_number", integerValue(row[3])), ("side", .string(row[4] ?? "")), ("price", numberValue(row[5])),
                 ("quantity", numberValue(row[6])), ("fee", numberValue(row[7])), ("rule", .string(row[8] ?? "")),
                 ("arrival_ns", integerValue(row[9])), ("tag", .string(row[10] ?? ""))])
    }

    /// A REST item of orders or fills: `symbol`, `time_ns` and `time`, the channel's fields after `time_ns`,
    /// `config_hash` and `run_id` (the last two columns of the row).
    static func tradingItem(_ row: [String?], data: JSONValue) -> JSONValue {
        guard case .object(let fields) = data else { preconditionFailure("trading data is an object") }
        return .object([("symbol", .string(row[0] ?? ""))] + time("time", row[1]) + fields.dropFirst()
                       + [("config_hash", .string(row[row.count - 2] ?? "")), ("run_id", .string(row[row.count - 1] ?? ""))])
    }

    func runs(_ request: Request, kind fixedKind: String?) async throws -> Response {
        let query = request.uri.queryParameters
        var kind = fixedKind
        if fixedKind == nil, let text = query.get("kind") {
            guard ["replay", "live", "work"].contains(text) else {
                throw Problem.badRequest("kind '\(text)': expected replay, live or work")
            }
            kind = text
        }
        let limit = try Self.limit(query.get("limit"))
        let before = try query.get("cursor").map { text -> (startedNanoseconds: Nanos, runID: String) in
            let parts = try Self.cursorParts(text, count: 2)
            guard let started = Int64(parts[0]) else { throw Problem.badRequest("cursor: not one this API gave") }
            return (started, parts[1])
        }
        let kindFilter = kind
        let rows = try await stores.run { session in
            try session.queries().runs(kind: kindFilter, before: before, limit: limit + 1)
        }
        return Self.page(rows, limit: limit, cursor: { Self.cursor([$0[2] ?? "", $0[0] ?? ""]) }, item: Self.run)
    }

    func run(_ context: ServeContext) async throws -> Response {
        let id = try Self.word(context.parameters.get("run_id"), name: "run_id")
        let row = try await stores.run { session in try session.queries().run(id: id) }
        guard let row else { throw Problem.notFound("unknown run '\(id)'") }
        guard case .object(var members) = Self.run(row) else { throw Problem.internalError("run row") }
        members.append(("summary", row[10].map { Self.parsedJSON($0) } ?? .null))
        return Self.json(.object(members))
    }

    func listRunFolders(_ request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        let limit = try Self.limit(query.get("limit"))
        let after = try query.get("cursor").map { text -> String in
            guard RunFolders.isFolderName(text) else { throw Problem.badRequest("cursor: not one this API gave") }
            return text
        }
        let folders = runFolders
        let items = try await stores.run { _ in folders.list(after: after, limit: limit) }
        let shown = items.prefix(limit)
        var next: JSONValue = .null
        if items.count > limit, case .object(let members)? = shown.last, let name = members.first?.1 { next = name }
        return Self.json(.object([("directory", .string(runFolders.directory)), ("items", .array(Array(shown))),
                                  ("next_cursor", next)]))
    }

    func runFolder(_ context: ServeContext) async throws -> Response {
        let name = try Self.word(context.parameters.get("name"), name: "name")
        let folders = runFolders
        let summary = try await stores.run { _ in folders.summary(name) }
        guard let summary else { throw Problem.notFound("no run folder '\(name)' with a summary.json") }
        return Self.json(.object([("name", .string(name)), ("summary", summary)]))
    }

    func invalidate(_ request: Request) async throws -> Response {
        let symbol = try Self.symbol(request.uri.queryParameters.get("symbol"))
        let deleted = try await stores.run { session in try session.invalidate(symbol: symbol) }
        return Self.json(.object([("symbol", .string(symbol)), ("keys_deleted", .int(Int64(deleted)))]))
    }

    // MARK: parameters (400 on anything malformed, before any store work)

    static func symbol(_ raw: String?) throws -> String {
        guard let raw, let text = raw.removingPercentEncoding, !text.isEmpty else {
            throw Problem.badRequest("symbol: required (venue:SYMBOL, e.g. spot:BTCUSDT)")
        }
        guard text.utf8.count <= symbolLengthMax, text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw Problem.badRequest("symbol: at most \(symbolLengthMax) printable ASCII characters without spaces")
        }
        return text
    }

    /// A rule name or run id: 1 ... 128 printable ASCII characters without spaces.
    static func word(_ raw: String?, name: String) throws -> String {
        guard let raw, let text = raw.removingPercentEncoding, !text.isEmpty, text.utf8.count <= 128,
              text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw Problem.badRequest("\(name): expected 1 ... 128 printable ASCII characters without spaces")
        }
        return text
    }

    static func timeframe(_ raw: String?) throws -> Timeframe {
        guard let raw else { return Timeframe(seconds: 60) }
        // The spec's pattern `^[1-9][0-9]{0,6}[smhd]$` (Timeframe alone would also take `+5m`).
        let digits = raw.utf8.dropLast()
        guard (1...7).contains(digits.count), digits.first != UInt8(ascii: "0"),
              digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let timeframe = Timeframe(raw), timeframe.seconds > 0, timeframe.seconds <= 366 * 86_400 else {
            throw Problem.badRequest("timeframe '\(raw)': expected a duration such as 1m, 5m, 1h")
        }
        return timeframe
    }

    /// `from` (inclusive) and `to` (exclusive): ISO-8601 UTC or integer ns; default the whole accepted range.
    static func range(_ query: Parameters) throws -> (Nanos, Nanos) {
        func time(_ name: String, _ fallback: Nanos) throws -> Nanos {
            guard let text = query.get(name) else { return fallback }
            guard let value = TimeUtil.parseUserTime(text) else {
                throw Problem.badRequest("\(name) '\(text)': expected ISO-8601 UTC (2024-08-08T23:56:00Z) or "
                                         + "integer ns in \(TimeUtil.acceptedRangeText)")
            }
            return value
        }
        let from = try time("from", TimeUtil.acceptedNanosMin)
        let to = try time("to", TimeUtil.acceptedNanosMax)
        guard from < to else { throw Problem.badRequest("bad range: from (\(from)) must be before to (\(to))") }
        return (from, to)
    }

    static func limit(_ raw: String?) throws -> Int {
        guard let raw else { return limitDefault }
        guard let value = Int(raw), (1...limitMax).contains(value) else {
            throw Problem.badRequest("limit '\(raw)': expected 1 ... \(limitMax)")
        }
        return value
    }

    static func nanosecondsCursor(_ text: String) throws -> Nanos {
        guard let value = Int64(text), TimeUtil.isAccepted(value) else {
            throw Problem.badRequest("cursor '\(text)': not one this API gave")
        }
        return value
    }

    /// A cursor of several parts: base64url of the parts joined by a newline.
    static func cursor(_ parts: [String]) -> String {
        Data(parts.joined(separator: "\n").utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func cursorParts(_ text: String, count: Int) throws -> [String] {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard text.count <= 1024, let data = Data(base64Encoded: base64),
              let decoded = String(data: data, encoding: .utf8) else {
            throw Problem.badRequest("cursor: not one this API gave")
        }
        let parts = decoded.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == count else { throw Problem.badRequest("cursor: not one this API gave") }
        return parts
    }

    // MARK: JSON shapes

    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: value.renderCompact())))
    }

    /// `name_ns` and `name` (ISO-8601), or both null.
    static func time(_ name: String, _ nanoseconds: String?) -> [(String, JSONValue)] {
        guard let nanoseconds, let value = Int64(nanoseconds) else { return [(name + "_ns", .null), (name, .null)] }
        return [(name + "_ns", .int(value)), (name, .string(TimeUtil.iso(value)))]
    }

    /// A stored number's text in the sinks' form (shortest round trip), empty for NULL (as in a Redis hash).
    static func number(_ text: String?) -> String {
        guard let text, let value = Double(text) else { return "" }
        return Numbers.format(value)
    }

    /// A number field (from a hash or a row): null when empty, NULL or not finite.
    static func numberValue(_ text: String?) -> JSONValue {
        guard let text, let value = Double(text), value.isFinite else { return .null }
        return .number(value)
    }

    static func integerValue(_ text: String?) -> JSONValue {
        guard let text, let value = Int64(text) else { return .null }
        return .int(value)
    }

    static func trade(_ fields: [String: String]) -> JSONValue {
        .object(time("time", fields["event_time_ns"]) + time("receive_time", fields["receive_time_ns"])
                + [("price", numberValue(fields["price"])), ("size", numberValue(fields["size"])),
                   ("side", integerValue(fields["side"])), ("sequence", integerValue(fields["sequence"]))])
    }

    static func quote(_ fields: [String: String]) -> JSONValue {
        .object(time("time", fields["event_time_ns"]) + time("receive_time", fields["receive_time_ns"])
                + [("bid", numberValue(fields["bid"])), ("bid_size", numberValue(fields["bid_size"])),
                   ("ask", numberValue(fields["ask"])), ("ask_size", numberValue(fields["ask_size"]))])
    }

    static func prediction(_ fields: [String: String]) -> JSONValue {
        .object(time("end", fields["end_ns"]) + [("prediction", numberValue(fields["prediction"]))])
    }

    /// A bar with its indicators from `RedisLayout.barFields` names (the cache's and the store's bars alike).
    static func bar(symbol: String, timeframe: String, fields: [String: String]) -> JSONValue {
        var members: [(String, JSONValue)] = [("symbol", .string(symbol)), ("timeframe", .string(timeframe))]
        members += time("start", fields["start_ns"]) + time("end", fields["end_ns"])
        for name in ["open", "high", "low", "close", "volume", "vwap"] {
            members.append((name, numberValue(fields[name])))
        }
        members.append(("trades", integerValue(fields["trades"])))
        members.append(("indicators", .object(RedisLayout.indicatorFields.map { ($0, numberValue(fields[$0])) })))
        return .object(members)
    }

    static func run(_ row: [String?]) -> JSONValue {
        .object([("run_id", .string(row[0] ?? "")), ("kind", .string(row[1] ?? ""))]
                + time("started", row[2]) + time("finished", row[3])
                + [("config_hash", .string(row[4] ?? "")), ("tape_version", .string(row[5] ?? "")),
                   ("inputs", row[6].map(parsedJSON) ?? .null)]
                + time("first_event", row[7]) + time("last_event", row[8])
                + [("has_summary", .bool(row[9] == "t"))])
    }

    static func parsedJSON(_ text: String) -> JSONValue {
        (try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))) ?? .string(text)
    }
}
