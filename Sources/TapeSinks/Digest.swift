import Crypto
import TapeCore
import TapeGraph

/// The run digest: SHA-256 over the canonical text of every emitted output, one line each
/// (`<kind>,<csv row>\n`), in emission order. Same input + same config ⇒ same digest, at any
/// speed, on any machine, live or replayed.
public final class DigestSink: GraphSink {
    private var hasher = SHA256()
    private let symbols: SymbolTable
    /// One hasher per symbol id (nil until the symbol emits): the same lines, filtered by symbol.
    private var symbolHashers: [SHA256?] = []
    private var symbolCounts: [Int] = []
    public private(set) var count = 0
    public private(set) var countByKind: [String: Int] = [:]

    public init(symbols: SymbolTable) { self.symbols = symbols }

    public func emit(_ output: GraphOutput) {
        var line = output.canonicalLine(symbols: symbols)
        line.append("\n")
        let symbol = Int(output.symbol)
        if symbol >= symbolHashers.count {
            symbolHashers.append(contentsOf: repeatElement(nil, count: symbol + 1 - symbolHashers.count))
            symbolCounts.append(contentsOf: repeatElement(0, count: symbol + 1 - symbolCounts.count))
        }
        if symbolHashers[symbol] == nil { symbolHashers[symbol] = SHA256() }
        line.withUTF8 { bytes in
            hasher.update(bufferPointer: UnsafeRawBufferPointer(bytes))
            symbolHashers[symbol]!.update(bufferPointer: UnsafeRawBufferPointer(bytes))
        }
        symbolCounts[symbol] += 1
        count += 1
        countByKind[output.kindName, default: 0] += 1
    }

    /// Hex digest of everything emitted so far (the hasher itself is not consumed).
    public var hexDigest: String { Hex.encode(Array(hasher.finalize())) }

    /// Per-symbol digests (symbol name → hex SHA-256 over that symbol's lines, in emission order). Once
    /// work is partitioned by symbol the global interleaving may change; these may not.
    public var digestsBySymbol: [String: String] {
        var out: [String: String] = [:]
        for (id, symbolHasher) in symbolHashers.enumerated() {
            if let symbolHasher { out[symbols.name(SymbolID(id))] = Hex.encode(Array(symbolHasher.finalize())) }
        }
        return out
    }

    /// Outputs per symbol name.
    public var countBySymbol: [String: Int] {
        var out: [String: Int] = [:]
        for (id, count) in symbolCounts.enumerated() where count > 0 { out[symbols.name(SymbolID(id))] = count }
        return out
    }
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
