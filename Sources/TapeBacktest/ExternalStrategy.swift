import Foundation
import TapeCore
import TapeGraph
import TapeTrading
#if canImport(Glibc)
import Glibc
#endif

/// A strategy in another process, any language, on the line protocol of docs/backtesting.md ("Your own
/// strategy"), version `ExternalStrategy.protocolVersion`: JSON lines on its stdin and stdout.
///
/// - Start: Tape sends `hello` (protocol, name, parameters); the strategy answers `ready` with the
///   protocol it speaks and what it subscribes to.
/// - Every item it subscribed to is one line (`bar`, `indicators`, `anomaly`, `prediction`, `trade`,
///   `quote`) with `now` (stream time) and the account as Tape sees it then; Tape **waits** for the
///   strategy's actions (`submit`, `target`, `cancel`, `replace`) and its `done` before the stream moves on,
///   so a backtest with an external strategy is as deterministic as one with a built-in strategy.
/// - Snapshots: `snapshot` → `state` (any text the strategy chooses); a restored run sends `restore` with it
///   right after `ready`.
/// - End: `end`, then the strategy exits.
///
/// A strategy that exits, writes a line that is not the protocol, or does not answer within
/// `replyTimeoutNanoseconds` fails: `failure` names it, the program and the line, and no more is sent to
/// it (its orders stay as they are). `tape` reports the failure and exits non-zero. Its stderr goes to
/// Tape's stderr.
public final class ExternalStrategy: Strategy {
    public static let protocolVersion = 1
    public let name: String
    public private(set) var subscriptions: StrategySubscriptions = []
    public let command: [String]
    public let replyTimeoutNanoseconds: Int64
    /// Why the strategy stopped taking part, if it did.
    public private(set) var failure: String? = nil
    /// Items sent (and answered).
    public private(set) var exchanged = 0

    private var pid: pid_t = 0
    private var toChild: Int32 = -1
    private var fromChild: Int32 = -1
    private var buffer: [UInt8] = []
    private var bufferStart = 0
    private var outgoing: [UInt8] = []
    private var chunk = [UInt8](repeating: 0, count: 65_536)
    /// Client refs of submitted orders → order ids (for cancel and replace by ref).
    private var refs: [String: OrderID] = [:]
    private var repliesRead = 0

    /// Starts the program and exchanges `hello`/`ready`. Throws `StrategyConfigError` when it cannot be
    /// started or does not answer as the protocol says.
    public init(name: String, command: [String], parameters: [String: String],
                replyTimeoutNanoseconds: Int64 = 10_000_000_000) throws {
        precondition(!command.isEmpty, "a command")
        self.name = name
        self.command = command
        self.replyTimeoutNanoseconds = replyTimeoutNanoseconds
        try start()
        var hello = #"{"type":"hello","protocol":"# + "\(Self.protocolVersion)" + #","strategy":"#
        hello += Self.quoted(name) + #","parameters":{"#
        hello += parameters.keys.sorted().map { Self.quoted($0) + ":" + Self.quoted(parameters[$0]!) }.joined(separator: ",")
        hello += "}}"
        send(hello)
        guard let reply = readReply() else {
            throw StrategyConfigError(strategy: name, key: "command", message: failure ?? "no answer to hello")
        }
        guard reply.type == "ready" else {
            throw StrategyConfigError(strategy: name, key: "command",
                                      message: "\(command[0]): answered hello with \(reply.type ?? "no type"), not ready")
        }
        guard reply.protocol == Self.protocolVersion else {
            throw StrategyConfigError(strategy: name, key: "command",
                                      message: "\(command[0]) speaks protocol \(reply.protocol.map(String.init) ?? "?"); Tape speaks \(Self.protocolVersion)")
        }
        for channel in reply.subscriptions ?? [] {
            switch channel {
            case "bars": subscriptions.insert(.bars)
            case "indicators": subscriptions.insert(.indicators)
            case "anomalies": subscriptions.insert(.anomalies)
            case "predictions": subscriptions.insert(.predictions)
            case "trades": subscriptions.insert(.trades)
            case "quotes": subscriptions.insert(.quotes)
            default:
                throw StrategyConfigError(strategy: name, key: "command",
                                          message: "\(command[0]) subscribed to \(channel) (known: bars, indicators, anomalies, predictions, trades, quotes)")
            }
        }
    }

    deinit { stop() }

    // MARK: Strategy

    public func onEvent(_ event: MarketEvent, context: StrategyContext) {
        guard failure == nil else { return }
        var line: String
        switch event.kind {
        case .trade:
            line = head("trade", event.symbol, context)
            line += #","event_ns":\#(event.eventTime),"receive_ns":\#(event.receiveTime),"price":\#(Self.number(event.price)),"size":\#(Self.number(event.size)),"side":"\#(event.side == 1 ? "buy" : event.side == 2 ? "sell" : "")"}"#
        case .quote:
            line = head("quote", event.symbol, context)
            line += #","event_ns":\#(event.eventTime),"receive_ns":\#(event.receiveTime),"bid":\#(Self.number(event.bid)),"bid_size":\#(Self.number(event.bidSize)),"ask":\#(Self.number(event.ask)),"ask_size":\#(Self.number(event.askSize))}"#
        case .bar, .clockTick:
            return
        }
        exchange(line, symbol: event.symbol, context: context)
    }

    public func onOutput(_ output: GraphOutput, context: StrategyContext) {
        guard failure == nil else { return }
        let n = Self.number
        var line: String
        switch output {
        case .bar(let bar):
            line = head("bar", bar.symbol, context)
            line += #","timeframe":"\#(bar.timeframe)","start_ns":\#(bar.start),"end_ns":\#(bar.end),"open":\#(n(bar.open)),"high":\#(n(bar.high)),"low":\#(n(bar.low)),"close":\#(n(bar.close)),"volume":\#(n(bar.volume)),"vwap":\#(n(bar.vwap)),"trades":\#(bar.trades)}"#
        case .indicators(let i):
            line = head("indicators", i.symbol, context)
            line += #","timeframe":"\#(i.timeframe)","end_ns":\#(i.end),"sma":\#(n(i.sma)),"ema":\#(n(i.ema)),"rsi":\#(n(i.rsi)),"macd":\#(n(i.macd)),"macd_signal":\#(n(i.macdSignal)),"macd_hist":\#(n(i.macdHist)),"bb_middle":\#(n(i.bbMiddle)),"bb_upper":\#(n(i.bbUpper)),"bb_lower":\#(n(i.bbLower)),"session_vwap":\#(n(i.sessionVwap))}"#
        case .anomaly(let a):
            line = head("anomaly", a.symbol, context)
            line += #","time_ns":\#(a.time),"rule":\#(Self.quoted(a.rule)),"value":\#(n(a.value)),"threshold":\#(n(a.threshold)),"severity":"\#(a.severity.rawValue)"}"#
        case .prediction(let p):
            line = head("prediction", p.symbol, context)
            line += #","timeframe":"\#(p.timeframe)","end_ns":\#(p.end),"prediction":\#(n(p.prediction))}"#
        default:
            return
        }
        exchange(line, symbol: output.symbol!, context: context)
    }

    public func snapshot(into writer: inout SnapshotWriter) {
        writer.append(failure == nil)
        guard failure == nil else { return }
        send(#"{"type":"snapshot"}"#)
        guard let reply = readReply(), reply.type == "state" else {
            if failure == nil { fail("answered snapshot with something other than state") }
            writer.append("")
            return
        }
        writer.append(reply.state ?? "")
        writer.appendCount(refs.count)
        for ref in refs.keys.sorted() {
            writer.append(ref)
            writer.append(refs[ref]!)
        }
    }

    public func restore(from reader: inout SnapshotReader) throws {
        guard try reader.readBool() else {
            throw reader.error("strategy \(name) had failed when the snapshot was taken")
        }
        let state = try reader.readString()
        let count = try reader.readCount(minimumElementBytes: 9)
        refs = [:]
        for _ in 0..<count {
            let ref = try reader.readString()
            refs[ref] = try reader.readInt64()
        }
        send(#"{"type":"restore","state":"# + Self.quoted(state) + "}")
        guard let reply = readReply(), reply.type == "done" else {
            throw reader.error("strategy \(name): \(failure ?? "did not answer restore with done")")
        }
    }

    /// Sends `end` and waits for the program to exit (at most the reply timeout); idempotent.
    public func stop() {
        guard pid != 0 else { return }
        if failure == nil { send(#"{"type":"end"}"#) }
        if toChild >= 0 { close(toChild); toChild = -1 }
        let deadline = Self.monotonic() + replyTimeoutNanoseconds
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) == 0 {
            if Self.monotonic() > deadline { kill(pid, SIGKILL); waitpid(pid, &status, 0); break }
            usleep(1_000)
        }
        pid = 0
        if fromChild >= 0 { close(fromChild); fromChild = -1 }
    }

    // MARK: protocol

    private func head(_ type: String, _ symbol: SymbolID, _ context: StrategyContext) -> String {
        #"{"type":"\#(type)","now":\#(context.now),"symbol":\#(Self.quoted(context.symbolName(symbol))),"position":\#(Self.number(context.position(symbol))),"open_quantity":\#(Self.number(context.openQuantity(symbol))),"cash":\#(Self.number(context.cash)),"equity":\#(Self.number(context.equity))"#
    }

    /// Sends one item and applies the actions that come back, up to `done`.
    private func exchange(_ line: String, symbol: SymbolID, context: StrategyContext) {
        send(line)
        exchanged += 1
        while failure == nil, let reply = readReply() {
            switch reply.type {
            case "done": return
            case nil:
                apply(reply, symbol: symbol, context: context)
            default:
                fail("expected an action or done, got type \(reply.type!)")
            }
        }
    }

    private func apply(_ action: Reply, symbol defaultSymbol: SymbolID, context: StrategyContext) {
        var symbol = defaultSymbol
        if let name = action.symbol {
            guard let id = context.symbolID(named: name) else { return fail("\(action.op ?? "action") for unknown symbol \(name)") }
            symbol = id
        }
        switch action.op {
        case "submit":
            guard let sideName = action.side, let side = sideName == "buy" ? OrderSide.buy : sideName == "sell" ? OrderSide.sell : nil else {
                return fail("submit needs side buy or sell")
            }
            guard let quantity = action.quantity, quantity.isFinite, quantity > 0 else { return fail("submit needs a positive quantity") }
            // By the names the records print (`OrderType.name`, `TimeInForce.name`).
            guard let type = OrderType.allCases.first(where: { $0.name == action.order_type ?? "market" }) else {
                return fail("order_type \(action.order_type!) (market, limit or stop)")
            }
            guard let tif = TimeInForce.allCases.first(where: { $0.name == action.tif ?? "gtc" }) else {
                return fail("tif \(action.tif!) (gtc, ioc or day)")
            }
            if type == .limit, !(action.limit_price?.isFinite ?? false) { return fail("a limit order needs limit_price") }
            if type == .stop, !(action.stop_price?.isFinite ?? false) { return fail("a stop order needs stop_price") }
            let id = context.submit(OrderRequest(symbol: symbol, side: side, quantity: quantity, type: type,
                                                 limitPrice: action.limit_price ?? .nan, stopPrice: action.stop_price ?? .nan,
                                                 timeInForce: tif, tag: action.tag ?? ""))
            if let ref = action.ref { refs[ref] = id }
        case "target":
            guard let target = action.position, target.isFinite else { return fail("target needs a finite position") }
            context.targetPosition(symbol, target)
        case "cancel":
            guard let id = orderID(action) else { return }
            context.cancel(id)
        case "replace":
            guard let id = orderID(action) else { return }
            guard let quantity = action.quantity, quantity.isFinite, quantity > 0 else { return fail("replace needs a positive quantity") }
            if let new = context.replace(id, quantity: quantity, limitPrice: action.limit_price, stopPrice: action.stop_price),
               let ref = action.ref {
                refs[ref] = new
            }
        default:
            fail("unknown op \(action.op ?? "(none)") (submit, target, cancel, replace)")
        }
    }

    private func orderID(_ action: Reply) -> OrderID? {
        if let id = action.order_id { return id }
        if let ref = action.ref {
            if let id = refs[ref] { return id }
            fail("\(action.op ?? "action") of unknown ref \(ref)")
            return nil
        }
        fail("\(action.op ?? "action") needs ref or order_id")
        return nil
    }

    /// One line from the strategy, as the protocol's fields (every one optional).
    struct Reply: Decodable {
        var type: String?
        var `protocol`: Int?
        var subscriptions: [String]?
        var state: String?
        var op: String?
        var symbol: String?
        var side: String?
        var quantity: Double?
        var order_type: String?
        var limit_price: Double?
        var stop_price: Double?
        var tif: String?
        var tag: String?
        var ref: String?
        var order_id: Int64?
        var position: Double?
    }

    private static let doneLine = Array(#"{"type":"done"}"#.utf8)
    private let decoder = JSONDecoder()

    private func readReply() -> Reply? {
        guard failure == nil, let line = readLine() else { return nil }
        repliesRead += 1
        if line.elementsEqual(Self.doneLine) { return Reply(type: "done") }
        do {
            return try decoder.decode(Reply.self, from: Data(line))
        } catch {
            let text = String(decoding: line.prefix(200), as: UTF8.self)
            fail("line \(repliesRead) of its output is not a protocol message: \(text)")
            return nil
        }
    }

    private func fail(_ why: String) {
        guard failure == nil else { return }
        failure = "strategy \(name) (\(command.joined(separator: " "))): \(why)"
    }

    // MARK: process and pipes

    private func start() throws {
        var input: [Int32] = [0, 0], output: [Int32] = [0, 0]
        guard pipe(&input) == 0, pipe(&output) == 0 else {
            throw StrategyConfigError(strategy: name, key: "command", message: "cannot make pipes: \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input[0], 0)
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        for fd in [input[0], input[1], output[0], output[1]] { posix_spawn_file_actions_addclose(&actions, fd) }
        var arguments = command.map { strdup($0) } + [nil]
        defer { for pointer in arguments { free(pointer) } }
        let result = posix_spawnp(&pid, command[0], &actions, nil, &arguments, environ)
        close(input[0])
        close(output[1])
        guard result == 0 else {
            close(input[1]); close(output[0]); pid = 0
            throw StrategyConfigError(strategy: name, key: "command",
                                      message: "cannot start \(command[0]): \(String(cString: strerror(result)))")
        }
        toChild = input[1]
        fromChild = output[0]
        // A strategy that exits makes writes fail with EPIPE, not kill Tape.
        signal(SIGPIPE, SIG_IGN)
    }

    private func send(_ line: String) {
        guard failure == nil, toChild >= 0 else { return }
        outgoing.removeAll(keepingCapacity: true)
        outgoing.append(contentsOf: line.utf8)
        outgoing.append(UInt8(ascii: "\n"))
        var written = 0
        let ok = outgoing.withUnsafeBytes { raw -> Bool in
            while written < raw.count {
                let n = write(toChild, raw.baseAddress! + written, raw.count - written)
                if n < 0 { if errno == EINTR { continue }; return false }
                written += n
            }
            return true
        }
        if !ok { fail("cannot write to it (\(String(cString: strerror(errno)))): it exited") }
    }

    /// The next line of the strategy's stdout (without the newline), waiting at most the reply timeout.
    private func readLine() -> ArraySlice<UInt8>? {
        let deadline = Self.monotonic() + replyTimeoutNanoseconds
        while true {
            if let newline = buffer[bufferStart...].firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffer[bufferStart..<newline]
                bufferStart = newline + 1
                return line
            }
            if bufferStart > 0 {
                buffer.removeFirst(bufferStart)
                bufferStart = 0
            }
            let left = deadline - Self.monotonic()
            guard left > 0 else {
                fail("no answer within \(replyTimeoutNanoseconds / 1_000_000) ms")
                return nil
            }
            var descriptor = pollfd(fd: fromChild, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(min(left / 1_000_000 + 1, 1_000)))
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 { continue }
            let n = chunk.withUnsafeMutableBytes { read(fromChild, $0.baseAddress!, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                fail("it exited (end of its output)")
                return nil
            }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }

    private static func monotonic() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }

    // MARK: JSON text

    static func number(_ value: Double) -> String { value.isFinite ? Numbers.format(value) : "null" }

    static func quoted(_ text: String) -> String { JSONValue.quote(text) }
}
