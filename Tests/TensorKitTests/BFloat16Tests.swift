import Foundation
import Testing

@testable import TensorKit

/// bfloat16 rounding by hand, and the bf16 product — emulated, and the AVX-512 BF16 kernel where the CPU
/// has it — against the reference on rounded inputs. (`Gemm.precision` is process-wide, so these call
/// `multiplyBF16` directly rather than switch it while other suites run in parallel; CI trains a GPT
/// with `--precision bf16` in its own process.)
@Suite struct BFloat16Tests {
    @Test func roundsToNearestEven() {
        // bf16 keeps 7 mantissa bits: between 1 and 2 its values are 2⁻⁷ = 0.0078125 apart.
        #expect(roundToBFloat16(1) == 1)
        #expect(roundToBFloat16(1 + 0x1p-8) == 1)  // halfway, the even neighbour (mantissa 0000000) is below
        #expect(roundToBFloat16(1 + 3 * 0x1p-8) == 1 + 2 * 0x1p-7)  // halfway, the even neighbour is above
        #expect(roundToBFloat16(-(1 + 3 * 0x1p-8)) == -(1 + 2 * 0x1p-7))
        #expect(roundToBFloat16(1 + 0x1p-8 + 0x1p-20) == 1 + 0x1p-7)  // past halfway
        #expect(roundToBFloat16(Float.pi) == 3.140625)  // 0x40490FDB → 0x4049
        #expect(roundToBFloat16(.infinity) == .infinity)
        #expect(roundToBFloat16(-.infinity) == -.infinity)
        #expect(roundToBFloat16(.greatestFiniteMagnitude) == .infinity)  // past bf16's largest, as vcvtneps2bf16
        #expect(roundToBFloat16(.nan).isNaN)
        #expect(roundToBFloat16(Float(bitPattern: 1)) == 0)  // the smallest subnormal
    }

    @Test func vectorPathEqualsScalar() {
        var rng = SeededRNG(seed: 21)
        var x = (0..<203).map { _ in (rng.nextUnit() * 2 - 1) * 1000 }
        x[3] = .nan; x[4] = .infinity; x[5] = -.greatestFiniteMagnitude; x[6] = 1 + 0x1p-8; x[7] = 1 + 3 * 0x1p-8
        var y = [Float](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { xs in
            y.withUnsafeMutableBufferPointer { roundToBFloat16(xs.baseAddress!, into: $0.baseAddress!, count: xs.count) }
        }
        for i in x.indices {
            let want = roundToBFloat16(x[i])
            #expect(want.isNaN ? y[i].isNaN : y[i] == want, "\(i): \(x[i])")
            #expect(want.bitPattern & 0xFFFF == 0 || want.isNaN)  // only the top 16 bits remain
        }
    }

    /// Every kernel set this CPU and build run: the emulation on those without a bf16 kernel.
    static let sets = KernelSet.supported()

    /// op(A)·op(B) in bf16 equals the Float32 product of the rounded operands (to summation order), for
    /// every transposition, with strides wider than the rows, an odd k and partial tiles; and it is not the
    /// Float32 product. The second shape spans several k blocks and both threads.
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)], sets)
    func productOfRoundedInputs(transposes: (Bool, Bool), kernels: KernelSet) {
        for (m, n, k) in [(13, 37, 71), (150, 70, 801)] {
            checkProduct(kernels: kernels, transA: transposes.0, transB: transposes.1, m: m, n: n, k: k)
        }
    }

    func checkProduct(kernels: KernelSet, transA: Bool, transB: Bool, m: Int, n: Int, k: Int) {
        let pad = 3
        var rng = SeededRNG(seed: 5)
        let (aRows, aCols) = transA ? (k, m) : (m, k), (bRows, bCols) = transB ? (n, k) : (k, n)
        let lda = aCols + pad, ldb = bCols + pad
        let a = (0..<aRows * lda).map { _ in rng.nextUnit() * 2 - 1 }, b = (0..<bRows * ldb).map { _ in rng.nextUnit() * 2 - 1 }
        let ra = a.map(roundToBFloat16), rb = b.map(roundToBFloat16)
        var got = [Float](repeating: 1, count: m * n), want = got, exact = got
        Gemm.multiplyBF16(
            kernels: kernels, transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda, b: b, ldb: ldb, beta: 0.25,
            c: &got, ldc: n)
        Gemm.reference(
            transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5, a: ra, lda: lda, b: rb, ldb: ldb, beta: 0.25, c: &want, ldc: n)
        Gemm.reference(
            transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda, b: b, ldb: ldb, beta: 0.25, c: &exact, ldc: n)
        let scale = want.map(abs).max()!
        #expect(zip(got, want).map { abs($0 - $1) }.max()! <= 1e-5 * scale, "\(kernels) \(m)×\(n)×\(k)")
        // bf16's rounding (relative 2⁻⁹ per input) moves the sums far more than Float32's summation order does
        let moved = zip(got, exact).map { abs($0 - $1) }.max()!
        #expect(moved > 1e-4 * scale && moved < 2e-2 * scale, "\(kernels) \(m)×\(n)×\(k): \(moved)")
    }
}
