import Foundation
import TapeCore

/// The 1-minute bars of a recording, per symbol, in time order: what the REST protocols serve, up to the
/// simulated now (a bar is served once its end time ≤ now), so repeated polls see history grow.
public struct BarHistory: Sendable {
    /// Bars per upper-cased symbol, by end time.
    public let barsBySymbol: [String: [SimEvent]]

    public init(recording: SimRecording) {
        var bars: [String: [SimEvent]] = [:]
        for message in recording.messages {
            for event in message.events where event.kind == .bar {
                bars[event.symbol.uppercased(), default: []].append(event)
            }
        }
        barsBySymbol = bars.mapValues { list in list.sorted { $0.eventTime < $1.eventTime } }
    }

    public var symbols: [String] { barsBySymbol.keys.sorted() }

    /// Bars of `symbol` (any case) whose end time ≤ `now`; nil when the recording has no such symbol.
    public func bars(of symbol: String, upTo now: Nanos) -> ArraySlice<SimEvent>? {
        guard let list = barsBySymbol[symbol.uppercased()] else { return nil }
        var low = 0, high = list.count
        while low < high {
            let middle = (low + high) / 2
            if list[middle].eventTime <= now { low = middle + 1 } else { high = middle }
        }
        return list[..<low]
    }
}

/// Vendor time text. Alpha Vantage and FMP label a 1-minute bar by its *start* and print US equity
/// times in US/Eastern (`"6. Time Zone": "US/Eastern"` in Alpha Vantage's Meta Data): a bar ending
/// 14:31:00 UTC in winter is `"2024-01-05 09:30:00"`.
public struct VendorClock: Sendable {
    public let timeZone: TimeZone
    /// The zone's name as Alpha Vantage prints it.
    public let zoneName: String

    public init() {
        if let eastern = TimeZone(identifier: "America/New_York") {
            timeZone = eastern
            zoneName = "US/Eastern"
        } else {
            timeZone = TimeZone(identifier: "UTC") ?? TimeZone(secondsFromGMT: 0)!
            zoneName = "UTC"
        }
    }

    /// `YYYY-MM-DD HH:MM:SS` in the vendor's zone.
    public func dateTime(_ nanos: Nanos) -> String {
        let (day, secondOfDay) = local(nanos)
        return Self.date(day) + " " + Self.pad(secondOfDay / 3600) + ":" + Self.pad(secondOfDay % 3600 / 60) + ":"
            + Self.pad(secondOfDay % 60)
    }

    /// `YYYY-MM-DD` in the vendor's zone.
    public func date(_ nanos: Nanos) -> String { Self.date(local(nanos).day) }

    /// Days since 1970-01-01 in the vendor's zone (the trading day of a time).
    public func dayNumber(_ nanos: Nanos) -> Int { local(nanos).day }

    private func local(_ nanos: Nanos) -> (day: Int, secondOfDay: Int) {
        var seconds = Int(nanos / 1_000_000_000)
        if nanos < 0 && nanos % 1_000_000_000 != 0 { seconds -= 1 }
        seconds += timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(seconds)))
        var day = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 { secondOfDay += 86_400; day -= 1 }
        return (day, secondOfDay)
    }

    static func date(_ day: Int) -> String {
        let (year, month, dayOfMonth) = TimeUtil.civilFromDays(day)
        return "\(year)-\(pad(month))-\(pad(dayOfMonth))"
    }

    static func pad(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
}

/// A day's summary of bars, for the quote endpoints: the latest bar's close against the previous day's.
struct DaySummary {
    var symbol: String
    var price: Double
    var open: Double
    var high: Double
    var low: Double
    var volume: Double
    var previousClose: Double
    var latestDay: String
    var lastEndTime: Nanos
    var yearHigh: Double
    var yearLow: Double

    var change: Double { price - previousClose }
    var changePercent: Double { previousClose == 0 ? 0 : (price - previousClose) / previousClose * 100 }

    /// nil when there is no bar yet.
    init?(symbol: String, bars: ArraySlice<SimEvent>, clock: VendorClock) {
        guard let last = bars.last else { return nil }
        let day = clock.dayNumber(last.eventTime - 60_000_000_000)
        var open = last.open, high = last.high, low = last.low, volume = 0.0
        var previousClose = last.open
        for bar in bars.reversed() {
            if clock.dayNumber(bar.eventTime - 60_000_000_000) != day {
                previousClose = bar.price
                break
            }
            open = bar.open
            high = max(high, bar.high)
            low = min(low, bar.low)
            if !bar.size.isNaN { volume += bar.size }
        }
        let yearStart = last.eventTime - 365 * 86_400 * 1_000_000_000
        var yearHigh = last.high, yearLow = last.low
        for bar in bars.reversed() {
            if bar.eventTime < yearStart { break }
            yearHigh = max(yearHigh, bar.high)
            yearLow = min(yearLow, bar.low)
        }
        self.symbol = symbol
        self.price = last.price
        self.open = open
        self.high = high
        self.low = low
        self.volume = volume
        self.previousClose = previousClose
        self.latestDay = clock.date(last.eventTime - 60_000_000_000)
        self.lastEndTime = last.eventTime
        self.yearHigh = yearHigh
        self.yearLow = yearLow
    }
}
