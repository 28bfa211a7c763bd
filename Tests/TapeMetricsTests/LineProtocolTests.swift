import Foundation
import TapeHTTP
import TapeIO
import TapeMetrics
import TapeTestSupport
import XCTest

/// Line protocol as the InfluxDB 1.6 reference writes it, then the same points through the real server.
final class LineProtocolTests: XCTestCase {
    private let time: Int64 = 1_465_839_830_100_400_200

    /// The examples of the reference's "Special characters" section, byte for byte.
    func testEscapingMatchesTheReferenceExamples() {
        let examples: [(MetricPoint, String)] = [
            (MetricPoint("weather", tags: ["location": "us,midwest"], fields: ["temperature": .float(82)], time: time),
             #"weather,location=us\,midwest temperature=82 1465839830100400200"#),
            (MetricPoint("weather", tags: ["location": "us-midwest"], fields: ["temp=rature": .float(82)], time: time),
             #"weather,location=us-midwest temp\=rature=82 1465839830100400200"#),
            (MetricPoint("weather", tags: ["location place": "us-midwest"], fields: ["temperature": .float(82)],
                         time: time),
             #"weather,location\ place=us-midwest temperature=82 1465839830100400200"#),
            (MetricPoint("wea,ther", tags: ["location": "us-midwest"], fields: ["temperature": .float(82)], time: time),
             #"wea\,ther,location=us-midwest temperature=82 1465839830100400200"#),
            (MetricPoint("wea ther", tags: ["location": "us-midwest"], fields: ["temperature": .float(82)], time: time),
             #"wea\ ther,location=us-midwest temperature=82 1465839830100400200"#),
            (MetricPoint("weather", tags: ["location": "us-midwest"], fields: ["temperature": .string(#"too"hot""#)],
                         time: time),
             #"weather,location=us-midwest temperature="too\"hot\"" 1465839830100400200"#),
        ]
        for (point, expected) in examples {
            XCTAssertEqual(LineProtocol.line(point), expected)
        }
    }

    /// Field types: float (shortest form), integer with `i`, boolean, string; several tags and fields in
    /// the order given; no timestamp when the time is nil.
    func testFieldTypesAndOrder() {
        let point = MetricPoint("tape_ticks", tags: ["feed": "spot", "symbol": "spot:BTCUSDT"],
                                fields: ["count": .integer(-42), "rate": .float(0.125), "tiny": .float(1e-5),
                                         "up": .boolean(true), "note": .string(#"a\b"#)])
        XCTAssertEqual(LineProtocol.line(point), #"tape_ticks,feed=spot,symbol=spot:BTCUSDT "#
                       + #"count=-42i,rate=0.125,tiny=1e-05,up=true,note="a\\b""#)
        XCTAssertEqual(LineProtocol.escapeMeasurement("a b,c=d"), #"a\ b\,c=d"#, "= needs no escape in a measurement")
        XCTAssertEqual(LineProtocol.escapeKey("a b,c=d"), #"a\ b\,c\=d"#)
        XCTAssertEqual(LineProtocol.quoteString(#"say "hi" \ bye"#), #""say \"hi\" \\ bye""#)
    }

    /// What the protocol cannot carry is changed or left out, never sent broken.
    func testWhatCannotBeWrittenIsLeftOutOrChanged() {
        XCTAssertNil(LineProtocol.line(MetricPoint("", fields: ["v": .integer(1)])), "no measurement")
        XCTAssertNil(LineProtocol.line(MetricPoint("# comment", fields: ["v": .integer(1)])), "a comment line")
        XCTAssertNil(LineProtocol.line(MetricPoint("m", fields: ["v": .float(.nan), "w": .float(.infinity)])),
                     "no finite field")
        XCTAssertEqual(LineProtocol.line(MetricPoint("m", tags: ["empty": "", "": "x", "k": "v"],
                                                     fields: ["v": .float(.nan), "w": .integer(2)])),
                       "m,k=v w=2i", "empty tags and non-finite floats are left out")
        XCTAssertEqual(LineProtocol.line(MetricPoint("m", tags: ["k": "ends\\"], fields: ["v": .integer(1)])),
                       "m,k=ends_ v=1i", "a trailing backslash would escape the separator")
        XCTAssertEqual(LineProtocol.line(MetricPoint("m", tags: ["k": "two\nlines"],
                                                     fields: ["s": .string("a\r\nb")])),
                       #"m,k=two\ lines s="a  b""#, "no line break inside a line")
        var buffer = Array("kept".utf8)
        XCTAssertFalse(LineProtocol.append(MetricPoint("", fields: ["v": .integer(1)]), to: &buffer))
        XCTAssertEqual(buffer, Array("kept".utf8), "nothing appended for a point that cannot be written")
    }

    /// The escaped points go through the real server and come back as they were.
    func testEscapedPointsComeBackFromTheServerAsTheyWere() throws {
        try InfluxServer.require()
        let database = InfluxServer.freshDatabase("escape")
        defer { InfluxServer.drop(database) }
        try InfluxServer.statement("CREATE DATABASE \"\(database)\"", database: nil)
        let tagValue = #"us,mid west=1 a\b"#
        let note = #"too "hot" \ cold"#
        let point = MetricPoint("wea ther,x", tags: ["location place": tagValue],
                                fields: ["temp=rature": .float(82.5), "count": .integer(7), "note": .string(note)],
                                time: time)
        let line = try XCTUnwrap(LineProtocol.line(point))
        let client = try HTTPClient(timeoutMilliseconds: 5_000)
        let response = try client.post("\(InfluxServer.baseURL)/write?db=\(database)&precision=ns",
                                       body: Array(line.utf8))
        XCTAssertEqual(response.status, 204, String(decoding: response.body, as: UTF8.self))
        let series = try InfluxServer.statement("SELECT * FROM \"wea ther,x\"", database: database)
        XCTAssertEqual(series.count, 1)
        let answer = try XCTUnwrap(series.first)
        XCTAssertEqual(answer.name, "wea ther,x")
        XCTAssertEqual(answer.values.count, 1)
        let row = try XCTUnwrap(answer.values.first)
        func column(_ name: String) -> Any? { answer.columns.firstIndex(of: name).map { row[$0] } }
        XCTAssertEqual((column("time") as? NSNumber)?.int64Value, time)
        XCTAssertEqual(column("location place") as? String, tagValue)
        XCTAssertEqual((column("temp=rature") as? NSNumber)?.doubleValue, 82.5)
        XCTAssertEqual((column("count") as? NSNumber)?.int64Value, 7)
        XCTAssertEqual(column("note") as? String, note)
    }

    /// In-memory gzip (TapeIO.GzipCompressor, the request bodies) reads back with TapeIO's reader.
    func testGzipBodiesRoundTrip() throws {
        let gzip = try GzipCompressor(level: 6)
        var body: [UInt8] = []
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tape-gzip-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let inputs: [[UInt8]] = [[], Array("one line\n".utf8),
                                 (0..<20_000).flatMap { Array("tape_ticks,feed=spot count=\($0)i\n".utf8) }]
        for (index, input) in inputs.enumerated() {
            try gzip.compress(input, into: &body)
            XCTAssertEqual(Array(body.prefix(2)), [0x1F, 0x8B], "a gzip member")
            let path = directory.appendingPathComponent("\(index).gz").path
            XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(body)))
            let stream = try GzipStream(path: path, threaded: false)
            var issues: [GzipIssue] = []
            var output: [UInt8] = []
            while let chunk = stream.nextChunk(issues: &issues) { output.append(contentsOf: chunk) }
            XCTAssertEqual(issues, [])
            XCTAssertEqual(output, input, "input \(index)")
        }
        XCTAssertLessThan(body.count * 10, inputs[2].count, "repetitive lines compress well")
    }

    func testEndpointURLs() throws {
        let influx = try InfluxEndpoint(url: "influx://127.0.0.1:58086/metrics")
        XCTAssertEqual(influx.baseURL, "http://127.0.0.1:58086")
        XCTAssertEqual(influx.database, "metrics")
        XCTAssertEqual(influx.description, "influx 127.0.0.1:58086 (database metrics)")
        let http = try InfluxEndpoint(url: "http://127.0.0.1:58086")
        XCTAssertEqual(http.baseURL, "http://127.0.0.1:58086")
        XCTAssertEqual(http.database, "tape")
        XCTAssertEqual(try InfluxEndpoint(url: "https://h.example/?db=ops").baseURL, "https://h.example:8086")
        XCTAssertEqual(try InfluxEndpoint(url: "https://h.example/?db=ops").database, "ops")
        XCTAssertEqual(try InfluxEndpoint(url: "influxs://h.example:9999").baseURL, "https://h.example:9999")
        let secret = try InfluxEndpoint(url: "influx://writer:s3cret%40x@10.0.0.2:8086/tape")
        XCTAssertEqual(secret.username, "writer")
        XCTAssertEqual(secret.password, "s3cret@x")
        XCTAssertEqual(secret.baseURL, "http://10.0.0.2:8086", "no credentials in request URLs")
        XCTAssertFalse(secret.description.contains("s3cret"))
        for bad in ["postgres://h/db", "influx:///tape", "http://h:8086/write", "influx://h/a/b", "not a url"] {
            XCTAssertThrowsError(try InfluxEndpoint(url: bad), bad)
        }
    }
}
