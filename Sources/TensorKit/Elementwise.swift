import Foundation

/// Elementwise sum of two tensors of the same shape (the residual connection).
public func add(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.shape == b.shape, "add: shapes \(a.shape) and \(b.shape) differ")
    return Tensor(shape: a.shape, data: zip(a.data, b.data).map { $0 + $1 })
}

/// Adds a bias vector `[cols]` to every row.
public func addBias(_ x: Tensor, _ bias: Tensor) -> Tensor {
    precondition(bias.count == x.cols, "bias has \(bias.count) values for \(x.cols) columns")
    var out = x
    let c = x.cols
    for i in 0..<out.count { out.data[i] += bias.data[i % c] }
    return out
}

public func scale(_ x: Tensor, _ factor: Float) -> Tensor {
    Tensor(shape: x.shape, data: x.data.map { $0 * factor })
}

/// Each value rounded to `decimals` places, half away from zero, in Double so that 0.125 rounds as
/// written; ±∞ stays.
public func roundValues(_ x: Tensor, decimals: Int) -> Tensor {
    let f = pow(10, Double(decimals))
    return Tensor(shape: x.shape, data: x.data.map { $0.isFinite ? Float((Double($0) * f).rounded() / f) : $0 })
}

public func relu(_ x: Tensor) -> Tensor {
    Tensor(shape: x.shape, data: x.data.map { max($0, 0) })
}

/// The two GELU forms in use: the exact one, `x·Φ(x)` (BERT, PyTorch's default), and the tanh
/// approximation (GPT-2).
public enum GELUForm: String, Codable, Sendable, CaseIterable {
    case erf, tanh
}

public func gelu(_ x: Float, form: GELUForm = .erf) -> Float {
    switch form {
    case .erf:
        return 0.5 * x * (1 + Float(Foundation.erf(Double(x) / 2.0.squareRoot())))
    case .tanh:
        let c = Float((2.0 / Double.pi).squareRoot())
        return 0.5 * x * (1 + Foundation.tanh(c * (x + 0.044715 * x * x * x)))
    }
}

public func gelu(_ x: Tensor, form: GELUForm = .erf) -> Tensor {
    Tensor(shape: x.shape, data: x.data.map { gelu($0, form: form) })
}

/// `x · W + b`, with `W` stored `[in, out]` as the by-hand articles write it.
public func linear(_ x: Tensor, _ w: Tensor, _ b: Tensor? = nil) -> Tensor {
    let y = matmul(x, w)
    if let b { return addBias(y, b) }
    return y
}

/// Columns `[start, start + width)` of a matrix: one head's slice of Q, K or V.
public func sliceColumns(_ x: Tensor, start: Int, width: Int) -> Tensor {
    precondition(start >= 0 && start + width <= x.cols, "column slice out of range")
    var out = Tensor(zeros: [x.rows, width])
    for r in 0..<x.rows {
        for c in 0..<width { out.data[r * width + c] = x.data[r * x.cols + start + c] }
    }
    return out
}

/// Matrices with equal row counts side by side: the concatenation of the heads.
public func concatColumns(_ parts: [Tensor]) -> Tensor {
    let rows = parts.first?.rows ?? 0
    precondition(parts.allSatisfy { $0.rows == rows }, "concat: row counts differ")
    let cols = parts.reduce(0) { $0 + $1.cols }
    var out = Tensor(zeros: [rows, cols])
    var offset = 0
    for p in parts {
        for r in 0..<rows {
            for c in 0..<p.cols { out.data[r * cols + offset + c] = p.data[r * p.cols + c] }
        }
        offset += p.cols
    }
    return out
}
