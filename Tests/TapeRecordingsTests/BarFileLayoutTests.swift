import Foundation
import XCTest
import TapeTestSupport
import TapeCore
import TapeRecordings
import TapeSources

/// The real bar files written at run time in the layouts of vendors and platforms (bar_layouts.py, with
/// Python's csv and datetime), read back through `openSource` with detection: every layout gives the
/// bars of the canonical layout, event for event; aggregated 5-minute and daily files give the events
/// Python computed.
final class BarFileLayoutTests: XCTestCase {
    static let rows = 3000
    static var root: URL {
        var url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
            url = url.deletingLastPathComponent()
        }
        return url
    }
    static var barsDirectory: String {
        root.deletingLastPathComponent().appendingPathComponent("shared/data/bars").path
    }

    /// The layouts of the first `rows` rows of one real file, written once per test process.
    static let btcLayouts = Result { try writeLayouts(of: "btc-perp-20211231-20220201_1m.csv.gz") }
    static let fxLayouts = Result { try writeLayouts(of: "fxcm-gbpusd-m1-bid-2012.csv.gz") }

    static func writeLayouts(of name: String) throws -> String {
        let source = barsDirectory + "/" + name
        guard FileManager.default.fileExists(atPath: source) else {
            throw MissingRequirement(description: "real data at \(source)")
        }
        let directory = NSTemporaryDirectory() + "tape-bar-layouts-\(getpid())/\(name)"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", root.appendingPathComponent("Tests/TapeRecordingsTests/bar_layouts.py").path,
                             source, directory, String(rows)]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw MissingRequirement(description: "python3 to write the bar layouts (bar_layouts.py exited "
                                     + "\(process.terminationStatus))")
        }
        return directory
    }

    func layouts(_ result: Result<String, Error>) throws -> String {
        switch result {
        case .success(let directory): return directory
        case .failure(let error): try skipOrFail(missing: "\(error)")
        }
    }

    struct Read {
        var events: [MarketEvent]
        var rejects: [Reject]
        var symbols: SymbolTable
        var layout: InputLayout?
    }

    func read(_ path: String, _ bars: BarOptions = BarOptions(), symbol: String? = "BTC") throws -> Read {
        let symbols = SymbolTable(), rejects = RejectCollector()
        var options = ReaderOptions(symbols: symbols, rejects: rejects, symbol: symbol)
        options.bars = bars
        let source = try openSource(path: path, format: nil, options: options)
        var events: [MarketEvent] = []
        var event = MarketEvent()
        while source.next(&event) == .event { events.append(event) }
        return Read(events: events, rejects: rejects.rejects, symbols: symbols, layout: source.layout)
    }

    /// The same bars: times, values (NaN volume as NaN), symbol names.
    func assertSameBars(_ got: Read, _ expected: Read, _ name: String, file: StaticString = #filePath,
                        line: UInt = #line) {
        XCTAssertEqual(got.rejects.map(\.message), [], name, file: file, line: line)
        XCTAssertEqual(got.events.count, expected.events.count, name, file: file, line: line)
        for (index, (a, b)) in zip(got.events, expected.events).enumerated() {
            let same = a.kind == b.kind && a.eventTime == b.eventTime && a.receiveTime == b.receiveTime
                && a.open == b.open && a.high == b.high && a.low == b.low && a.price == b.price
                && (a.size == b.size || (a.size.isNaN && b.size.isNaN))
                && got.symbols.name(a.symbol) == expected.symbols.name(b.symbol)
            if !same {
                XCTFail("\(name): event \(index): \(a) vs \(b)", file: file, line: line)
                return
            }
        }
    }

    /// A string field of the layout statement.
    func stated(_ read: Read, _ key: String) -> String? {
        guard case .object(let fields)? = read.layout?.summary,
              let value = fields.first(where: { $0.0 == key })?.1 else { return nil }
        switch value {
        case .string(let text): return text
        case .bool(let flag): return String(flag)
        case .object(let members):
            return members.map { member -> String in
                guard case .string(let text) = member.1 else { return member.0 + "=?" }
                return member.0 + "=" + text
            }.joined(separator: " ")
        default: return nil
        }
    }

    /// Every layout of the BTC rows reads as the canonical file does; the statement says how.
    func testEveryLayoutReadsTheCanonicalBars() throws {
        let directory = try layouts(Self.btcLayouts)
        let canonical = try read(directory + "/canonical.csv")
        XCTAssertEqual(canonical.events.count, Self.rows)
        XCTAssertEqual(canonical.rejects.count, 0)
        let numbered: [BarColumnRole: BarColumnReference] = [.volume: .number(1), .close: .number(2), .low: .number(3),
                                                             .high: .number(4), .open: .number(5), .time: .number(6)]
        let named: [BarColumnRole: BarColumnReference] = [.time: .name("a"), .open: .name("b"), .high: .name("c"),
                                                          .low: .name("d"), .close: .name("e"), .volume: .name("f")]
        let cases: [(String, BarOptions, [String: String])] = [
            ("aliases-order-extra.csv", BarOptions(), [
                "columns": "time=DateTime open=Open high=High low=Low close=CLOSE volume=Volume"]),
            ("letters.tsv", BarOptions(), ["separator": "tab",
                                           "columns": "time=time open=o high=h low=l close=c volume=v"]),
            ("semicolon.csv", BarOptions(), ["separator": ";", "time_format": "YYYY-MM-DDTHH:MM:SS+HH:MM"]),
            ("crlf-bom.csv", BarOptions(), [
                "columns": "date=Date time=Time open=Open high=High low=Low close=Close volume=Volume",
                "time_format": "YYYY-MM-DD + HH:MM:SS"]),
            ("iso-zone.csv", BarOptions(), ["time_format": "YYYY-MM-DDTHH:MM:SSZ",
                                            "time_zone": "as written in each time"]),
            ("iso-offset.csv", BarOptions(), ["time_format": "YYYY-MM-DDTHH:MM:SS+HH:MM"]),
            ("plain-seconds.csv", BarOptions(), ["time_format": "YYYY-MM-DD HH:MM:SS", "time_zone": "UTC"]),
            ("histdata.csv", BarOptions(), ["header": "false", "separator": ";", "time_format": "YYYYMMDD HHMMSS"]),
            ("metatrader.csv", BarOptions(), ["header": "false", "time_format": "YYYY.MM.DD + HH:MM",
                                              "columns": "date=column 1 time=column 2 open=column 3 high=column 4 "
                                                + "low=column 5 close=column 6 volume=column 7"]),
            ("mt5.tsv", BarOptions(), ["columns": "date=<DATE> time=<TIME> open=<OPEN> high=<HIGH> low=<LOW> "
                                        + "close=<CLOSE> volume=<VOL>"]),
            ("epoch-s.csv", BarOptions(), ["time_format": "epoch s", "epoch_unit": "s"]),
            ("epoch-ms.csv", BarOptions(), ["epoch_unit": "ms"]),
            ("epoch-us.csv", BarOptions(), ["epoch_unit": "us"]),
            ("epoch-ns.csv", BarOptions(), ["epoch_unit": "ns"]),
            ("binance-klines.csv", BarOptions(), ["header": "false", "epoch_unit": "ms"]),
            ("bar-close.csv", BarOptions(anchor: .close), ["bar_time": "close", "bar_time_source": "option"]),
            ("columns-named.csv", BarOptions(columns: named),
             ["columns": "time=a open=b high=c low=d close=e volume=f"]),
            ("columns-numbered.csv", BarOptions(columns: numbered), ["header": "false"]),
        ]
        for (name, options, statement) in cases {
            let layout = try read(directory + "/" + name, options)
            assertSameBars(layout, canonical, name)
            XCTAssertEqual(stated(layout, "bar_length"), "1m", name)
            XCTAssertEqual(stated(layout, "bar_length_source"), "detected", name)
            for (key, value) in statement { XCTAssertEqual(stated(layout, key), value, "\(name): \(key)") }
        }
    }

    /// The FX file has no volume and `+00:00` times: a few layouts of it read as its canonical rows.
    func testLayoutsOfAFileWithoutVolume() throws {
        let directory = try layouts(Self.fxLayouts)
        let canonical = try read(directory + "/canonical.csv")
        XCTAssertEqual(canonical.events.count, Self.rows)
        XCTAssertTrue(canonical.events.allSatisfy { $0.size.isNaN })
        for name in ["semicolon.csv", "crlf-bom.csv", "histdata.csv", "metatrader.csv", "mt5.tsv", "epoch-ms.csv",
                     "binance-klines.csv"] {
            assertSameBars(try read(directory + "/" + name), canonical, name)
        }
    }

    /// Several symbols in one file (a `symbol` column, rows interleaved by time) read as the files of
    /// each symbol do.
    func testASymbolColumnWithTwoSymbols() throws {
        let directory = try layouts(Self.btcLayouts)
        let both = try read(directory + "/two-symbols.csv", symbol: nil)
        XCTAssertEqual(both.rejects.map(\.message), [])
        XCTAssertEqual(stated(both, "symbol_source"), "symbol")
        XCTAssertEqual(stated(both, "bar_length"), "1m")
        for name in ["A", "B"] {
            let alone = try read(directory + "/\(name.lowercased()).csv", symbol: nil)
            var mine = both
            mine.events = both.events.filter { both.symbols.name($0.symbol) == name }
            assertSameBars(mine, alone, name)
        }
    }

    /// Aggregated 5-minute and daily bars: the bar length is detected from the spacing, and each event
    /// ends one bar length after the row's open time, as Python computed.
    func testLongerBarsGetTheirDetectedLength() throws {
        let directory = try layouts(Self.btcLayouts)
        for (name, length) in [("bars-5m", "5m"), ("bars-1d", "1d")] {
            let bars = try read(directory + "/\(name).csv")
            XCTAssertEqual(bars.rejects.map(\.message), [], name)
            XCTAssertEqual(stated(bars, "bar_length"), length, name)
            XCTAssertEqual(stated(bars, "bar_length_source"), "detected", name)
            let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/\(name).expected.json"))
            let expected = try JSONDecoder().decode([[String]].self, from: data)
            XCTAssertEqual(bars.events.count, expected.count, name)
            for (event, row) in zip(bars.events, expected) {
                XCTAssertEqual(event.eventTime, Int64(row[0]), name)
                XCTAssertEqual(event.receiveTime, Int64(row[0]), name)
                XCTAssertEqual([event.open, event.high, event.low, event.price, event.size],
                               row[1...5].map { Double($0)! }, name)
            }
        }
        // The same 5-minute file told it is something else: the option wins, and says so.
        let forced = try read(directory + "/bars-5m.csv", BarOptions(anchor: .close, lengthNanos: 300_000_000_000))
        XCTAssertEqual(stated(forced, "bar_length_source"), "option")
        let expected = try read(directory + "/bars-5m.csv")
        XCTAssertEqual(forced.events.map(\.eventTime), expected.events.map { $0.eventTime - 300_000_000_000 })
    }
}
