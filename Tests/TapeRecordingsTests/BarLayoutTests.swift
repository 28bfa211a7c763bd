import Foundation
import XCTest
import TapeTestSupport
import TapeCore
import TapeRecordings
import TapeSources

/// The bar-layout detector (pure: first line and sample in, layout out), the calendar-time parser
/// against Foundation's calendar, and the bar options.
final class BarLayoutTests: XCTestCase {
    func detect(_ text: String, _ options: BarOptions = BarOptions()) throws -> BarLayout {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { Array($0.utf8) }
        return try BarLayoutDetector.detect(firstLine: lines[0], sample: Array(lines.dropFirst()), options: options)
    }

    func detectionError(_ text: String, _ options: BarOptions = BarOptions()) -> String {
        do {
            _ = try detect(text, options)
            return "no error"
        } catch { return "\(error)" }
    }

    // MARK: columns and separators

    func testCanonicalHeader() throws {
        let layout = try detect("timestamp,open,high,low,close,volume\n2022-01-01 00:00:00,1,2,0.5,1.5,10\n"
                                + "2022-01-01 00:01:00,1,2,0.5,1.5,10\n2022-01-01 00:02:00,1,2,0.5,1.5,10")
        XCTAssertEqual(layout.separator, UInt8(ascii: ","))
        XCTAssertTrue(layout.hasHeader)
        XCTAssertEqual([layout.time, layout.open, layout.high, layout.low, layout.close, layout.volume],
                       [0, 1, 2, 3, 4, 5])
        XCTAssertNil(layout.timeOfDay)
        XCTAssertNil(layout.symbol)
        XCTAssertEqual(layout.timeFormat, .calendar(shape: "YYYY-MM-DD HH:MM:SS", isoDate: true))
        XCTAssertEqual(layout.anchor, .open)
        XCTAssertFalse(layout.anchorGiven)
        XCTAssertEqual(layout.lengthNanos, 60_000_000_000)
        XCTAssertEqual(layout.lengthSource, .detected)
    }

    func testAliasesAnyCaseAnyOrderExtraColumnsAndSeparators() throws {
        let rows = "\n2022-01-01T00:00:00Z;1;2;0.5;1.5;9;x\n2022-01-01T00:01:00Z;1;2;0.5;1.5;9;x"
        let semicolon = try detect("DateTime;O;H;L;C;Vol;Extra" + rows)
        XCTAssertEqual(semicolon.separator, UInt8(ascii: ";"))
        XCTAssertEqual([semicolon.time, semicolon.open, semicolon.high, semicolon.low, semicolon.close],
                       [0, 1, 2, 3, 4])
        XCTAssertEqual(semicolon.volume, 5)
        let shuffled = try detect("Close\tignored\tTS_EVENT\tLow\tv\tOpen\tHigh\n1.5\tx\t1700000000000\t0.5\t3\t1\t2")
        XCTAssertEqual(shuffled.separator, 0x09)
        XCTAssertEqual([shuffled.time, shuffled.open, shuffled.high, shuffled.low, shuffled.close], [2, 5, 6, 3, 0])
        XCTAssertEqual(shuffled.volume, 4)
        XCTAssertEqual(shuffled.timeFormat, .epoch(unitNanos: 1_000_000))
        for (name, column) in [("timestamp_utc", 0), ("open_time", 0), ("ts_event", 0), ("datetime", 0), ("time", 0),
                               ("Date", 0), ("Open Time", 0)] {
            XCTAssertEqual(try detect("\(name),open,high,low,close\n2022-01-01,1,2,0.5,1.5").time, column, name)
        }
        // MetaTrader 5 names: <DATE> and <TIME> columns; <VOL> preferred to <TICKVOL>.
        let mt5 = try detect("<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n"
                             + "2012.02.01\t00:00:00\t1.3\t1.4\t1.2\t1.35\t12\t0\t2")
        XCTAssertEqual(mt5.time, 0)
        XCTAssertEqual(mt5.timeOfDay, 1)
        XCTAssertEqual(mt5.volume, 7)
        XCTAssertEqual(mt5.timeFormat, .calendar(shape: "YYYY.MM.DD + HH:MM:SS", isoDate: false))
        // A symbol or ticker column.
        XCTAssertEqual(try detect("ticker,timestamp,open,high,low,close\nA,2022-01-01,1,2,0.5,1.5").symbol, 0)
    }

    func testFilesWithoutAHeader() throws {
        let metaTrader = try detect("2012.02.01,00:00,1.3066,1.3067,1.3065,1.3066,12\n"
                                    + "2012.02.01,00:01,1.3066,1.3067,1.3065,1.3066,9")
        XCTAssertFalse(metaTrader.hasHeader)
        XCTAssertEqual(metaTrader.separator, UInt8(ascii: ","))
        XCTAssertEqual([metaTrader.time, metaTrader.open, metaTrader.close], [0, 2, 5])
        XCTAssertEqual(metaTrader.timeOfDay, 1)
        XCTAssertEqual(metaTrader.volume, 6)
        XCTAssertEqual(metaTrader.names[2], "column 3")
        XCTAssertEqual(metaTrader.timeFormat, .calendar(shape: "YYYY.MM.DD + HH:MM", isoDate: false))
        let histData = try detect("20120201 000000;1.306600;1.306600;1.306560;1.306560;0")
        XCTAssertFalse(histData.hasHeader)
        XCTAssertEqual(histData.separator, UInt8(ascii: ";"))
        XCTAssertEqual(histData.timeFormat, .calendar(shape: "YYYYMMDD HHMMSS", isoDate: false))
        XCTAssertEqual(histData.volume, 5)
        let klines = try detect("1640995200000,46216.93,46731.39,46208.37,46656.13,1503.33,1640995259999,1,2,3,4,0")
        XCTAssertFalse(klines.hasHeader)
        XCTAssertEqual(klines.timeFormat, .epoch(unitNanos: 1_000_000))
        XCTAssertEqual(klines.fieldCount, 12)
        // Numbered --columns read a headerless file whose first column is not the time.
        let numbered = try detect("10,1.5,0.5,2,1,2022-01-01T00:00:00Z", BarOptions(columns: [
            .time: .number(6), .open: .number(5), .high: .number(4), .low: .number(3), .close: .number(2),
            .volume: .number(1)]))
        XCTAssertFalse(numbered.hasHeader)
        XCTAssertEqual([numbered.time, numbered.open, numbered.high, numbered.low, numbered.close], [5, 4, 3, 2, 1])
        XCTAssertEqual(numbered.givenRoles, [.time, .open, .high, .low, .close, .volume])
    }

    func testColumnsOption() throws {
        let named = try detect("a,b,c,d,e\n2022-01-01,1,2,0.5,1.5", BarOptions(columns: [
            .time: .name("A"), .open: .name("b"), .high: .name("c"), .low: .name("d"), .close: .name("e")]))
        XCTAssertEqual([named.time, named.open, named.high, named.low, named.close], [0, 1, 2, 3, 4])
        // A partial --columns: the other roles by their names.
        let partial = try detect("Zeit,open,high,low,close\n2022-01-01,1,2,0.5,1.5",
                                 BarOptions(columns: [.time: .name("zeit")]))
        XCTAssertEqual(partial.time, 0)
        XCTAssertEqual(partial.givenRoles, [.time])
        let missing = detectionError("a,b,c,d,e\n2022-01-01,1,2,0.5,1.5", BarOptions(columns: [.time: .name("when")]))
        XCTAssertTrue(missing.contains("--columns time=when: no such column; header seen: 'a,b,c,d,e'"), missing)
        let twice = detectionError("time,open,high,low,close\n2022-01-01,1,2,0.5,1.5",
                                   BarOptions(columns: [.open: .number(2), .close: .number(2)]))
        XCTAssertTrue(twice.contains("open and close are both column 2"), twice)
        let noHeader = detectionError("2022-01-01,1,2,0.5,1.5", BarOptions(columns: [.close: .name("close")]))
        XCTAssertTrue(noHeader.contains("has no header"), noHeader)

        XCTAssertEqual(try BarOptions.parseColumns("time=Date, open=3,CLOSE=Last"),
                       [.time: .name("Date"), .open: .number(3), .close: .name("Last")])
        for bad in ["time", "when=Date", "open=0", "open=1,open=2", "", "time="] {
            XCTAssertThrowsError(try BarOptions.parseColumns(bad), bad)
        }
    }

    func testAHeaderThatCannotBeReadNamesWhatWasSeenAndWhatWasExpected() {
        let message = detectionError("Zeit;Eröffnung;Hoch;Tief;Schluss\n2022-01-01;1;2;0.5;1.5")
        XCTAssertTrue(message.contains("header seen: 'Zeit;Eröffnung;Hoch;Tief;Schluss' (separator ';')"), message)
        XCTAssertTrue(message.contains("missing a time column, open, high, low, close"), message)
        XCTAssertTrue(message.contains("expected a time column (timestamp"), message)
        let noTime = detectionError("when,open,high,low,close\n2022-01-01,1,2,0.5,1.5")
        XCTAssertTrue(noTime.contains("missing a time column;"), noTime)
        // A header that fits but times in no format Tape reads (US dates).
        let usDates = detectionError("Date,Open,High,Low,Close\n01/02/2012,1,2,0.5,1.5\n01/03/2012,1,2,0.5,1.5")
        XCTAssertTrue(usDates.contains("column 'Date' holds '01/02/2012'"), usDates)
    }

    // MARK: times

    func testTimeFormatsAndEpochUnitsFromTheFirstRow() throws {
        let cases: [(String, BarLayout.TimeFormat)] = [
            ("2021-12-31 23:01:00.000000", .calendar(shape: "YYYY-MM-DD HH:MM:SS.ffffff", isoDate: true)),
            ("2012-02-01 00:00:00+00:00", .calendar(shape: "YYYY-MM-DD HH:MM:SS+HH:MM", isoDate: true)),
            ("2012-02-01T00:00:00Z", .calendar(shape: "YYYY-MM-DDTHH:MM:SSZ", isoDate: true)),
            ("2012.02.01 00:00", .calendar(shape: "YYYY.MM.DD HH:MM", isoDate: false)),
            ("20120201 000000", .calendar(shape: "YYYYMMDD HHMMSS", isoDate: false)),
            ("20120201", .calendar(shape: "YYYYMMDD", isoDate: false)),
            ("1328054400", .epoch(unitNanos: 1_000_000_000)),
            ("1328054400000", .epoch(unitNanos: 1_000_000)),
            ("1328054400000000", .epoch(unitNanos: 1_000)),
            ("1328054400000000000", .epoch(unitNanos: 1)),
        ]
        for (text, format) in cases {
            XCTAssertEqual(try detect("timestamp,open,high,low,close\n\(text),1,2,0.5,1.5").timeFormat, format, text)
        }
        // The first row whose time reads decides; a header alone leaves it unknown.
        let secondRow = try detect("time,open,high,low,close\nnot-a-time,1,2,0.5,1.5\n1328054400,1,2,0.5,1.5")
        XCTAssertEqual(secondRow.timeFormat, .epoch(unitNanos: 1_000_000_000))
        XCTAssertEqual(try detect("time,open,high,low,close").timeFormat, .unknown)
    }

    /// Every style against Foundation's Gregorian calendar in UTC (an implementation independent of
    /// Tape's), on random instants of the accepted range; ISO-8601 forms also against TimeUtil.
    func testCalendarTextAgainstFoundation() {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let seconds = Int64.random(in: 0..<7_258_118_400, using: &generator)
            let date = Date(timeIntervalSince1970: TimeInterval(seconds))
            let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
            let (y, mo, d, h, mi, s) = (c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
            let offsetMinutes = Int.random(in: -720...720) / 15 * 15
            let local = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second],
                                                from: date.addingTimeInterval(TimeInterval(offsetMinutes * 60)))
            let zone = (offsetMinutes < 0 ? "-" : "+")
                + String(format: "%02d:%02d", abs(offsetMinutes) / 60, abs(offsetMinutes) % 60)
            let texts: [(String, Int64)] = [
                (String(format: "%04d-%02d-%02d %02d:%02d:%02d", y, mo, d, h, mi, s), seconds),
                (String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", y, mo, d, h, mi, s), seconds),
                (String(format: "%04d%02d%02d %02d%02d%02d", y, mo, d, h, mi, s), seconds),
                (String(format: "%04d%02d%02d%02d%02d%02d", y, mo, d, h, mi, s), seconds),
                (String(format: "%04d.%02d.%02d %02d:%02d", y, mo, d, h, mi), seconds - Int64(s)),
                (String(format: "%04d/%02d/%02d %02d:%02d:%02d UTC", y, mo, d, h, mi, s), seconds),
                (String(format: "%04d-%02d-%02dT%02d:%02d:%02d", local.year!, local.month!, local.day!, local.hour!,
                        local.minute!, local.second!) + zone, seconds),
            ]
            for (text, expected) in texts {
                var bytes = Array(text.utf8)
                let parsed = bytes.withUnsafeMutableBufferPointer { BarTimeText.parse($0.baseAddress!, $0.count) }
                XCTAssertEqual(parsed.map { $0.seconds }, expected, text)
                if text.utf8.count > 4 && Array(text.utf8)[4] == UInt8(ascii: "-") {
                    XCTAssertEqual(TimeUtil.parseDateTime(text), parsed.flatMap(BarTimeText.accepted), text)
                }
            }
            var dateBytes = Array(String(format: "%04d.%02d.%02d", y, mo, d).utf8)
            var timeBytes = Array(String(format: "%02d:%02d:%02d", h, mi, s).utf8)
            let twoColumns = dateBytes.withUnsafeMutableBufferPointer { dateText in
                timeBytes.withUnsafeMutableBufferPointer { timeText in
                    BarTimeText.parse(date: dateText.baseAddress!, dateText.count, time: timeText.baseAddress!,
                                      timeText.count)
                }
            }
            XCTAssertEqual(twoColumns?.seconds, seconds)
        }
        // Fractions, HistData milliseconds, and what is not a time.
        func parse(_ text: String) -> BarTimeText.Instant? {
            var bytes = Array(text.utf8)
            return bytes.withUnsafeMutableBufferPointer { BarTimeText.parse($0.baseAddress!, $0.count) }
        }
        XCTAssertEqual(parse("2021-12-31 23:01:00.123456")?.nanos, 123_456_000)
        XCTAssertEqual(parse("20211231 230100123")?.nanos, 123_000_000)
        for bad in ["2013-02-29 00:00", "2012-13-01", "2012.02-01", "20120230", "2012-02-01 24:00", "2012-02-01 12",
                    "2012-02-01 12:00.5", "2012-02-01 12:60", "2012-02-01X12:00", "2012-02-01 12:00 CET", "12:00"] {
            XCTAssertNil(parse(bad), bad)
        }
    }

    // MARK: bar time and length

    func testBarLengthDetectedFromTheSpacing() throws {
        func rows(_ times: [String], symbols: [String]? = nil) -> String {
            let header = symbols == nil ? "time,open,high,low,close" : "symbol,time,open,high,low,close"
            return ([header] + times.enumerated().map { index, time in
                (symbols.map { $0[index] + "," } ?? "") + "\(time),1,2,0.5,1.5"
            }).joined(separator: "\n")
        }
        let fiveMinutes = try detect(rows(["2022-01-03 09:30", "2022-01-03 09:35", "2022-01-03 09:40",
                                           "2022-01-03 09:50", "2022-01-03 09:55"]))
        XCTAssertEqual(fiveMinutes.lengthNanos, 300_000_000_000)
        XCTAssertEqual(fiveMinutes.lengthSource, .detected)
        XCTAssertEqual(fiveMinutes.lengthEvidence, "3 of 4 gaps in the first 5 rows")
        // Daily bars over a weekend: the one-day gaps outnumber the three-day one.
        let daily = try detect(rows(["2022-01-06", "2022-01-07", "2022-01-10", "2022-01-11", "2022-01-12"]))
        XCTAssertEqual(daily.lengthNanos, 86_400_000_000_000)
        // Two symbols interleaved: gaps are taken per symbol.
        let twoSymbols = try detect(rows(["2022-01-03 09:30", "2022-01-03 09:30", "2022-01-03 09:31",
                                          "2022-01-03 09:31", "2022-01-03 09:32"], symbols: ["A", "B", "A", "B", "A"]))
        XCTAssertEqual(twoSymbols.lengthNanos, 60_000_000_000)
        XCTAssertEqual(twoSymbols.lengthSource, .detected)
        // Too few rows to tell: one minute, said so.
        let twoRows = try detect(rows(["2022-01-03 09:30", "2022-01-03 10:30"]))
        XCTAssertEqual(twoRows.lengthNanos, 60_000_000_000)
        XCTAssertEqual(twoRows.lengthSource, .default)
        // Gaps beyond 366 days are no bar length (the longest a duration may be).
        let decades = try detect(rows(["1980-01-01", "2000-01-01", "2020-01-01", "2040-01-01"]))
        XCTAssertEqual(decades.lengthSource, .default)
        // Given: taken as is, and the anchor too.
        let given = try detect(rows(["2022-01-03 09:30", "2022-01-03 09:31", "2022-01-03 09:32"]),
                               BarOptions(anchor: .close, lengthNanos: 3_600_000_000_000))
        XCTAssertEqual(given.lengthNanos, 3_600_000_000_000)
        XCTAssertEqual(given.lengthSource, .option)
        XCTAssertEqual(given.anchor, .close)
        XCTAssertTrue(given.anchorGiven)
    }

    func testBarOptionsParsing() throws {
        XCTAssertEqual(try BarOptions.parseLength("1m"), 60_000_000_000)
        XCTAssertEqual(try BarOptions.parseLength("5m"), 300_000_000_000)
        XCTAssertEqual(try BarOptions.parseLength("1h"), 3_600_000_000_000)
        XCTAssertEqual(try BarOptions.parseLength("1d"), 86_400_000_000_000)
        XCTAssertEqual(try BarOptions.parseLength("30s"), 30_000_000_000)
        for bad in ["", "m", "0m", "-1m", "1.5m", "1y", "367d", "5 m"] {
            XCTAssertThrowsError(try BarOptions.parseLength(bad), bad)
        }
        XCTAssertEqual(try BarOptions.parseAnchor("Close"), .close)
        XCTAssertThrowsError(try BarOptions.parseAnchor("end"))
        XCTAssertEqual(["1d", "4h", "5m", "90s", "250ms"],
                       [86_400_000_000_000, 14_400_000_000_000, 300_000_000_000, 90_000_000_000, 250_000_000]
                        .map(BarOptions.lengthText))
    }

    /// The statement of a layout, as summary.json and stderr carry it.
    func testStatement() throws {
        let layout = try detect("Date;Time;Open;High;Low;Close\n2012.02.01;00:00;1.3;1.4;1.2;1.35\n"
                                + "2012.02.01;00:05;1.3;1.4;1.2;1.35\n2012.02.01;00:10;1.3;1.4;1.2;1.35")
        let statement = layout.statement(symbol: "GBPUSD", symbolSource: "--symbol")
        XCTAssertEqual(statement.barLengthNanos, 300_000_000_000)
        XCTAssertEqual(statement.text, "bars: header, separator ';', columns date=Date time=Time open=Open high=High "
                       + "low=Low close=Close; time YYYY.MM.DD + HH:MM (UTC); bar time open (default); bar length 5m "
                       + "(detected: 2 of 2 gaps in the first 3 rows); symbol GBPUSD (--symbol)")
        let columns: [(String, JSONValue)] = ["date", "time", "open", "high", "low", "close"].map {
            ($0, .string($0.prefix(1).uppercased() + $0.dropFirst()))
        }
        XCTAssertEqual(statement.summary, .object([
            ("header", .bool(true)), ("separator", .string(";")), ("columns", .object(columns)),
            ("columns_given", .array([])), ("time_format", .string("YYYY.MM.DD + HH:MM")),
            ("time_zone", .string("UTC")),
            ("bar_time", .string("open")), ("bar_time_source", .string("default")), ("bar_length", .string("5m")),
            ("bar_length_source", .string("detected")),
            ("bar_length_evidence", .string("2 of 2 gaps in the first 3 rows")), ("symbol", .string("GBPUSD")),
            ("symbol_source", .string("--symbol")),
        ]))
    }

    /// Detection from content: every bar layout is `.bars`, the formats checked before it keep winning.
    func testFormatDetection() {
        for line in ["timestamp,open,high,low,close", "Date;Time;Open;High;Low;Close;Volume", "time\to\th\tl\tc\tv",
                     "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>", "when,open,high,low,close",
                     "2012.02.01,00:00,1.3066,1.3067,1.3065,1.3066,12", "20120201 000000;1.3066;1.3066;1.3065;1.3065;0",
                     "1640995200000,46216.93,46731.39,46208.37,46656.13,1503.33,1640995259999,1,2,3,4,0"] {
            XCTAssertEqual(FormatDetector.detect(firstLine: line), .bars, line)
        }
        XCTAssertEqual(FormatDetector.detect(firstLine: "ticker,volume,open,close,high,low,window_start,transactions"),
                       .polygonMinuteAggs)
        for line in ["hello world", "a,b,c", "Zeit;Eröffnung;Hoch;Tief;Schluss", "1,2,3"] {
            XCTAssertNil(FormatDetector.detect(firstLine: line), line)
        }
    }
}
