import Foundation

// MARK: - Attention against a KV cache
//
// The one kernel every model's generation uses: `n` new query positions against the cached keys and
// values of all positions so far, causal, with grouped-query attention (`kvHeads` ≤ `heads`; a GPT
// passes kvHeads = heads, which is ordinary multi-head attention). Tested against the last rows of
// full causal attention (`attentionForwardReference`).

extension Kernels {
    /// Causal grouped-query attention of `n` new positions (`start ..< start + n`) against a KV cache.
    ///
    /// `q` is `[n, heads·headSize]`; `kCache`, `vCache` are `[positions, kvHeads·headSize]` and already
    /// hold the new positions' keys and values. Query head h reads key/value head h / (heads / kvHeads).
    /// `out` is `[n, heads·headSize]`. With a `window` (Gemma's sliding-window layers), position p sees
    /// only the keys p − window + 1 … p. One position (generation) goes through `cachedAttentionLoop`;
    /// a prompt through two GEMMs per key/value head (scores Q·Kᵀ for every new position of its query heads
    /// against every cached one, then P·V), which computes the masked half of the scores too but runs at
    /// GEMM speed.
    public static func cachedAttentionForward(
        out: FloatPtr, q: ConstFloatPtr, kCache: ConstFloatPtr, vCache: ConstFloatPtr,
        n: Int, start: Int, heads: Int, kvHeads: Int, headSize: Int, window: Int = .max
    ) {
        if n < 8 {
            cachedAttentionLoop(
                out: out, q: q, kCache: kCache, vCache: vCache, n: n, start: start, heads: heads, kvHeads: kvHeads, headSize: headSize,
                window: window)
            return
        }
        let group = heads / kvHeads, qStride = heads * headSize, kvStride = kvHeads * headSize, len = start + n
        let scale = 1 / Float(headSize).squareRoot(), rows = group * n
        // The `group` query heads that share a key/value head go through the two GEMMs together, their rows stacked
        // (head-major: row r is head r / n, position r % n), so each block of keys and values is packed once for all
        // of them, not once per head: Qwen2.5 has 7 query heads per key/value head (a 512-token prompt, one thread:
        // the GEMM's packing and edge work fell from 2.5% to 0.8% of the time).
        let p = FloatPtr.allocate(capacity: rows * len), qs = FloatPtr.allocate(capacity: 2 * rows * headSize)
        defer { p.deallocate(); qs.deallocate() }
        let os = qs + rows * headSize
        for kvh in 0..<kvHeads {
            for r in 0..<rows {
                (qs + r * headSize).update(from: q + (r % n) * qStride + (kvh * group + r / n) * headSize, count: headSize)
            }
            Gemm.multiply(
                transA: false, transB: true, m: rows, n: len, k: headSize, alpha: scale, a: qs, lda: headSize,
                b: kCache + kvh * headSize, ldb: kvStride, beta: 0, c: p, ldc: len)
            for r in 0..<rows {
                let row = p + r * len, valid = start + r % n + 1
                if valid > window { row.update(repeating: -.infinity, count: valid - window) }
                softmaxRow(row, visible: valid, count: len, fused: true)
            }
            Gemm.multiply(
                transA: false, transB: false, m: rows, n: headSize, k: len, a: p, lda: len,
                b: vCache + kvh * headSize, ldb: kvStride, beta: 0, c: os, ldc: headSize)
            for r in 0..<rows {
                (out + (r % n) * qStride + (kvh * group + r / n) * headSize).update(from: os + r * headSize, count: headSize)
            }
        }
    }

    /// The same attention position by position, (position, head) pairs in parallel: the reference,
    /// and the fast path for one new token.
    public static func cachedAttentionLoop(
        out: FloatPtr, q: ConstFloatPtr, kCache: ConstFloatPtr, vCache: ConstFloatPtr,
        n: Int, start: Int, heads: Int, kvHeads: Int, headSize: Int, window: Int = .max
    ) {
        let group = heads / kvHeads, qStride = heads * headSize, kvStride = kvHeads * headSize
        let scale = 1 / Float(headSize).squareRoot()
        let o0 = SharedPointer(out), q0 = SharedPointer(q), k0 = SharedPointer(kCache), v0 = SharedPointer(vCache)
        parallelRanges(count: n * heads, costPerItem: 2 * (start + n) * headSize) { pairs in
            let out = o0.pointer, q = q0.readOnly
            let kc = k0.readOnly, vc = v0.readOnly
            // On the stack when it is small (Swift's temporary allocation): no malloc per layer and token.
            withUnsafeTemporaryAllocation(of: Float.self, capacity: start + n) { buffer in
                for pair in pairs {
                    let t = pair / heads, h = pair % heads
                    attendOne(
                        out: out + t * qStride + h * headSize, q: q + t * qStride + h * headSize, kCache: kc, vCache: vc,
                        end: start + t + 1, kvHead: h / group, kvStride: kvStride, headSize: headSize, window: window, scale: scale,
                        scores: buffer.baseAddress!)
                }
            }
        }
    }

    /// One new token for each of several sessions (a batched decoding step), each against its own cache:
    /// `rows[i]` is (out, q, kCache, vCache, start) as for `cachedAttentionLoop` with n = 1. All (row, head)
    /// pairs share one parallel region, not one region per row.
    public static func cachedAttentionRows(
        _ rows: [(out: FloatPtr, q: ConstFloatPtr, kCache: ConstFloatPtr, vCache: ConstFloatPtr, start: Int)],
        heads: Int, kvHeads: Int, headSize: Int, window: Int = .max
    ) {
        guard !rows.isEmpty else { return }
        let group = heads / kvHeads, kvStride = kvHeads * headSize, scale = 1 / Float(headSize).squareRoot()
        let longest = rows.map(\.start).max()! + 1, average = rows.reduce(0) { $0 + $1.start + 1 } / rows.count
        let shared = rows.map { (SharedPointer($0.out), SharedPointer($0.q), SharedPointer($0.kCache), SharedPointer($0.vCache), $0.start) }
        parallelRanges(count: rows.count * heads, costPerItem: 2 * average * headSize) { pairs in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: longest) { buffer in
                for pair in pairs {
                    let (o, q, k, v, start) = shared[pair / heads], h = pair % heads
                    attendOne(
                        out: o.pointer + h * headSize, q: q.readOnly + h * headSize, kCache: k.readOnly, vCache: v.readOnly,
                        end: start + 1, kvHead: h / group, kvStride: kvStride, headSize: headSize, window: window, scale: scale,
                        scores: buffer.baseAddress!)
                }
            }
        }
    }

    /// One query row of one head against the keys and values before `end` (within `window`).
    @inline(__always) static func attendOne(
        out o: FloatPtr, q qi: ConstFloatPtr, kCache kc: ConstFloatPtr, vCache vc: ConstFloatPtr, end: Int, kvHead kvh: Int,
        kvStride: Int, headSize: Int, window: Int, scale: Float, scores att: FloatPtr
    ) {
        let lo = max(0, end - window), len = end - lo  // the keys lo ..< end, att[j − lo]
        for j in 0..<len { att[j] = dot(qi, kc + (lo + j) * kvStride + kvh * headSize, headSize) * scale }
        softmaxRow(att, visible: len, count: len, fused: true)
        for d in 0..<headSize { o[d] = 0 }
        for j in 0..<len {
            let w = att[j], v = vc + (lo + j) * kvStride + kvh * headSize
            var d = 0
            while d + 8 <= headSize {
                let acc = load8(o + d)
                let vv = load8(v + d)
                store8(vv * w + acc, o + d)
                d += 8
            }
            while d < headSize { o[d] += w * v[d]; d += 1 }
        }
    }

    @inline(__always) static func dot(_ a: ConstFloatPtr, _ b: ConstFloatPtr, _ count: Int) -> Float {
        var acc = SIMD8<Float>(), i = 0
        while i + 8 <= count {
            acc = load8(a + i) * load8(b + i) + acc
            i += 8
        }
        var s = acc.sum()
        while i < count { s += a[i] * b[i]; i += 1 }
        return s
    }
}
