import TapeCore
import TapeClock
import TapeRecordings
import TapeSinks
import TapeIO
import TapeSources
import TapeEngine

/// The subfolder of a `tape record` output folder that holds the reject log.
public let recordRejectsFolder = "rejects"

/// What `tape record --from-replay` did.
public struct RecordSummary {
    public var files: [String]
    public var eventsWritten: Int
    public var ticksRejected: Int
    public var rejectsByReason: [String: Int]
    public var filtered: Int
    public var barsRefused: Int
    /// The signal (SIGINT, SIGTERM) that stopped the recording; 0 = it read to the end.
    public var interruptSignal: Int32 = 0
}

/// Converts recordings into Tape tick CSV (format conversion, slicing by symbol and event time),
/// merged in replay order, through the same `RecordingWriter` live recording uses. Rejects are
/// reported as in a replay (messages, and `rejects/rejects.csv.gz` under `directory`: a subfolder, so
/// that `tape replay out/*.gz` globs the recordings only).
public func recordFromReplay(_ o: ReplayOptions, directory: String, prefix: String, maxBytes: Int64,
                             rotateHourly: Bool, flushEvery: Int) throws -> RecordSummary {
    // SIGUSR1 pauses and resumes; SIGINT/SIGTERM stop reading and the files are closed valid. Installed
    // before any other thread starts (reader threads inherit the blocked signals).
    if o.interactive { o.pause.install(keys: false) }
    do { try FS.makeDirectories(directory) } catch { throw UnusableInput("\(directory): cannot create: \(error)") }
    let symbols = SymbolTable()
    // The reject log goes in a subfolder: `replay out/*.gz` must find only recordings.
    let rejectsDirectory = directory + "/" + recordRejectsFolder
    do { try FS.makeDirectories(rejectsDirectory) } catch {
        throw UnusableInput("\(rejectsDirectory): cannot create: \(error)")
    }
    let rejects = RejectLog(writer: try o.makeRejectsWriter(rejectsDirectory), printLimit: o.quiet ? 0 : 5,
                            rejectsFileName: recordRejectsFolder + "/rejects.csv.gz", printer: o.messagePrinter)
    let sources = try openInputs(o, symbols: symbols, rejects: rejects)
    if !o.quiet { stateLayouts(sources, options: o) }
    let merged = MergedSource(sources)
    let writer = RecordingWriter(directory: directory, prefix: prefix, symbols: symbols, maxBytes: maxBytes,
                                 rotateHourly: rotateHourly, flushEvery: flushEvery)
    let filter = SymbolFilter(o.engine.symbols)
    let from = o.engine.from ?? .min, to = o.engine.to ?? .max
    var e = MarketEvent()
    var filtered = 0
    var writeFailure: (any Error)? = nil
    while merged.next(&e) == .event {
        if o.pause.maybePaused {
            _ = o.pause.waitIfPaused()
            if o.pause.isInterrupted { break }
        }
        let isTick = e.kind == .clockTick
        if e.eventTime < from || e.eventTime >= to || (!isTick && !filter.accepts(e.symbol, symbols)) {
            filtered += 1
            continue
        }
        do { try writer.write(e) } catch { writeFailure = error; break }
    }
    // Close everything (files released), then report the first failure.
    var first: OutputFailed? = writeFailure.map { OutputFailed(sink: "recorder", underlying: $0) }
    do { try writer.close() } catch { if first == nil { first = OutputFailed(sink: "recorder", underlying: error) } }
    do { try rejects.close() } catch { if first == nil { first = OutputFailed(sink: rejects.name, underlying: error) } }
    if let first { throw first }
    return RecordSummary(files: writer.files, eventsWritten: writer.eventsWritten, ticksRejected: rejects.total,
                         rejectsByReason: rejects.byReason, filtered: filtered, barsRefused: writer.barsRefused,
                         interruptSignal: o.pause.interruptSignal)
}
