import Crypto
import TapeCore
import TapeGraph

/// The run digest: SHA-256 over the canonical text of every emitted output, one line each
/// (`<kind>,<csv row>\n`), in emission order. Same input + same config ⇒ same digest, at any
/// speed, on any machine, live or replayed.
public final class DigestSink: GraphSink {
    private var hasher = SHA256()
    private let symbols: SymbolTable
    public private(set) var count = 0
    public private(set) var countByKind: [String: Int] = [:]

    public init(symbols: SymbolTable) { self.symbols = symbols }

    public func emit(_ output: GraphOutput) {
        var line = output.canonicalLine(symbols: symbols)
        line.append("\n")
        line.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        count += 1
        countByKind[output.kindName, default: 0] += 1
    }

    /// Hex digest of everything emitted so far (the hasher itself is not consumed).
    public var hexDigest: String { Hex.encode(Array(hasher.finalize())) }
}

public enum Hex {
    public static func encode(_ bytes: [UInt8]) -> String {
        let d = Array("0123456789abcdef".utf8)
        var out = [UInt8](); out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(d[Int(b >> 4)]); out.append(d[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}

/// SHA-256 of a file's bytes (the summary records each input's hash).
public enum FileHash {
    public static func sha256(path: String) -> String? {
        guard let f = fopen(path, "rb") else { return nil }
        defer { fclose(f) }
        var h = SHA256()
        let bufSize = 1 << 20
        let buf = UnsafeMutableRawPointer.allocate(byteCount: bufSize, alignment: 16)
        defer { buf.deallocate() }
        while true {
            let n = fread(buf, 1, bufSize, f)
            if n == 0 { break }
            h.update(bufferPointer: UnsafeRawBufferPointer(start: buf, count: n))
        }
        return Hex.encode(Array(h.finalize()))
    }

    public static func sha256(text: String) -> String {
        Hex.encode(Array(SHA256.hash(data: Array(text.utf8))))
    }
}
#if canImport(Glibc)
import Glibc
#endif
