import TapeCore
import TapeClock

/// Graph state snapshot and restore. The format is documented in docs/snapshot.md; keep the two in step
/// and bump `Graph.snapshotVersion` on any change of layout or meaning.
extension Graph {
    /// "TAPESNAP" in ASCII.
    public static let snapshotMagic: [UInt8] = Array("TAPESNAP".utf8)
    /// "TAPE.END": the last 8 bytes of a snapshot (catches a payload cut at a block boundary).
    static let snapshotTrailer: [UInt8] = Array("TAPE.END".utf8)
    /// Version of the snapshot layout. A snapshot of another version is refused.
    public static let snapshotVersion: UInt64 = 2

    /// FNV-1a (64 bit) of `config.canonicalText`: a snapshot is refused under another config.
    public var snapshotConfigHash: UInt64 { FNV1a64.hash(config.canonicalText.utf8) }

    /// The state of the whole graph at this point of the stream: symbol table, clock time, the graph's
    /// pending timers, counters, every symbol's windows/indicators/session VWAP, every rule, every
    /// downstream node. Taken between two events, never after `finish()` (open windows stay open).
    public func snapshot() -> [UInt8] {
        precondition(!finishing, "a snapshot is taken before finish(): finish() closes every window")
        var writer = SnapshotWriter()
        for byte in Graph.snapshotMagic { writer.appendByte(byte) }
        writer.append(Graph.snapshotVersion)
        writer.append(snapshotConfigHash)

        writer.appendCount(symbols.count)
        for id in 1..<symbols.count { writer.append(symbols.name(SymbolID(id))) }
        writer.append(clock.now)
        writeCounters(&writer)

        writer.appendCount(states.count)
        for slot in states {
            guard let state = slot else {
                writer.append(false)
                continue
            }
            writer.append(true)
            writeSymbol(state, &writer)
        }

        writer.appendCount(rules.count)
        for rule in rules {
            writer.append(rule.name)
            var ruleWriter = SnapshotWriter()
            rule.snapshot(into: &ruleWriter)
            writer.appendBlock(ruleWriter.bytes)
        }

        let timers = clock.exportTimers(for: self)
        writer.appendCount(timers.count)
        for timer in timers {
            writer.append(timer.due)
            writer.append(timer.token)
        }

        writer.appendCount(nodes.count)
        for node in nodes {
            writer.append(String(describing: type(of: node)))
            var nodeWriter = SnapshotWriter()
            node.snapshot(into: &nodeWriter)
            writer.appendBlock(nodeWriter.bytes)
        }
        writer.append(FNV1a64.hash(writer.bytes))
        for byte in Graph.snapshotTrailer { writer.appendByte(byte) }
        return writer.bytes
    }

    /// Continues from `snapshot`. Call on a fresh graph (no event yet, the same config and downstream
    /// node types in the same order) whose clock is fresh (no timers, `now` not after the snapshot's)
    /// and whose symbol table holds at most a prefix of the snapshot's names (normally only the
    /// reserved id 0): the names are interned in id order so every id means what it meant.
    /// Throws `SnapshotError` on another version, another config, a mismatch of nodes, or bytes that
    /// are truncated or corrupt. After a thrown error the graph and its clock must be discarded.
    public func restore(from snapshot: [UInt8]) throws {
        precondition(states.isEmpty && counters == GraphCounters() && !finishing, "restore(from:) needs a fresh graph")
        var reader = SnapshotReader(bytes: snapshot)
        let magic = try reader.readBytes(Graph.snapshotMagic.count)
        guard magic == Graph.snapshotMagic else { throw reader.error("not a Tape graph snapshot (bad magic)") }
        let version = try reader.readUInt64()
        guard version == Graph.snapshotVersion else {
            throw reader.error("snapshot version \(version), this build reads version \(Graph.snapshotVersion)")
        }
        // Checksum (of every byte before it) and end marker: a cut or damaged snapshot stops here.
        let footerBytes = 8 + Graph.snapshotTrailer.count
        guard snapshot.count >= reader.offset + 8 + footerBytes,
              Array(snapshot.suffix(Graph.snapshotTrailer.count)) == Graph.snapshotTrailer else {
            throw reader.error("truncated: no end marker")
        }
        var footer = SnapshotReader(bytes: Array(snapshot.suffix(footerBytes)))
        let checksum = try footer.readUInt64()
        guard checksum == FNV1a64.hash(snapshot.prefix(snapshot.count - footerBytes)) else {
            throw reader.error("checksum mismatch: the snapshot is damaged")
        }
        let configHash = try reader.readUInt64()
        guard configHash == snapshotConfigHash else {
            throw reader.error("snapshot was taken under another config (config hash \(hex(configHash)), "
                               + "this graph's is \(hex(snapshotConfigHash)))")
        }

        try restoreSymbols(&reader)
        let now = try reader.readInt64()
        guard clock.exportTimers(for: self).isEmpty && clock.pendingTimers == 0 else {
            throw reader.error("the clock already has timers: restore into a fresh clock")
        }
        guard clock.now <= now else {
            throw reader.error("the clock (\(clock.now)) is past the snapshot's time (\(now))")
        }
        counters = try readCounters(&reader)

        let slotCount = try reader.readCount(limit: snapshotSymbolsMax)
        guard slotCount <= symbols.count else {
            throw reader.error("\(slotCount) symbol slots but \(symbols.count) names in the table")
        }
        var restored: [SymbolState?] = []
        restored.reserveCapacity(slotCount)
        for id in 0..<slotCount {
            restored.append(try reader.readBool() ? try readSymbol(SymbolID(id), &reader) : nil)
        }

        let ruleCount = try reader.readCount()
        guard ruleCount == rules.count else {
            throw reader.error("snapshot has \(ruleCount) rules, this graph \(rules.count)")
        }
        for rule in rules {
            let name = try reader.readString()
            guard name == rule.name else {
                throw reader.error("snapshot has rule \(name) where this graph has \(rule.name)")
            }
            var ruleReader = SnapshotReader(bytes: try reader.readBlock())
            try rule.restore(from: &ruleReader)
            try ruleReader.expectEnd("rule \(name)")
        }

        let timerCount = try reader.readCount(minimumElementBytes: 16)
        var timers: [(due: Nanos, token: UInt64)] = []
        timers.reserveCapacity(timerCount)
        for _ in 0..<timerCount {
            let due = try reader.readInt64()
            let token = try reader.readUInt64()
            try checkTimer(token, restored: restored, &reader)
            if let previous = timers.last, previous.due > due { throw reader.error("timers out of firing order") }
            timers.append((due, token))
        }

        let nodeCount = try reader.readCount()
        guard nodeCount == nodes.count else {
            throw reader.error("snapshot has \(nodeCount) downstream nodes, this graph \(nodes.count)")
        }
        for node in nodes {
            let typeName = try reader.readString()
            let ours = String(describing: type(of: node))
            guard typeName == ours else {
                throw reader.error("snapshot has node \(typeName) where this graph has \(ours)")
            }
            var nodeReader = SnapshotReader(bytes: try reader.readBlock())
            try node.restore(from: &nodeReader)
            try nodeReader.expectEnd("node \(typeName)")
        }
        _ = try reader.readUInt64()  // the checksum, verified above
        let trailer = try reader.readBytes(Graph.snapshotTrailer.count)
        guard trailer == Graph.snapshotTrailer else { throw reader.error("bad end marker") }
        try reader.expectEnd("the graph snapshot")

        // Everything read and checked: commit the graph's own state, the clock's time and timers.
        states = restored
        clock.resume(at: now)
        clock.importTimers(timers, target: self)
        assert(clock.exportTimers(for: self).count == timerCount)
    }

    private func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    private func restoreSymbols(_ reader: inout SnapshotReader) throws {
        let count = try reader.readCount(limit: snapshotSymbolsMax)
        guard count >= 1 else { throw reader.error("symbol table without the reserved id 0") }
        guard symbols.count <= count else {
            throw reader.error("the symbol table already holds \(symbols.count) names, the snapshot \(count)")
        }
        for id in 1..<count {
            let name = try reader.readString()
            if id < symbols.count {
                guard symbols.name(SymbolID(id)) == name else {
                    throw reader.error("symbol id \(id) is \(symbols.name(SymbolID(id))) here, \(name) in the snapshot")
                }
            } else {
                guard symbols.intern(name) == SymbolID(id) else {
                    throw reader.error("symbol \(name) repeated in the snapshot's table")
                }
            }
        }
        assert(symbols.count == count)
    }

    private func checkTimer(_ token: UInt64, restored: [SymbolState?], _ reader: inout SnapshotReader) throws {
        let symbol = Int((token >> 16) & 0xFFFF_FFFF)
        let index = Int(token & 0xFFFF)
        switch token & TimerKind.mask {
        case TimerKind.window:
            guard symbol < restored.count, restored[symbol] != nil, index < config.timeframes.count else {
                throw reader.error("bad window timer \(token)")
            }
        case TimerKind.rule:
            guard index < rules.count, rules[index].hooks.contains(.timers) else {
                throw reader.error("bad rule timer \(token)")
            }
        default:
            throw reader.error("unknown timer token \(token)")
        }
    }

    private func writeCounters(_ writer: inout SnapshotWriter) {
        for value in [counters.trades, counters.quotes, counters.bars, counters.lateTicks, counters.badTicks,
                      counters.droppedEvents] {
            writer.append(Int64(value))
        }
    }

    private func readCounters(_ reader: inout SnapshotReader) throws -> GraphCounters {
        var values: [Int] = []
        for _ in 0..<6 {
            let value = try reader.readInt64()
            guard value >= 0 else { throw reader.error("negative counter \(value)") }
            values.append(Int(value))
        }
        var restored = GraphCounters()
        restored.trades = values[0]
        restored.quotes = values[1]
        restored.bars = values[2]
        restored.lateTicks = values[3]
        restored.badTicks = values[4]
        restored.droppedEvents = values[5]
        return restored
    }

    private func writeSymbol(_ state: SymbolState, _ writer: inout SnapshotWriter) {
        writer.append(state.maxEventTime)
        writer.append(state.mid)
        writer.append(state.spread)
        writer.appendCount(state.series.count)
        for series in state.series {
            writer.append(series.closedUpTo)
            writer.appendCount(series.windows.count)
            for window in series.windows {
                writer.append(window.start)
                writer.append(window.end)
                for value in [window.open, window.high, window.low, window.close, window.volume, window.pv] {
                    writer.append(value)
                }
                writer.append(Int64(window.count))
                writer.append(window.volumeKnown)
                writer.append(Int64(window.volumeDecimals))
            }
            series.ind.snapshot(into: &writer)
            writer.append(series.sessionDay)
            writer.append(series.sessionPV)
            writer.append(series.sessionV)
        }
    }

    private func readSymbol(_ id: SymbolID, _ reader: inout SnapshotReader) throws -> SymbolState {
        let state = SymbolState(id: id, config: config)
        state.maxEventTime = try reader.readInt64()
        state.mid = try reader.readDouble()
        state.spread = try reader.readDouble()
        let seriesCount = try reader.readCount()
        guard seriesCount == state.series.count else {
            throw reader.error("symbol \(id) has \(seriesCount) timeframes, the config \(state.series.count)")
        }
        for t in state.series.indices {
            state.series[t].closedUpTo = try reader.readInt64()
            let windowCount = try reader.readCount(minimumElementBytes: 81)
            let timeframe = state.series[t].tf
            for _ in 0..<windowCount {
                let start = try reader.readInt64()
                let end = try reader.readInt64()
                let afterLast = state.series[t].windows.last.map { $0.start < start } ?? true
                guard end - start == timeframe.nanos, afterLast else {
                    throw reader.error("window [\(start), \(end)) does not fit timeframe \(timeframe)")
                }
                var window = Window(start: start, end: end)
                window.open = try reader.readDouble()
                window.high = try reader.readDouble()
                window.low = try reader.readDouble()
                window.close = try reader.readDouble()
                window.volume = try reader.readDouble()
                window.pv = try reader.readDouble()
                window.count = Int(try reader.readInt64())
                window.volumeKnown = try reader.readBool()
                let volumeDecimals = try reader.readInt64()
                guard volumeDecimals >= 0 && volumeDecimals <= Int64(Numbers.decimalPlacesMax) else {
                    throw reader.error("window volume decimal places \(volumeDecimals) out of range")
                }
                window.volumeDecimals = Int(volumeDecimals)
                state.series[t].windows.append(window)
            }
            try state.series[t].ind.restore(from: &reader)
            state.series[t].sessionDay = try reader.readInt64()
            state.series[t].sessionPV = try reader.readDouble()
            state.series[t].sessionV = try reader.readDouble()
        }
        return state
    }
}
