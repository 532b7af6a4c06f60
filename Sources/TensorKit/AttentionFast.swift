import Foundation

// MARK: - Attention on the packed GEMM
//
// The reference kernels (`attentionForwardReference` / `attentionBackwardReference`) walk one query
// row at a time with scalar dot products; Swift does not vectorise those float reductions, so at
// T = 64, d_k = 32 attention took a third of a small GPT's training step although it is ~5% of its
// FLOPs. Here each (sequence, head) pair does its work as five small matrix products on the packed
// micro-kernel (one thread each; pairs run in parallel), reading Q, K, V in place through their
// strides, and the row softmax runs 8 lanes at a time. Same contract and results (to float
// rounding) as the reference; the tests hold one against the other.

extension Kernels {
    /// Scaled dot-product attention for `b` sequences × `heads` heads.
    ///
    /// Row `i` of query sequence `bi`, head `h` is `q[(bi·tq + i)·qStride + h·dk ..< +dk]`; keys and values
    /// likewise with `kvStride`. Writes `out` `[b·tq, heads·dk]` and the weights `att` `[b, heads, tq, tk]`
    /// (kept for the backward pass). Key `j` is hidden from query `i` when `causal && j > i` or
    /// `keyPadding[bi·tk + j]`; a row whose keys are all hidden gets zero weights and a zero output.
    public static func attentionForward(
        out: FloatPtr, weights att: FloatPtr, q: ConstFloatPtr, k: ConstFloatPtr, v: ConstFloatPtr,
        keyPadding: UnsafePointer<Bool>?, causal: Bool,
        batch b: Int, queries tq: Int, keys tk: Int, heads: Int, headSize dk: Int, qStride: Int, kvStride: Int
    ) {
        let scale = 1 / Float(dk).squareRoot()
        let outStride = heads * dk
        let o0 = SharedPointer(out), a0 = SharedPointer(att), q0 = SharedPointer(q), k0 = SharedPointer(k)
        let v0 = SharedPointer(v), p0 = keyPadding.map { SharedPointer($0) }
        parallelRanges(count: b * heads, costPerItem: 2 * tq * tk * dk) { pairs in
            let out = o0.pointer, att = a0.pointer
            let q = q0.readOnly, k = k0.readOnly, v = v0.readOnly
            let keyPadding = p0?.readOnly
            for pair in pairs {
                let bi = pair / heads, h = pair % heads
                let qh = q + bi * tq * qStride + h * dk, kh = k + bi * tk * kvStride + h * dk, vh = v + bi * tk * kvStride + h * dk
                let a = att + pair * tq * tk
                // S = scale · Q_h K_hᵀ   [tq, tk]
                Gemm.blockedAtPrecision(
                    transA: false, transB: true, m: tq, n: tk, k: dk, alpha: scale,
                    a: qh, lda: qStride, b: kh, ldb: kvStride, beta: 0, c: a, ldc: tk)
                for i in 0..<tq {
                    let visible = causal ? min(i + 1, tk) : tk
                    softmaxRow(a + i * tk, visible: visible, count: tk, padding: keyPadding.map { $0 + bi * tk })
                }
                // out_h = A V_h   [tq, dk]
                Gemm.blockedAtPrecision(
                    transA: false, transB: false, m: tq, n: dk, k: tk, alpha: 1,
                    a: a, lda: tk, b: vh, ldb: kvStride, beta: 0, c: out + bi * tq * outStride + h * dk, ldc: outStride)
            }
        }
    }

    /// Accumulates `dq`, `dk`, `dv` (same layouts and strides as `q`, `k`, `v`) from `dout` and the
    /// weights `att` the forward pass saved.
    public static func attentionBackward(
        dQ dq: FloatPtr, dK dk: FloatPtr, dV dv: FloatPtr, dOut dout: ConstFloatPtr,
        q: ConstFloatPtr, k: ConstFloatPtr, v: ConstFloatPtr, weights att: ConstFloatPtr,
        batch b: Int, queries tq: Int, keys tk: Int, heads: Int, headSize dHead: Int, qStride: Int, kvStride: Int
    ) {
        let scale = 1 / Float(dHead).squareRoot()
        let outStride = heads * dHead
        let dq0 = SharedPointer(dq), dk0 = SharedPointer(dk), dv0 = SharedPointer(dv), do0 = SharedPointer(dout)
        let q0 = SharedPointer(q), k0 = SharedPointer(k), v0 = SharedPointer(v), a0 = SharedPointer(att)
        parallelRanges(count: b * heads, costPerItem: 4 * tq * tk * dHead) { pairs in
            let dq = dq0.pointer, dk = dk0.pointer
            let dv = dv0.pointer, dout = do0.readOnly
            let q = q0.readOnly, k = k0.readOnly
            let v = v0.readOnly, att = a0.readOnly
            // dS [tq, tk] for one pair at a time, from the GEMM's pool of reusable buffers.
            let buffer = PackBuffers.acquire(floats: max(tq * tk, 16))
            defer { PackBuffers.release(buffer) }
            let ds = buffer.pointer
            for pair in pairs {
                let bi = pair / heads, h = pair % heads
                let qOff = bi * tq * qStride + h * dHead, kvOff = bi * tk * kvStride + h * dHead
                let oOff = bi * tq * outStride + h * dHead
                let a = att + pair * tq * tk
                // dA = dO_h V_hᵀ   [tq, tk]
                Gemm.blockedAtPrecision(
                    transA: false, transB: true, m: tq, n: tk, k: dHead, alpha: 1,
                    a: dout + oOff, lda: outStride, b: v + kvOff, ldb: kvStride, beta: 0, c: ds, ldc: tk)
                // dV_h += Aᵀ dO_h   [tk, dk]
                Gemm.blockedAtPrecision(
                    transA: true, transB: false, m: tk, n: dHead, k: tq, alpha: 1,
                    a: a, lda: tk, b: dout + oOff, ldb: outStride, beta: 1, c: dv + kvOff, ldc: kvStride)
                // Softmax backward: dS = A ⊙ (dA − rowsum(A ⊙ dA)), then the scale.
                for i in 0..<tq { softmaxBackwardRow(ds + i * tk, a + i * tk, count: tk, scale: scale) }
                // dQ_h += dS K_h   [tq, dk];   dK_h += dSᵀ Q_h   [tk, dk]
                Gemm.blockedAtPrecision(
                    transA: false, transB: false, m: tq, n: dHead, k: tk, alpha: 1,
                    a: ds, lda: tk, b: k + kvOff, ldb: kvStride, beta: 1, c: dq + qOff, ldc: qStride)
                Gemm.blockedAtPrecision(
                    transA: true, transB: false, m: tk, n: dHead, k: tq, alpha: 1,
                    a: ds, lda: tk, b: q + qOff, ldb: qStride, beta: 1, c: dk + kvOff, ldc: kvStride)
            }
        }
    }

    /// `g[j] ← scale · a[j] · (g[j] − Σ a·g)`: softmax backward for one row (g holds ∂L/∂a on entry).
    @inline(__always)
    static func softmaxBackwardRow(_ g: FloatPtr, _ a: ConstFloatPtr, count: Int, scale: Float) {
        var d8 = SIMD8<Float>.zero
        var j = 0
        while j + 8 <= count { d8 += load8(a + j) * load8(g + j); j += 8 }
        var dot = d8.sum()
        while j < count { dot += a[j] * g[j]; j += 1 }
        let dot8 = SIMD8<Float>(repeating: dot), s8 = SIMD8<Float>(repeating: scale)
        j = 0
        while j + 8 <= count { store8(s8 * load8(a + j) * (load8(g + j) - dot8), g + j); j += 8 }
        while j < count { g[j] = scale * a[j] * (g[j] - dot); j += 1 }
    }
}
