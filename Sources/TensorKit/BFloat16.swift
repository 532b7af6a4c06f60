import CKernels

// MARK: - bfloat16 mixed precision
//
// bfloat16 is the top half of a Float32: the same 8 exponent bits, 7 mantissa bits. Mixed-precision
// training multiplies bf16 inputs and accumulates in Float32 (`vdpbf16ps` does two such products per
// lane); the master weights, the optimizer's moments, the loss, the norms and the softmax stay Float32.
// With the `avx512-bf16` kernel set, `Gemm.precision = .bf16` runs CKernels' bf16 GEMM (operands
// rounded while packed). Elsewhere it is emulated: each product's inputs are rounded to bf16 and
// multiplied in Float32 — the numbers of bf16 training (but for subnormals, which the instructions
// flush to zero, and attention's products, which the emulation leaves in Float32), not its speed.

/// How `Gemm.multiply` treats its inputs.
public enum GemmPrecision: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Float32 inputs and arithmetic.
    case fp32
    /// Inputs rounded to bfloat16 (to nearest, ties to even), products and sums in Float32.
    case bf16

    public var description: String { rawValue }
}

extension GemmPrecision {
    /// Whether bf16 products run on a bf16 kernel with `kernels`, and a phrase saying how (and, when emulated, why).
    public static func bf16Implementation(kernels: KernelSet = .active) -> (native: Bool, note: String) {
        if kernels.hasBF16 { return (true, "on the \(kernels) kernel (vdpbf16ps: two bf16 products per Float32 lane)") }
        let why =
            KernelSet.supported().contains(where: \.hasBF16)
            ? "TRANSFORMER_KERNELS=\(kernels) has no bf16 kernel"
            : CPUFeatureSet.current.contains(.avx512bf16) ? "this build has no bf16 kernel" : "this CPU has no AVX-512 BF16"
        return (false, "emulated (\(why)): inputs rounded to bfloat16, products and sums in Float32 — bf16's numbers, not its speed")
    }
}

extension Gemm {
    /// The precision of `multiply` (the linear layers and their gradients). Set once, before training, like
    /// `threads`. Attention's own products (`AttentionFast`) go bf16 only on the bf16 kernel: emulated, they stay Float32.
    nonisolated(unsafe) public static var precision: GemmPrecision = .fp32

    /// `multiply` with both operands rounded to bfloat16: the bf16 kernel when `kernels` has one, else emulated.
    static func multiplyBF16(
        kernels: KernelSet = .active, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if !kernels.hasBF16 {
            multiplyBF16Emulated(
                transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta,
                c: c, ldc: ldc)
        } else if m > 0 && n > 0 {
            if k <= 0 || alpha == 0 {
                scaleC(m: m, n: n, beta: beta, c: c, ldc: ldc)
                return
            }
            split(
                bf16: true, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                beta: beta, c: c, ldc: ldc)
        }
    }

    /// One thread's product at `precision` where there is a bf16 kernel (attention's products, which
    /// `precision` otherwise leaves in Float32: emulating them would cost a copy per head).
    @inline(__always)
    static func blockedAtPrecision(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if precision == .bf16 && KernelSet.active.hasBF16 {
            blockedBF16(
                transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c,
                ldc: ldc)
        } else {
            blocked(
                transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c,
                ldc: ldc)
        }
    }

    /// One thread's bf16 product (AVX-512 BF16; callers check `KernelSet.hasBF16`).
    static func blockedBF16(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        let bytes = tk_gemm_bf16_workspace(m, n, k)
        let buffer = PackBuffers.acquire(floats: (bytes + 3) / 4)
        defer { PackBuffers.release(buffer) }
        tk_gemm_bf16(
            transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, UnsafeMutableRawPointer(buffer.pointer))
    }

    /// `multiply` with both operands rounded to bfloat16 first (compact copies; `c` as given).
    static func multiplyBF16Emulated(
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
