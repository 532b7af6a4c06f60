import Foundation

/// Batched layer kernels as forward/backward pairs, in the style of llm.c: arguments go outputs,
/// inputs, weights, then sizes; forward saves what backward needs (layer-norm statistics, attention
/// weights); backward *accumulates* into gradient buffers (`+=`), so gradients from several uses add up.
/// Row counts `n` are batch × sequence positions; matrices are row-major.
public typealias FloatPtr = UnsafeMutablePointer<Float>
public typealias ConstFloatPtr = UnsafePointer<Float>

public enum Kernels {
    // MARK: - Linear

    /// `out[n, oc] = inp[n, c] · w[c, oc] + b[oc]`.
    public static func linearForward(
        out: FloatPtr, input inp: ConstFloatPtr, weight w: ConstFloatPtr, bias b: ConstFloatPtr?, rows n: Int, width c: Int,
        outWidth oc: Int
    ) {
        Gemm.multiply(transA: false, transB: false, m: n, n: oc, k: c, a: inp, lda: c, b: w, ldb: oc, beta: 0, c: out, ldc: oc)
        if let b {
            for i in 0..<n { let o = out + i * oc; for j in 0..<oc { o[j] += b[j] } }
        }
    }

    /// `dinp += dout · wᵀ`, `dw += inpᵀ · dout`, `db += Σ_rows dout`.
    public static func linearBackward(
        dInput dinp: FloatPtr?, dWeight dw: FloatPtr, dBias db: FloatPtr?, dOut dout: ConstFloatPtr, input inp: ConstFloatPtr,
        weight w: ConstFloatPtr,
        rows n: Int, width c: Int, outWidth oc: Int
    ) {
        if let dinp {
            Gemm.multiply(transA: false, transB: true, m: n, n: c, k: oc, a: dout, lda: oc, b: w, ldb: oc, beta: 1, c: dinp, ldc: c)
        }
        Gemm.multiply(transA: true, transB: false, m: c, n: oc, k: n, a: inp, lda: c, b: dout, ldb: oc, beta: 1, c: dw, ldc: oc)
        if let db {
            for i in 0..<n { let d = dout + i * oc; for j in 0..<oc { db[j] += d[j] } }
        }
    }

    // MARK: - Layer norm

    /// Saves `mean` and `rstd = 1/√(σ² + eps)` per row for the backward pass.
    public static func layerNormForwardReference(
        out: FloatPtr, mean: FloatPtr, rstd: FloatPtr, input inp: ConstFloatPtr,
        gamma: ConstFloatPtr, beta: ConstFloatPtr, rows n: Int, width c: Int, eps: Float
    ) {
        for i in 0..<n {
            let x = inp + i * c, o = out + i * c
            var m: Float = 0
            for j in 0..<c { m += x[j] }
            m /= Float(c)
            var v: Float = 0
            for j in 0..<c { let d = x[j] - m; v += d * d }
            v /= Float(c)
            let r = 1 / (v + eps).squareRoot()
            for j in 0..<c { o[j] = (x[j] - m) * r * gamma[j] + beta[j] }
            mean[i] = m; rstd[i] = r
        }
    }

    public static func layerNormBackwardReference(
        dInput dinp: FloatPtr, dGamma dgamma: FloatPtr, dBeta dbeta: FloatPtr, dOut dout: ConstFloatPtr, input inp: ConstFloatPtr,
        gamma: ConstFloatPtr, mean: ConstFloatPtr, rstd: ConstFloatPtr, rows n: Int, width c: Int
    ) {
        for i in 0..<n {
            let x = inp + i * c, d = dout + i * c, di = dinp + i * c
            let m = mean[i], r = rstd[i]
            var dnormMean: Float = 0, dnormNormMean: Float = 0
            for j in 0..<c {
                let norm = (x[j] - m) * r
                let dnorm = gamma[j] * d[j]
                dnormMean += dnorm
                dnormNormMean += dnorm * norm
            }
            dnormMean /= Float(c); dnormNormMean /= Float(c)
            for j in 0..<c {
                let norm = (x[j] - m) * r
                let dnorm = gamma[j] * d[j]
                dbeta[j] += d[j]
                dgamma[j] += norm * d[j]
                di[j] += (dnorm - dnormMean - norm * dnormNormMean) * r
            }
        }
    }

    // MARK: - Attention

    /// Multi-head scaled dot-product attention for a batch.
    ///
    /// `q` is `[b·tq, qStride]`, `k` and `v` are `[b·tk, kvStride]`; head `h` uses columns
    /// `h·dk ..< (h+1)·dk`. `att` `[b, heads, tq, tk]` receives the softmax weights; `out` `[b·tq, heads·dk]`.
    /// A key `j` of sequence `bi` is blocked when `keyPadding[bi·tk + j]` is true, or when `causal` and `j > i`.
    public static func attentionForwardReference(
        out: FloatPtr, weights att: FloatPtr, q: ConstFloatPtr, k: ConstFloatPtr, v: ConstFloatPtr,
        keyPadding: UnsafePointer<Bool>?, causal: Bool,
        batch b: Int, queries tq: Int, keys tk: Int, heads: Int, headSize dk: Int, qStride: Int, kvStride: Int
    ) {
        let scale = 1 / Float(dk).squareRoot()
        let outStride = heads * dk
        // Each (sequence, head) pair owns its rows' column block of `out` and its slice of `att`,
        // so pairs run in parallel. Pointers cross into the pool as `SharedPointer`s.
        let o0 = SharedPointer(out), a0 = SharedPointer(att), q0 = SharedPointer(q), k0 = SharedPointer(k)
        let v0 = SharedPointer(v), p0 = keyPadding.map { SharedPointer($0) }
        parallelRanges(count: b * heads, costPerItem: 2 * tq * tk * dk) { pairs in
            let out = o0.pointer, att = a0.pointer
            let q = q0.readOnly, k = k0.readOnly, v = v0.readOnly
            let keyPadding = p0?.readOnly
            for pair in pairs {
                let bi = pair / heads, h = pair % heads
                for i in 0..<tq {
                    let qi = q + (bi * tq + i) * qStride + h * dk
                    let a = att + ((bi * heads + h) * tq + i) * tk
                    var maxv = -Float.infinity
                    for j in 0..<tk {
                        let blocked = (causal && j > i) || (keyPadding?[bi * tk + j] ?? false)
                        if blocked { a[j] = -.infinity; continue }
                        let kj = k + (bi * tk + j) * kvStride + h * dk
                        var s: Float = 0
                        for d in 0..<dk { s += qi[d] * kj[d] }
                        s *= scale
                        a[j] = s
                        if s > maxv { maxv = s }
                    }
                    let o = out + (bi * tq + i) * outStride + h * dk
                    for d in 0..<dk { o[d] = 0 }
                    if maxv == -.infinity {  // every key blocked: no information flows
                        for j in 0..<tk { a[j] = 0 }
                        continue
                    }
                    var sum: Float = 0
                    for j in 0..<tk {
                        let e = a[j] == -.infinity ? 0 : Foundation.exp(a[j] - maxv)
                        a[j] = e; sum += e
                    }
                    let inv = 1 / sum
                    for j in 0..<tk {
                        a[j] *= inv
                        let w = a[j]
                        if w == 0 { continue }
                        let vj = v + (bi * tk + j) * kvStride + h * dk
                        for d in 0..<dk { o[d] += w * vj[d] }
                    }
                }
            }
        }
    }

    /// Accumulates `dq`, `dk`, `dv` from `dout`.
    public static func attentionBackwardReference(
        dQ dq: FloatPtr, dK dk: FloatPtr, dV dv: FloatPtr, dOut dout: ConstFloatPtr,
        q: ConstFloatPtr, k: ConstFloatPtr, v: ConstFloatPtr, weights att: ConstFloatPtr,
        batch b: Int, queries tq: Int, keys tk: Int, heads: Int, headSize dHead: Int, qStride: Int, kvStride: Int
    ) {
        let scale = 1 / Float(dHead).squareRoot()
        let outStride = heads * dHead
        // Each part uses a row of its own on the stack for ∂(weights).
        // As in the forward pass, each (sequence, head) pair writes only its own column block of
        // dq, dk and dv, so pairs run in parallel.
        let dq0 = SharedPointer(dq), dk0 = SharedPointer(dk), dv0 = SharedPointer(dv), do0 = SharedPointer(dout)
        let q0 = SharedPointer(q), k0 = SharedPointer(k), v0 = SharedPointer(v), a0 = SharedPointer(att)
        parallelRanges(count: b * heads, costPerItem: 4 * tq * tk * dHead) { pairs in
            let dq = dq0.pointer, dk = dk0.pointer
            let dv = dv0.pointer, dout = do0.readOnly
            let q = q0.readOnly, k = k0.readOnly
            let v = v0.readOnly, att = a0.readOnly
            withUnsafeTemporaryAllocation(of: Float.self, capacity: max(tk, 1)) { row in
                let scratch = row.baseAddress!
                for pair in pairs {
                    let bi = pair / heads, h = pair % heads
                    for i in 0..<tq {
                        let a = att + ((bi * heads + h) * tq + i) * tk
                        let dO = dout + (bi * tq + i) * outStride + h * dHead
                        // datt[j] = dO · v_j ; dv_j += a[j] · dO
                        var dot: Float = 0
                        for j in 0..<tk {
                            let w = a[j]
                            let vj = v + (bi * tk + j) * kvStride + h * dHead
                            var s: Float = 0
                            for d in 0..<dHead { s += dO[d] * vj[d] }
                            scratch[j] = s
                            dot += w * s
                            if w != 0 {
                                let dvj = dv + (bi * tk + j) * kvStride + h * dHead
                                for d in 0..<dHead { dvj[d] += w * dO[d] }
                            }
                        }
                        // softmax backward: dpre[j] = a[j] (datt[j] − Σ a·datt), then through the scale into q and k.
                        let qi = q + (bi * tq + i) * qStride + h * dHead
                        let dqi = dq + (bi * tq + i) * qStride + h * dHead
                        for j in 0..<tk {
                            let w = a[j]
                            if w == 0 { continue }
                            let g = w * (scratch[j] - dot) * scale
                            let kj = k + (bi * tk + j) * kvStride + h * dHead
                            let dkj = dk + (bi * tk + j) * kvStride + h * dHead
                            for d in 0..<dHead {
                                dqi[d] += g * kj[d]
                                dkj[d] += g * qi[d]
                            }
                        }
                    }
                }
            }
        }
    }

    // MARK: - Activations

    public static func reluForward(out: FloatPtr, input inp: ConstFloatPtr, count: Int) {
        for i in 0..<count { out[i] = max(inp[i], 0) }
    }

    public static func reluBackward(dInput dinp: FloatPtr, dOut dout: ConstFloatPtr, input inp: ConstFloatPtr, count: Int) {
        for i in 0..<count where inp[i] > 0 { dinp[i] += dout[i] }
    }

    public static func geluForward(out: FloatPtr, input inp: ConstFloatPtr, count: Int, form: GELUForm) {
        geluForwardFast(out, inp, count: count, form: form)
    }

    public static func geluBackward(dInput dinp: FloatPtr, dOut dout: ConstFloatPtr, input inp: ConstFloatPtr, count: Int, form: GELUForm) {
        if form == .tanh { return geluTanhBackward(dinp, dout, inp, count: count) }
        for i in 0..<count { dinp[i] += geluDerivative(inp[i], form: form) * dout[i] }
    }

    // MARK: - Embedding

    /// `out[i] = table[ids[i]] · scale + pos[i mod t]` for `n = b·t` rows; `pos` is `[t, c]` (sinusoidal or a learned table's rows).
    public static func embeddingForward(
        out: FloatPtr, ids: UnsafePointer<Int32>, table: ConstFloatPtr, scale: Float,
        positions pos: ConstFloatPtr, batch n: Int, length t: Int, width c: Int
    ) {
        for i in 0..<n {
            let e = table + Int(ids[i]) * c, p = pos + (i % t) * c, o = out + i * c
            for j in 0..<c { o[j] = e[j] * scale + p[j] }
        }
    }

    /// `dtable[ids[i]] += dout[i] · scale`; `dpos[i mod t] += dout[i]` when positions are learned.
    public static func embeddingBackward(
        dTable dtable: FloatPtr, dPositions dpos: FloatPtr?, dOut dout: ConstFloatPtr, ids: UnsafePointer<Int32>, scale: Float,
        batch n: Int, length t: Int, width c: Int
    ) {
        for i in 0..<n {
            let d = dout + i * c, e = dtable + Int(ids[i]) * c
            for j in 0..<c { e[j] += d[j] * scale }
            if let dpos { let p = dpos + (i % t) * c; for j in 0..<c { p[j] += d[j] } }
        }
    }

    // MARK: - Loss

    /// Softmax + cross-entropy with label smoothing, fused: writes the per-row loss and overwrites
    /// `logits` with `∂L/∂logits`, where `L` is the mean over rows whose target is not `ignore`.
    ///
    /// The smoothed target is `(1 − ε)·onehot + ε/V` (PyTorch's `label_smoothing`), so
    /// `loss = −Σ_j q_j log p_j` and `∂loss/∂z_j = p_j − q_j`. Returns (summed loss, counted rows).
    @discardableResult
    public static func softmaxCrossEntropyReference(
        logits: FloatPtr, losses: FloatPtr?, targets: UnsafePointer<Int32>, rows n: Int, vocab v: Int,
        smoothing: Float, ignore: Int32, computeGradient: Bool = true
    ) -> (sum: Double, count: Int) {
        var count = 0
        for i in 0..<n where targets[i] != ignore { count += 1 }
        let invCount = count > 0 ? 1 / Float(count) : 0
        var total = 0.0
        let off = smoothing / Float(v), on = 1 - smoothing + off
        for i in 0..<n {
            let z = logits + i * v
            let y = Int(targets[i])
            if targets[i] == ignore {
                losses?[i] = 0
                if computeGradient { for j in 0..<v { z[j] = 0 } }
                continue
            }
            var m = -Float.infinity
            for j in 0..<v { m = max(m, z[j]) }
            var sum: Float = 0
            for j in 0..<v { sum += Foundation.exp(z[j] - m) }
            let lse = m + Foundation.log(sum)
            var loss: Float = 0
            if smoothing == 0 {
                loss = lse - z[y]
            } else {
                var sumLogp: Float = 0
                for j in 0..<v { sumLogp += z[j] - lse }
                loss = -(1 - smoothing) * (z[y] - lse) - off * sumLogp
            }
            losses?[i] = loss
            total += Double(loss)
            if computeGradient {
                for j in 0..<v {
                    let p = Foundation.exp(z[j] - lse)
                    z[j] = (p - (j == y ? on : off)) * invCount
                }
            }
        }
        return (total, count)
    }

    // MARK: - Dropout

    /// Zeroes each value with probability `p` and scales the rest by `1/(1−p)`; `keep` records the
    /// mask for the backward pass (1/(1−p) or 0).
    public static func dropoutForward(_ x: FloatPtr, keep: FloatPtr, count: Int, p: Float, rng: inout SeededRNG) {
        let s = 1 / (1 - p)
        for i in 0..<count {
            let k: Float = rng.nextUnit() < p ? 0 : s
            keep[i] = k
            x[i] *= k
        }
    }

    public static func dropoutBackward(_ d: FloatPtr, keep: ConstFloatPtr, count: Int) {
        for i in 0..<count { d[i] *= keep[i] }
    }
}

/// d/dx of GELU.
public func geluDerivative(_ x: Float, form: GELUForm) -> Float {
    switch form {
    case .erf:
        let cdf = 0.5 * (1 + Float(Foundation.erf(Double(x) / 2.0.squareRoot())))
        let pdf = Float(Foundation.exp(-0.5 * Double(x) * Double(x)) / (2 * Double.pi).squareRoot())
        return cdf + x * pdf
    case .tanh:
        let c = Float((2.0 / Double.pi).squareRoot())
        let u = c * (x + 0.044715 * x * x * x)
        let t = Foundation.tanh(u)
        let du = c * (1 + 3 * 0.044715 * x * x)
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du
    }
}
