#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Failure injection for tests: the writes of chosen output files stop at a chosen byte and fail with
/// `ENOSPC`, exactly as on a full disk, so that a test can run the real `tape` binary and check what a
/// failure at any point of any run-folder file gets (exit 5, the message naming the file, summary.json).
///
///     TAPE_FAIL_WRITES='bars.csv@1000,summary.json@0' tape replay in.gz --out run
///
/// A name is a file's last path component; the byte is an offset in the file as written (compressed
/// bytes for a `.gz`). Read once, from the environment, when the first output file is opened; a file
/// not named writes as usual. Costs one dictionary look-up per file opened and nothing per row.
public enum WriteFaults {
    /// The environment variable holding the schedule: `name@byte[,name@byte…]`.
    public static let environmentVariable = "TAPE_FAIL_WRITES"

    private static let limits: [String: Int64] = {
        guard let raw = getenv(environmentVariable) else { return [:] }
        var limits: [String: Int64] = [:]
        for entry in String(cString: raw).split(separator: ",") {
            let parts = entry.split(separator: "@")
            guard parts.count == 2, let byte = Int64(parts[1]), byte >= 0 else { continue }
            limits[String(parts[0])] = byte
        }
        return limits
    }()

    /// The byte at which writes to `path` fail, or nil (the usual case: no injection).
    public static func failingByte(forPath path: String) -> Int64? {
        if limits.isEmpty { return nil }
        return limits[String(path.split(separator: "/").last ?? "")]
    }

    /// How many of `count` bytes may be written at file offset `offset` before the injected failure
    /// (`count` when there is none).
    static func allowedBytes(_ count: Int, at offset: Int64, failingByte: Int64?) -> Int {
        guard let failingByte else { return count }
        return Int(max(0, min(Int64(count), failingByte - offset)))
    }
}
