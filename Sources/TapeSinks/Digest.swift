import Crypto
import TapeCore
import TapeGraph

/// The run digest: SHA-256 over the canonical text of every emitted output, one line each
/// (`<kind>,<csv row>\n`), in emission order. Same input + same config ⇒ same digest, at any
/// speed, on any machine, live or replayed.
///
/// Per-symbol digests: one SHA-256 per symbol over that symbol's lines (the same bytes), in order.
/// When work is split by symbol (partitions), the interleaving across symbols may change and with it
/// the global digest; the per-symbol digests must not.
///
/// Not thread-safe: one thread emits (the engine's, or an `AsyncSink` worker's).
public final class DigestSink: EngineSink {
    private var hasher = SHA256()
    private let symbols: SymbolTable
    private var formatter = OutputLineFormatter()
    /// Indexed by `SymbolID`: one hasher and one count per symbol (grown when a new id appears).
    private var hashersBySymbolID: [SHA256] = []
    private var countsBySymbolID: [Int] = []
    private var countsByKind = [Int](repeating: 0, count: OutputKind.allCases.count)
    public private(set) var count = 0

    public init(symbols: SymbolTable) { self.symbols = symbols }

    public var name: String { "digest" }
    /// Hashing cannot fail.
    public var failure: (any Error)? { nil }
    public func flush() throws {}
    public func close() throws {}

    public func emit(_ output: GraphOutput) {
        formatter.format(output, symbols: symbols)
        formatter.withLine { consume(line: $0, kind: formatter.kind, symbol: formatter.symbol) }
    }

    /// Adds one formatted line (`<kind>,<row>\n`, from `OutputLineFormatter`) to the global digest and
    /// to its symbol's digest (an account-wide trading row, `symbol` nil, to the global digest only: it
    /// belongs to no symbol's partition).
    public func consume(line: UnsafeRawBufferPointer, kind: OutputKind, symbol: SymbolID?) {
        assert(line.last == UInt8(ascii: "\n"), "a digest line ends with its newline")
        hasher.update(bufferPointer: line)
        countsByKind[kind.rawValue] += 1
        count += 1
        guard let symbol else { return }
        let index = Int(symbol)
        if index >= hashersBySymbolID.count {
            let added = index + 1 - hashersBySymbolID.count
            hashersBySymbolID.append(contentsOf: repeatElement(SHA256(), count: added))
            countsBySymbolID.append(contentsOf: repeatElement(0, count: added))
        }
        hashersBySymbolID[index].update(bufferPointer: line)
        countsBySymbolID[index] += 1
    }

    /// Hex digest of everything emitted so far (the hasher itself is not consumed).
    public var hexDigest: String { Hex.encode(Array(hasher.finalize())) }

    /// Outputs per kind name (`bars`, ...); kinds never emitted are absent.
    public var countByKind: [String: Int] {
        var result: [String: Int] = [:]
        for kind in OutputKind.allCases where countsByKind[kind.rawValue] > 0 {
            result[kind.name] = countsByKind[kind.rawValue]
        }
        return result
    }

    /// Symbol name → hex SHA-256 of that symbol's lines, for every symbol with at least one output.
    public var digestsBySymbol: [String: String] {
        var result: [String: String] = [:]
        for (index, count) in countsBySymbolID.enumerated() where count > 0 {
            result[symbols.name(SymbolID(index))] = Hex.encode(Array(hashersBySymbolID[index].finalize()))
        }
        return result
    }

    /// Symbol name → number of outputs, for every symbol with at least one output.
    public var countsBySymbol: [String: Int] {
        var result: [String: Int] = [:]
        for (index, count) in countsBySymbolID.enumerated() where count > 0 {
            result[symbols.name(SymbolID(index))] = count
        }
        return result
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
    /// nil for anything but a regular file: a FIFO, a pipe or stdin was consumed by the run and reopening
    /// it would wait for a writer that never comes.
    public static func sha256(path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
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
