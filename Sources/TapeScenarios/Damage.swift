import Foundation

/// Deterministic damage applied to a temp copy of a recording at run time (the real file is never
/// changed, and no copy goes into the repo). Order: decompress (gzip -dc) → inject garbage →
/// truncate → recompress (gzip -n, same file name) → cut the compressed stream.
/// - `inject_garbage_every: N`: after every N-th line, a line `#garbage <k> \u{1}\u{2} not a record`
///   (k = 1, 2, ...).
/// - `truncate_at_fraction: f`: keep the first floor(f × bytes) bytes of the (decompressed, garbage
///   injected) text: the last line is cut mid-record.
/// - `truncate_gzip_at_fraction: f`: keep the first floor(f × bytes) bytes of the compressed file
///   (a gzip stream that ends early).
public enum Damage {
    public static func apply(_ d: DamageSpec, input: String, outDir: String) throws -> String {
        let fm = FileManager.default
        try fm.createDirectory(atPath: outDir, withIntermediateDirectories: true)
        let name = (input as NSString).lastPathComponent
        let out = (outDir as NSString).appendingPathComponent(name)
        let gz = name.hasSuffix(".gz")
        guard var data = fm.contents(atPath: input) else { throw ScenarioError(file: input, key: "damage", message: "cannot read input") }
        if d.injectGarbageEvery != nil || d.truncateAtFraction != nil {
            if gz { data = try gzip(["-dc"], data) }
            if let n = d.injectGarbageEvery {
                var o = Data(); o.reserveCapacity(data.count + data.count / 50)
                var line = 0, k = 0, start = data.startIndex
                for i in data.indices where data[i] == 0x0A {
                    o.append(data[start...i]); start = i + 1
                    line += 1
                    if line % n == 0 { k += 1; o.append(Data("#garbage \(k) \u{1}\u{2} not a record\n".utf8)) }
                }
                if start < data.endIndex { o.append(data[start...]) }
                data = o
            }
            if let f = d.truncateAtFraction { data = data.prefix(Int(Double(data.count) * f)) }
            if gz { data = try gzip(["-n", "-c"], data) }
        }
        if let f = d.truncateGzipAtFraction { data = data.prefix(Int(Double(data.count) * f)) }
        try data.write(to: URL(fileURLWithPath: out))
        return out
    }

    static func gzip(_ args: [String], _ input: Data) throws -> Data {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/gzip")
        p.arguments = args
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("tape-damage-\(UUID().uuidString)")
        try input.write(to: tmp)
        defer { try? FileManager.default.removeItem(at: tmp) }
        p.standardInput = try FileHandle(forReadingFrom: tmp)
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        // gzip -dc exits 2 on "trailing garbage" warnings; only 1 is an error.
        if p.terminationStatus == 1 { throw ScenarioError(file: "gzip", key: "damage", message: "gzip \(args.joined(separator: " ")) failed") }
        return out
    }
}
