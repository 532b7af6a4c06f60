import Foundation
import Testing
@_spi(Tuning) @testable import TensorKit

/// A small deterministic generator (SplitMix64) so the tests do not depend on other files' RNGs.
private struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    mutating func float() -> Float { Float(next() >> 40) / Float(1 << 23) - 1 }
    mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

/// One GEMM problem with padded leading dimensions, run through `fast` and `reference`.
private struct Case: CustomStringConvertible {
    var transA: Bool, transB: Bool
    var m: Int, n: Int, k: Int
    var alpha: Float, beta: Float
    var pad = 3

    var description: String {
        "\(transA ? "T" : "N")\(transB ? "T" : "N") m=\(m) n=\(n) k=\(k) alpha=\(alpha) beta=\(beta)"
    }

    /// The largest |fast − reference| relative to max|C|, after running both on identical inputs.
    func relativeError(seed: UInt64, threads: Int? = nil) -> Float {
        var rng = SplitMix(state: seed)
        // Stored shapes (row-major): A is m×k, or k×m when transposed; B is k×n, or n×k.
        let (aRows, aCols) = transA ? (k, m) : (m, k)
        let (bRows, bCols) = transB ? (n, k) : (k, n)
        let lda = aCols + pad, ldb = bCols + pad, ldc = n + pad
        let a = (0..<(aRows * lda)).map { _ in rng.float() }
        let b = (0..<(bRows * ldb)).map { _ in rng.float() }
        let c0 = (0..<(m * ldc)).map { _ in rng.float() }
        var fastC = c0, refC = c0
        if beta == 0 {
            // beta = 0 must overwrite whatever is there, NaN included.
            for i in fastC.indices { fastC[i] = .nan }
            for i in refC.indices { refC[i] = 0 }
        }
        let saved = Gemm.threads
        if let threads { Gemm.threads = threads }
        defer { Gemm.threads = saved }
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                fastC.withUnsafeMutableBufferPointer { pc in
                    Gemm.fast(
                        transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                        a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb,
                        beta: beta, c: pc.baseAddress!, ldc: ldc)
                }
                refC.withUnsafeMutableBufferPointer { pc in
                    Gemm.reference(
                        transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                        a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb,
                        beta: beta, c: pc.baseAddress!, ldc: ldc)
                }
            }
        }
        var maxRef: Float = 0, maxDiff: Float = 0
        for i in 0..<m {
            for j in 0..<ldc {
                let x = fastC[i * ldc + j], y = refC[i * ldc + j]
                if j >= n {
                    // The padding past column n must not be touched.
                    let original = beta == 0 ? Float.nan : c0[i * ldc + j]
                    if !(x == original || (x.isNaN && original.isNaN)) { return .infinity }
                    continue
                }
                if !x.isFinite { return .infinity }
                maxRef = max(maxRef, abs(y))
                maxDiff = max(maxDiff, abs(x - y))
            }
        }
        return maxDiff / max(maxRef, 1)
    }
}

/// Serialized: some tests set the process-wide `Gemm.threads`.
@Suite(.serialized) struct GemmTests {
    static let sizes = [1, 7, 17, 63, 65, 129]
    static let transposes = [(false, false), (false, true), (true, false), (true, true)]
    static let betas: [Float] = [0, 1, 0.5]

    /// Tolerance: float rounding grows with k (different summation order from the reference).
    static func tolerance(_ k: Int) -> Float { 1e-6 * Float(max(k, 16)) }

    /// Every (m, n) pair from the awkward sizes, for every transpose case, with k drawn from the
    /// same list (cycled so all six values appear for each transpose case) and beta cycled.
    @Test(arguments: [0, 1, 2, 3])
    func gridAgainstReference(transposeCase: Int) {
        let (ta, tb) = Self.transposes[transposeCase]
        var index = 0
        for m in Self.sizes {
            for n in Self.sizes {
                let k = Self.sizes[(index + transposeCase) % Self.sizes.count]
                let beta = Self.betas[index % Self.betas.count]
                let test = Case(
                    transA: ta, transB: tb, m: m, n: n, k: k, alpha: 0.75, beta: beta,
                    pad: 1 + index % 5)
                let err = test.relativeError(seed: UInt64(index * 31 + transposeCase))
                #expect(err <= Self.tolerance(k), "\(test): relative error \(err)")
                index += 1
            }
        }
    }

    /// A seeded random sample of (m, n, k) triples from the grid, all transposes and betas.
    @Test func randomTriples() {
        var rng = SplitMix(state: 2024)
        for trial in 0..<120 {
            let (ta, tb) = Self.transposes[rng.int(4)]
            let m = Self.sizes[rng.int(6)], n = Self.sizes[rng.int(6)], k = Self.sizes[rng.int(6)]
            let beta = Self.betas[rng.int(3)]
            let alpha: Float = [1, -2, 0.3][rng.int(3)]
            let test = Case(transA: ta, transB: tb, m: m, n: n, k: k, alpha: alpha, beta: beta, pad: rng.int(9))
            let err = test.relativeError(seed: UInt64(trial))
            #expect(err <= Self.tolerance(k), "\(test): relative error \(err)")
        }
    }

    /// One-row products (token-by-token generation) large enough to be split across two threads,
    /// with a column count that leaves 64-, 8- and 1-wide tails, every transpose case.
    @Test func oneRowSplitAcrossThreads() {
        for (i, (ta, tb)) in Self.transposes.enumerated() {
            let test = Case(transA: ta, transB: tb, m: 1, n: 1155, k: 384, alpha: 0.5, beta: i % 2 == 0 ? 0 : 1, pad: 3)
            let err = test.relativeError(seed: UInt64(300 + i), threads: 2)
            #expect(err <= Self.tolerance(test.k), "\(test): relative error \(err)")
        }
    }

    /// Sizes that cross the KC/MC/NC block edges (k past one KC block, m past one MC block).
    @Test func blockEdges() {
        let cases = [
            Case(transA: false, transB: false, m: 230, n: 40, k: 800, alpha: 1, beta: 0.5),
            Case(transA: true, transB: true, m: 119, n: 33, k: 385, alpha: -1.5, beta: 1),
            Case(transA: false, transB: true, m: 6, n: 3100, k: 20, alpha: 2, beta: 0)
        ]
        for (i, test) in cases.enumerated() {
            let err = test.relativeError(seed: UInt64(100 + i), threads: 1)
            #expect(err <= Self.tolerance(test.k), "\(test): relative error \(err)")
        }
    }

    /// Products large enough to be split across threads, with 1 and 2 threads, all transposes.
    @Test(arguments: [1, 2])
    func multiThreaded(threads: Int) {
        for (i, (ta, tb)) in Self.transposes.enumerated() {
            // 300×200: split along M; 120×260: split along N.
            for (m, n, k) in [(300, 200, 150), (120, 260, 70)] {
                let beta = Self.betas[i % 3]
                let test = Case(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 1.25, beta: beta)
                let err = test.relativeError(seed: UInt64(7 * i + m), threads: threads)
                #expect(err <= Self.tolerance(k), "\(test) threads=\(threads): relative error \(err)")
            }
        }
    }

    /// The `DispatchQueue.concurrentPerform` path (used where the pool's atomics are unavailable).
    @Test func dispatchPath() {
        Gemm.useDispatch = true
        defer { Gemm.useDispatch = false }
        for (i, (ta, tb)) in Self.transposes.enumerated() {
            let test = Case(transA: ta, transB: tb, m: 130, n: 90, k: 50, alpha: -1, beta: Self.betas[i % 3])
            let err = test.relativeError(seed: UInt64(40 + i), threads: 2)
            #expect(err <= Self.tolerance(50), "\(test) dispatch: relative error \(err)")
        }
    }

    /// Two threads calling multi-threaded products at once: one gets the pool, the other finds it busy
    /// and runs its parts itself; both must be right.
    @Test func concurrentCallers() {
        let saved = Gemm.threads
        Gemm.threads = 2
        defer { Gemm.threads = saved }
        let errors = UnsafeMutableBufferPointer<Float>.allocate(capacity: 8)
        defer { errors.deallocate() }
        let address = UInt(bitPattern: errors.baseAddress!)
        DispatchQueue.concurrentPerform(iterations: 2) { caller in
            let out = UnsafeMutablePointer<Float>(bitPattern: address)!
            for r in 0..<4 {
                let (ta, tb) = Self.transposes[(caller + r) % 4]
                let test = Case(transA: ta, transB: tb, m: 100 + 6 * r, n: 64, k: 48, alpha: 1, beta: 0.5)
                out[caller * 4 + r] = test.relativeError(seed: UInt64(caller * 10 + r))
            }
        }
        for e in errors { #expect(e <= Self.tolerance(48)) }
    }

    /// k = 0 and alpha = 0 reduce to C = beta·C; empty m or n leave C alone.
    @Test func degenerate() {
        var c: [Float] = [.nan, 2, 3, 4]
        let x: [Float] = [1, 2, 3, 4]
        x.withUnsafeBufferPointer { px in
            c.withUnsafeMutableBufferPointer { pc in
                Gemm.fast(
                    transA: false, transB: false, m: 2, n: 2, k: 0, a: px.baseAddress!, lda: 1,
                    b: px.baseAddress!, ldb: 2, beta: 0, c: pc.baseAddress!, ldc: 2)
            }
        }
        #expect(c == [0, 0, 0, 0])
        c = [1, 2, 3, 4]
        x.withUnsafeBufferPointer { px in
            c.withUnsafeMutableBufferPointer { pc in
                Gemm.fast(
                    transA: false, transB: false, m: 2, n: 2, k: 2, alpha: 0, a: px.baseAddress!, lda: 2,
                    b: px.baseAddress!, ldb: 2, beta: 0.5, c: pc.baseAddress!, ldc: 2)
            }
        }
        #expect(c == [0.5, 1, 1.5, 2])
    }

    /// The thread count changes who computes a block of C, never how: every element gets the same bits
    /// with 1, 2 or 3 threads (products just past the size where they split, M or N, with tails) (exact resume and data-parallel ranks compare runs bit for bit, and the
    /// thread count is process-wide).
    @Test func sameBitsWhateverTheThreadCount() {
        var rng = SplitMix(state: 77)
        for (i, (ta, tb)) in Self.transposes.enumerated() {
            for (m, n, k) in [(1, 1155, 384), (70, 130, 40), (120, 260, 12), (16, 2100, 17), (517, 9, 70)] {
                let (aRows, aCols) = ta ? (k, m) : (m, k), (bRows, bCols) = tb ? (n, k) : (k, n)
                let a = (0..<(aRows * aCols)).map { _ in rng.float() }, b = (0..<(bRows * bCols)).map { _ in rng.float() }
                func run(_ threads: Int) -> [Float] {
                    let saved = Gemm.threads
                    Gemm.threads = threads
                    defer { Gemm.threads = saved }
                    var c = [Float](repeating: 0.5, count: m * n)
                    a.withUnsafeBufferPointer { pa in
                        b.withUnsafeBufferPointer { pb in
                            c.withUnsafeMutableBufferPointer { pc in
                                Gemm.fast(
                                    transA: ta, transB: tb, m: m, n: n, k: k, alpha: 0.75, a: pa.baseAddress!, lda: aCols,
                                    b: pb.baseAddress!, ldb: bCols, beta: i % 2 == 0 ? 0 : 1, c: pc.baseAddress!, ldc: n)
                            }
                        }
                    }
                    return c
                }
                let one = run(1).map(\.bitPattern)
                for t in [2, 3] {
                    let other = run(t).map(\.bitPattern)
                    let differ = zip(one, other).filter { $0 != $1 }.count
                    #expect(
                        differ == 0,
                        "\(ta ? "T" : "N")\(tb ? "T" : "N") m=\(m) n=\(n) k=\(k): \(differ) of \(m * n) values differ between 1 and \(t) threads"
                    )
                }
            }
        }
    }

    /// `multiply` (what the layers call) agrees with the reference on a mid-sized product.
    @Test func multiplyEntryPoint() {
        let test = Case(transA: false, transB: false, m: 64, n: 48, k: 40, alpha: 1, beta: 0)
        #expect(test.relativeError(seed: 9) <= Self.tolerance(40))
    }
}
