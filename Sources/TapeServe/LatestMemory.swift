import Foundation
import TapeCore

/// An in-process copy of the latest state per symbol (trade, quote, bar and prediction per timeframe), kept
/// from the update stream `tape serve` already receives for `/ws` (`<prefix>updates`), so that
/// `/api/v1/latest` answers on the request's own thread: no hop to a store thread, no Redis round trip.
///
/// - Used only while the updates subscription is live (`UpdatesEndpoint`): every write the pipeline makes
///   to the latest keys is published with it. Cleared when the subscription comes back after a gap (the
///   updates missed meanwhile are not replayed by pub/sub); filled again by the next updates or by the
///   read-through path (`remember`).
/// - A part that exists nowhere (a prediction at a timeframe the model does not run on, the quote of a
///   bar-only symbol) is remembered as absent for `absentTTLNanoseconds`, so such requests are not a store
///   call each; an update for it ends that at once.
/// - Values are kept as the Redis hash's text fields (`RedisLayout`'s names), so the route formats one shape.
final class LatestMemory: @unchecked Sendable {
    struct Latest {
        var trade: [String: String]?
        var quote: [String: String]?
        var bar: [String: String]?
        var prediction: [String: String]?
        /// The symbol's version when read (`storeRendered` keeps a rendering only of the current one).
        var version: UInt64 = 0
        /// Until when this answer holds (the earliest expiry of an absent part; `Int64.max`: no absent part).
        var validUntil: Int64 = .max
    }

    /// A rendered answer of `/api/v1/latest`, kept until the symbol changes.
    private struct Rendered {
        let bytes: [UInt8]
        let version: UInt64
        let validUntil: Int64
    }

    /// One latest value: its fields, or known absent until `absentUntil` (monotonic ns).
    private struct Slot {
        var fields: [String: String]?
        var absentUntil: Int64 = 0
    }

    let absentTTLNanoseconds: Int64
    private let lock = NSLock()
    /// Keyed `trade <symbol>`, `quote <symbol>`, `bar <symbol> <tf>`, `prediction <symbol> <tf>`.
    private var slots: [String: Slot] = [:]
    /// Bumped at every change of a symbol's slots.
    private var versions: [String: UInt64] = [:]
    /// Rendered answers by symbol, then timeframe.
    private var rendered: [String: [String: Rendered]] = [:]

    init(absentTTLNanoseconds: Int64 = 5_000_000_000) {
        self.absentTTLNanoseconds = absentTTLNanoseconds
    }

    /// The whole latest state of `symbol` at `timeframe` when every part is known (present, or absent and
    /// noted so less than `absentTTLNanoseconds` ago); nil otherwise (the caller asks the stores).
    func latest(symbol: String, timeframe: String, now: Int64) -> Latest? {
        let keys = Self.keys(symbol: symbol, timeframe: timeframe)
        lock.lock()
        defer { lock.unlock() }
        var parts: [[String: String]?] = []
        var validUntil = Int64.max
        for key in keys {
            guard let slot = slots[key] else { return nil }
            if let fields = slot.fields { parts.append(fields) }
            else if now < slot.absentUntil {
                parts.append(nil)
                validUntil = min(validUntil, slot.absentUntil)
            } else { return nil }
        }
        return Latest(trade: parts[0], quote: parts[1], bar: parts[2], prediction: parts[3],
                      version: versions[symbol] ?? 0, validUntil: validUntil)
    }

    /// The rendered answer for `symbol` at `timeframe`, if one is kept for the symbol's current state.
    func renderedLatest(symbol: String, timeframe: String, now: Int64) -> [UInt8]? {
        lock.lock()
        defer { lock.unlock() }
        guard let entry = rendered[symbol]?[timeframe], entry.version == (versions[symbol] ?? 0),
              now < entry.validUntil else { return nil }
        return entry.bytes
    }

    /// Keeps the rendering of `held` (read by `latest`) unless the symbol changed since.
    func storeRendered(symbol: String, timeframe: String, _ bytes: [UInt8], from held: Latest) {
        lock.lock()
        defer { lock.unlock() }
        guard held.version == (versions[symbol] ?? 0) else { return }
        rendered[symbol, default: [:]][timeframe] = Rendered(bytes: bytes, version: held.version,
                                                             validUntil: held.validUntil)
    }

    /// A change of `symbol`'s state (lock held): its renderings are dropped.
    private func changed(_ symbol: String) {
        versions[symbol, default: 0] &+= 1
        rendered[symbol] = nil
    }

    /// What the read-through path found; a part found nowhere is noted as absent for a while. A value the
    /// update stream already set is kept (it is as new or newer).
    func remember(symbol: String, timeframe: String, _ found: Latest, now: Int64) {
        let keys = Self.keys(symbol: symbol, timeframe: timeframe)
        let values = [found.trade, found.quote, found.bar, found.prediction]
        lock.lock()
        defer { lock.unlock() }
        for (key, value) in zip(keys, values) {
            if let value {
                if slots[key]?.fields == nil { slots[key] = Slot(fields: value) }
            } else if slots[key]?.fields == nil {
                slots[key] = Slot(fields: nil, absentUntil: now + absentTTLNanoseconds)
            }
        }
        changed(symbol)
    }

    func clear() {
        lock.lock()
        slots.removeAll()
        for symbol in versions.keys { versions[symbol, default: 0] &+= 1 }
        rendered.removeAll()
        lock.unlock()
    }

    /// One update message (`{"channel":…,"symbol":…,"data":{…}}`): trades, quotes, `bars:<tf>` and
    /// predictions replace the latest value (a bar only by one ending as late or later); other channels are
    /// ignored.
    func apply(_ message: String) {
        guard let update = try? JSONDecoder().decode(Update.self, from: Data(message.utf8)) else { return }
        let channel = update.channel
        guard channel == "trades" || channel == "quotes" || channel == "predictions" || channel.hasPrefix("bars:") else {
            return
        }
        var fields: [String: String] = [:]
        for (name, value) in update.data { fields[name] = value.text }
        let key: String
        switch channel {
        case "trades": key = "trade " + update.symbol
        case "quotes": key = "quote " + update.symbol
        case "predictions":
            guard let timeframe = fields.removeValue(forKey: "timeframe") else { return }
            key = "prediction \(update.symbol) \(timeframe)"
        default:
            key = "bar \(update.symbol) \(channel.dropFirst(5))"
        }
        lock.lock()
        defer { lock.unlock() }
        if key.hasPrefix("bar "), let held = slots[key]?.fields?["end_ns"].flatMap({ Int64($0) }),
           let end = fields["end_ns"].flatMap({ Int64($0) }), end < held {
            return
        }
        slots[key] = Slot(fields: fields)
        changed(update.symbol)
    }

    private static func keys(symbol: String, timeframe: String) -> [String] {
        ["trade " + symbol, "quote " + symbol, "bar \(symbol) \(timeframe)", "prediction \(symbol) \(timeframe)"]
    }

    /// An update as sent: numbers kept exactly (JSONDecoder), written back as the hash's text.
    private struct Update: Decodable {
        struct Value: Decodable {
            let text: String
            init(from decoder: any Decoder) throws {
                let container = try decoder.singleValueContainer()
                if container.decodeNil() { text = "" }
                else if let integer = try? container.decode(Int64.self) { text = String(integer) }
                else if let number = try? container.decode(Double.self) { text = Numbers.format(number) }
                else if let flag = try? container.decode(Bool.self) { text = flag ? "1" : "0" }
                else { text = try container.decode(String.self) }
            }
        }
        let channel: String
        let symbol: String
        let data: [String: Value]
    }
}
