import Foundation

/// Rows of an embedding table `[vocab, d]` picked by token id: `[ids.count, d]`.
public func embeddingLookup(_ table: Tensor, ids: [Int]) -> Tensor {
    let d = table.cols
    var out = Tensor(zeros: [ids.count, d])
    for (r, id) in ids.enumerated() {
        precondition(id >= 0 && id < table.rows, "token id \(id) outside the table of \(table.rows) rows")
        for c in 0..<d { out.data[r * d + c] = table.data[id * d + c] }
    }
    return out
}

/// The paper's sinusoidal positional encoding, `[count, d]`, for positions `start ..< start + count`:
///
///     PE(pos, 2i)   = sin(pos / 10000^(2i/d))
///     PE(pos, 2i+1) = cos(pos / 10000^(2i/d))
///
/// `i` is the *pair* index: columns 2i and 2i+1 share one frequency. (Using the column index
/// in the exponent is a common by-hand mistake; `positionalEncodingExponent` names it.)
public func sinusoidalPositionalEncoding(count: Int, dModel d: Int, start: Int = 0, base: Double = 10000) -> Tensor {
    var out = Tensor(zeros: [count, d])
    for p in 0..<count {
        let pos = Double(start + p)
        for j in 0..<d {
            let angle = pos / Foundation.pow(base, positionalEncodingExponent(column: j, dModel: d))
            out.data[p * d + j] = Float(j % 2 == 0 ? Foundation.sin(angle) : Foundation.cos(angle))
        }
    }
    return out
}

/// The exponent `2i/d` for column `j` (pair index `i = j / 2`).
public func positionalEncodingExponent(column j: Int, dModel d: Int) -> Double {
    Double(2 * (j / 2)) / Double(d)
}
