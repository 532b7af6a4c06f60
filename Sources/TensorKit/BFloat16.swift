// MARK: - bfloat16 mixed precision (emulated)
//
// bfloat16 is the top half of a Float32: the same 8 exponent bits, 7 mantissa bits. Mixed-precision
// training multiplies bf16 inputs and accumulates in Float32 (`vdpbf16ps` does two such products per
// lane); the master weights, the optimizer's moments, the loss, the norms and the softmax stay Float32.
// This build has no bf16 kernel yet (`KernelSet.avx512bf16` is not in it), so `Gemm.precision = .bf16`
// rounds each product's inputs to bf16 and multiplies them in Float32: the numbers of bf16 training,
// exactly, but not its speed.

/// How `Gemm.multiply` treats its inputs.
public enum GemmPrecision: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Float32 inputs and arithmetic.
    case fp32
    /// Inputs rounded to bfloat16 (to nearest, ties to even), products and sums in Float32.
    case bf16

    public var description: String { rawValue }
}

extension Gemm {
    /// The precision of `multiply` (the linear layers and their gradients). Set once, before training, like
    /// `threads`. Attention's own products (`AttentionFast`) stay Float32.
    nonisolated(unsafe) public static var precision: GemmPrecision = .fp32

    /// `multiply` with both operands rounded to bfloat16 first (compact copies; `c` as given).
    static func multiplyBF16(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        // op(A) is m × k: stored m × k (or k × m when transposed) with stride lda; copied without the stride.
        let (aRows, aCols) = transA ? (k, m) : (m, k), (bRows, bCols) = transB ? (n, k) : (k, n)
        let ra = UnsafeMutablePointer<Float>.allocate(capacity: max(1, aRows * aCols))
        let rb = UnsafeMutablePointer<Float>.allocate(capacity: max(1, bRows * bCols))
        defer { ra.deallocate(); rb.deallocate() }
        for r in 0..<aRows { roundToBFloat16(a + r * lda, into: ra + r * aCols, count: aCols) }
        for r in 0..<bRows { roundToBFloat16(b + r * ldb, into: rb + r * bCols, count: bCols) }
        multiplyFloat32(
            transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: ra, lda: aCols, b: rb, ldb: bCols,
            beta: beta, c: c, ldc: ldc)
    }
}

/// `x` rounded to the nearest bfloat16 (ties to even), returned as a Float32. NaN stays NaN; values past
/// the largest bf16 round to infinity, as the conversion instructions do.
@inline(__always) public func roundToBFloat16(_ x: Float) -> Float {
    if x.isNaN { return x }
    let bits = x.bitPattern
    return Float(bitPattern: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000)
}

/// `count` values from `src` rounded to bfloat16 into `dst` (which may be `src`), 8 at a time.
public func roundToBFloat16(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    let half = SIMD8<UInt32>(repeating: 0x7FFF), one = SIMD8<UInt32>(repeating: 1), top = SIMD8<UInt32>(repeating: 0xFFFF_0000)
    while i + 8 <= count {
        let x = load8(src + i)
        let bits = unsafeBitCast(x, to: SIMD8<UInt32>.self)
        let r = unsafeBitCast((bits &+ half &+ ((bits &>> 16) & one)) & top, to: SIMD8<Float>.self)
        store8(x.replacing(with: r, where: x .== x), dst + i)  // NaN (x ≠ x) kept as it was
        i += 8
    }
    while i < count {
        dst[i] = roundToBFloat16(src[i])
        i += 1
    }
}
