import Foundation

/// The result of a layer norm together with the per-row statistics it used,
/// so that a trace (or a backward pass) can show and reuse them.
public struct LayerNormResult: Sendable {
    public var output: Tensor
    /// Row means `[rows]`.
    public var mean: [Float]
    /// Row standard deviations `[rows]`, population form `sqrt(Σ(x-μ)²/N)` (what the paper's
    /// layer norm and PyTorch use; not the sample form with N-1).
    public var std: [Float]
    /// `1 / sqrt(variance + eps)` per row, the factor actually applied.
    public var rstd: [Float]
}

/// `y = (x - μ) / sqrt(σ² + eps) · γ + β`, per row.
public func layerNorm(_ x: Tensor, gamma: Tensor? = nil, beta: Tensor? = nil, eps: Float = 1e-5) -> LayerNormResult {
    let c = x.cols
    var out = x
    var means = [Float](repeating: 0, count: x.rows)
    var stds = means, rstds = means
    for r in 0..<x.rows {
        let base = r * c
        // Accumulate in Double: a by-hand reader compares against exact arithmetic.
        var s = 0.0
        for j in 0..<c { s += Double(x.data[base + j]) }
        let mu = s / Double(c)
        var v = 0.0
        for j in 0..<c { let d = Double(x.data[base + j]) - mu; v += d * d }
        v /= Double(c)
        let rstd = 1 / (v + Double(eps)).squareRoot()
        means[r] = Float(mu); stds[r] = Float(v.squareRoot()); rstds[r] = Float(rstd)
        for j in 0..<c {
            var y = Float((Double(x.data[base + j]) - mu) * rstd)
            if let gamma { y *= gamma.data[j] }
            if let beta { y += beta.data[j] }
            out.data[base + j] = y
        }
    }
    return LayerNormResult(output: out, mean: means, std: stds, rstd: rstds)
}
