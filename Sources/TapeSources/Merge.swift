import TapeCore

/// K-way merge of N sources into one stream ordered by
/// **(receiveTime, source position in `sources`, then each source's own order)**.
///
/// Tie-break: items with equal receive time come out by the position of their source in the array
/// given to `init` (the command-line order), and within one source in that source's own (file) order —
/// so the output is a pure function of the inputs. Clock ticks are merged like any other item.
/// The merge is greedy over the sources' current heads (a binary min-heap: O(log N) per item); it does
/// not reorder within a source: if a source's receive time steps back (within the validator's
/// tolerance), the merged stream steps back too. N = 1 passes straight through (no heap).
///
/// Idle sources: the merge can only hand out an item once every source that has not ended holds a
/// head (otherwise an idle source could still deliver an earlier item and the order would depend on
/// timing). While one of them is idle the merge answers `.idle` — the event-time rule of Flink's
/// watermarks, applied to receive time.
public final class MergedSource: EventSource {
    public let sources: [any EventSource]
    public let name: String
    public var formatName: String { sources.count == 1 ? sources[0].formatName : "merged" }

    private var heads: [MarketEvent]
    /// Sources that have neither a head in the heap nor ended (must be asked before the next pop).
    private var waiting: [Int32]
    private var heap: [Int32] = []   // source positions, min-heap by (heads[i].receiveTime, i)
    private let single: (any EventSource)?

    public init(_ sources: [any EventSource]) {
        self.sources = sources
        name = sources.map(\.name).joined(separator: "+")
        heads = Array(repeating: MarketEvent(), count: sources.count)
        single = sources.count == 1 ? sources[0] : nil
        // Asked from the back: the first fill reads the sources in command-line order (symbol ids are
        // interned in first-seen order, so the reading order is part of the output's identity).
        waiting = (0..<Int32(sources.count)).reversed().map { $0 }
        heap.reserveCapacity(sources.count)
        waiting.reserveCapacity(sources.count)
    }

    public var stats: SourceStats {
        var total = SourceStats()
        for source in sources {
            let stats = source.stats
            total.lines += stats.lines; total.events += stats.events
            total.rejected += stats.rejected; total.skipped += stats.skipped
            total.decompressedBytes += stats.decompressedBytes; total.compressedBytes += stats.compressedBytes
        }
        return total
    }

    @inline(__always) private func less(_ a: Int32, _ b: Int32) -> Bool {
        let timeA = heads[Int(a)].receiveTime, timeB = heads[Int(b)].receiveTime
        return timeA < timeB || (timeA == timeB && a < b)
    }

    private func siftDown(_ start: Int) {
        var i = start
        let n = heap.count
        while true {
            let left = 2 * i + 1
            if left >= n { return }
            var smallest = left
            if left + 1 < n && less(heap[left + 1], heap[left]) { smallest = left + 1 }
            if !less(heap[smallest], heap[i]) { return }
            heap.swapAt(i, smallest)
            i = smallest
        }
    }

    private func siftUp(_ start: Int) {
        var i = start
        while i > 0 {
            let parent = (i - 1) / 2
            if !less(heap[i], heap[parent]) { return }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    public func next(_ event: inout MarketEvent) -> SourceStep {
        if let source = single { return source.next(&event) }
        // Ask every source without a head; one that is idle holds the whole merge back.
        while let position = waiting.last {
            switch sources[Int(position)].next(&heads[Int(position)]) {
            case .idle: return .idle
            case .event: heap.append(position); siftUp(heap.count - 1)
            case .end: break
            }
            waiting.removeLast()
        }
        guard let top = heap.first else { return .end }
        event = heads[Int(top)]
        heap[0] = heap[heap.count - 1]
        heap.removeLast()
        if !heap.isEmpty { siftDown(0) }
        waiting.append(top)
        return .event
    }
}
