/// One backoff for every reconnecting or retrying part of Tape (WebSocket connectors, REST pollers).
/// Jittered exponential backoff ("full jitter"): the n-th consecutive wait (n from 1) is uniform in
/// `[ceiling/2, ceiling]` with `ceiling = min(maxNanoseconds, initialNanoseconds × 2^(n-1))`, drawn from a
/// seeded generator so a test (or a replayed fault schedule) sees the same waits.
public struct Backoff: Sendable {
    public var initialNanoseconds: Int64
    public var maxNanoseconds: Int64
    private var generator: SplitMix64
    public private(set) var attempt = 0

    public init(
        initialNanoseconds: Int64 = 1_000_000_000, maxNanoseconds: Int64 = 300_000_000_000,
        seed: UInt64
    ) {
        precondition(initialNanoseconds > 0 && maxNanoseconds >= initialNanoseconds, "Backoff bounds")
        self.initialNanoseconds = initialNanoseconds
        self.maxNanoseconds = maxNanoseconds
        generator = SplitMix64(seed: seed)
    }

    /// The next wait, and one more attempt counted.
    public mutating func nextDelay() -> Int64 {
        attempt += 1
        var ceiling = initialNanoseconds
        var doublings = attempt - 1
        while doublings > 0 && ceiling < maxNanoseconds {
            ceiling = ceiling > maxNanoseconds / 2 ? maxNanoseconds : ceiling * 2
            doublings -= 1
        }
        ceiling = min(ceiling, maxNanoseconds)
        let half = ceiling / 2
        let delay = half + Int64(generator.next() % UInt64(ceiling - half + 1))
        assert(delay >= half && delay <= ceiling)
        return delay
    }

    /// After a success: the next failure starts from `initialNanoseconds` again.
    public mutating func reset() { attempt = 0 }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny seeded generator for jitter.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}
