import TapeCore

/// K-way merge of N sources into one stream ordered by
/// **(receiveTime, source position in `sources`, then each source's own order)**.
///
/// Tie-break: events with equal receive time come out by the position of their source in the array
/// given to `init` (the command-line order, i.e. `ReaderOptions.sourceIndex`), and within one source
/// in that source's own (file) order — so the output is a pure function of the inputs.
/// The merge is greedy over the sources' current heads (a binary min-heap: O(log N) per event); it does
/// not reorder within a source: if a source's receive time steps back (within the validator's
/// tolerance), the merged stream steps back too. N = 1 passes straight through (no heap).
public final class MergedSource: EventSource {
    public let sources: [any EventSource]
    public let name: String
    public var format: RecordingFormat { sources.count == 1 ? sources[0].format : .rawCapture }

    private var heads: [MarketEvent]
    private var heap: [Int32] = []   // source positions, min-heap by (heads[i].receiveTime, i)
    private var started = false
    private let single: (any EventSource)?

    public init(_ sources: [any EventSource]) {
        self.sources = sources
        name = sources.map(\.name).joined(separator: "+")
        heads = Array(repeating: MarketEvent(), count: sources.count)
        single = sources.count == 1 ? sources[0] : nil
        heap.reserveCapacity(sources.count)
    }

    public var stats: SourceStats {
        var s = SourceStats()
        for src in sources {
            let t = src.stats
            s.lines += t.lines; s.events += t.events; s.rejected += t.rejected; s.skipped += t.skipped
            s.decompressedBytes += t.decompressedBytes; s.compressedBytes += t.compressedBytes
        }
        return s
    }

    @inline(__always) private func less(_ a: Int32, _ b: Int32) -> Bool {
        let ta = heads[Int(a)].receiveTime, tb = heads[Int(b)].receiveTime
        return ta < tb || (ta == tb && a < b)
    }

    private func siftDown(_ i0: Int) {
        var i = i0
        let n = heap.count
        while true {
            let l = 2 * i + 1
            if l >= n { return }
            var m = l
            if l + 1 < n && less(heap[l + 1], heap[l]) { m = l + 1 }
            if !less(heap[m], heap[i]) { return }
            heap.swapAt(i, m)
            i = m
        }
    }

    private func siftUp(_ i0: Int) {
        var i = i0
        while i > 0 {
            let p = (i - 1) / 2
            if !less(heap[i], heap[p]) { return }
            heap.swapAt(i, p)
            i = p
        }
    }

    public func next(_ event: inout MarketEvent) -> Bool {
        if let s = single { return s.next(&event) }
        if !started {
            started = true
            for i in sources.indices where sources[i].next(&heads[i]) {
                heap.append(Int32(i)); siftUp(heap.count - 1)
            }
        }
        guard let top = heap.first else { return false }
        let i = Int(top)
        event = heads[i]
        if sources[i].next(&heads[i]) {
            siftDown(0)
        } else {
            heap[0] = heap[heap.count - 1]
            heap.removeLast()
            if !heap.isEmpty { siftDown(0) }
        }
        return true
    }
}
