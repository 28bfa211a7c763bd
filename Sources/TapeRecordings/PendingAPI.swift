// TEMPORARY: stand-in for the reader factory that lands from the `formats` branch (raw captures only);
// deleted when that merges.
import TapeCore
import TapeFeeds

public struct PendingError: Error, CustomStringConvertible {
    public var description: String
}

public func openSource(path: String, format: RecordingFormat?, options: ReaderOptions) throws -> EventSource {
    if format == nil || format == .rawCapture { return try RawCaptureReader<BinanceDecoder>(path: path, options: options) }
    throw PendingError(description: "\(path): format readers not merged yet")
}
