import TapeCore

/// How times are moved so that a recorded session looks live.
public enum TimeShift: String, Sendable {
    /// Every time moves by (simulator start wall time − first receive time of the recording), rounded
    /// down to whole milliseconds (whole minutes for the REST protocols, so bars keep minute boundaries).
    case now
    /// Recorded times as they are.
    case none
}

/// Faults the simulator injects, each off unless set. Counts are per connection where they concern one
/// connection (drops), and for the whole server where they concern requests (429s).
public struct FaultSettings: Sendable {
    /// Close the connection (abruptly: TCP close, no WebSocket close frame) after this much simulated
    /// time since the connection's first message, seconds.
    public var dropEverySeconds: Double? = nil
    /// Close the connection after it has been sent this many data messages.
    public var dropAfterMessages: Int? = nil
    /// After every `stallEverySeconds` of wall time on a connection (from its start, then from the end of
    /// the last stall), stop for `stallForSeconds`: no data sent, nothing read (so no ping is answered),
    /// the socket stays open.
    public var stallEverySeconds: Double? = nil
    public var stallForSeconds: Double = 0
    /// Every Nth data message the server sends (counted over all connections) is garbled JSON.
    public var garbleEvery: Int? = nil
    /// Every Nth REST request (counted over the server) is answered HTTP 429.
    public var http429Every: Int? = nil
    /// The API key clients must present; nil accepts any.
    public var apiKey: String? = nil
    /// At most this many WebSocket connections open at once; the next is told and closed.
    public var maxConnections: Int? = nil
    /// REST: more calls than this within 60 s get the vendor's throttle answer.
    public var rateLimitPerMinute: Int? = nil
    /// REST: more calls than this in one run (the simulator's "day") get the vendor's daily-limit answer.
    public var dailyLimit: Int? = nil

    public init() {}
}

/// Everything `tape feed-sim` was asked for.
public struct FeedSimConfiguration: Sendable {
    public var inputs: [String]
    public var feedProtocol: FeedProtocol
    /// Listen address: loopback unless told otherwise; port 0 = any free port.
    public var host = "127.0.0.1"
    public var port = 0
    public var portFile: String? = nil
    /// Pacing: N × real time; nil = as fast as the client reads.
    public var speed: Double? = 1
    public var shift = TimeShift.now
    public var faults = FaultSettings()
    /// Statistics file (JSON, rewritten atomically every second and at exit).
    public var statsPath: String? = nil
    /// Stop once the whole recording was served to a connected client.
    public var exitWhenDone = false
    /// Instrument name for inputs that carry none (bar files).
    public var symbol: String? = nil

    public init(inputs: [String], feedProtocol: FeedProtocol) {
        self.inputs = inputs
        self.feedProtocol = feedProtocol
    }
}
