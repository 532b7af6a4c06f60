import Foundation

// MARK: - Row kernels, vectorised and shared across cores
//
// Layer norm and softmax + cross-entropy reduce along each row. Swift does not vectorise float
// reductions written as scalar loops (that would reorder the additions), and on two cores a kernel
// that runs on one thread leaves the other spinning in the pool. These run 8 lanes at a time and
// split the rows across threads. Per-row results do not depend on the split; reductions across rows
// (∂γ, ∂β, the summed loss) keep one partial per part and add them in part order. The scalar
// versions stay in LayerKernels.swift as `…Reference`, and the tests hold one against the other.

@inline(__always) private func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> { load8(p) }
@inline(__always) private func load(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> { load8(p) }
@inline(__always) private func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) { store8(v, p) }

extension Kernels {
    /// `out = (x − mean) · rstd · γ + β` per row of `[n, c]`; saves `mean` and `rstd = 1/√(σ² + eps)`.
    public static func layerNormForward(
        out: FloatPtr, mean: FloatPtr, rstd: FloatPtr, input inp: ConstFloatPtr,
        gamma: ConstFloatPtr, beta: ConstFloatPtr, rows n: Int, width c: Int, eps: Float
    ) {
        let a = (
            SharedPointer(out), SharedPointer(mean), SharedPointer(rstd), SharedPointer(inp), SharedPointer(gamma), SharedPointer(beta)
        )
        parallelRanges(count: n, costPerItem: 6 * c) { rows in
            let out = a.0.pointer, mean = a.1.pointer, rstd = a.2.pointer
            let inp = a.3.readOnly, gamma = a.4.readOnly, beta = a.5.readOnly
            let c8 = c & ~7, invC = 1 / Float(c)
            for i in rows {
                let x = inp + i * c, o = out + i * c
                var s8 = SIMD8<Float>.zero
                var j = 0
                while j < c8 { s8 += load(x + j); j += 8 }
                var s = s8.sum()
                while j < c { s += x[j]; j += 1 }
                let m = s * invC
                let m8 = SIMD8<Float>(repeating: m)
                var v8 = SIMD8<Float>.zero
                j = 0
                while j < c8 { let d = load(x + j) - m8; v8 += d * d; j += 8 }
                var v = v8.sum()
                while j < c { let d = x[j] - m; v += d * d; j += 1 }
                let r = 1 / (v * invC + eps).squareRoot()
                let r8 = SIMD8<Float>(repeating: r)
                j = 0
                while j < c8 { store((load(x + j) - m8) * r8 * load(gamma + j) + load(beta + j), o + j); j += 8 }
                while j < c { o[j] = (x[j] - m) * r * gamma[j] + beta[j]; j += 1 }
                mean[i] = m; rstd[i] = r
            }
        }
    }

    /// Accumulates `dinp`, `dγ`, `dβ` from `dout`, using the statistics the forward pass saved.
    public static func layerNormBackward(
        dInput dinp: FloatPtr, dGamma dgamma: FloatPtr, dBeta dbeta: FloatPtr, dOut dout: ConstFloatPtr, input inp: ConstFloatPtr,
        gamma: ConstFloatPtr, mean: ConstFloatPtr, rstd: ConstFloatPtr, rows n: Int, width c: Int
    ) {
        let parts = chunkCount(count: n, costPerItem: 10 * c)
        // Part 0 adds into dγ/dβ directly; the others into zeroed partials, added afterwards in order.
        withUnsafeTemporaryAllocation(of: Float.self, capacity: max(1, (parts - 1) * 2 * c)) { partial in
            let pp = partial.baseAddress!
            pp.update(repeating: 0, count: (parts - 1) * 2 * c)
            let a = (
                SharedPointer(dinp), SharedPointer(dgamma), SharedPointer(dbeta), SharedPointer(dout), SharedPointer(inp),
                SharedPointer(gamma), SharedPointer(mean), SharedPointer(rstd), SharedPointer(pp)
            )
            parallelChunks(count: n, parts: parts) { part, rows in
                let dinp = a.0.pointer, dout = a.3.readOnly, inp = a.4.readOnly
                let gamma = a.5.readOnly, mean = a.6.readOnly, rstd = a.7.readOnly
                let pp = a.8.pointer
                let dg = part == 0 ? a.1.pointer : pp + (part - 1) * 2 * c
                let db = part == 0 ? a.2.pointer : dg + c
                let c8 = c & ~7, invC = 1 / Float(c)
                for i in rows {
                    let x = inp + i * c, d = dout + i * c, di = dinp + i * c
                    let m = mean[i], r = rstd[i]
                    let m8 = SIMD8<Float>(repeating: m), r8 = SIMD8<Float>(repeating: r)
                    var a8 = SIMD8<Float>.zero, b8 = SIMD8<Float>.zero
                    var j = 0
                    while j < c8 {
                        let norm = (load(x + j) - m8) * r8, dy = load(d + j), dnorm = load(gamma + j) * dy
                        a8 += dnorm; b8 += dnorm * norm
                        store(load(db + j) + dy, db + j)
                        store(load(dg + j) + norm * dy, dg + j)
                        j += 8
                    }
                    var dnormMean = a8.sum(), dnormNormMean = b8.sum()
                    while j < c {
                        let norm = (x[j] - m) * r, dnorm = gamma[j] * d[j]
                        dnormMean += dnorm; dnormNormMean += dnorm * norm
                        db[j] += d[j]; dg[j] += norm * d[j]
                        j += 1
                    }
                    dnormMean *= invC; dnormNormMean *= invC
                    let dm8 = SIMD8<Float>(repeating: dnormMean), dn8 = SIMD8<Float>(repeating: dnormNormMean)
                    j = 0
                    while j < c8 {
                        let norm = (load(x + j) - m8) * r8, dnorm = load(gamma + j) * load(d + j)
                        store(load(di + j) + (dnorm - dm8 - norm * dn8) * r8, di + j)
                        j += 8
                    }
                    while j < c {
                        let norm = (x[j] - m) * r, dnorm = gamma[j] * d[j]
                        di[j] += (dnorm - dnormMean - norm * dnormNormMean) * r
                        j += 1
                    }
                }
            }
            for p in 1..<max(parts, 1) {
                let src = pp + (p - 1) * 2 * c
                for j in 0..<c { dgamma[j] += src[j]; dbeta[j] += src[c + j] }
            }
        }
    }

    /// Softmax + cross-entropy with label smoothing, fused: writes the per-row loss and overwrites
    /// `logits` with `∂L/∂logits`, where `L` is the mean over rows whose target is not `ignore`.
    ///
    /// The smoothed target is `(1 − ε)·onehot + ε/V` (PyTorch's `label_smoothing`), so
    /// `loss = −Σ_j q_j log p_j` and `∂loss/∂z_j = p_j − q_j`. Returns (summed loss, counted rows).
    @discardableResult
    public static func softmaxCrossEntropy(
        logits: FloatPtr, losses: FloatPtr?, targets: UnsafePointer<Int32>, rows n: Int, vocab v: Int,
        smoothing: Float, ignore: Int32, computeGradient: Bool = true
    ) -> (sum: Double, count: Int) {
        var count = 0
        for i in 0..<n where targets[i] != ignore { count += 1 }
        let invCount = count > 0 ? 1 / Float(count) : 0
        let off = smoothing / Float(v), on = 1 - smoothing + off
        let parts = chunkCount(count: n, costPerItem: 20 * v)
        return withUnsafeTemporaryAllocation(of: Double.self, capacity: parts) { totals in
            let a = (SharedPointer(logits), losses.map { SharedPointer($0) }, SharedPointer(targets), SharedPointer(totals.baseAddress!))
            parallelChunks(count: n, parts: parts) { part, rows in
                let logits = a.0.pointer, losses = a.1?.pointer
                let targets = a.2.readOnly, totals = a.3.pointer
                let v8 = v & ~7
                var total = 0.0
                for i in rows {
                    let z = logits + i * v
                    let y = Int(targets[i])
                    if targets[i] == ignore {
                        losses?[i] = 0
                        if computeGradient { z.update(repeating: 0, count: v) }
                        continue
                    }
                    var mx8 = SIMD8<Float>(repeating: -.infinity)
                    var j = 0
                    while j < v8 { mx8 = mx8.replacing(with: load(z + j), where: load(z + j) .> mx8); j += 8 }
                    var m = mx8.max()
                    while j < v { m = max(m, z[j]); j += 1 }
                    let mm = SIMD8<Float>(repeating: m)
                    var s8 = SIMD8<Float>.zero, zs8 = SIMD8<Float>.zero
                    j = 0
                    while j < v8 { let zz = load(z + j); s8 += FastMath.exp(zz - mm); zs8 += zz; j += 8 }
                    var sum = s8.sum(), zsum = zs8.sum()
                    while j < v { sum += Foundation.exp(z[j] - m); zsum += z[j]; j += 1 }
                    let lse = m + Foundation.log(sum)
                    // −Σ q log p with q = off everywhere plus (on − off) at y:  Σ_j log p_j = Σ z − V·lse.
                    let loss = smoothing == 0 ? lse - z[y] : -(1 - smoothing) * (z[y] - lse) - off * (zsum - Float(v) * lse)
                    losses?[i] = loss
                    total += Double(loss)
                    if computeGradient {
                        let l8 = SIMD8<Float>(repeating: lse), inv8 = SIMD8<Float>(repeating: invCount), off8 = SIMD8<Float>(repeating: off)
                        j = 0
                        while j < v8 { store((FastMath.exp(load(z + j) - l8) - off8) * inv8, z + j); j += 8 }
                        while j < v { z[j] = (Foundation.exp(z[j] - lse) - off) * invCount; j += 1 }
                        z[y] -= (on - off) * invCount
                    }
                }
                totals[part] = total
            }
            var total = 0.0
            for p in 0..<parts { total += totals[p] }
            return (total, count)
        }
    }
}
