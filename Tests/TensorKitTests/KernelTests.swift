import Foundation
import Testing
@testable import TensorKit

/// Values worked out by hand on small integer matrices.
@Suite struct KernelTests {
    let a = Tensor([[1, 2, 3], [4, 5, 6]])  // 2×3
    let b = Tensor([[7, 8], [9, 10], [11, 12]])  // 3×2

    @Test func matmulByHand() {
        // [1 2 3]·[7 9 11]ᵀ = 7 + 18 + 33 = 58, etc.
        #expect(matmul(a, b) == Tensor([[58, 64], [139, 154]]))
    }

    @Test func matmulTransposes() {
        // Aᵀ·A (3×3): column dot products.
        #expect(matmul(a, a, transposeA: true) == Tensor([[17, 22, 27], [22, 29, 36], [27, 36, 45]]))
        // A·Aᵀ (2×2): row dot products, as in Q·Kᵀ.
        #expect(matmul(a, a, transposeB: true) == Tensor([[14, 32], [32, 77]]))
        // Bᵀ·Aᵀ = (A·B)ᵀ
        #expect(matmul(b, a, transposeA: true, transposeB: true) == Tensor([[58, 139], [64, 154]]))
        #expect(transpose(a) == Tensor([[1, 4], [2, 5], [3, 6]]))
    }

    @Test func gemmAlphaBeta() {
        var c: [Float] = [1, 1, 1, 1]
        let x: [Float] = [1, 2, 3, 4], y: [Float] = [5, 6, 7, 8]
        x.withUnsafeBufferPointer { px in
            y.withUnsafeBufferPointer { py in
                c.withUnsafeMutableBufferPointer { pc in
                    Gemm.reference(
                        transA: false, transB: false, m: 2, n: 2, k: 2, alpha: 2, a: px.baseAddress!, lda: 2,
                        b: py.baseAddress!, ldb: 2, beta: 3, c: pc.baseAddress!, ldc: 2)
                }
            }
        }
        // 2·[[19, 22], [43, 50]] + 3
        #expect(c == [41, 47, 89, 103])
    }

    @Test func elementwise() {
        #expect(add(a, a) == Tensor([[2, 4, 6], [8, 10, 12]]))
        #expect(addBias(a, Tensor(vector: [10, 20, 30])) == Tensor([[11, 22, 33], [14, 25, 36]]))
        #expect(scale(a, 0.5) == Tensor([[0.5, 1, 1.5], [2, 2.5, 3]]))
        #expect(relu(Tensor([[-1, 0, 2]])) == Tensor([[0, 0, 2]]))
        #expect(linear(a, b, Tensor(vector: [1, -1])) == Tensor([[59, 63], [140, 153]]))
        #expect(sliceColumns(a, start: 1, width: 2) == Tensor([[2, 3], [5, 6]]))
        #expect(concatColumns([Tensor([[1], [2]]), Tensor([[3, 4], [5, 6]])]) == Tensor([[1, 3, 4], [2, 5, 6]]))
    }

    @Test func geluValues() {
        // GELU(1) = Φ(1) = 0.841345; tanh form 0.841192 (published values).
        #expect(abs(gelu(1, form: .erf) - 0.841345) < 1e-5)
        #expect(abs(gelu(1, form: .tanh) - 0.841192) < 1e-5)
        #expect(abs(gelu(-1, form: .erf) - (-0.158655)) < 1e-5)
        #expect(gelu(0, form: .erf) == 0)
    }

    @Test func softmaxByHand() {
        // softmax(0, ln 2, ln 3) = (1, 2, 3) / 6
        let s = softmaxRows(Tensor([[0, Float(log(2.0)), Float(log(3.0))]]))
        #expect(s.maxAbsDifference(Tensor([[1.0 / 6, 2.0 / 6, 3.0 / 6]])) < 1e-6)
        // Shift invariance and no overflow on large inputs.
        let big = softmaxRows(Tensor([[1000, 1000]]))
        #expect(big == Tensor([[0.5, 0.5]]))
    }

    @Test func softmaxRowsSumToOne() {
        var rng = SeededRNG(seed: 7)
        let x = rng.uniform(shape: [9, 13], low: -20, high: 20)
        let s = softmaxRows(x)
        for r in 0..<s.rows {
            let sum = s.row(r).reduce(0, +)
            #expect(abs(sum - 1) < 1e-6, "row \(r) sums to \(sum)")
        }
    }

    @Test func maskedWeightsAreExactlyZero() {
        var rng = SeededRNG(seed: 3)
        let scores = rng.uniform(shape: [5, 5], low: -4, high: 4)
        let w = softmaxRows(applyMask(scores, causalMask(5)))
        for i in 0..<5 {
            for j in 0..<5 where j > i { #expect(w[i, j] == 0) }
            #expect(abs(w.row(i).reduce(0, +) - 1) < 1e-6)
        }
        #expect(w[0, 0] == 1)
        #expect(causalMask(3) == Tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]]))
        #expect(paddingMask(queries: 2, keyIsPadding: [false, true, false]) == Tensor([[1, 0, 1], [1, 0, 1]]))
        // A fully masked row gives zeros, not NaN.
        #expect(softmaxRows(Tensor([[-Float.infinity, -Float.infinity]])) == Tensor([[0, 0]]))
    }

    @Test func logSoftmaxMatchesLogOfSoftmax() {
        let x = Tensor([[1, 2, 3], [-1, 0, 5]])
        let a = logSoftmaxRows(x), b = softmaxRows(x)
        for i in 0..<a.count { #expect(abs(a.data[i] - Float(log(Double(b.data[i])))) < 1e-5) }
    }

    @Test func layerNormByHand() {
        // Row [1, 2, 3, 4]: μ = 2.5, σ² = 1.25, σ = 1.1180; (x-μ)/σ = ±1.3416, ±0.4472.
        let r = layerNorm(Tensor([[1, 2, 3, 4]]), eps: 0)
        #expect(abs(r.mean[0] - 2.5) < 1e-6)
        #expect(abs(r.std[0] - 1.118034) < 1e-6)
        #expect(r.output.maxAbsDifference(Tensor([[-1.341641, -0.447214, 0.447214, 1.341641]])) < 1e-5)
        // γ, β applied after normalising.
        let g = layerNorm(Tensor([[1, 2, 3, 4]]), gamma: Tensor(vector: [2, 2, 2, 2]), beta: Tensor(vector: [1, 1, 1, 1]), eps: 0)
        #expect(abs(g.output[0, 0] - (1 - 2 * 1.341641)) < 1e-5)
    }

    @Test func layerNormRowsHaveMeanZeroVarianceOne() {
        var rng = SeededRNG(seed: 11)
        let x = rng.uniform(shape: [6, 16], low: -3, high: 5)
        let y = layerNorm(x, eps: 1e-12).output
        for r in 0..<y.rows {
            let row = y.row(r).map(Double.init)
            let mean = row.reduce(0, +) / Double(row.count)
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(row.count)
            #expect(abs(mean) < 1e-6)
            #expect(abs(variance - 1) < 1e-5)
        }
    }

    @Test func positionalEncodingPosition1() {
        // pos 1, d 6: sin(1), cos(1), sin(1/10000^(1/3)), cos(…), sin(1/10000^(2/3)), cos(…)
        let pe = sinusoidalPositionalEncoding(count: 2, dModel: 6)
        let expected: [Float] = [0.8415, 0.5403, 0.0464, 0.9989, 0.0022, 1.0000]
        for j in 0..<6 { #expect(abs(pe[1, j] - expected[j]) < 5e-5, "column \(j): \(pe[1, j])") }
        for j in 0..<6 { #expect(pe[0, j] == (j % 2 == 0 ? 0 : 1)) }
        // Pair index: columns 2 and 3 share the frequency 1/10000^(2/6).
        #expect(positionalEncodingExponent(column: 3, dModel: 6) == 2.0 / 6)
    }

    @Test func embeddingLookupPicksRows() {
        let table = Tensor([[0, 0], [1, 2], [3, 4]])
        #expect(embeddingLookup(table, ids: [2, 1, 2]) == Tensor([[3, 4], [1, 2], [3, 4]]))
    }

    @Test func seededRNGIsReproducible() {
        var a = SeededRNG(seed: 42), b = SeededRNG(seed: 42)
        let x = a.uniform(shape: [4], low: -1, high: 1)
        #expect(x == b.uniform(shape: [4], low: -1, high: 1))
        // Fixed values: the same on every machine (SplitMix64, seed 42).
        var c = SeededRNG(seed: 42)
        #expect(c.next() == 0xBDD7_3226_2FEB_6E95)
    }
}

@Suite struct FastMathTests {
    @Test func expAndTanhMatchLibm() {
        var worstExp: Float = 0, worstFused: Float = 0, worstTanh: Float = 0
        var x: Float = -20
        while x < 20 {
            let v = SIMD8<Float>((0..<8).map { x + Float($0) * 0.0007 })
            let e = FastMath.exp(v), f = FastMath.exp(v, fused: true), t = FastMath.tanh(v)
            for i in 0..<8 {
                let want = Float(Foundation.exp(Double(v[i])))
                worstExp = max(worstExp, abs(e[i] - want) / want)
                worstFused = max(worstFused, abs(f[i] - want) / want)
                worstTanh = max(worstTanh, abs(t[i] - Float(Foundation.tanh(Double(v[i])))))
            }
            x += 0.0131
        }
        #expect(worstExp < 1e-6, "exp relative error \(worstExp)")
        #expect(worstFused < 1e-6, "fused exp relative error \(worstFused)")
        #expect(worstTanh < 1e-6, "tanh absolute error \(worstTanh)")
        #expect(FastMath.tanh(SIMD8(repeating: 50))[0] == 1 && FastMath.tanh(SIMD8(repeating: -50))[0] == -1)
    }

    @Test func vectorGELUMatchesScalar() {
        var rng = SeededRNG(seed: 9)
        let x = rng.uniform(shape: [37], low: -6, high: 6).data
        var fast = [Float](repeating: 0, count: 37)
        Kernels.geluForward(out: &fast, input: x, count: 37, form: .tanh)
        for i in 0..<37 { #expect(abs(fast[i] - gelu(x[i], form: .tanh)) < 2e-6) }
        var d = [Float](repeating: 0, count: 37)
        Kernels.geluBackward(dInput: &d, dOut: [Float](repeating: 1, count: 37), input: x, count: 37, form: .tanh)
        for i in 0..<37 { #expect(abs(d[i] - geluDerivative(x[i], form: .tanh)) < 2e-6) }
    }

    /// BERT's GELU is the exact one, x·Φ(x) with Φ through erf; the kernel computes erf with a
    /// rational approximation, checked here against libm's double-precision `erf` over [−6, 6]
    /// (beyond ±4 erf is ±1 in float) and against the scalar reference GELU.
    @Test func vectorErfAndExactGELUMatchLibm() {
        var worstErf: Float = 0, worstGELU: Float = 0
        var x: Float = -6
        while x < 6 {
            let v = SIMD8<Float>((0..<8).map { x + Float($0) * 0.0017 })
            let e = FastMath.erf(v)
            var g = [Float](repeating: 0, count: 8)
            let inp = (0..<8).map { v[$0] }
            Kernels.geluForward(out: &g, input: inp, count: 8, form: .erf)
            for i in 0..<8 {
                worstErf = max(worstErf, abs(e[i] - Float(Foundation.erf(Double(v[i])))))
                let exact = 0.5 * Double(v[i]) * (1 + Foundation.erf(Double(v[i]) / 2.0.squareRoot()))
                worstGELU = max(worstGELU, abs(g[i] - Float(exact)))
            }
            x += 0.0131
        }
        #expect(worstErf < 1e-6, "erf absolute error \(worstErf)")
        #expect(worstGELU < 2e-6, "exact GELU absolute error \(worstGELU)")
        #expect(FastMath.erf(SIMD8(repeating: 10))[0] == 1 && FastMath.erf(SIMD8(repeating: 0))[0] == 0)
        // The tail of a count that is not a multiple of 8 goes through the scalar reference.
        var rng = SeededRNG(seed: 11)
        let r = rng.uniform(shape: [29], low: -5, high: 5).data
        var fast = [Float](repeating: 0, count: 29)
        Kernels.geluForward(out: &fast, input: r, count: 29, form: .erf)
        for i in 0..<29 { #expect(abs(fast[i] - gelu(r[i], form: .erf)) < 2e-6) }
    }
}

/// The one half-precision conversion (safetensors F16, GGUF block scales): the bit-level form equals
/// Swift's `Float16` on every pattern, NaN payloads and signed zeros included.
@Suite struct HalfPrecisionTests {
    @Test func bitLevelConversionEqualsFloat16OnAllPatterns() {
        var differing = 0
        for h in UInt16.min...UInt16.max {
            let a = floatFromHalfBits(h), b = floatFromHalf(h)
            if a.bitPattern != b.bitPattern && !(a.isNaN && b.isNaN) { differing += 1 }
        }
        #expect(differing == 0)
        #expect(floatFromHalfBits(0x3C00) == 1 && floatFromHalfBits(0xC000) == -2 && floatFromHalfBits(0x7BFF) == 65504)
        #expect(floatFromHalfBits(0x0001) == 0x1p-24 && floatFromHalfBits(0x8000).bitPattern == (-0.0 as Float).bitPattern)
        #expect(floatFromHalfBits(0x7C00) == .infinity && floatFromHalfBits(0x7E00).isNaN)
    }
}
