import XCTest
import TapeCore
import TapeFeeds
import TapeRecordings
import TapeIO
import TapeSources

/// BinanceDecoder on messages copied from the real captures' format (values checked by hand).
final class FeedsDecoderTests: XCTestCase {
    let spotTrade = #"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}"#
    let usdmTrade = #"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161256322,"T":1723161256322,"s":"BTCUSDT","t":5266583935,"p":"61800.30","q":"0.006","X":"MARKET","m":false}}"#
    let spotBook = #"{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}"#
    let cmBook = #"{"stream":"btcusd_perp@bookTicker","data":{"u":1007198632021,"e":"bookTicker","s":"BTCUSD_PERP","ps":"BTCUSD","b":"61804.7","B":"35","a":"61804.8","A":"1645","T":1723161257465,"E":1723161257476}}"#

    func decode(_ msg: String, venue: String? = "spot", symbols: SymbolTable = SymbolTable()) -> (DecodeOutcome, [MarketEvent]) {
        var d = BinanceDecoder(symbols: symbols, venue: venue)
        var out: [MarketEvent] = []
        let r = d.decode(msg, receiveTime: 1_723_161_254_087_896_568, into: &out)
        return (r, out)
    }

    func testSpotTrade() {
        let syms = SymbolTable()
        let (r, out) = decode(spotTrade, symbols: syms)
        XCTAssertEqual(r, .decoded(count: 1))
        XCTAssertEqual(out.count, 1)
        let e = out[0]
        XCTAssertEqual(e.kind, .trade)
        XCTAssertEqual(e.eventTime, 1_723_161_255_342_000_000)
        XCTAssertEqual(e.receiveTime, 1_723_161_254_087_896_568)
        XCTAssertEqual(e.sequence, 3_735_683_259)
        XCTAssertEqual(e.price, 61837.63)
        XCTAssertEqual(e.size, 0.02)
        XCTAssertEqual(e.side, 2)  // buyer is maker -> sell aggressor
        XCTAssertEqual(syms.name(e.symbol), "spot:BTCUSDT")
    }

    func testFuturesTradeBuyAggressor() {
        let syms = SymbolTable()
        let (r, out) = decode(usdmTrade, venue: "usdm", symbols: syms)
        XCTAssertEqual(r, .decoded(count: 1))
        XCTAssertEqual(out[0].side, 1)
        XCTAssertEqual(out[0].price, 61800.3)
        XCTAssertEqual(out[0].size, 0.006)
        XCTAssertEqual(out[0].sequence, 5_266_583_935)
        XCTAssertEqual(out[0].eventTime, 1_723_161_256_322_000_000)
        XCTAssertEqual(syms.name(out[0].symbol), "usdm:BTCUSDT")
    }

    func testSpotBookTickerUsesReceiveTime() {
        let (r, out) = decode(spotBook)
        XCTAssertEqual(r, .decoded(count: 1))
        let e = out[0]
        XCTAssertEqual(e.kind, .quote)
        XCTAssertEqual(e.eventTime, 1_723_161_254_087_896_568)
        XCTAssertEqual(e.sequence, 50_093_239_212)
        XCTAssertEqual(e.bid, 61837.63); XCTAssertEqual(e.bidSize, 3.78826)
        XCTAssertEqual(e.ask, 61837.64); XCTAssertEqual(e.askSize, 1.54698)
    }

    func testFuturesBookTickerUsesT() {
        let syms = SymbolTable()
        let (_, out) = decode(cmBook, venue: nil, symbols: syms)
        XCTAssertEqual(out[0].eventTime, 1_723_161_257_465_000_000)
        XCTAssertEqual(out[0].bidSize, 35); XCTAssertEqual(out[0].askSize, 1645)
        XCTAssertEqual(syms.name(out[0].symbol), "BTCUSD_PERP")  // no venue: bare symbol
    }

    func testSkipsAndErrors() {
        XCTAssertEqual(decode(#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","b":[["1","2"]],"a":[]}}"#).0, .skipped(.depth))
        XCTAssertEqual(decode(#"{"lastUpdateId":50093239218,"bids":[["61837.63000000","3.78826000"]],"asks":[]}"#).0, .skipped(.nonStream))
        XCTAssertEqual(decode(#"{"stream":"btcusdt@kline_1m","data":{}}"#).0, .unknown(detail: "stream btcusdt@kline_1m"))
        for bad in [#"{"stream":"btcusdt@trade","data":{"e":"trade","#, "not json", "{", #"{"stream":"btcusdt@trade""#,
                    #"{"stream":"btcusdt@trade","data":{"t":1,"p":"1","q":"1","T":5}} trailing"#] {
            guard case .malformed(.malformedLine, _) = decode(bad).0 else { return XCTFail(bad) }
        }
        guard case .malformed(.badNumber, let detail) = decode(spotTrade.replacingOccurrences(of: "61837.63000000", with: "6x")).0
        else { return XCTFail() }
        XCTAssertTrue(detail.contains("p=\"6x\""), detail)
        guard case .malformed(.malformedLine, _) = decode(spotTrade.replacingOccurrences(of: "\"t\":3735683259,", with: "")).0
        else { return XCTFail() }
        // NaN decodes to NaN so the validator can name it nan_value.
        let (r, out) = decode(spotTrade.replacingOccurrences(of: "61837.63000000", with: "NaN"))
        XCTAssertEqual(r, .decoded(count: 1))
        XCTAssertTrue(out[0].price.isNaN)
    }

    func testScannerSkipsNestedAndEscapes() {
        let msg = #"{"x":{"a":[1,{"b":"}]"}],"c":"q\"uote"},"stream":"ethusdt@trade","data":{"e":"trade","z":[[1,2],[3]],"s":"ETHUSDT","t":7,"p":"2500.5","q":"1","T":1723161255342,"m":false}}"#
        let syms = SymbolTable()
        let (r, out) = decode(msg, symbols: syms)
        XCTAssertEqual(r, .decoded(count: 1))
        XCTAssertEqual(out[0].price, 2500.5)
        XCTAssertEqual(syms.name(out[0].symbol), "spot:ETHUSDT")
    }

    func testVenueFromFileName() {
        XCTAssertEqual(BinanceDecoder.venue(fromFileName: "../shared/data/binance-feed/usdm-btcusdt_20240808.gz"), "usdm")
        XCTAssertEqual(BinanceDecoder.venue(fromFileName: "spot-ethusdt_20240809.gz"), "spot")
        XCTAssertEqual(BinanceDecoder.venue(fromFileName: "/x/cm-btcusd_perp_20240808.gz"), "cm")
        XCTAssertNil(BinanceDecoder.venue(fromFileName: "/spot-x/capture.gz"))
    }

    /// `data` before `stream` (rescan path) decodes the same as Binance's order (in-place path).
    func testKeyOrderDoesNotMatter() {
        let reordered = #"{"data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true},"stream":"btcusdt@trade"}"#
        let (r1, a) = decode(spotTrade), (r2, b) = decode(reordered)
        XCTAssertEqual(r1, .decoded(count: 1)); XCTAssertEqual(r2, .decoded(count: 1))
        XCTAssertNil(FeedsTestSupport.firstDifference(a, b))  // bit-exact (== is false on the NaN quote fields)
        XCTAssertEqual(a[0].price, b[0].price); XCTAssertEqual(a[0].sequence, b[0].sequence)
        for bad in [#"{"stream":"btcusdt@trade","data":{"t":1,"p":"1","q":"1","T":5,}}"#,
                    #"{"stream":"btcusdt@trade","data":{"t":1 "p":"1"}}"#,
                    #"{"stream":"btcusdt@depth@100ms","data":{"b":[["1","2"],}}"#,
                    #"{"stream":"btcusdt@bookTicker","data":{"u":1,"b":"1","B":"1","a":"2","A":"1"}"#] {
            guard case .malformed(.malformedLine, _) = decode(bad).0 else { return XCTFail(bad) }
        }
    }
}
