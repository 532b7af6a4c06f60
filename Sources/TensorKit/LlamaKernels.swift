import Foundation

// MARK: - The pieces a Llama block adds to GPT's
//
// RMSNorm instead of layer norm, rotary position embeddings instead of learned positions, grouped-
// query attention reading a KV cache, and the SwiGLU feed-forward's gate. Inference only (forward).

extension Kernels {
    /// `out[i, :] = inp[i, :] / √(mean(inp[i, :]²) + eps) · weight` for `n` rows of `c`.
    public static func rmsNormForward(_ out: FloatPtr, _ inp: ConstFloatPtr, _ weight: ConstFloatPtr, n: Int, c: Int, eps: Float) {
        for i in 0..<n {
            let x = inp + i * c, o = out + i * c
            var ss: Float = 0
            for j in 0..<c { ss += x[j] * x[j] }
            let r = 1 / (ss / Float(c) + eps).squareRoot()
            for j in 0..<c { o[j] = x[j] * r * weight[j] }
        }
    }

    /// Rotary position embedding, in place, for `n` rows (positions `start ..< start + n`) of `heads`
    /// heads of size `headSize`. Pairs are adjacent, (x[2i], x[2i+1]) rotated by pos · θ_i — the order
    /// of GGUF files, whose converter permuted Q and K's rows from Hugging Face's half-split layout
    /// (x[i], x[i + d/2]). Both give the same q·k, so the weights need no un-permuting.
    /// `cosSin[pos][i]` holds (cos, sin) of pos · θ_i, θ_i = base^(−2i/d).
    public static func ropeForward(_ x: FloatPtr, cosSin: ConstFloatPtr, n: Int, start: Int, heads: Int, headSize: Int, rowStride: Int) {
        let half = headSize / 2
        for t in 0..<n {
            let cs = cosSin + (start + t) * headSize
            for h in 0..<heads {
                let v = x + t * rowStride + h * headSize
                for i in 0..<half {
                    let c = cs[2 * i], s = cs[2 * i + 1]
                    let a = v[2 * i], b = v[2 * i + 1]
                    v[2 * i] = a * c - b * s
                    v[2 * i + 1] = a * s + b * c
                }
            }
        }
    }

    /// The (cos, sin) table `ropeForward` reads: `[positions, headSize]`, computed in Double.
    public static func ropeTable(_ out: FloatPtr, positions: Int, headSize: Int, base: Double) {
        for p in 0..<positions {
            for i in 0..<headSize / 2 {
                let theta = Double(p) * Foundation.pow(base, -2 * Double(i) / Double(headSize))
                out[p * headSize + 2 * i] = Float(Foundation.cos(theta))
                out[p * headSize + 2 * i + 1] = Float(Foundation.sin(theta))
            }
        }
    }

    /// SwiGLU's gate: `out = silu(gate) · up`, silu(x) = x / (1 + e^−x), 8 at a time.
    public static func swigluForward(_ out: FloatPtr, _ gate: ConstFloatPtr, _ up: ConstFloatPtr, count: Int) {
        var i = 0
        while i + 8 <= count {
            let g = UnsafeRawPointer(gate + i).loadUnaligned(as: SIMD8<Float>.self)
            let u = UnsafeRawPointer(up + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(out + i).storeBytes(of: g / (1 + FastMath.exp(-g)) * u, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count { out[i] = gate[i] / (1 + Foundation.exp(-gate[i])) * up[i]; i += 1 }
    }

    /// Causal grouped-query attention of `n` new positions (`start ..< start + n`) against a KV cache.
    ///
    /// `q` is `[n, heads·headSize]`; `kCache`, `vCache` are `[positions, kvHeads·headSize]` and already
    /// hold the new positions' keys and values. Query head h reads key/value head h / (heads / kvHeads).
    /// `out` is `[n, heads·headSize]`. One position (generation) goes through `cachedAttentionLoop`;
    /// a prompt through two GEMMs per head (scores Q·Kᵀ for every new position against every cached
    /// one, then P·V), which computes the masked half of the scores too but runs at GEMM speed.
    public static func cachedAttentionForward(_ out: FloatPtr, _ q: ConstFloatPtr, kCache: ConstFloatPtr, vCache: ConstFloatPtr,
                                              n: Int, start: Int, heads: Int, kvHeads: Int, headSize: Int) {
        if n < 8 {
            cachedAttentionLoop(out, q, kCache: kCache, vCache: vCache, n: n, start: start, heads: heads, kvHeads: kvHeads, headSize: headSize)
            return
        }
        let group = heads / kvHeads, qStride = heads * headSize, kvStride = kvHeads * headSize, len = start + n
        let scale = 1 / Float(headSize).squareRoot()
        let p = FloatPtr.allocate(capacity: n * len)
        defer { p.deallocate() }
        for h in 0..<heads {
            let kvh = h / group
            Gemm.multiply(transA: false, transB: true, m: n, n: len, k: headSize, alpha: scale, a: q + h * headSize, lda: qStride,
                          b: kCache + kvh * headSize, ldb: kvStride, beta: 0, c: p, ldc: len)
            for t in 0..<n {
                let row = p + t * len, valid = start + t + 1
                softmaxInPlace(row, count: valid)
                (row + valid).update(repeating: 0, count: len - valid)
            }
            Gemm.multiply(transA: false, transB: false, m: n, n: headSize, k: len, a: p, lda: len,
                          b: vCache + kvh * headSize, ldb: kvStride, beta: 0, c: out + h * headSize, ldc: qStride)
        }
    }

    /// softmax over `count` floats, in place, 8 at a time.
    static func softmaxInPlace(_ x: FloatPtr, count: Int) {
        var m = -Float.infinity
        for j in 0..<count { m = max(m, x[j]) }
        var sum = SIMD8<Float>(), j = 0
        while j + 8 <= count {
            let e = FastMath.exp(UnsafeRawPointer(x + j).loadUnaligned(as: SIMD8<Float>.self) - m)
            UnsafeMutableRawPointer(x + j).storeBytes(of: e, as: SIMD8<Float>.self)
            sum += e; j += 8
        }
        var total = sum.sum()
        while j < count { x[j] = Foundation.exp(x[j] - m); total += x[j]; j += 1 }
        let inv = 1 / total
        for j in 0..<count { x[j] *= inv }
    }

    /// The same attention position by position, (position, head) pairs in parallel: the reference,
    /// and the fast path for one new token.
    public static func cachedAttentionLoop(_ out: FloatPtr, _ q: ConstFloatPtr, kCache: ConstFloatPtr, vCache: ConstFloatPtr,
                                              n: Int, start: Int, heads: Int, kvHeads: Int, headSize: Int) {
        let group = heads / kvHeads, qStride = heads * headSize, kvStride = kvHeads * headSize
        let scale = 1 / Float(headSize).squareRoot()
        let o0 = UInt(bitPattern: out), q0 = UInt(bitPattern: q), k0 = UInt(bitPattern: kCache), v0 = UInt(bitPattern: vCache)
        parallelRanges(count: n * heads, costPerItem: 2 * (start + n) * headSize) { pairs in
            let out = UnsafeMutablePointer<Float>(bitPattern: o0)!, q = UnsafePointer<Float>(bitPattern: q0)!
            let kc = UnsafePointer<Float>(bitPattern: k0)!, vc = UnsafePointer<Float>(bitPattern: v0)!
            let att = FloatPtr.allocate(capacity: start + n)
            defer { att.deallocate() }
            for pair in pairs {
                let t = pair / heads, h = pair % heads, kvh = h / group, len = start + t + 1
                let qi = q + t * qStride + h * headSize
                var m = -Float.infinity
                for j in 0..<len {
                    let s = dot(qi, kc + j * kvStride + kvh * headSize, headSize) * scale
                    att[j] = s
                    m = max(m, s)
                }
                var sum: Float = 0
                for j in 0..<len { let e = Foundation.exp(att[j] - m); att[j] = e; sum += e }
                let o = out + t * qStride + h * headSize, inv = 1 / sum
                for d in 0..<headSize { o[d] = 0 }
                for j in 0..<len {
                    let w = att[j] * inv, v = vc + j * kvStride + kvh * headSize
                    var d = 0
                    while d + 8 <= headSize {
                        let acc = UnsafeRawPointer(o + d).loadUnaligned(as: SIMD8<Float>.self)
                        let vv = UnsafeRawPointer(v + d).loadUnaligned(as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(o + d).storeBytes(of: vv * w + acc, as: SIMD8<Float>.self)
                        d += 8
                    }
                    while d < headSize { o[d] += w * v[d]; d += 1 }
                }
            }
        }
    }

    @inline(__always) static func dot(_ a: ConstFloatPtr, _ b: ConstFloatPtr, _ count: Int) -> Float {
        var acc = SIMD8<Float>(), i = 0
        while i + 8 <= count {
            acc = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self) * UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self) + acc
            i += 8
        }
        var s = acc.sum()
        while i < count { s += a[i] * b[i]; i += 1 }
        return s
    }
}
