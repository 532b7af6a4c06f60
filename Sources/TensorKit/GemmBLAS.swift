#if BLAS
    import CBLAS
    import Foundation

    // MARK: - Optional system CBLAS (package trait BLAS, off by default)

    extension Gemm {
        /// `cblas_sgemm` (row-major) with `Gemm.reference`'s contract: beta 0 overwrites C, a product with
        /// k = 0 only scales C. OpenBLAS's own thread count follows `Gemm.threads`.
        static func blas(
            transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
        ) {
            if m <= 0 || n <= 0 { return }
            if k <= 0 || alpha == 0 { scaleC(m: m, n: n, beta: beta, c: c, ldc: ldc); return }
            BLASThreads.shared.apply(threads)
            cblas_sgemm(
                CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        }
    }

    /// Tells OpenBLAS how many threads to use when `Gemm.threads` changes.
    final class BLASThreads: @unchecked Sendable {
        static let shared = BLASThreads()
        private let lock = NSLock()
        private var current = -1
        func apply(_ n: Int) {
            lock.lock(); defer { lock.unlock() }
            if n != current { openblas_set_num_threads(Int32(n)); current = n }
        }
    }
#endif
