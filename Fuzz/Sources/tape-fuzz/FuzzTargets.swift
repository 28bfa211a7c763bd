// libFuzzer entry point for every reader and decoder of Tape's input side. Built by scripts/fuzz.sh with
// `--sanitize=fuzzer --sanitize=address`; the target is chosen by TAPE_FUZZ_TARGET (one name of
// `FuzzTarget`). A crash is a trap (overflow, out-of-bounds index, a failed precondition), an ASan
// report, or a broken property checked here (`require`): what a run delivers is always in range.
import TapeCore
import TapeFeeds
import TapeIO
import TapeRecordings
import TapeSources
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One fuzz target per reader and decoder (names are the folder names under Fuzz/seeds and Fuzz/regressions).
enum FuzzTarget: String, CaseIterable, Sendable {
    case numbers, time
    case binanceDecoder = "binance-decoder"
    case polygonDecoder = "polygon-decoder"
    case gzip
    case rawCapture = "raw-capture"
    case tickCSV = "tick-csv"
    case bars
    case polygonTrades = "polygon-trades"
    case polygonQuotes = "polygon-quotes"
    case polygonMinuteAggs = "polygon-minute-aggs"
    case tardisTrades = "tardis-trades"
    case detect

    /// The target named by TAPE_FUZZ_TARGET; stops the process with the list of names otherwise.
    static let selected: FuzzTarget = {
        let name = getenv("TAPE_FUZZ_TARGET").map { String(cString: $0) } ?? ""
        guard let target = FuzzTarget(rawValue: name) else {
            let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: " ")
            printError("tape-fuzz: set TAPE_FUZZ_TARGET to one of: \(names)")
            exit(2)
        }
        return target
    }()
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    // An exact-size heap copy: ASan sees any read one byte past the input.
    let input = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 1), alignment: 1)
    defer { input.deallocate() }
    if let data, size > 0 { input.copyMemory(from: UnsafeRawBufferPointer(start: data, count: size)) }
    let bytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(input)[0..<size])
    switch FuzzTarget.selected {
    case .numbers: fuzzNumbers(bytes)
    case .time: fuzzTime(bytes)
    case .binanceDecoder: fuzzDecoder(BinanceDecoder(symbols: SymbolTable(), venue: "spot"), bytes)
    case .polygonDecoder: fuzzDecoder(PolygonDecoder(symbols: SymbolTable(), venue: nil), bytes)
    case .gzip: fuzzLines(bytes)
    case .rawCapture: fuzzReader(bytes, format: .rawCapture)
    case .tickCSV: fuzzReader(bytes, format: .tickCSV)
    case .bars: fuzzReader(bytes, format: .bars)
    case .polygonTrades: fuzzReader(bytes, format: .polygonTrades)
    case .polygonQuotes: fuzzReader(bytes, format: .polygonQuotes)
    case .polygonMinuteAggs: fuzzReader(bytes, format: .polygonMinuteAggs)
    case .tardisTrades: fuzzReader(bytes, format: .tardisTrades)
    case .detect: fuzzReader(bytes, format: nil)
    }
    return 0
}

/// A property every input must keep; a violation is a crash libFuzzer keeps.
func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition {
        printError("tape-fuzz: property broken: \(message())")
        abort()
    }
}

/// One line on standard error (fd 2: no shared `FILE *` in Swift 6 mode).
func printError(_ message: String) {
    let bytes = Array((message + "\n").utf8)
    _ = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
}

// MARK: - Numbers and time

/// `parseDouble` accepts exactly what `strtod` reads whole, with the same bits; `parseInt` agrees with
/// `strtoll`; a parsed value prints (`Numbers.format`) to text that reads back to it.
func fuzzNumbers(_ bytes: UnsafeRawBufferPointer) {
    guard let start = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
    let text = String(decoding: bytes, as: UTF8.self)
    if let value = Numbers.parseDouble(start, bytes.count) {
        let reference = text.withCString { pointer -> (Double, Int) in
            var end: UnsafeMutablePointer<CChar>? = nil
            let value = strtod(pointer, &end)
            return (value, end.map { UnsafePointer($0) - pointer } ?? 0)
        }
        require(reference.1 == bytes.count, "parseDouble accepted \(text) but strtod reads \(reference.1) bytes")
        require(value.bitPattern == reference.0.bitPattern, "parseDouble(\(text)) = \(value), strtod \(reference.0)")
        if value.isFinite {
            require(Numbers.parseDouble(Numbers.format(value)) == value, "format/parse round trip of \(value)")
        }
    }
    if let value = Numbers.parseInt(start, bytes.count) {
        let reference = Int64(text)
        require(reference == value, "parseInt(\(text)) = \(value), Int64(text) \(String(describing: reference))")
    }
}

/// A parsed time is inside the accepted range and reads back from its own ISO text.
func fuzzTime(_ bytes: UnsafeRawBufferPointer) {
    guard let start = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
    if let nanos = TimeUtil.parseDateTime(start, bytes.count) {
        require(TimeUtil.isAccepted(nanos), "parseDateTime gave \(nanos), outside the accepted range")
        require(TimeUtil.parseDateTime(TimeUtil.iso(nanos)) == nanos, "iso/parse round trip of \(nanos)")
    }
    if let nanos = TimeUtil.parseUserTime(String(decoding: bytes, as: UTF8.self)) {
        require(TimeUtil.isAccepted(nanos), "parseUserTime gave \(nanos), outside the accepted range")
    }
}

// MARK: - Decoders

/// One wire message. The first 8 bytes (when there are more than 8) are the receive time, so that
/// extreme receive times are explored too; decoders do not validate, they must only not trap.
func fuzzDecoder<Decoder: WireDecoder>(_ decoder: Decoder, _ bytes: UnsafeRawBufferPointer) {
    var decoder = decoder
    var receiveTime: Nanos = 1_723_161_600_000_000_000
    var message = bytes
    if bytes.count > 8 && bytes[0] == UInt8(ascii: "#") {
        receiveTime = bytes.loadUnaligned(fromByteOffset: 1, as: Int64.self)
        message = UnsafeRawBufferPointer(rebasing: bytes[9...])
    }
    var events: [MarketEvent] = []
    events.reserveCapacity(16)
    switch decoder.decode(message, receiveTime: receiveTime, into: &events) {
    case .decoded(let count): require(count >= 1 && count == events.count, "decoded \(count), got \(events.count)")
    case .skipped, .malformed, .unknown: require(events.isEmpty, "events appended without .decoded")
    }
}

// MARK: - Gzip stream, line reader and file readers

/// The input as a file (readers read files, pipes and stdin the same way: through `GzipStream`).
final class InputFile: @unchecked Sendable {
    static let shared = InputFile()
    let path: String
    private init() {
        let folder = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
        path = "\(folder)/tape-fuzz-\(getpid()).input"
    }

    func write(_ bytes: UnsafeRawBufferPointer) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        require(descriptor >= 0, "cannot create \(path)")
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            require(written > 0, "cannot write \(path)")
            offset += written
        }
        close(descriptor)
    }
}

/// Every line of the decompressed stream, with a small line bound (the long-line path is explored).
func fuzzLines(_ bytes: UnsafeRawBufferPointer) {
    let file = InputFile.shared
    file.write(bytes)
    let rejects = RejectCollector()
    guard let lines = try? LineReader(path: file.path, rejects: rejects, threaded: false, maxLineBytes: 512)
    else { return }
    var previousLine = 0
    while let line = lines.next() {
        require(line.count <= 512, "a line of \(line.count) bytes passed the bound of 512")
        require(lines.lineNumber > previousLine, "line numbers go up")
        previousLine = lines.lineNumber
    }
    require(lines.next() == nil, "the end stays the end")
}

/// A reader (or, with `format` nil, detection and then a reader) drained to its end: every delivered
/// event is inside the accepted time range with finite, positive values.
func fuzzReader(_ bytes: UnsafeRawBufferPointer, format: RecordingFormat?) {
    let file = InputFile.shared
    file.write(bytes)
    let rejects = RejectCollector()
    let options = ReaderOptions(symbols: SymbolTable(), rejects: rejects, symbol: "FUZZ", maxLineBytes: 4096)
    guard let source = try? openSource(path: file.path, format: format, options: options) else { return }
    var event = MarketEvent()
    var delivered = 0
    while source.next(&event) == .event {
        delivered += 1
        if event.kind == .clockTick { continue }
        require(TimeUtil.isAccepted(event.receiveTime), "receive time \(event.receiveTime) delivered")
        require(TimeUtil.isAccepted(event.eventTime), "event time \(event.eventTime) delivered")
        for value in [event.price, event.size, event.bid, event.ask, event.open, event.high, event.low] {
            require(!value.isInfinite, "an infinite value delivered")
        }
    }
    require(source.next(&event) == .end, "the end stays the end")
    require(source.stats.events == delivered, "stats count \(source.stats.events) events, \(delivered) delivered")
}
