import Crypto
import XCTest
import TapeCore
import TapeIO
import TapeGraph
import TapeSinks

final class DigestTests: XCTestCase {
    /// Every kind, with NaN, -0, negatives, large and tiny numbers and every timeframe unit.
    func sampleOutputs(_ symbols: SymbolTable) -> [GraphOutput] {
        let btc = symbols.intern("spot:BTCUSDT")
        let eth = symbols.intern("cm:ETHUSD_PERP")
        var generator = SystemRandomNumberGenerator()
        func value() -> Double {
            switch Int.random(in: 0..<6, using: &generator) {
            case 0: return .nan
            case 1: return -0.0
            case 2: return Double(Int.random(in: -1_000_000...1_000_000, using: &generator)) / 100
            case 3: return Double.random(in: -1e20...1e20, using: &generator)
            case 4: return Double.random(in: 0...1e-6, using: &generator)
            default: return Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &generator))
            }
        }
        let timeframes = ["30s", "1m", "15m", "1h", "4h", "1d", "90s"].map { Timeframe($0)! }
        var outputs: [GraphOutput] = []
        for index in 0..<2_000 {
            let symbol = index % 3 == 0 ? eth : btc
            let timeframe = timeframes[index % timeframes.count]
            let time = Int64(index) * 60_000_000_000 - 5
            let end = time + timeframe.nanos
            outputs.append(.bar(BarOutput(symbol: symbol, timeframe: timeframe, start: time, end: end,
                                          open: value(), high: value(), low: value(), close: value(),
                                          volume: value(), vwap: value(), trades: index)))
            var indicators = IndicatorOutput(symbol: symbol, timeframe: timeframe, end: time)
            indicators.sma = value(); indicators.ema = value(); indicators.rsi = value()
            indicators.macd = value(); indicators.macdSignal = value(); indicators.macdHist = value()
            indicators.bbMiddle = value(); indicators.bbUpper = value(); indicators.bbLower = value()
            indicators.sessionVwap = value()
            outputs.append(.indicators(indicators))
            outputs.append(.anomaly(AnomalyOutput(symbol: symbol, time: time, rule: "price_spike", value: value(),
                                                  threshold: value(), severity: .critical)))
            outputs.append(.lateTick(LateTickOutput(symbol: symbol, eventTime: time, receiveTime: time + 7,
                                                    price: value(), size: value(), watermark: -time)))
            outputs.append(.prediction(PredictionOutput(symbol: symbol, timeframe: timeframe, end: time,
                                                        prediction: value())))
            if index % 50 == 0 {   // the trading rows: an order's change, a fill, a position, equity per symbol and total
                outputs.append(.trading(.order(OrderRecord(time: time, orderID: Int64(index), symbol: symbol, side: .buy,
                                                           type: .limit, timeInForce: .ioc, quantity: value(), limitPrice: value(),
                                                           stopPrice: .nan, status: .partiallyFilled, filledQuantity: value(),
                                                           tag: "t,\"q\"", reason: index % 100 == 0 ? "" : "replaces order 3",
                                                           sequence: 3))))
                outputs.append(.trading(.fill(FillRecord(time: time, arrivalTime: time - 5, orderID: Int64(index), fillNumber: 1, symbol: symbol,
                                                         side: .sell, price: value(), quantity: value(), fee: value(),
                                                         rule: .barRange, tag: "macd"))))
                outputs.append(.trading(.position(PositionRecord(time: time, symbol: symbol, quantity: value(), averagePrice: value(),
                                                                 realizedPnL: value(), unrealizedPnL: value(), fees: value(),
                                                                 markPrice: value()))))
                outputs.append(.trading(.equity(EquityRecord(time: time, symbol: symbol, cash: value(), equity: value(),
                                                             grossExposure: value()))))
                outputs.append(.trading(.equity(EquityRecord(time: time, symbol: nil, cash: value(), equity: value(),
                                                             grossExposure: value()))))
            }
        }
        return outputs
    }

    /// The byte formatter writes exactly the text of the String-building `canonicalLine` (the old path).
    func testFormatterWritesTheCanonicalLineBytes() {
        let symbols = SymbolTable()
        var formatter = OutputLineFormatter()
        for output in sampleOutputs(symbols) {
            formatter.format(output, symbols: symbols)
            let expected = output.canonicalLine(symbols: symbols) + "\n"
            XCTAssertEqual(String(decoding: formatter.bytes, as: UTF8.self), expected)
            let row = formatter.withRow { String(decoding: $0, as: UTF8.self) }
            XCTAssertEqual(row, output.csvRow(symbols: symbols) + "\n")
            XCTAssertEqual(formatter.kind.name, output.kindName)
        }
    }

    func sha256(_ lines: [String]) -> String {
        Hex.encode(Array(SHA256.hash(data: Array(lines.map { $0 + "\n" }.joined().utf8))))
    }

    func testPerSymbolDigestsIgnoreInterleavingWhileTheGlobalOneDoesNot() {
        let symbols = SymbolTable()
        let btc = symbols.intern("spot:BTCUSDT")
        let eth = symbols.intern("spot:ETHUSDT")
        let btcOutputs = (0..<500).map { bar($0, symbol: btc) }
        let ethOutputs = (0..<300).map { bar($0, symbol: eth, timeframe: Timeframe(seconds: 300)) }
        var interleaved: [GraphOutput] = []
        for index in 0..<500 {
            interleaved.append(btcOutputs[index])
            if index < 300 { interleaved.append(ethOutputs[index]) }
        }
        let concatenated = ethOutputs + btcOutputs
        let first = DigestSink(symbols: symbols)
        let second = DigestSink(symbols: symbols)
        interleaved.forEach(first.emit)
        concatenated.forEach(second.emit)

        XCTAssertNotEqual(first.hexDigest, second.hexDigest, "the global digest follows emission order")
        XCTAssertEqual(first.digestsBySymbol, second.digestsBySymbol)
        XCTAssertEqual(first.countsBySymbol, ["spot:BTCUSDT": 500, "spot:ETHUSDT": 300])
        // Independent reference: SHA-256 (swift-crypto) over each symbol's canonical lines in order.
        let btcLines = btcOutputs.map { $0.canonicalLine(symbols: symbols) }
        let ethLines = ethOutputs.map { $0.canonicalLine(symbols: symbols) }
        XCTAssertEqual(first.digestsBySymbol["spot:BTCUSDT"], sha256(btcLines))
        XCTAssertEqual(first.digestsBySymbol["spot:ETHUSDT"], sha256(ethLines))
        XCTAssertEqual(first.hexDigest, sha256(interleaved.map { $0.canonicalLine(symbols: symbols) }))
        XCTAssertEqual(first.countByKind, ["bars": 800])
    }

    /// The fan-out that formats once gives the digest and files of the two sinks each formatting alone.
    func testRunOutputSinkEqualsDigestAndFolderSinksApart() throws {
        let symbols = SymbolTable()
        let outputs = sampleOutputs(symbols)
        let apartDirectory = temporaryDirectory("apart")
        let onceDirectory = temporaryDirectory("once")
        let apartDigest = DigestSink(symbols: symbols)
        let apartFolder = try RunFolderSink(directory: apartDirectory, symbols: symbols, withPredictions: true, withTrading: true)
        let onceFolder = try RunFolderSink(directory: onceDirectory, symbols: symbols, withPredictions: true, withTrading: true)
        let once = RunOutputSink(symbols: symbols, digest: DigestSink(symbols: symbols), folder: onceFolder)
        for output in outputs {
            apartDigest.emit(output)
            apartFolder.emit(output)
            once.emit(output)
        }
        try apartFolder.close()
        try once.close()
        XCTAssertEqual(once.digest.hexDigest, apartDigest.hexDigest)
        XCTAssertEqual(once.digest.digestsBySymbol, apartDigest.digestsBySymbol)
        for kind in OutputKind.allCases {
            let apart = try String(contentsOfFile: "\(apartDirectory)/\(kind.name).csv", encoding: .utf8)
            let formattedOnce = try String(contentsOfFile: "\(onceDirectory)/\(kind.name).csv", encoding: .utf8)
            XCTAssertEqual(apart, formattedOnce, kind.name)
            let expectedRows = outputs.filter { OutputKind($0) == kind }.map { $0.csvRow(symbols: symbols) + "\n" }
            XCTAssertEqual(apart, kind.csvHeader + "\n" + expectedRows.joined(), kind.name)
        }
    }
}
