/// Matrix multiplication: the one place every matmul of the model goes through.
///
/// `C[m, n] = alpha · op(A)[m, k] · op(B)[k, n] + beta · C`, with `op(X)` either `X` or `Xᵀ`,
/// read from row-major storage with leading dimensions `lda`, `ldb`, `ldc` — the BLAS SGEMM contract,
/// so a faster kernel (or a system BLAS) can stand in behind the same call.
public enum Gemm {
    /// The plain triple loop, kept as the reference every faster kernel is tested against.
    /// The i-k-j order reads B and C row-wise when neither operand is transposed.
    public static func reference(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        for i in 0..<m {
            let ci = c + i * ldc
            if beta == 0 {
                for j in 0..<n { ci[j] = 0 }
            } else if beta != 1 {
                for j in 0..<n { ci[j] *= beta }
            }
            for p in 0..<k {
                let aip = alpha * (transA ? a[p * lda + i] : a[i * lda + p])
                if aip == 0 { continue }
                if transB {
                    for j in 0..<n { ci[j] += aip * b[j * ldb + p] }
                } else {
                    let bp = b + p * ldb
                    for j in 0..<n { ci[j] += aip * bp[j] }
                }
            }
        }
    }
}

extension Gemm {
    /// The entry point the layers call: the packed, blocked kernel in GemmFast.swift (which itself
    /// falls back to `reference` for tiny products) — or, when the package is built with the trait
    /// `BLAS`, the system's `cblas_sgemm` (OpenBLAS) with the same contract.
    /// With `precision` bf16, both inputs are first rounded to bfloat16 (BFloat16.swift).
    @inline(__always)
    public static func multiply(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if precision == .bf16 {
            multiplyBF16(
                transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c,
                ldc: ldc)
            return
        }
        multiplyFloat32(
            transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }

    @inline(__always)
    static func multiplyFloat32(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        #if BLAS
            blas(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        #else
            fast(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        #endif
    }

    /// Which implementation `multiply` uses in this build.
    public static var backend: String {
        #if BLAS
            return "system CBLAS (trait BLAS)"
        #else
            return "built-in packed SIMD GEMM"
        #endif
    }
}

/// `op(a) · op(b)` for matrices (the last dimension is the column count).
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
    let (ar, ac) = (a.rows, a.cols), (br, bc) = (b.rows, b.cols)
    let m = transposeA ? ac : ar, k = transposeA ? ar : ac
    let kb = transposeB ? bc : br, n = transposeB ? br : bc
    precondition(k == kb, "matmul: inner dimensions differ (\(m)×\(k) · \(kb)×\(n))")
    var out = Tensor(zeros: [m, n])
    if m == 0 || n == 0 || k == 0 { return out }
    a.data.withUnsafeBufferPointer { pa in
        b.data.withUnsafeBufferPointer { pb in
            out.data.withUnsafeMutableBufferPointer { pc in
                Gemm.reference(
                    transA: transposeA, transB: transposeB, m: m, n: n, k: k,
                    a: pa.baseAddress!, lda: ac, b: pb.baseAddress!, ldb: bc,
                    c: pc.baseAddress!, ldc: n)
            }
        }
    }
    return out
}

public func transpose(_ a: Tensor) -> Tensor {
    var out = Tensor(zeros: [a.cols, a.rows])
    for r in 0..<a.rows { for c in 0..<a.cols { out.data[c * a.rows + r] = a.data[r * a.cols + c] } }
    return out
}
