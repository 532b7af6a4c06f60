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
        let base = r * c
        var m = -Float.infinity
        for j in 0..<c { m = max(m, x.data[base + j]) }
        if m == -.infinity {
            for j in 0..<c { out.data[base + j] = 0 }
            continue
        }
        var sum: Float = 0
        for j in 0..<c {
            let e = (x.data[base + j] - m).exp
            out.data[base + j] = e
            sum += e
        }
        let inv = 1 / sum
        for j in 0..<c { out.data[base + j] *= inv }
    }
    return out
}

/// Row-wise log-softmax, computed the stable way (`x - max - log Σ exp(x - max)`).
public func logSoftmaxRows(_ x: Tensor) -> Tensor {
    var out = x
    let c = x.cols
    for r in 0..<x.rows {
        let base = r * c
        var m = -Float.infinity
        for j in 0..<c { m = max(m, x.data[base + j]) }
        var sum: Float = 0
        for j in 0..<c { sum += (x.data[base + j] - m).exp }
        let lse = m + sum.log
        for j in 0..<c { out.data[base + j] = x.data[base + j] - lse }
    }
    return out
}

extension Float {
    // Computed in Double and rounded once: the reference path favours reproducibility across libms.
    @inlinable var exp: Float { Float(Foundation.exp(Double(self))) }
    @inlinable var log: Float { Float(Foundation.log(Double(self))) }
}
