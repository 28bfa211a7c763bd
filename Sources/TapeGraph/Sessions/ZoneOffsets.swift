import Foundation
import TapeCore

/// The UTC offsets of one IANA time zone over Tape's accepted time range (1970–2200), read once from
/// the tz database (Foundation's `TimeZone`) when a calendar is built, then held as a plain table: a
/// query is a binary search, never a call into Foundation, never the wall clock. Two tables built from
/// one tz database are equal, so a run's outputs depend only on its input and its config.
///
///     let newYork = ZoneOffsets.named("America/New_York")!
///     newYork.offset(atUTC: TimeUtil.parseDateTime("2024-07-01T12:00:00Z")!)   // -4 h in ns (EDT)
///     newYork.utc(fromLocal: TimeUtil.parseDateTime("2024-03-10T17:00:00")!)     // 2024-03-10T21:00:00Z
public struct ZoneOffsets: Sendable, Equatable {
    public let identifier: String
    /// UTC instants (ns) at which the offset changes, ascending; `offsets[i + 1]` holds from `transitions[i]`.
    let transitions: [Nanos]
    /// Offsets (local − UTC, ns): `offsets[0]` before the first transition.
    let offsets: [Nanos]

    /// The most transitions a zone may have in the accepted range (twice a year for 230 years is 460;
    /// a guard against a tz database that loops).
    static let transitionsMax = 2_000

    /// The zone named `identifier` in the tz database, or nil when the database does not know it.
    public static func named(_ identifier: String) -> ZoneOffsets? {
        guard let zone = TimeZone(identifier: identifier) else { return nil }
        let end = Date(timeIntervalSince1970: Double(TimeUtil.acceptedNanosMax / TimeUtil.nsPerSecond))
        var transitions: [Nanos] = []
        var offsets: [Nanos] = [Nanos(zone.secondsFromGMT(for: Date(timeIntervalSince1970: 0))) * TimeUtil.nsPerSecond]
        var cursor = Date(timeIntervalSince1970: 0)
        while let next = zone.nextDaylightSavingTimeTransition(after: cursor), next < end,
              transitions.count < transitionsMax {
            let instant = Nanos(next.timeIntervalSince1970.rounded()) * TimeUtil.nsPerSecond
            let offset = Nanos(zone.secondsFromGMT(for: next)) * TimeUtil.nsPerSecond
            if offset != offsets[offsets.count - 1] {
                transitions.append(instant)
                offsets.append(offset)
            }
            cursor = next
        }
        assert(offsets.count == transitions.count + 1)
        assert(zip(transitions, transitions.dropFirst()).allSatisfy { $0 < $1 })
        return ZoneOffsets(identifier: identifier, transitions: transitions, offsets: offsets)
    }

    /// America/New_York (FX's 17:00 roll, US equities), built once per process.
    public static let newYork = ZoneOffsets.named("America/New_York")
    /// America/Chicago (CME Globex), built once per process.
    public static let chicago = ZoneOffsets.named("America/Chicago")

    /// Local time minus UTC (ns) at a UTC instant.
    public func offset(atUTC instant: Nanos) -> Nanos {
        // The number of transitions at or before `instant`.
        var low = 0
        var high = transitions.count
        while low < high {
            let middle = (low + high) / 2
            if transitions[middle] <= instant { low = middle + 1 } else { high = middle }
        }
        return offsets[low]
    }

    /// The local wall-clock time (ns as if it were UTC) of a UTC instant.
    public func local(fromUTC instant: Nanos) -> Nanos { instant + offset(atUTC: instant) }

    /// The UTC instant of a local wall-clock time (ns as if it were UTC). A local time that occurs twice
    /// (the hour repeated when daylight saving time ends) is read as its first occurrence; one that does
    /// not exist (the hour skipped when it starts) is read with the offset before the jump, so it lands
    /// just after the transition (02:30 on a spring-forward night in New York is 03:30 EDT).
    public func utc(fromLocal local: Nanos) -> Nanos {
        // Offsets change at most a few times a year: a day either side brackets any transition near `local`.
        let day = 86_400 * TimeUtil.nsPerSecond
        let before = offset(atUTC: local - day)
        let after = offset(atUTC: local + day)
        let candidates = [local - before, local - after].filter { self.local(fromUTC: $0) == local }
        return candidates.min() ?? local - before
    }
}
