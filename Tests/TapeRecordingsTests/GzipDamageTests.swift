import Foundation
import XCTest
import TapeCore
import TapeFeeds
import TapeRecordings
import TapeIO
import TapeSources

/// Real captures damaged at run time (truncated, corrupt block, multi-member with damage). The
/// expectation comes from Python's zlib: the decompressible prefix of the damaged member, fed byte by
/// byte near the error, counting only complete lines that are valid JSON of each stream.
final class GzipDamageTests: XCTestCase {
    static let prefixScript = """
    import sys, zlib, json
    data = open(sys.argv[1], 'rb').read()
    d = zlib.decompressobj(31); out = bytearray(); err = False
    for i in range(0, len(data), 4096):
        chunk = data[i:i+4096]; c = d.copy()
        try:
            out += d.decompress(chunk)
            if d.eof: break
        except zlib.error:
            err = True
            for j in range(len(chunk)):
                try: out += c.decompress(chunk[j:j+1])
                except zlib.error: break
            break
    text = bytes(out)
    complete = text.count(b'\\n')
    body = text[:text.rfind(b'\\n') + 1] if complete else b''
    t = q = dep = 0
    for line in body.split(b'\\n')[:-1]:
        try:
            ts, msg = line.split(b' ', 1); int(ts); j = json.loads(msg)
        except Exception: continue
        s = j.get('stream', '')
        if s.endswith('@trade'): t += 1
        elif s.endswith('@bookTicker'): q += 1
        elif '@depth' in s: dep += 1
    print(complete, t, q, dep, int(err), int(d.eof))
    """

    /// (complete lines, trades, quotes, depth, zlibError, memberEnded) of the decodable prefix.
    func prefix(_ path: String, _ dir: String) throws -> [Int] {
        let script = dir + "/prefix.py"
        try Self.prefixScript.write(toFile: script, atomically: true, encoding: .utf8)
        return try FeedsTestSupport.sh("python3 '\(script)' '\(path)'").split(separator: " ").map { Int($0)! }
    }

    func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }
    func write(_ b: [UInt8], _ path: String) throws { try Data(b).write(to: URL(fileURLWithPath: path)) }

    func testTruncatedAt60Percent() throws {
        let dir = try FeedsTestSupport.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for threaded in [true, false] {
            let src = try bytes(try FeedsTestSupport.binance("usdm-btcusdt_20240808.gz"))
            let path = dir + "/usdm-cut.gz"
            try write(Array(src[0..<(src.count * 6 / 10)]), path)
            let exp = try prefix(path, dir)
            XCTAssertEqual(exp[4], 0); XCTAssertEqual(exp[5], 0)  // python: no error, member not ended
            let r = try FeedsTestSupport.readAll(path, threaded: threaded)
            XCTAssertEqual(r.trades, exp[1]); XCTAssertEqual(r.quotes, exp[2])
            XCTAssertEqual(r.collector.skips["depth"] ?? 0, exp[3])
            XCTAssertEqual(r.collector.rejects.count, 1)
            let rej = r.collector.rejects[0]
            XCTAssertEqual(rej.reason, .truncatedGzip)
            XCTAssertEqual(rej.line, exp[0] + 1)   // the cut line, not delivered
            XCTAssertEqual(rej.file, path)
            XCTAssertTrue(rej.message.hasPrefix(path + ":\(exp[0] + 1): truncated_gzip"), rej.message)
            XCTAssertGreaterThan(r.trades, 21313 / 2)
        }
    }

    func testCorruptBlockSingleMember() throws {
        let dir = try FeedsTestSupport.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var b = try bytes(try FeedsTestSupport.binance("spot-btcusdt_20240808.gz"))
        let at = b.count / 2
        for k in 0..<64 { b[at + k] = UInt8(truncatingIfNeeded: k &* 37 &+ 11) }
        let path = dir + "/spot-corrupt.gz"
        try write(b, path)
        let exp = try prefix(path, dir)
        XCTAssertEqual(exp[4], 1)  // zlib sees an error
        let r = try FeedsTestSupport.readAll(path)
        XCTAssertEqual(r.trades, exp[1]); XCTAssertEqual(r.quotes, exp[2])
        let gz = r.collector.rejects.filter { $0.reason == .corruptGzip }
        XCTAssertGreaterThanOrEqual(gz.count, 1)
        XCTAssertEqual(gz.first?.line, exp[0] + 1)
        // Damaged deflate data often still inflates (to wrong bytes) until the CRC check fails at the
        // member end: those garbage lines are rejected line by line, and every complete line is accounted for.
        XCTAssertEqual(r.stats.lines, exp[0])
        XCTAssertEqual(r.stats.events, exp[1] + exp[2])
        XCTAssertTrue(r.collector.rejects.allSatisfy { $0.file == path })
    }

    /// Two real gzips concatenated, the first damaged mid-way: the second member is read in full.
    func testMultiMemberWithDamageInFirst() throws {
        let dir = try FeedsTestSupport.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var first = try bytes(try FeedsTestSupport.binance("spot-btcusdt_20240808.gz"))
        let second = try bytes(try FeedsTestSupport.binance("spot-btcusdt_20240809.gz"))
        let at = first.count / 3
        for k in 0..<32 { first[at + k] ^= 0xA5 }
        let firstPath = dir + "/first.gz"
        try write(first, firstPath)
        let exp = try prefix(firstPath, dir)
        let path = dir + "/spot-multi.gz"
        try write(first + second, path)
        let r = try FeedsTestSupport.readAll(path)
        // Second member: README counts 10147 trades / 45134 bookTicker / 3044 depth.
        XCTAssertEqual(r.trades, exp[1] + 10147)
        XCTAssertEqual(r.quotes, exp[2] + 45134)
        XCTAssertEqual(r.collector.skips["depth"] ?? 0, exp[3] + 3044)
        let gz = r.collector.rejects.filter { $0.reason == .corruptGzip }
        XCTAssertGreaterThanOrEqual(gz.count, 1)
        XCTAssertEqual(gz.first?.line, exp[0] + 1)
        // All of the second file's trades are there, in order, at the end.
        let lastTrades = r.events.filter { $0.kind == .trade }.suffix(10147)
        let alone = try FeedsTestSupport.readAll(try FeedsTestSupport.binance("spot-btcusdt_20240809.gz"))
        XCTAssertEqual(lastTrades.map(\.sequence), alone.events.filter { $0.kind == .trade }.map(\.sequence))
    }

    /// Clean multi-member file (two real gzips back to back): both fully read, no rejects.
    func testMultiMemberClean() throws {
        let dir = try FeedsTestSupport.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/spot-two.gz"
        let a = try FeedsTestSupport.binance("spot-btcusdt_20240808.gz"), b = try FeedsTestSupport.binance("spot-btcusdt_20240809.gz")
        try FeedsTestSupport.sh("cat '\(a)' '\(b)' > '\(path)'")
        for threaded in [true, false] {
            let r = try FeedsTestSupport.readAll(path, threaded: threaded)
            XCTAssertEqual(r.trades, 9757 + 10147)
            XCTAssertEqual(r.quotes, 28040 + 45134)
            XCTAssertEqual(r.collector.rejects.count, 0)
        }
    }

    /// Plain (uncompressed) capture is passed through.
    func testPlainFile() throws {
        let dir = try FeedsTestSupport.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/cm-plain.txt"
        try FeedsTestSupport.sh("zcat '\(try FeedsTestSupport.binance("cm-btcusd_perp_20240808.gz"))' > '\(path)'")
        let r = try FeedsTestSupport.readAll(path)
        XCTAssertEqual(r.trades, 2286); XCTAssertEqual(r.quotes, 19136)
    }

    /// Damage found right at the start of a 256 KiB output chunk (member 1 inflates to exactly one
    /// chunk, member 2 is broken from its first block): the empty damaged chunk must not end the
    /// stream; member 3 is read in full.
    func testDamageAtChunkBoundaryDoesNotEndStream() throws {
        let dir = try FeedsTestSupport.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = try FeedsTestSupport.binance("spot-btcusdt_20240808.gz")
        let second = try FeedsTestSupport.binance("spot-btcusdt_20240809.gz")
        let out = dir + "/spot-boundary.gz"
        let script = dir + "/mk.py"
        try """
        import gzip, zlib, sys
        size = \(GzipStream.chunkSize)
        lines = []; total = 0
        for l in gzip.open('\(src)', 'rb'):
            if total + len(l) > size - 200: break
            lines.append(l); total += len(l)
        last = lines[-1].rstrip(b'\\n') + b' ' * (size - total) + b'\\n'
        lines[-1] = last
        data = b''.join(lines); assert len(data) == size
        c = zlib.compressobj(6, zlib.DEFLATED, 31); gz = c.compress(data) + c.flush()
        broken = bytes([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]) + b'\\xff' * 64   # invalid block type
        open('\(out)', 'wb').write(gz + broken + open('\(second)', 'rb').read())
        t = sum(1 for l in lines if b'@trade"' in l); q = sum(1 for l in lines if b'@bookTicker"' in l)
        print(len(lines), t, q)
        """.write(toFile: script, atomically: true, encoding: .utf8)
        let exp = try FeedsTestSupport.sh("python3 '\(script)'").split(separator: " ").map { Int($0)! }
        XCTAssertEqual(exp.count, 3)
        for threaded in [true, false] {
            let r = try FeedsTestSupport.readAll(out, threaded: threaded)
            XCTAssertEqual(r.trades, exp[1] + 10147)
            XCTAssertEqual(r.quotes, exp[2] + 45134)
            XCTAssertEqual(r.collector.rejects.map(\.reason), [.corruptGzip])
            XCTAssertEqual(r.collector.rejects.first?.line, exp[0] + 1)
        }
    }
}
