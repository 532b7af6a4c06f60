import Foundation
import Testing
@testable import TensorKit

/// Central finite differences against every kernel's backward, on small random inputs.
/// A scalar loss L = Σ r ⊙ out with a fixed random r makes ∂L/∂out = r.
@Suite struct KernelGradientTests {
    /// Compares analytic `grad` with (L(x+h) − L(x−h)) / 2h for every coordinate of `x`.
    func check(_ x: inout [Float], _ grad: [Float], h: Float = 1e-2, tol: Float = 2e-3, loss: ([Float]) -> Double, _ what: String) {
        for i in x.indices {
            let old = x[i]
            x[i] = old + h; let up = loss(x)
            x[i] = old - h; let down = loss(x)
            x[i] = old
            let numeric = Float((up - down) / Double(2 * h))
            #expect(abs(numeric - grad[i]) <= tol + 1e-2 * abs(numeric), "\(what)[\(i)]: analytic \(grad[i]), numeric \(numeric)")
        }
    }

    func dot(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } }

    @Test func linear() {
        var rng = SeededRNG(seed: 1)
        let n = 3, c = 4, oc = 5
        var x = rng.uniform(shape: [n * c], low: -1, high: 1).data
        var w = rng.uniform(shape: [c * oc], low: -1, high: 1).data
        var b = rng.uniform(shape: [oc], low: -1, high: 1).data
        let r = rng.uniform(shape: [n * oc], low: -1, high: 1).data
        func f(_ x: [Float], _ w: [Float], _ b: [Float]) -> Double {
            var out = [Float](repeating: 0, count: n * oc)
            Kernels.linearForward(out: &out, input: x, weight: w, bias: b, rows: n, width: c, outWidth: oc)
            return dot(out, r)
        }
        var dx = [Float](repeating: 0, count: n * c), dw = [Float](repeating: 0, count: c * oc), db = [Float](repeating: 0, count: oc)
        Kernels.linearBackward(dInput: &dx, dWeight: &dw, dBias: &db, dOut: r, input: x, weight: w, rows: n, width: c, outWidth: oc)
        check(&x, dx, loss: { f($0, w, b) }, "dx")
        check(&w, dw, loss: { f(x, $0, b) }, "dw")
        check(&b, db, loss: { f(x, w, $0) }, "db")
    }

    @Test func layerNorm() {
        var rng = SeededRNG(seed: 2)
        let n = 3, c = 6
        var x = rng.uniform(shape: [n * c], low: -2, high: 2).data
        var gamma = rng.uniform(shape: [c], low: 0.5, high: 1.5).data
        var beta = rng.uniform(shape: [c], low: -1, high: 1).data
        let r = rng.uniform(shape: [n * c], low: -1, high: 1).data
        var mean = [Float](repeating: 0, count: n), rstd = mean
        func f(_ x: [Float], _ g: [Float], _ b: [Float]) -> Double {
            var out = [Float](repeating: 0, count: n * c), m = [Float](repeating: 0, count: n), s = m
            Kernels.layerNormForward(out: &out, mean: &m, rstd: &s, input: x, gamma: g, beta: b, rows: n, width: c, eps: 1e-5)
            return dot(out, r)
        }
        var out = [Float](repeating: 0, count: n * c)
        Kernels.layerNormForward(out: &out, mean: &mean, rstd: &rstd, input: x, gamma: gamma, beta: beta, rows: n, width: c, eps: 1e-5)
        var dx = [Float](repeating: 0, count: n * c), dg = [Float](repeating: 0, count: c), db = dg
        Kernels.layerNormBackward(
            dInput: &dx, dGamma: &dg, dBeta: &db, dOut: r, input: x, gamma: gamma, mean: mean, rstd: rstd, rows: n, width: c)
        check(&x, dx, h: 1e-3, loss: { f($0, gamma, beta) }, "dx")
        check(&gamma, dg, loss: { f(x, $0, beta) }, "dgamma")
        check(&beta, db, loss: { f(x, gamma, $0) }, "dbeta")
    }

    @Test(arguments: [false, true]) func attention(causal: Bool) {
        var rng = SeededRNG(seed: 3)
        let b = 2, tq = 3, tk = causal ? 3 : 4, heads = 2, dk = 2, a = heads * dk
        var q = rng.uniform(shape: [b * tq * a], low: -1, high: 1).data
        var k = rng.uniform(shape: [b * tk * a], low: -1, high: 1).data
        var v = rng.uniform(shape: [b * tk * a], low: -1, high: 1).data
        let r = rng.uniform(shape: [b * tq * a], low: -1, high: 1).data
        // The second sequence's last key is padding (when not causal).
        var pad = [Bool](repeating: false, count: b * tk)
        if !causal { pad[b * tk - 1] = true }
        func run(_ q: [Float], _ k: [Float], _ v: [Float]) -> ([Float], [Float]) {
            var out = [Float](repeating: 0, count: b * tq * a), att = [Float](repeating: 0, count: b * heads * tq * tk)
            pad.withUnsafeBufferPointer { p in
                Kernels.attentionForward(
                    out: &out, weights: &att, q: q, k: k, v: v, keyPadding: p.baseAddress, causal: causal, batch: b, queries: tq, keys: tk,
                    heads: heads, headSize: dk, qStride: a, kvStride: a)
            }
            return (out, att)
        }
        let (_, att) = run(q, k, v)
        var dq = [Float](repeating: 0, count: q.count), dkk = [Float](repeating: 0, count: k.count), dv = dkk
        Kernels.attentionBackward(
            dQ: &dq, dK: &dkk, dV: &dv, dOut: r, q: q, k: k, v: v, weights: att, batch: b, queries: tq, keys: tk, heads: heads,
            headSize: dk, qStride: a, kvStride: a)
        check(&q, dq, h: 1e-3, loss: { dot(run($0, k, v).0, r) }, "dq")
        check(&k, dkk, h: 1e-3, loss: { dot(run(q, $0, v).0, r) }, "dk")
        check(&v, dv, h: 1e-3, loss: { dot(run(q, k, $0).0, r) }, "dv")
        if causal { #expect(att[1] == 0 && att[2] == 0) }  // row 0 sees key 0 only
    }

    @Test(arguments: [GELUForm.erf, GELUForm.tanh]) func gelu(form: GELUForm) {
        var x: [Float] = [-2, -0.5, 0.1, 0.7, 1.5, 3]
        let r: [Float] = [1, -1, 0.5, 2, -0.3, 0.9]
        var dx = [Float](repeating: 0, count: x.count)
        Kernels.geluBackward(dInput: &dx, dOut: r, input: x, count: x.count, form: form)
        check(
            &x, dx, h: 1e-3,
            loss: { xs in
                var out = [Float](repeating: 0, count: xs.count)
                Kernels.geluForward(out: &out, input: xs, count: xs.count, form: form)
                return dot(out, r)
            }, "dgelu")
    }

    @Test(arguments: [Float(0), Float(0.1)]) func softmaxCrossEntropy(smoothing: Float) {
        var rng = SeededRNG(seed: 4)
        let n = 4, v = 5
        var z = rng.uniform(shape: [n * v], low: -2, high: 2).data
        let targets: [Int32] = [1, 4, 0, 2]
        let ignore: Int32 = 2  // the last row is ignored
        func loss(_ z: [Float]) -> Double {
            var zz = z
            let (sum, count) = Kernels.softmaxCrossEntropy(
                logits: &zz, losses: nil, targets: targets, rows: n, vocab: v, smoothing: smoothing, ignore: ignore, computeGradient: false)
            return sum / Double(count)
        }
        var grad = z
        Kernels.softmaxCrossEntropy(logits: &grad, losses: nil, targets: targets, rows: n, vocab: v, smoothing: smoothing, ignore: ignore)
        check(&z, grad, h: 1e-3, loss: loss, "dlogits")
        // By hand: with no smoothing, each counted row's gradient sums to 0 and the ignored row is 0.
        for i in 0..<3 { #expect(abs(grad[(i * v)..<((i + 1) * v)].reduce(0, +)) < 1e-6) }
        #expect(grad[15..<20].allSatisfy { $0 == 0 })
    }

    @Test func crossEntropyByHand() {
        // Uniform logits over 4 classes: loss = ln 4 with or without smoothing.
        var z: [Float] = [0, 0, 0, 0]
        let (s, c) = Kernels.softmaxCrossEntropy(logits: &z, losses: nil, targets: [2], rows: 1, vocab: 4, smoothing: 0.1, ignore: -1)
        #expect(c == 1 && abs(s - log(4.0)) < 1e-6)
        // ∂/∂z = p − q = 0.25 − (0.9 + 0.025) for the target, 0.25 − 0.025 elsewhere.
        #expect(abs(z[2] - (0.25 - 0.925)) < 1e-6 && abs(z[0] - 0.225) < 1e-6)
    }

    @Test func embedding() {
        let table: [Float] = [1, 2, 3, 4, 5, 6]  // 3 tokens × 2
        let pos: [Float] = [10, 20, 30, 40]  // 2 positions × 2
        let ids: [Int32] = [2, 0, 1, 1]  // b = 2, t = 2
        var out = [Float](repeating: 0, count: 8)
        Kernels.embeddingForward(out: &out, ids: ids, table: table, scale: 2, positions: pos, batch: 4, length: 2, width: 2)
        #expect(out == [20, 32, 32, 44, 16, 28, 36, 48])
        var dt = [Float](repeating: 0, count: 6), dp = [Float](repeating: 0, count: 4)
        Kernels.embeddingBackward(
            dTable: &dt, dPositions: &dp, dOut: [Float](repeating: 1, count: 8), ids: ids, scale: 2, batch: 4, length: 2, width: 2)
        #expect(dt == [2, 2, 4, 4, 2, 2])  // token 1 used twice
        #expect(dp == [2, 2, 2, 2])
    }
}

@Suite(.serialized) struct ParallelAttentionTests {
    /// Big enough to be split across threads; every (sequence, head) pair must give the same bits.
    @Test func twoThreadsGiveTheSameBitsAsOne() {
        var rng = SeededRNG(seed: 12)
        let b = 3, t = 32, heads = 4, dk = 16, a = heads * dk
        let q = rng.uniform(shape: [b * t * a], low: -1, high: 1).data, k = rng.uniform(shape: [b * t * a], low: -1, high: 1).data
        let v = rng.uniform(shape: [b * t * a], low: -1, high: 1).data, dout = rng.uniform(shape: [b * t * a], low: -1, high: 1).data
        func run(threads: Int) -> [[Float]] {
            let saved = Gemm.threads
            Gemm.threads = threads
            defer { Gemm.threads = saved }
            var out = [Float](repeating: 0, count: b * t * a), att = [Float](repeating: 0, count: b * heads * t * t)
            Kernels.attentionForward(
                out: &out, weights: &att, q: q, k: k, v: v, keyPadding: nil, causal: true, batch: b, queries: t, keys: t, heads: heads,
                headSize: dk, qStride: a, kvStride: a)
            var dq = [Float](repeating: 0, count: q.count), dkk = dq, dv = dq
            Kernels.attentionBackward(
                dQ: &dq, dK: &dkk, dV: &dv, dOut: dout, q: q, k: k, v: v, weights: att, batch: b, queries: t, keys: t, heads: heads,
                headSize: dk, qStride: a, kvStride: a)
            return [out, att, dq, dkk, dv]
        }
        let one = run(threads: 1), two = run(threads: 2)
        for i in 0..<one.count { #expect(one[i] == two[i], "buffer \(i)") }
        #expect(one[0].contains { $0 != 0 })
    }
}

/// The row reductions (∂γ and ∂β of layer norm summed over rows, the summed cross-entropy loss) split
/// into blocks chosen by the work alone, so 1 and 2 threads add the same partials in the same order.
@Suite(.serialized) struct ThreadCountInvarianceTests {
    @Test func rowReductionsGiveTheSameBitsOnOneThreadAndTwo() {
        let n = 517, c = 70, v = 300
        var rng = SeededRNG(seed: 21)
        let x = rng.uniform(shape: [n * c], low: -3, high: 3).data, dy = rng.uniform(shape: [n * c], low: -1, high: 1).data
        let gamma = rng.uniform(shape: [c], low: 0.5, high: 1.5).data, beta = rng.uniform(shape: [c], low: -1, high: 1).data
        let z = rng.uniform(shape: [n * v], low: -4, high: 4).data
        let targets: [Int32] = (0..<n).map { i in i % 7 == 3 ? -1 : Int32(rng.nextInt(below: v)) }
        func run(threads: Int) -> [[UInt32]] {
            let saved = Gemm.threads
            Gemm.threads = threads
            defer { Gemm.threads = saved }
            var out = [Float](repeating: 0, count: n * c), mean = [Float](repeating: 0, count: n), rstd = mean
            var dx = [Float](repeating: 0.25, count: n * c), dg = [Float](repeating: 0.5, count: c), db = dg
            Kernels.layerNormForward(out: &out, mean: &mean, rstd: &rstd, input: x, gamma: gamma, beta: beta, rows: n, width: c, eps: 1e-5)
            Kernels.layerNormBackward(
                dInput: &dx, dGamma: &dg, dBeta: &db, dOut: dy, input: x, gamma: gamma, mean: mean, rstd: rstd, rows: n, width: c)
            var zz = z, losses = [Float](repeating: 0, count: n)
            let total = Kernels.softmaxCrossEntropy(
                logits: &zz, losses: &losses, targets: targets, rows: n, vocab: v, smoothing: 0.1, ignore: -1)
            return [out, dx, dg, db, zz, losses].map { $0.map(\.bitPattern) } + [
                [UInt32(truncatingIfNeeded: total.sum.bitPattern), UInt32(truncatingIfNeeded: total.sum.bitPattern >> 32)]
            ]
        }
        let one = run(threads: 1), two = run(threads: 2)
        for (i, name) in ["out", "dx", "dgamma", "dbeta", "dlogits", "losses", "summed loss"].enumerated() {
            let differ = zip(one[i], two[i]).filter { $0 != $1 }.count
            #expect(differ == 0, "\(name): \(differ) of \(one[i].count) values differ between 1 and 2 threads")
        }
    }
}

/// The GEMM-based attention against the scalar reference: awkward sizes, strides wider than the
/// heads (Q, K, V as column blocks of one buffer), causal and padded keys, rows with every key hidden.
@Suite struct FastAttentionTests {
    @Test(arguments: [(1, 1, 1, 1, 1), (2, 7, 7, 3, 5), (2, 17, 9, 2, 8), (1, 65, 65, 4, 32), (3, 33, 20, 1, 17)])
    func matchesReference(shape: (Int, Int, Int, Int, Int)) {
        let (b, tq, tk, heads, dk) = shape
        for causal in [false, true] where !causal || tq == tk {
            var rng = SeededRNG(seed: UInt64(b * 1000 + tq * 10 + tk))
            let a = heads * dk, qStride = 3 * a, kvStride = 3 * a
            let qkv = rng.uniform(shape: [b * max(tq, tk) * qStride], low: -2, high: 2).data
            let dout = rng.uniform(shape: [b * tq * a], low: -1, high: 1).data
            // Padding (non-causal only): the last key of every sequence, and every key of sequence 1 (if
            // any), which checks the all-zero rows.
            var pad = [Bool](repeating: false, count: b * tk)
            if !causal { for bi in 0..<b { pad[bi * tk + tk - 1] = tk > 1 }; if b > 1 { for j in 0..<tk { pad[tk + j] = true } } }
            func run(fast: Bool) -> [[Float]] {
                var out = [Float](repeating: .nan, count: b * tq * a), att = [Float](repeating: .nan, count: b * heads * tq * tk)
                var g = [Float](repeating: 0.5, count: qkv.count)
                qkv.withUnsafeBufferPointer { x in
                    pad.withUnsafeBufferPointer { p in
                        g.withUnsafeMutableBufferPointer { gp in
                            let q = x.baseAddress!, k = q + a, v = q + 2 * a, dq = gp.baseAddress!, dkk = dq + a, dv = dq + 2 * a
                            let kp = causal ? nil : p.baseAddress
                            if fast {
                                Kernels.attentionForward(
                                    out: &out, weights: &att, q: q, k: k, v: v, keyPadding: kp, causal: causal, batch: b, queries: tq,
                                    keys: tk, heads: heads, headSize: dk, qStride: qStride, kvStride: kvStride)
                                Kernels.attentionBackward(
                                    dQ: dq, dK: dkk, dV: dv, dOut: dout, q: q, k: k, v: v, weights: att, batch: b, queries: tq, keys: tk,
                                    heads: heads, headSize: dk, qStride: qStride, kvStride: kvStride)
                            } else {
                                Kernels.attentionForwardReference(
                                    out: &out, weights: &att, q: q, k: k, v: v, keyPadding: kp, causal: causal, batch: b, queries: tq,
                                    keys: tk, heads: heads, headSize: dk, qStride: qStride, kvStride: kvStride)
                                Kernels.attentionBackwardReference(
                                    dQ: dq, dK: dkk, dV: dv, dOut: dout, q: q, k: k, v: v, weights: att, batch: b, queries: tq, keys: tk,
                                    heads: heads, headSize: dk, qStride: qStride, kvStride: kvStride)
                            }
                        }
                    }
                }
                return [out, att, g]
            }
            let fast = run(fast: true), ref = run(fast: false)
            for (name, i) in [("out", 0), ("att", 1), ("grads", 2)] {
                // NaN-safe: every element must be within tolerance (a NaN fails `<`).
                let bad = zip(fast[i], ref[i]).filter { !(abs($0 - $1) < 2e-5) }.count
                #expect(bad == 0, "\(name) \(shape) causal \(causal): \(bad) elements differ")
            }
            // Hidden keys get exactly zero weight.
            if causal, tq > 1 { #expect(fast[1][1] == 0) }
            if !causal, b > 1 { #expect(fast[1][(heads * tq * tk)..<(2 * heads * tq * tk)].allSatisfy { $0 == 0 }) }
        }
    }
}

/// Attention against a KV cache (every model's generation) equals the last rows of full causal
/// attention: one new position (the loop path), several (the GEMM path from 8 on), and grouped-query
/// attention, where the reference sees each key/value head repeated for its group of query heads.
@Suite struct CachedAttentionTests {
    @Test(arguments: [(1, 1, 1, 8, 1), (13, 3, 3, 20, 1), (13, 3, 3, 20, 13), (300, 6, 6, 64, 1), (40, 6, 2, 16, 9), (40, 6, 2, 16, 1)])
    func lastRowsOfCausalAttention(shape: (Int, Int, Int, Int, Int)) {
        let (t, heads, kvHeads, hs, n) = shape
        let d = heads * hs, dkv = kvHeads * hs, group = heads / kvHeads
        var rng = SeededRNG(seed: UInt64(t * 7 + n))
        let q = rng.uniform(shape: [t * d], low: -2, high: 2).data
        let k = rng.uniform(shape: [t * dkv], low: -2, high: 2).data, v = rng.uniform(shape: [t * dkv], low: -2, high: 2).data
        // The reference with every key/value head copied to the query heads that read it.
        func expand(_ x: [Float]) -> [Float] {
            var out: [Float] = []
            for p in 0..<t {
                for h in 0..<heads {
                    let from = p * dkv + (h / group) * hs
                    out += x[from..<(from + hs)]
                }
            }
            return out
        }
        var out = [Float](repeating: 0, count: t * d), att = [Float](repeating: 0, count: heads * t * t)
        Kernels.attentionForwardReference(
            out: &out, weights: &att, q: q, k: expand(k), v: expand(v), keyPadding: nil, causal: true,
            batch: 1, queries: t, keys: t, heads: heads, headSize: hs, qStride: d, kvStride: d)
        var cached = [Float](repeating: .nan, count: n * d)
        q.withUnsafeBufferPointer { qp in
            Kernels.cachedAttentionForward(
                out: &cached, q: qp.baseAddress! + (t - n) * d, kCache: k, vCache: v,
                n: n, start: t - n, heads: heads, kvHeads: kvHeads, headSize: hs)
        }
        let last = Array(out[((t - n) * d)...])
        let worst = zip(cached, last).map { abs($0 - $1) }.max()!
        #expect(worst < 1e-5, "t \(t), n \(n), heads \(heads)/\(kvHeads): worst difference \(worst)")
    }

    /// Sliding-window attention (Gemma 3's local blocks): position p sees keys p − window + 1 … p,
    /// computed here the plain way, on both paths (n = 1 and 3: the loop; 12: the GEMM) and with the
    /// window wider than the context (no effect).
    @Test(arguments: [(30, 1, 5), (30, 3, 5), (30, 12, 5), (30, 12, 1), (30, 12, 64), (9, 9, 4)])
    func slidingWindow(shape: (Int, Int, Int)) {
        let (t, n, window) = shape
        let heads = 4, kvHeads = 2, hs = 8, d = heads * hs, dkv = kvHeads * hs
        var rng = SeededRNG(seed: UInt64(t * 31 + n * 7 + window))
        let q = rng.uniform(shape: [t * d], low: -2, high: 2).data
        let k = rng.uniform(shape: [t * dkv], low: -2, high: 2).data, v = rng.uniform(shape: [t * dkv], low: -2, high: 2).data
        var want = [Float](repeating: 0, count: n * d)
        for i in 0..<n {
            let p = t - n + i, lo = max(0, p - window + 1)
            for h in 0..<heads {
                let kvh = h / (heads / kvHeads)
                var s: [Double] = (lo...p).map { j in
                    let dot = (0..<hs).reduce(0.0) { $0 + Double(q[p * d + h * hs + $1]) * Double(k[j * dkv + kvh * hs + $1]) }
                    return dot / Double(hs).squareRoot()
                }
                let m = s.max()!
                s = s.map { Foundation.exp($0 - m) }
                let z = s.reduce(0, +)
                for e in 0..<hs {
                    want[i * d + h * hs + e] = Float(zip(lo...p, s).reduce(0.0) { $0 + $1.1 / z * Double(v[$1.0 * dkv + kvh * hs + e]) })
                }
            }
        }
        var got = [Float](repeating: .nan, count: n * d)
        q.withUnsafeBufferPointer { qp in
            Kernels.cachedAttentionForward(
                out: &got, q: qp.baseAddress! + (t - n) * d, kCache: k, vCache: v,
                n: n, start: t - n, heads: heads, kvHeads: kvHeads, headSize: hs, window: window)
        }
        let worst = zip(got, want).map { abs($0 - $1) }.max()!
        #expect(worst < 1e-5, "t \(t), n \(n), window \(window): worst difference \(worst)")
    }
}

/// The vectorised, multi-threaded row kernels against their scalar references, at widths that are
/// and are not multiples of 8 and row counts large enough to be split across threads.
@Suite struct RowKernelTests {
    @Test(arguments: [(3, 5), (300, 128), (517, 13), (64, 1000)])
    func layerNormMatchesReference(shape: (Int, Int)) {
        let (n, c) = shape
        var rng = SeededRNG(seed: UInt64(n + c))
        let x = rng.uniform(shape: [n * c], low: -3, high: 3).data, dy = rng.uniform(shape: [n * c], low: -1, high: 1).data
        let gamma = rng.uniform(shape: [c], low: 0.5, high: 1.5).data, beta = rng.uniform(shape: [c], low: -1, high: 1).data
        func run(fast: Bool) -> [[Float]] {
            var out = [Float](repeating: .nan, count: n * c), mean = [Float](repeating: 0, count: n), rstd = mean
            var dx = [Float](repeating: 0.25, count: n * c), dg = [Float](repeating: 0.5, count: c), db = dg
            if fast {
                Kernels.layerNormForward(
                    out: &out, mean: &mean, rstd: &rstd, input: x, gamma: gamma, beta: beta, rows: n, width: c, eps: 1e-5)
                Kernels.layerNormBackward(
                    dInput: &dx, dGamma: &dg, dBeta: &db, dOut: dy, input: x, gamma: gamma, mean: mean, rstd: rstd, rows: n, width: c)
            } else {
                Kernels.layerNormForwardReference(
                    out: &out, mean: &mean, rstd: &rstd, input: x, gamma: gamma, beta: beta, rows: n, width: c, eps: 1e-5)
                Kernels.layerNormBackwardReference(
                    dInput: &dx, dGamma: &dg, dBeta: &db, dOut: dy, input: x, gamma: gamma, mean: mean, rstd: rstd, rows: n, width: c)
            }
            return [out, mean, rstd, dx, dg, db]
        }
        let f = run(fast: true), r = run(fast: false)
        for (i, name) in ["out", "mean", "rstd", "dx", "dgamma", "dbeta"].enumerated() {
            let tol: Float = i >= 4 ? 1e-4 * Float(n) : 1e-4  // ∂γ, ∂β sum n rows in a different order
            let bad = zip(f[i], r[i]).filter { !(abs($0 - $1) <= tol * max(1, abs($1))) }.count
            #expect(bad == 0, "\(name) n \(n) c \(c): \(bad) elements differ")
        }
    }

    @Test(arguments: [GELUForm.tanh, GELUForm.erf])
    func biasGELUEqualsBiasThenGELU(form: GELUForm) {
        let n = 70, c = 515  // rows split across threads; a width with an 8-lane tail
        var rng = SeededRNG(seed: 9)
        let x = rng.uniform(shape: [n * c], low: -4, high: 4).data, bias = rng.uniform(shape: [c], low: -1, high: 1).data
        var pre = x, out = [Float](repeating: .nan, count: n * c)
        Kernels.biasGELUForward(out: &out, pre: &pre, bias: bias, rows: n, width: c, form: form)
        var biased = x
        for i in 0..<n { for j in 0..<c { biased[i * c + j] += bias[j] } }
        var ref = [Float](repeating: 0, count: n * c)
        Kernels.geluForward(out: &ref, input: biased, count: n * c, form: form)
        #expect(pre == biased, "the biased pre-activation is kept")
        #expect(zip(out, ref).allSatisfy { abs($0 - $1) <= 1e-6 }, "activation")
    }

    @Test(arguments: [(Float(0), 7, 5), (Float(0.1), 7, 5), (Float(0), 300, 65), (Float(0.1), 100, 8000)])
    func crossEntropyMatchesReference(smoothing: Float, n: Int, v: Int) {
        var rng = SeededRNG(seed: UInt64(n * v))
        let z = rng.uniform(shape: [n * v], low: -4, high: 4).data
        let targets: [Int32] = (0..<n).map { i in i % 5 == 3 ? -1 : Int32(rng.nextInt(below: v)) }
        var zf = z, zr = z, lf = [Float](repeating: .nan, count: n), lr = lf
        let f = Kernels.softmaxCrossEntropy(logits: &zf, losses: &lf, targets: targets, rows: n, vocab: v, smoothing: smoothing, ignore: -1)
        let r = Kernels.softmaxCrossEntropyReference(
            logits: &zr, losses: &lr, targets: targets, rows: n, vocab: v, smoothing: smoothing, ignore: -1)
        #expect(f.count == r.count && abs(f.sum - r.sum) < 1e-4 * Double(n))
        #expect(zip(lf, lr).allSatisfy { abs($0 - $1) < 1e-4 }, "per-row losses")
        #expect(zip(zf, zr).allSatisfy { abs($0 - $1) < 1e-6 }, "gradients")
    }
}
