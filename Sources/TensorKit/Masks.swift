/// Attention masks as 0/1 matrices `[queries, keys]`: 1 where a query may look, 0 where it may not.

/// Causal (look-ahead) mask: query `i` sees keys `0...i` only, so the decoder cannot peek at the future.
public func causalMask(_ n: Int) -> Tensor {
    var m = Tensor(zeros: [n, n])
    for i in 0..<n { for j in 0...i { m.data[i * n + j] = 1 } }
    return m
}

/// Padding mask: every query may look at every real key, none at a padding key.
public func paddingMask(queries: Int, keyIsPadding: [Bool]) -> Tensor {
    let k = keyIsPadding.count
    var m = Tensor(zeros: [queries, k])
    for i in 0..<queries { for j in 0..<k where !keyIsPadding[j] { m.data[i * k + j] = 1 } }
    return m
}

/// Sets blocked scores to `-inf` *before* the softmax, so their weights become exactly 0 and the
/// remaining weights still sum to 1. (Zeroing weights after the softmax breaks that sum.)
public func applyMask(_ scores: Tensor, _ mask: Tensor) -> Tensor {
    precondition(scores.shape == mask.shape, "mask \(mask.shape) does not fit scores \(scores.shape)")
    var out = scores
    for i in 0..<out.count where mask.data[i] == 0 { out.data[i] = -.infinity }
    return out
}
