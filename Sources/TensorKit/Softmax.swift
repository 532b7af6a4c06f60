import Foundation

/// Row-wise softmax, `exp(x - max) / Σ exp(x - max)`.
///
/// Subtracting the row maximum changes nothing mathematically but keeps `exp` from overflowing
/// (e^89 is already past Float's range). Masked entries are `-inf`, and `exp(-inf) = 0` exactly,
/// so future positions get weight exactly 0. A row masked entirely gives zeros, not NaN.
public func softmaxRows(_ x: Tensor) -> Tensor {
    var out = x
    let c = x.cols
    for r in 0..<x.rows {
        let row = x.data[(r * c)..<((r + 1) * c)]
        let m = row.max() ?? -.infinity
        if m == -.infinity {
            for j in 0..<c { out.data[r * c + j] = 0 }
            continue
        }
        let e = row.map { ($0 - m).exp }
        let inv = 1 / e.reduce(0, +)
        for j in 0..<c { out.data[r * c + j] = e[j] * inv }
    }
    return out
}

/// Row-wise log-softmax, computed the stable way (`x - max - log Σ exp(x - max)`).
public func logSoftmaxRows(_ x: Tensor) -> Tensor {
    var out = x
    let c = x.cols
    for r in 0..<x.rows {
        let row = x.data[(r * c)..<((r + 1) * c)]
        let m = row.max() ?? -.infinity
        let lse = m + row.reduce(Float(0)) { $0 + ($1 - m).exp }.log
        for j in 0..<c { out.data[r * c + j] = x.data[r * c + j] - lse }
    }
    return out
}

extension Kernels {
    /// The fast row softmax every attention kernel uses (training, prompt and generation), 8 lanes at
    /// a time with `FastMath.exp`; `softmaxRows` above is its reference.
    ///
    /// In place over one row of scores: keys at `visible..<count` and padded keys get weight exactly 0,
    /// the rest the softmax of their scores; all zeros if nothing is visible. `fused`: `FastMath.exp`'s fused
    /// form (inference; training keeps the form its PyTorch checks were made with).
    @inline(__always)
    public static func softmaxRow(_ row: FloatPtr, visible: Int, count: Int, padding: UnsafePointer<Bool>? = nil, fused: Bool = false) {
        if let padding { for j in 0..<visible where padding[j] { row[j] = -.infinity } }
        var m8 = SIMD8<Float>(repeating: -.infinity)
        var j = 0
        while j + 8 <= visible { m8 = max8(m8, load8(row + j)); j += 8 }
        var maxv = largestLane(m8)
        while j < visible { maxv = max(maxv, row[j]); j += 1 }
        if maxv == -.infinity { row.update(repeating: 0, count: count); return }
        var s8 = SIMD8<Float>.zero
        let m = SIMD8<Float>(repeating: maxv)
        j = 0
        while j + 8 <= visible {
            let e = FastMath.exp(load8(row + j) - m, fused: fused)
            store8(e, row + j); s8 += e; j += 8
        }
        var sum = s8.sum()
        while j < visible { let e = Foundation.exp(row[j] - maxv); row[j] = e; sum += e; j += 1 }
        if let padding { for j in 0..<visible where padding[j] { sum -= row[j]; row[j] = 0 } }
        let inv = SIMD8<Float>(repeating: 1 / sum)
        j = 0
        while j + 8 <= visible { store8(load8(row + j) * inv, row + j); j += 8 }
        while j < visible { row[j] *= inv[0]; j += 1 }
        if visible < count { (row + visible).update(repeating: 0, count: count - visible) }
    }
}

extension Float {
    // Computed in Double and rounded once: the reference path favours reproducibility across libms.
    @inlinable var exp: Float { Float(Foundation.exp(Double(self))) }
    @inlinable var log: Float { Float(Foundation.log(Double(self))) }
}

/// `(softmax(z) − onehot(y)) / n`: the gradient of the mean cross-entropy at the logits.
public func crossEntropyGradient(logits: Tensor, targets: [Int]) -> Tensor {
    var g = softmaxRows(logits)
    let n = Float(logits.rows)
    for r in 0..<g.rows {
        for c in 0..<g.cols { g[r, c] = (g[r, c] - (c == targets[r] ? 1 : 0)) / n }
    }
    return g
}
