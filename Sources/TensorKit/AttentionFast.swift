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
    public static func attentionForward(_ out: FloatPtr, _ att: FloatPtr, _ q: ConstFloatPtr, _ k: ConstFloatPtr, _ v: ConstFloatPtr,
                                        keyPadding: UnsafePointer<Bool>?, causal: Bool,
                                        b: Int, tq: Int, tk: Int, heads: Int, dk: Int, qStride: Int, kvStride: Int) {
        let scale = 1 / Float(dk).squareRoot()
        let outStride = heads * dk
        let o0 = UInt(bitPattern: out), a0 = UInt(bitPattern: att), q0 = UInt(bitPattern: q), k0 = UInt(bitPattern: k)
        let v0 = UInt(bitPattern: v), p0 = UInt(bitPattern: keyPadding)
        parallelRanges(count: b * heads, costPerItem: 2 * tq * tk * dk) { pairs in
            let out = UnsafeMutablePointer<Float>(bitPattern: o0)!, att = UnsafeMutablePointer<Float>(bitPattern: a0)!
            let q = UnsafePointer<Float>(bitPattern: q0)!, k = UnsafePointer<Float>(bitPattern: k0)!, v = UnsafePointer<Float>(bitPattern: v0)!
            let keyPadding = UnsafePointer<Bool>(bitPattern: p0)
            for pair in pairs {
                let bi = pair / heads, h = pair % heads
                let qh = q + bi * tq * qStride + h * dk, kh = k + bi * tk * kvStride + h * dk, vh = v + bi * tk * kvStride + h * dk
                let a = att + pair * tq * tk
                // S = scale · Q_h K_hᵀ   [tq, tk]
                Gemm.blocked(transA: false, transB: true, m: tq, n: tk, k: dk, alpha: scale,
                             a: qh, lda: qStride, b: kh, ldb: kvStride, beta: 0, c: a, ldc: tk)
                for i in 0..<tq {
                    let visible = causal ? min(i + 1, tk) : tk
                    maskedSoftmaxRow(a + i * tk, visible: visible, count: tk, padding: keyPadding.map { $0 + bi * tk })
                }
                // out_h = A V_h   [tq, dk]
                Gemm.blocked(transA: false, transB: false, m: tq, n: dk, k: tk, alpha: 1,
                             a: a, lda: tk, b: vh, ldb: kvStride, beta: 0, c: out + bi * tq * outStride + h * dk, ldc: outStride)
            }
        }
    }

    /// Accumulates `dq`, `dk`, `dv` (same layouts and strides as `q`, `k`, `v`) from `dout` and the
    /// weights `att` the forward pass saved.
    public static func attentionBackward(_ dq: FloatPtr, _ dk: FloatPtr, _ dv: FloatPtr, _ dout: ConstFloatPtr,
                                         _ q: ConstFloatPtr, _ k: ConstFloatPtr, _ v: ConstFloatPtr, _ att: ConstFloatPtr,
                                         b: Int, tq: Int, tk: Int, heads: Int, dk dHead: Int, qStride: Int, kvStride: Int) {
        let scale = 1 / Float(dHead).squareRoot()
        let outStride = heads * dHead
        let dq0 = UInt(bitPattern: dq), dk0 = UInt(bitPattern: dk), dv0 = UInt(bitPattern: dv), do0 = UInt(bitPattern: dout)
        let q0 = UInt(bitPattern: q), k0 = UInt(bitPattern: k), v0 = UInt(bitPattern: v), a0 = UInt(bitPattern: att)
        parallelRanges(count: b * heads, costPerItem: 4 * tq * tk * dHead) { pairs in
            let dq = UnsafeMutablePointer<Float>(bitPattern: dq0)!, dk = UnsafeMutablePointer<Float>(bitPattern: dk0)!
            let dv = UnsafeMutablePointer<Float>(bitPattern: dv0)!, dout = UnsafePointer<Float>(bitPattern: do0)!
            let q = UnsafePointer<Float>(bitPattern: q0)!, k = UnsafePointer<Float>(bitPattern: k0)!
            let v = UnsafePointer<Float>(bitPattern: v0)!, att = UnsafePointer<Float>(bitPattern: a0)!
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
                Gemm.blocked(transA: false, transB: true, m: tq, n: tk, k: dHead, alpha: 1,
                             a: dout + oOff, lda: outStride, b: v + kvOff, ldb: kvStride, beta: 0, c: ds, ldc: tk)
                // dV_h += Aᵀ dO_h   [tk, dk]
                Gemm.blocked(transA: true, transB: false, m: tk, n: dHead, k: tq, alpha: 1,
                             a: a, lda: tk, b: dout + oOff, ldb: outStride, beta: 1, c: dv + kvOff, ldc: kvStride)
                // Softmax backward: dS = A ⊙ (dA − rowsum(A ⊙ dA)), then the scale.
                for i in 0..<tq { softmaxBackwardRow(ds + i * tk, a + i * tk, count: tk, scale: scale) }
                // dQ_h += dS K_h   [tq, dk];   dK_h += dSᵀ Q_h   [tk, dk]
                Gemm.blocked(transA: false, transB: false, m: tq, n: dHead, k: tk, alpha: 1,
                             a: ds, lda: tk, b: k + kvOff, ldb: kvStride, beta: 1, c: dq + qOff, ldc: qStride)
                Gemm.blocked(transA: true, transB: false, m: tk, n: dHead, k: tq, alpha: 1,
                             a: ds, lda: tk, b: q + qOff, ldb: qStride, beta: 1, c: dk + kvOff, ldc: kvStride)
            }
        }
    }

    /// In place over one row of scores: keys at `visible..<count` and padded keys get weight exactly 0,
    /// the rest the softmax of their scores; all zeros if nothing is visible.
    @inline(__always)
    static func maskedSoftmaxRow(_ row: FloatPtr, visible: Int, count: Int, padding: UnsafePointer<Bool>?) {
        if let padding { for j in 0..<visible where padding[j] { row[j] = -.infinity } }
        var m8 = SIMD8<Float>(repeating: -.infinity)
        var j = 0
        while j + 8 <= visible { m8 = pointwiseMax(m8, Gemm.load8(row + j)); j += 8 }
        var maxv = m8.max()
        while j < visible { maxv = max(maxv, row[j]); j += 1 }
        if maxv == -.infinity { row.update(repeating: 0, count: count); return }
        var s8 = SIMD8<Float>.zero
        let m = SIMD8<Float>(repeating: maxv)
        j = 0
        while j + 8 <= visible {
            let e = FastMath.exp(Gemm.load8(row + j) - m)
            Gemm.store8(e, row + j); s8 += e; j += 8
        }
        var sum = s8.sum()
        while j < visible { let e = Foundation.exp(row[j] - maxv); row[j] = e; sum += e; j += 1 }
        if let padding { for j in 0..<visible where padding[j] { sum -= row[j]; row[j] = 0 } }
        let inv = SIMD8<Float>(repeating: 1 / sum)
        j = 0
        while j + 8 <= visible { Gemm.store8(Gemm.load8(row + j) * inv, row + j); j += 8 }
        while j < visible { row[j] *= inv[0]; j += 1 }
        if visible < count { (row + visible).update(repeating: 0, count: count - visible) }
    }

    /// `g[j] ← scale · a[j] · (g[j] − Σ a·g)`: softmax backward for one row (g holds ∂L/∂a on entry).
    @inline(__always)
    static func softmaxBackwardRow(_ g: FloatPtr, _ a: ConstFloatPtr, count: Int, scale: Float) {
        var d8 = SIMD8<Float>.zero
        var j = 0
        while j + 8 <= count { d8 += Gemm.load8(a + j) * Gemm.load8(g + j); j += 8 }
        var dot = d8.sum()
        while j < count { dot += a[j] * g[j]; j += 1 }
        let dot8 = SIMD8<Float>(repeating: dot), s8 = SIMD8<Float>(repeating: scale)
        j = 0
        while j + 8 <= count { Gemm.store8(s8 * Gemm.load8(a + j) * (Gemm.load8(g + j) - dot8), g + j); j += 8 }
        while j < count { g[j] = scale * a[j] * (g[j] - dot); j += 1 }
    }
}

extension Kernels {
    /// One query row against `length` cached keys and values, for every head (token-by-token
    /// generation with a KV cache). `q` and `out` are `[heads·dk]`; key/value `j` of head `h` is at
    /// `kCache[j·stride + h·dk]`. `scratch` holds `heads·length` floats (the weights, kept for
    /// inspection). Heads are split across threads when the cache is long enough to pay for it.
    public static func attendCached(_ out: FloatPtr, _ q: ConstFloatPtr, kCache: ConstFloatPtr, vCache: ConstFloatPtr, scratch: FloatPtr,
                                    length: Int, heads: Int, dk: Int, stride: Int) {
        let scale = 1 / Float(dk).squareRoot()
        let a = (UInt(bitPattern: out), UInt(bitPattern: q), UInt(bitPattern: kCache), UInt(bitPattern: vCache), UInt(bitPattern: scratch))
        parallelRanges(count: heads, costPerItem: 4 * length * dk) { hs in
            let out = FloatPtr(bitPattern: a.0)!, q = ConstFloatPtr(bitPattern: a.1)!, kc = ConstFloatPtr(bitPattern: a.2)!
            let vc = ConstFloatPtr(bitPattern: a.3)!, scratch = FloatPtr(bitPattern: a.4)!
            let d8 = dk & ~7
            for h in hs {
                let qh = q + h * dk, w = scratch + h * length, o = out + h * dk
                var maxv = -Float.infinity
                for j in 0..<length {
                    let kj = kc + j * stride + h * dk
                    var s8 = SIMD8<Float>.zero
                    var e = 0
                    while e < d8 { s8 += Gemm.load8(qh + e) * Gemm.load8(kj + e); e += 8 }
                    var s = s8.sum()
                    while e < dk { s += qh[e] * kj[e]; e += 1 }
                    s *= scale
                    w[j] = s
                    maxv = max(maxv, s)
                }
                var sum: Float = 0
                for j in 0..<length { let e = Foundation.exp(w[j] - maxv); w[j] = e; sum += e }
                let inv = 1 / sum
                o.update(repeating: 0, count: dk)
                for j in 0..<length {
                    let wj = w[j] * inv
                    w[j] = wj
                    let vj = vc + j * stride + h * dk
                    var e = 0
                    let w8 = SIMD8<Float>(repeating: wj)
                    while e < d8 { Gemm.store8(Gemm.load8(o + e) + w8 * Gemm.load8(vj + e), o + e); e += 8 }
                    while e < dk { o[e] += wj * vj[e]; e += 1 }
                }
            }
        }
    }
}
