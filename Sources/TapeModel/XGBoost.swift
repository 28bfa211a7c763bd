import CXGBoost
import Foundation

/// An error from the XGBoost C library (message from `XGBGetLastError`) or from Tape's model code.
public struct ModelError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

@inline(__always)
func xgCheck(_ rc: Int32, _ what: String) throws {
    if rc != 0 {
        let msg = XGBGetLastError().map { String(cString: $0) } ?? "unknown error"
        throw ModelError("XGBoost \(what) failed: \(msg)")
    }
}

/// XGBoost library version, e.g. `1.7.4`.
public func xgboostVersion() -> String {
    var a: Int32 = 0, b: Int32 = 0, c: Int32 = 0
    XGBoostVersion(&a, &b, &c)
    return "\(a).\(b).\(c)"
}

/// A dense XGBoost data matrix (row-major float32, NaN = missing). Frees its handle on deinit.
public final class DMatrix {
    public let handle: DMatrixHandle
    public let rows: Int
    public let cols: Int

    /// `values` is row-major, `rows * cols` long; NaN marks a missing value.
    public init(values: [Float], rows: Int, cols: Int, labels: [Float]? = nil) throws {
        precondition(values.count == rows * cols, "DMatrix: values.count != rows*cols")
        var h: DMatrixHandle? = nil
        try values.withUnsafeBufferPointer { p in
            try xgCheck(XGDMatrixCreateFromMat(p.baseAddress, bst_ulong(rows), bst_ulong(cols), Float.nan, &h),
                        "XGDMatrixCreateFromMat")
        }
        handle = h!
        self.rows = rows; self.cols = cols
        if let labels = labels {
            precondition(labels.count == rows)
            try labels.withUnsafeBufferPointer { p in
                try xgCheck(XGDMatrixSetFloatInfo(handle, "label", p.baseAddress, bst_ulong(rows)), "XGDMatrixSetFloatInfo(label)")
            }
        }
    }

    /// Row-major doubles (converted to float32, as XGBoost stores them).
    public convenience init(rows: [[Double]], labels: [Double]? = nil) throws {
        let cols = rows.first?.count ?? 0
        var flat = [Float](); flat.reserveCapacity(rows.count * cols)
        for r in rows { precondition(r.count == cols); for v in r { flat.append(Float(v)) } }
        try self.init(values: flat, rows: rows.count, cols: cols, labels: labels.map { $0.map(Float.init) })
    }

    deinit { XGDMatrixFree(handle) }
}

/// A gradient-boosted tree model. Frees its handle on deinit. Not thread-safe (one per graph).
public final class Booster {
    public let handle: BoosterHandle
    // Single-row inference scratch: a fixed buffer described once by an array-interface JSON string,
    // so that `predict(row:)` does not allocate on the Swift side.
    private var rowBuffer: UnsafeMutablePointer<Float>
    private var rowCapacity: Int = 0
    private var rowInterface: [CChar] = []
    private static let inplaceConfig: [CChar] = Array(
        "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, \"strict_shape\": false, \"missing\": NaN, \"cache_id\": 0}".utf8CString)

    /// A booster for training on `dtrain` (also the cache for prediction on it).
    public init(training dmats: [DMatrix] = []) throws {
        var h: BoosterHandle? = nil
        var handles: [DMatrixHandle?] = dmats.map { $0.handle }
        try handles.withUnsafeMutableBufferPointer { p in
            try xgCheck(XGBoosterCreate(p.baseAddress, bst_ulong(dmats.count), &h), "XGBoosterCreate")
        }
        handle = h!
        rowBuffer = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    }

    deinit {
        XGBoosterFree(handle)
        rowBuffer.deallocate()
    }

    public func setParam(_ name: String, _ value: String) throws {
        try xgCheck(XGBoosterSetParam(handle, name, value), "XGBoosterSetParam(\(name)=\(value))")
    }

    public func updateOneIter(_ iter: Int, _ dtrain: DMatrix) throws {
        try xgCheck(XGBoosterUpdateOneIter(handle, Int32(iter), dtrain.handle), "XGBoosterUpdateOneIter")
    }

    public var boostedRounds: Int {
        var n: Int32 = 0
        _ = XGBoosterBoostedRounds(handle, &n)
        return Int(n)
    }

    public var numFeatures: Int {
        var n: bst_ulong = 0
        _ = XGBoosterGetNumFeature(handle, &n)
        return Int(n)
    }

    /// Sets the model's feature names (stored in the JSON model; Python checks them).
    public func setFeatureNames(_ names: [String]) throws {
        try setStrFeatureInfo("feature_name", names)
        try setStrFeatureInfo("feature_type", names.map { _ in "float" })
    }

    private func setStrFeatureInfo(_ field: String, _ values: [String]) throws {
        let cstrs = values.map { strdup($0) }
        defer { cstrs.forEach { free($0) } }
        var ptrs: [UnsafePointer<CChar>?] = cstrs.map { UnsafePointer($0) }
        try ptrs.withUnsafeMutableBufferPointer { p in
            try xgCheck(XGBoosterSetStrFeatureInfo(handle, field, p.baseAddress, bst_ulong(values.count)),
                        "XGBoosterSetStrFeatureInfo(\(field))")
        }
    }

    /// The importance kinds `featureScores` accepts (XGBoost's `importance_type`).
    public static let importanceTypes = ["weight", "gain", "cover", "total_gain", "total_cover"]

    /// Feature importance by name, from `XGBoosterFeatureScore` (what Python's `get_score` returns):
    /// `weight` = number of splits on the feature, `gain` / `cover` = mean gain / cover of those
    /// splits, `total_*` = their sums. A feature never split on is absent.
    public func featureScores(_ importanceType: String) throws -> [String: Double] {
        precondition(Booster.importanceTypes.contains(importanceType), "unknown importance type \(importanceType)")
        let config = "{\"importance_type\": \"\(importanceType)\", \"feature_map\": \"\"}"
        var featureCount: bst_ulong = 0
        var names: UnsafeMutablePointer<UnsafePointer<CChar>?>? = nil
        var dimension: bst_ulong = 0
        var shape: UnsafePointer<bst_ulong>? = nil
        var scores: UnsafePointer<Float>? = nil
        try xgCheck(XGBoosterFeatureScore(handle, config, &featureCount, &names, &dimension, &shape, &scores),
                    "XGBoosterFeatureScore(\(importanceType))")
        // gbtree gives one score per feature (dimension 1); a multi-output model would give a matrix.
        guard dimension == 1 else { throw ModelError("feature scores of dimension \(dimension) are not supported") }
        var result: [String: Double] = [:]
        for index in 0..<Int(featureCount) {
            guard let name = names?[index] else { continue }
            result[String(cString: name)] = Double(scores![index])
        }
        assert(result.count == Int(featureCount), "XGBoost returned a feature twice")
        return result
    }

    /// Predictions (float32, as XGBoost computes them) for every row of `dmat`.
    public func predict(_ dmat: DMatrix) throws -> [Float] {
        var len: bst_ulong = 0
        var out: UnsafePointer<Float>? = nil
        try xgCheck(XGBoosterPredict(handle, dmat.handle, 0, 0, 0, &len, &out), "XGBoosterPredict")
        return Array(UnsafeBufferPointer(start: out, count: Int(len)))
    }

    /// Prediction for one row (NaN = missing) via XGBoost's in-place dense prediction. The input buffer
    /// and its array-interface description are built once; the Swift side does not allocate per call.
    public func predict(row: UnsafeBufferPointer<Double>) throws -> Double {
        let n = row.count
        if n != rowCapacity { try prepareRow(n) }
        for i in 0..<n { rowBuffer[i] = Float(row[i]) }
        var shape: UnsafePointer<bst_ulong>? = nil
        var dim: bst_ulong = 0
        var out: UnsafePointer<Float>? = nil
        let rc = rowInterface.withUnsafeBufferPointer { iface in
            Booster.inplaceConfig.withUnsafeBufferPointer { cfg in
                XGBoosterPredictFromDense(handle, iface.baseAddress, cfg.baseAddress, nil, &shape, &dim, &out)
            }
        }
        try xgCheck(rc, "XGBoosterPredictFromDense")
        return Double(out![0])
    }

    public func predict(row: [Double]) throws -> Double {
        try row.withUnsafeBufferPointer { try predict(row: $0) }
    }

    private func prepareRow(_ n: Int) throws {
        rowBuffer.deallocate()
        rowBuffer = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
        rowCapacity = n
        let addr = UInt(bitPattern: rowBuffer)
        let s = "{\"data\": [\(addr), true], \"shape\": [1, \(n)], \"strides\": null, \"typestr\": \"<f4\", \"version\": 3}"
        rowInterface = Array(s.utf8CString)
    }

    /// The model as XGBoost JSON (deterministic for a deterministic training run).
    public func saveJSON() throws -> [UInt8] {
        var len: bst_ulong = 0
        var out: UnsafePointer<CChar>? = nil
        try xgCheck(XGBoosterSaveModelToBuffer(handle, "{\"format\": \"json\"}", &len, &out), "XGBoosterSaveModelToBuffer")
        return out!.withMemoryRebound(to: UInt8.self, capacity: Int(len)) { Array(UnsafeBufferPointer(start: $0, count: Int(len))) }
    }

    public func save(to path: String) throws {
        try Data(saveJSON()).write(to: URL(fileURLWithPath: path))
    }

    /// Loads an XGBoost JSON model. With `fixBaseScore` (the default) a 2.x/3.x `base_score` written as a
    /// bracketed array string (`"[4.82E-1]"`) is rewritten to a plain scalar string first: the installed
    /// libxgboost 1.7.4 would otherwise silently use 0.5 and predict wrong values.
    public static func load(json: [UInt8], fixBaseScore: Bool = true) throws -> Booster {
        let bytes = fixBaseScore ? try ModelJSON.fixBaseScore(json).json : json
        let b = try Booster()
        try bytes.withUnsafeBytes { p in
            try xgCheck(XGBoosterLoadModelFromBuffer(b.handle, p.baseAddress, bst_ulong(p.count)), "XGBoosterLoadModelFromBuffer")
        }
        try b.setParam("nthread", "1")  // prediction on one thread, like training
        return b
    }

    public static func load(path: String, fixBaseScore: Bool = true) throws -> Booster {
        guard let d = FileManager.default.contents(atPath: path) else { throw ModelError("cannot read model file \(path)") }
        return try load(json: [UInt8](d), fixBaseScore: fixBaseScore)
    }
}

/// Model JSON helpers (not a hot path).
public enum ModelJSON {
    /// Rewrites `"base_score":"[v]"` (XGBoost >= 2.0) to `"base_score":"v"` (readable by 1.7.x).
    /// Only the bytes of that one value change. Returns whether a rewrite happened and the base score.
    public static func fixBaseScore(_ json: [UInt8]) throws -> (json: [UInt8], fixed: Bool, baseScore: Double?) {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any],
              let learner = obj["learner"] as? [String: Any],
              let lmp = learner["learner_model_param"] as? [String: Any],
              let bs = lmp["base_score"] as? String else {
            throw ModelError("not an XGBoost JSON model (no learner.learner_model_param.base_score)")
        }
        guard bs.hasPrefix("[") else { return (json, false, Double(bs)) }
        let inner = bs.dropFirst().dropLast()
        if inner.contains(",") {
            throw ModelError("model has a vector base_score \(bs) (multi-target); libxgboost \(xgboostVersion()) cannot load it")
        }
        guard let v = Double(inner.trimmingCharacters(in: .whitespaces)) else {
            throw ModelError("unreadable base_score \(bs)")
        }
        // Locate the value in the raw text: "base_score" : "[ ... ]"
        let key = Array("\"base_score\"".utf8)
        var out = json
        var i = 0
        while i + key.count <= out.count {
            if out[i] == key[0] && Array(out[i..<(i + key.count)]) == key {
                var j = i + key.count
                while j < out.count && (out[j] == 0x20 || out[j] == 0x3A || out[j] == 0x0A || out[j] == 0x09) { j += 1 }
                guard j + 1 < out.count, out[j] == 0x22, out[j + 1] == 0x5B else { i += 1; continue }  // "[
                var k = j + 2
                while k < out.count && out[k] != 0x5D { k += 1 }                                      // ]
                guard k + 1 < out.count, out[k + 1] == 0x22 else { throw ModelError("malformed base_score") }
                out.remove(at: k)       // ]
                out.remove(at: j + 1)   // [
                return (out, true, v)
            }
            i += 1
        }
        throw ModelError("base_score not found in model text")
    }
}
