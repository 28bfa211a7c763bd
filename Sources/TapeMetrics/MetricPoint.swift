import TapeCore

/// One field value, typed as InfluxDB stores it. The first value written for a field fixes its type
/// in a shard: a field is always written with the same case (counts `integer`, rates `float`).
public enum MetricValue: Sendable, Equatable {
    /// Written `1.5`; NaN and ±infinity cannot be written (the field is left out).
    case float(Double)
    /// Written `42i`.
    case integer(Int64)
    /// Written `"text"` (`"` and `\` escaped).
    case string(String)
    /// Written `true` / `false`.
    case boolean(Bool)
}

/// A tag: indexed, a string, part of the series key. Keep the set of values small (feeds, symbols,
/// kinds), never a number that changes every point.
public struct MetricTag: Sendable, Hashable {
    public var key: String
    public var value: String
    public init(_ key: String, _ value: String) {
        self.key = key
        self.value = value
    }
}

/// A field: a value of the point, not indexed.
public struct MetricField: Sendable, Equatable {
    public var key: String
    public var value: MetricValue
    public init(_ key: String, _ value: MetricValue) {
        self.key = key
        self.value = value
    }
}

/// One point: a line of InfluxDB line protocol.
///
/// ```swift
/// let point = MetricPoint("tape_ticks", tags: ["feed": "spot", "symbol": "spot:BTCUSDT"],
///                         fields: ["count": .integer(812), "rate": .float(812.0)], time: now)
/// LineProtocol.line(point)   // tape_ticks,feed=spot,symbol=spot:BTCUSDT count=812i,rate=812 1723…
/// ```
///
/// Time is wall-clock time (metrics are operational, not graph output): ns since the Unix epoch, or
/// nil for "the sample time" (a `MetricsSink` stamps it with the time it sampled; written as is, nil
/// lets the server use its own clock).
public struct MetricPoint: Sendable, Equatable {
    public var measurement: String
    /// Written in this order (InfluxDB sorts them itself; giving them sorted by key saves it the work).
    public var tags: [MetricTag]
    /// At least one, or the point is not written.
    public var fields: [MetricField]
    public var time: Nanos?

    public init(measurement: String, tags: [MetricTag], fields: [MetricField], time: Nanos?) {
        self.measurement = measurement
        self.tags = tags
        self.fields = fields
        self.time = time
    }

    /// Tags and fields in the order written.
    public init(_ measurement: String, tags: KeyValuePairs<String, String> = [:],
                fields: KeyValuePairs<String, MetricValue>, time: Nanos? = nil) {
        self.init(measurement: measurement, tags: tags.map { MetricTag($0.key, $0.value) },
                  fields: fields.map { MetricField($0.key, $0.value) }, time: time)
    }
}
