import Foundation

// MARK: - One-row products (generation)
//
// Generating a token multiplies one row vector by every weight matrix: the work is reading the
// weights once, so packing them (as the blocked GEMM does) would only add traffic. Two forms:
//   x · B   (B row-major [k, n], GPT-2's Conv1D layout): axpy form, 64 output columns held in eight
//           SIMD8 accumulators while the rows of B stream past;
//   x · Bᵀ  (B [n, k], e.g. logits against the token embedding): dot form, four rows of B at a time.
// Columns (or rows of B) are split across threads when there is enough to read.

extension Gemm {
    /// `c[0..<n] = alpha · a · op(B) + beta · c` for the single row `a` (`a[i·aStride]`, i < k).
    static func gemvRow(
        transB: Bool, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, aStride: Int,
        b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>
    ) {
        // Gather a strided row once (a transposed A); contiguous rows are read in place.
        withUnsafeTemporaryAllocation(of: Float.self, capacity: aStride == 1 ? 1 : k) { tmp in
            var x = a
            if aStride != 1 {
                for i in 0..<k { tmp[i] = a[i * aStride] }
                x = UnsafePointer(tmp.baseAddress!)
            }
            let xa = SharedPointer(x), ba = SharedPointer(b), ca = SharedPointer(c)
            if transB {
                parallelRanges(count: (n + 3) / 4, costPerItem: 4 * k) { quads in
                    let lo = quads.lowerBound * 4, hi = min(n, quads.upperBound * 4)
                    dotRows(
                        lo..<hi, k: k, alpha: alpha, x: xa.readOnly, b: ba.readOnly, ldb: ldb,
                        beta: beta, c: ca.pointer)
                }
            } else {
                parallelRanges(count: (n + 63) / 64, costPerItem: 64 * k) { chunks in
                    let lo = chunks.lowerBound * 64, hi = min(n, chunks.upperBound * 64)
                    axpyColumns(
                        lo..<hi, k: k, alpha: alpha, x: xa.readOnly, b: ba.readOnly, ldb: ldb,
                        beta: beta, c: ca.pointer)
                }
            }
        }
    }

    @inline(__always)
    static func finish(_ acc: Float, alpha: Float, beta: Float, _ c: UnsafeMutablePointer<Float>) {
        c.pointee = beta == 0 ? alpha * acc : alpha * acc + beta * c.pointee
    }

    @inline(__always)
    static func finish(_ acc: SIMD8<Float>, alpha: Float, beta: Float, _ c: UnsafeMutablePointer<Float>) {
        store8(beta == 0 ? alpha * acc : alpha * acc + beta * load8(c), c)
    }

    /// c[j] for j in `cols` = x · B[:, j], B row-major with row stride `ldb`.
    static func axpyColumns(
        _ cols: Range<Int>, k: Int, alpha: Float, x: UnsafePointer<Float>, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>
    ) {
        var j = cols.lowerBound
        while j + 64 <= cols.upperBound {
            var a0 = SIMD8<Float>.zero, a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0
            var row = b + j
            for i in 0..<k {
                let xi = SIMD8<Float>(repeating: x[i])
                a0 += xi * load8(row); a1 += xi * load8(row + 8); a2 += xi * load8(row + 16); a3 += xi * load8(row + 24)
                a4 += xi * load8(row + 32); a5 += xi * load8(row + 40); a6 += xi * load8(row + 48); a7 += xi * load8(row + 56)
                row += ldb
            }
            let cj = c + j
            finish(a0, alpha: alpha, beta: beta, cj); finish(a1, alpha: alpha, beta: beta, cj + 8)
            finish(a2, alpha: alpha, beta: beta, cj + 16); finish(a3, alpha: alpha, beta: beta, cj + 24)
            finish(a4, alpha: alpha, beta: beta, cj + 32); finish(a5, alpha: alpha, beta: beta, cj + 40)
            finish(a6, alpha: alpha, beta: beta, cj + 48); finish(a7, alpha: alpha, beta: beta, cj + 56)
            j += 64
        }
        while j + 8 <= cols.upperBound {
            var acc = SIMD8<Float>.zero
            var row = b + j
            for i in 0..<k { acc += SIMD8<Float>(repeating: x[i]) * load8(row); row += ldb }
            finish(acc, alpha: alpha, beta: beta, c + j)
            j += 8
        }
        while j < cols.upperBound {
            var acc: Float = 0
            for i in 0..<k { acc += x[i] * b[i * ldb + j] }
            finish(acc, alpha: alpha, beta: beta, c + j)
            j += 1
        }
    }

    /// c[j] for j in `rows` = x · B[j, :], B row-major with row stride `ldb`.
    static func dotRows(
        _ rows: Range<Int>, k: Int, alpha: Float, x: UnsafePointer<Float>, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>
    ) {
        let k8 = k & ~7
        var j = rows.lowerBound
        while j < rows.upperBound {
            let r = min(4, rows.upperBound - j)
            let b0 = b + j * ldb, b1 = r > 1 ? b0 + ldb : b0, b2 = r > 2 ? b0 + 2 * ldb : b0, b3 = r > 3 ? b0 + 3 * ldb : b0
            var s0 = SIMD8<Float>.zero, s1 = s0, s2 = s0, s3 = s0
            var i = 0
            while i < k8 {
                let xv = load8(x + i)
                s0 += xv * load8(b0 + i); s1 += xv * load8(b1 + i); s2 += xv * load8(b2 + i); s3 += xv * load8(b3 + i)
                i += 8
            }
            var t0 = s0.sum(), t1 = s1.sum(), t2 = s2.sum(), t3 = s3.sum()
            while i < k { t0 += x[i] * b0[i]; t1 += x[i] * b1[i]; t2 += x[i] * b2[i]; t3 += x[i] * b3[i]; i += 1 }
            finish(t0, alpha: alpha, beta: beta, c + j)
            if r > 1 { finish(t1, alpha: alpha, beta: beta, c + j + 1) }
            if r > 2 { finish(t2, alpha: alpha, beta: beta, c + j + 2) }
            if r > 3 { finish(t3, alpha: alpha, beta: beta, c + j + 3) }
            j += r
        }
    }
}
