import Foundation

/// A regression tree ensemble read from an XGBoost JSON model, evaluated in Swift the way XGBoost's CPU
/// predictor does (float32 features and thresholds, `x < threshold` goes left, missing (NaN) follows
/// `default_left`, float32 sum base_score + tree 0 + tree 1 + ...), so predictions equal XGBoost's bit
/// for bit (tested). This is the per-bar hot path: no allocation, no C calls, ~ a few ns per tree.
///
/// Supported: `reg:squarederror` (identity link), numerical splits, one output. Anything else makes
/// `init` throw, and callers fall back to `Booster.predict(row:)`.
public final class TreeEnsemble {
    public let baseScore: Float
    public let numFeatures: Int
    public let numTrees: Int
    /// Feature names stored in the model JSON (empty if it has none).
    public let featureNames: [String]
    // Flattened nodes of all trees (child indices are absolute; -1 = leaf).
    private let left: [Int32]
    private let right: [Int32]
    private let feature: [Int32]
    private let threshold: [Float]   // split condition, or leaf value for leaves
    private let defaultLeft: [Bool]
    private let roots: [Int32]
    private let scratch: UnsafeMutablePointer<Float>

    /// `json`: XGBoost JSON model text (1.x or 2.x/3.x; a bracketed base_score is accepted).
    public init(json: [UInt8]) throws {
        guard let obj = try JSONSerialization.jsonObject(with: Data(json)) as? [String: Any],
              let learner = obj["learner"] as? [String: Any],
              let lmp = learner["learner_model_param"] as? [String: Any],
              let gb = learner["gradient_booster"] as? [String: Any] else {
            throw ModelError("not an XGBoost JSON model")
        }
        if let objName = (learner["objective"] as? [String: Any])?["name"] as? String, objName != "reg:squarederror" {
            throw ModelError("TreeEnsemble supports reg:squarederror only (model: \(objName))")
        }
        let nTarget = Int(lmp["num_target"] as? String ?? "1") ?? 1
        let nClass = Int(lmp["num_class"] as? String ?? "0") ?? 0
        guard nTarget <= 1, nClass <= 1 else { throw ModelError("TreeEnsemble: multi-output models are not supported") }
        var bsText = (lmp["base_score"] as? String) ?? "0.5"
        if bsText.hasPrefix("[") { bsText = String(bsText.dropFirst().dropLast()) }
        guard let bs = Float(bsText.trimmingCharacters(in: .whitespaces)) else { throw ModelError("bad base_score \(bsText)") }
        baseScore = bs
        numFeatures = Int(lmp["num_feature"] as? String ?? "0") ?? 0
        guard (gb["name"] as? String) == "gbtree", let model = gb["model"] as? [String: Any],
              let trees = model["trees"] as? [[String: Any]] else {
            throw ModelError("TreeEnsemble supports the gbtree booster only")
        }
        func nums(_ t: [String: Any], _ k: String) throws -> [NSNumber] {
            guard let a = t[k] as? [Any] else { throw ModelError("tree without \(k)") }
            return a.map { ($0 as? NSNumber) ?? NSNumber(value: 0) }
        }
        var l: [Int32] = [], r: [Int32] = [], f: [Int32] = [], th: [Float] = [], dl: [Bool] = [], roots: [Int32] = []
        for t in trees {
            let lc = try nums(t, "left_children"), rc = try nums(t, "right_children")
            let si = try nums(t, "split_indices"), sc = try nums(t, "split_conditions"), d = try nums(t, "default_left")
            if let st = t["split_type"] as? [Any], st.contains(where: { (($0 as? NSNumber)?.intValue ?? 0) != 0 }) {
                throw ModelError("TreeEnsemble: categorical splits are not supported")
            }
            guard lc.count == rc.count, lc.count == si.count, lc.count == sc.count, lc.count == d.count, !lc.isEmpty else {
                throw ModelError("malformed tree arrays")
            }
            let off = Int32(l.count)
            roots.append(off)
            for i in 0..<lc.count {
                let li = lc[i].int32Value, ri = rc[i].int32Value
                l.append(li < 0 ? -1 : li + off); r.append(ri < 0 ? -1 : ri + off)
                let fi = si[i].int32Value
                if li >= 0 && (fi < 0 || Int(fi) >= max(numFeatures, 1)) { throw ModelError("split on feature \(fi) out of range") }
                f.append(fi); th.append(sc[i].floatValue); dl.append(d[i].intValue != 0)
            }
        }
        left = l; right = r; feature = f; threshold = th; defaultLeft = dl; self.roots = roots
        numTrees = trees.count
        featureNames = (learner["feature_names"] as? [String]) ?? []
        scratch = .allocate(capacity: max(numFeatures, 1))
    }

    deinit { scratch.deallocate() }

    public convenience init(path: String) throws {
        guard let d = FileManager.default.contents(atPath: path) else { throw ModelError("cannot read model file \(path)") }
        try self.init(json: [UInt8](d))
    }

    /// The prediction for one row (NaN = missing). `row.count` must be `numFeatures`.
    @inline(__always)
    public func predict(row: UnsafeBufferPointer<Double>) -> Double {
        precondition(row.count == numFeatures)
        for i in 0..<numFeatures { scratch[i] = Float(row[i]) }
        var acc = baseScore
        left.withUnsafeBufferPointer { L in
        right.withUnsafeBufferPointer { R in
        feature.withUnsafeBufferPointer { F in
        threshold.withUnsafeBufferPointer { T in
        defaultLeft.withUnsafeBufferPointer { D in
            for root in roots {
                var n = Int(root)
                while L[n] >= 0 {
                    let x = scratch[Int(F[n])]
                    n = Int(x.isNaN ? (D[n] ? L[n] : R[n]) : (x < T[n] ? L[n] : R[n]))
                }
                acc += T[n]
            }
        }}}}}
        return Double(acc)
    }

    public func predict(row: [Double]) -> Double { row.withUnsafeBufferPointer { predict(row: $0) } }
}
