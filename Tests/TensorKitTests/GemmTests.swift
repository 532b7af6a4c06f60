import Foundation
import Testing
@testable import TensorKit

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
                    Gemm.fast(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                              a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb,
                              beta: beta, c: pc.baseAddress!, ldc: ldc)
                }
                refC.withUnsafeMutableBufferPointer { pc in
                    Gemm.reference(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
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
                let test = Case(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 0.75, beta: beta,
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

    /// Sizes that cross the KC/MC/NC block edges (k past one KC block, m past one MC block).
    @Test func blockEdges() {
        let cases = [
            Case(transA: false, transB: false, m: 230, n: 40, k: 800, alpha: 1, beta: 0.5),
            Case(transA: true, transB: true, m: 119, n: 33, k: 385, alpha: -1.5, beta: 1),
            Case(transA: false, transB: true, m: 6, n: 3100, k: 20, alpha: 2, beta: 0),
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

    /// k = 0 and alpha = 0 reduce to C = beta·C; empty m or n leave C alone.
    @Test func degenerate() {
        var c: [Float] = [.nan, 2, 3, 4]
        let x: [Float] = [1, 2, 3, 4]
        x.withUnsafeBufferPointer { px in
            c.withUnsafeMutableBufferPointer { pc in
                Gemm.fast(transA: false, transB: false, m: 2, n: 2, k: 0, a: px.baseAddress!, lda: 1,
                          b: px.baseAddress!, ldb: 2, beta: 0, c: pc.baseAddress!, ldc: 2)
            }
        }
        #expect(c == [0, 0, 0, 0])
        c = [1, 2, 3, 4]
        x.withUnsafeBufferPointer { px in
            c.withUnsafeMutableBufferPointer { pc in
                Gemm.fast(transA: false, transB: false, m: 2, n: 2, k: 2, alpha: 0, a: px.baseAddress!, lda: 2,
                          b: px.baseAddress!, ldb: 2, beta: 0.5, c: pc.baseAddress!, ldc: 2)
            }
        }
        #expect(c == [0.5, 1, 1.5, 2])
    }

    /// `multiply` (what the layers call) agrees with the reference on a mid-sized product.
    @Test func multiplyEntryPoint() {
        let test = Case(transA: false, transB: false, m: 64, n: 48, k: 40, alpha: 1, beta: 0)
        #expect(test.relativeError(seed: 9) <= Self.tolerance(40))
    }
}

// MARK: - Benchmark (opt-in)

/// Timing only: `TRANSFORMER_BENCH=1 swift test -c release --filter GemmBenchmark`.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["TRANSFORMER_BENCH"] == "1"), .serialized)
struct GemmBenchmark {
    struct Shape {
        var name: String
        var transA: Bool, transB: Bool
        var m: Int, n: Int, k: Int
    }

    static let shapes = [
        Shape(name: "NN (4096×384)·(384×1536)", transA: false, transB: false, m: 4096, n: 1536, k: 384),
        Shape(name: "NT (4096×1536)·(384×1536)ᵀ", transA: false, transB: true, m: 4096, n: 384, k: 1536),
        Shape(name: "TN (4096×384)ᵀ·(4096×1536)", transA: true, transB: false, m: 384, n: 1536, k: 4096),
        Shape(name: "NN (4096×384)·(384×384)", transA: false, transB: false, m: 4096, n: 384, k: 384),
    ]

    /// Best-of-`reps` GFLOP/s of `body`, which performs `flops` floating-point operations.
    static func gflops(flops: Double, reps: Int, _ body: () -> Void) -> Double {
        body()  // warm-up: page in buffers, start worker threads
        var best = Double.infinity
        for _ in 0..<reps {
            let t0 = DispatchTime.now().uptimeNanoseconds
            body()
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
            best = min(best, dt)
        }
        return flops / best / 1e9
    }

    static func run(_ s: Shape, threads: Int, reference: Bool = false, reps: Int = 10) -> Double {
        let (aRows, aCols) = s.transA ? (s.k, s.m) : (s.m, s.k)
        let (bRows, bCols) = s.transB ? (s.n, s.k) : (s.k, s.n)
        var rng = SplitMix(state: 1)
        let a = (0..<(aRows * aCols)).map { _ in rng.float() }
        let b = (0..<(bRows * bCols)).map { _ in rng.float() }
        var c = [Float](repeating: 0, count: s.m * s.n)
        let saved = Gemm.threads
        Gemm.threads = threads
        defer { Gemm.threads = saved }
        return a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    gflops(flops: 2 * Double(s.m) * Double(s.n) * Double(s.k), reps: reps) {
                        if reference {
                            Gemm.reference(transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k,
                                           a: pa.baseAddress!, lda: aCols, b: pb.baseAddress!, ldb: bCols,
                                           c: pc.baseAddress!, ldc: s.n)
                        } else {
                            Gemm.multiply(transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k,
                                          a: pa.baseAddress!, lda: aCols, b: pb.baseAddress!, ldb: bCols,
                                          c: pc.baseAddress!, ldc: s.n)
                        }
                    }
                }
            }
        }
    }

    static func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
    }

    @Test func gemmThroughput() {
        let rounds = Int(ProcessInfo.processInfo.environment["TRANSFORMER_BENCH_ROUNDS"] ?? "") ?? 3
        print("GEMM GFLOP/s (best of \(rounds) rounds × 10 runs)")
        print(Self.pad("shape", 32) + "  1 thread  2 threads")
        for s in Self.shapes {
            var best1 = 0.0, best2 = 0.0
            for _ in 0..<rounds {
                best1 = max(best1, Self.run(s, threads: 1))
                best2 = max(best2, Self.run(s, threads: 2))
            }
            print(Self.pad(s.name, 32) + String(format: "  %8.1f  %9.1f", best1, best2))
        }
        let small = Shape(name: "reference NN (512×384)·(384×384)", transA: false, transB: false, m: 512, n: 384, k: 384)
        let ref = Self.run(small, threads: 1, reference: true, reps: 3)
        let fastSmall = Self.run(small, threads: 1)
        print(Self.pad(small.name, 32) + String(format: "  %8.1f  (fast, 1 thread: %.1f)", ref, fastSmall))
    }

    /// The benchmark shapes in the release build, checked against the reference with 1 and 2 threads.
    @Test func benchmarkShapesAreCorrect() {
        for s in Self.shapes {
            for threads in [1, 2] {
                let test = Case(transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, alpha: 0.5, beta: 0.5)
                let err = test.relativeError(seed: 5, threads: threads)
                #expect(err <= 1e-5, "\(s.name) threads=\(threads): relative error \(err)")
                print(Self.pad(s.name, 32) + "  threads=\(threads)  max relative error \(err)")
            }
        }
    }

    /// Block-size sweep (one thread): TRANSFORMER_BENCH_TUNE=1.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["TRANSFORMER_BENCH_TUNE"] == "1"))
    func tuneBlocks() {
        let saved = (Gemm.kcBlock, Gemm.mcBlock, Gemm.ncBlock)
        defer { (Gemm.kcBlock, Gemm.mcBlock, Gemm.ncBlock) = saved }
        for kc in [192, 256, 384, 512] {
            for mc in [48, 72, 96, 114, 144, 192, 240] {
                for nc in [1536, 4096] {
                    (Gemm.kcBlock, Gemm.mcBlock, Gemm.ncBlock) = (kc, mc, nc)
                    let r = Self.shapes.map { Self.run($0, threads: 1, reps: 5) }
                    print("kc=\(kc) mc=\(mc) nc=\(nc): " + r.map { String(format: "%6.1f", $0) }.joined(separator: " "))
                }
            }
        }
    }

    /// The micro-kernel alone on L1-resident panels: the practical FMA ceiling of this machine.
    @Test func kernelPeak() {
        let kc = 256
        let a = UnsafeMutablePointer<Float>.allocate(capacity: 6 * kc)
        let b = UnsafeMutablePointer<Float>.allocate(capacity: 16 * kc)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: 6 * 16)
        defer { a.deallocate(); b.deallocate(); c.deallocate() }
        a.initialize(repeating: 0.001, count: 6 * kc); b.initialize(repeating: 0.002, count: 16 * kc)
        c.initialize(repeating: 0, count: 96)
        let calls = 20_000
        let g = Self.gflops(flops: 2 * 6 * 16 * Double(kc) * Double(calls), reps: 5) {
            for _ in 0..<calls { Gemm.kernel6x16(kc: kc, a: a, b: b, c: c, ldc: 16, beta: 1) }
        }
        print(String(format: "micro-kernel 6×16, kc=%d, L1-resident: %.1f GFLOP/s (= %.2f GHz × 32 flop/cycle)", kc, g, g / 32))
    }

    /// Cost of one two-way fork/join with nothing to do.
    @Test func forkJoinOverhead() {
        let n = 20_000
        let t0 = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<n { DispatchQueue.concurrentPerform(iterations: 2) { _ in } }
        let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / Double(n) / 1000
        print(String(format: "concurrentPerform(2), empty: %.2f µs", dt))
    }

    /// Reference against the packed path forced on (smallWork = 0), one thread, at small and skinny sizes.
    @Test func smallThreshold() {
        let saved = Gemm.smallWork
        defer { Gemm.smallWork = saved }
        print("small: reference / packed (GFLOP/s)")
        for (m, n, k) in [(4, 4, 4), (8, 8, 8), (12, 12, 12), (16, 16, 16), (6, 16, 16), (16, 16, 4), (32, 32, 4), (64, 64, 1),
                          (4, 64, 64), (2, 64, 64), (64, 4, 64), (256, 8, 256), (8, 256, 256), (256, 256, 8)] {
            for (ta, tb) in [(false, false), (false, true), (true, false)] {
                let s = Shape(name: "\(m)×\(n)×\(k)", transA: ta, transB: tb, m: m, n: n, k: k)
                let reps = max(50, 20_000_000 / (m * n * k))
                Gemm.smallWork = Int.max
                let r = Self.run(s, threads: 1, reps: reps)
                Gemm.smallWork = 0
                let f = Self.run(s, threads: 1, reps: reps)
                print(Self.pad(s.name + " \(ta ? "T" : "N")\(tb ? "T" : "N")", 16) + String(format: "  %7.1f  %7.1f", r, f))
            }
        }
    }

    /// 1 against 2 threads with the parallel threshold off, to place it.
    @Test func parallelThreshold() {
        let saved = (Gemm.parallelWork, Gemm.threadWork)
        defer { (Gemm.parallelWork, Gemm.threadWork) = saved }
        (Gemm.parallelWork, Gemm.threadWork) = (0, 1)
        print("parallel: 1 thread / 2 threads pool / 2 threads concurrentPerform (GFLOP/s), µs at 1 thread")
        for (m, n, k) in [(32, 32, 32), (32, 64, 32), (32, 64, 64), (64, 64, 64), (64, 128, 64), (128, 128, 64), (128, 128, 128), (128, 256, 128),
                          (256, 256, 128), (256, 256, 256), (64, 512, 512), (512, 64, 512), (512, 512, 64)] {
            let s = Shape(name: "\(m)×\(n)×\(k)", transA: false, transB: false, m: m, n: n, k: k)
            let reps = max(50, 40_000_000 / (m * n * k))
            let f1 = Self.run(s, threads: 1, reps: reps)
            let f2 = Self.run(s, threads: 2, reps: reps)
            Gemm.useDispatch = true
            let f2d = Self.run(s, threads: 2, reps: reps)
            Gemm.useDispatch = false
            let us = 2 * Double(m * n * k) / f1 / 1000
            print(Self.pad(s.name, 16) + String(format: "  %7.1f  %7.1f  %7.1f   %7.1f µs   2^%.1f", f1, f2, f2d, us, log2(Double(m * n * k))))
        }
    }

    /// Splitting M against splitting N across two threads.
    @Test func splitPolicy() {
        let saved = (Gemm.parallelWork, Gemm.threadWork)
        defer { (Gemm.parallelWork, Gemm.threadWork, Gemm.splitPolicy) = (saved.0, saved.1, 0) }
        (Gemm.parallelWork, Gemm.threadWork) = (0, 1)
        print("split: M / N (GFLOP/s, 2 threads)")
        var shapes = [(64, 128, 64), (128, 64, 64), (64, 256, 128), (32, 512, 128), (16, 1024, 128), (128, 128, 128)].map {
            Shape(name: "\($0.0)×\($0.1)×\($0.2)", transA: false, transB: false, m: $0.0, n: $0.1, k: $0.2)
        }
        shapes += Self.shapes
        for s in shapes {
            let reps = max(10, 40_000_000 / (s.m * s.n * s.k))
            Gemm.splitPolicy = 1
            let fm = Self.run(s, threads: 2, reps: reps)
            Gemm.splitPolicy = 2
            let fn = Self.run(s, threads: 2, reps: reps)
            print(Self.pad(s.name, 32) + String(format: "  %7.1f  %7.1f", fm, fn))
        }
    }

    @Test func debugPool() {
        let saved = (Gemm.parallelWork, Gemm.threadWork)
        defer { (Gemm.parallelWork, Gemm.threadWork) = saved }
        (Gemm.parallelWork, Gemm.threadWork) = (0, 1)
        for (m, n, k) in [(64, 128, 64), (128, 64, 64), (128, 128, 64), (64, 64, 64), (66, 128, 64), (72, 128, 64)] {
            let s = Shape(name: "\(m)×\(n)×\(k)", transA: false, transB: false, m: m, n: n, k: k)
            let before = GemmThreadPool.debugWorkerParts.load(ordering: .relaxed)
            let g1 = Self.run(s, threads: 1, reps: 200)
            let g2 = Self.run(s, threads: 2, reps: 200)
            let after = GemmThreadPool.debugWorkerParts.load(ordering: .relaxed)
            print(Self.pad(s.name, 16) + String(format: " %7.1f %7.1f  worker parts: %d of 201", g1, g2, after - before))
        }
    }

    /// Smaller shapes typical of a tiny model, to check the single-thread / small-problem thresholds.
    @Test func smallShapes() {
        print("small shapes, GFLOP/s: reference / fast 1 thread / fast 2 threads")
        for (m, n, k) in [(8, 8, 8), (16, 16, 16), (32, 32, 32), (64, 64, 64), (64, 128, 64), (128, 128, 128), (128, 512, 128), (256, 256, 256)] {
            let s = Shape(name: "\(m)×\(n)×\(k)", transA: false, transB: false, m: m, n: n, k: k)
            let reps = max(20, 20_000_000 / (m * n * k))
            let r = Self.run(s, threads: 1, reference: true, reps: reps)
            let f1 = Self.run(s, threads: 1, reps: reps)
            let f2 = Self.run(s, threads: 2, reps: reps)
            print(Self.pad(s.name, 16) + String(format: "  %7.1f  %7.1f  %7.1f", r, f1, f2))
        }
    }
}
