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
                                Gemm.fast(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 0.75, a: pa.baseAddress!, lda: aCols,
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
                    #expect(differ == 0, "\(ta ? "T" : "N")\(tb ? "T" : "N") m=\(m) n=\(n) k=\(k): \(differ) of \(m * n) values differ between 1 and \(t) threads")
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

// MARK: - Benchmark (opt-in)

/// Timing only: `TRANSFORMER_BENCH=1 swift test -c release --filter GemmBenchmark`.
/// Add TRANSFORMER_BENCH_TUNE=1 for the sweeps that chose the block sizes and thresholds.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["TRANSFORMER_BENCH"] == "1"), .serialized)
struct GemmBenchmark {
    static let tuning = ProcessInfo.processInfo.environment["TRANSFORMER_BENCH_TUNE"] == "1"

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

    struct Rate { var best: Double, median: Double }

    /// GFLOP/s of `body` (which performs `flops` operations): best and median of `reps` timed runs.
    static func gflops(flops: Double, reps: Int, _ body: () -> Void) -> Rate {
        body()  // warm-up: page in buffers, wake the workers
        var times: [Double] = []
        for _ in 0..<reps {
            let t0 = DispatchTime.now().uptimeNanoseconds
            body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9)
        }
        times.sort()
        return Rate(best: flops / times[0] / 1e9, median: flops / times[times.count / 2] / 1e9)
    }

    static func run(_ s: Shape, threads: Int, reference: Bool = false, reps: Int = 10) -> Rate {
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

    static func reps(_ m: Int, _ n: Int, _ k: Int, budget: Int = 40_000_000) -> Int { max(10, budget / (m * n * k)) }

    /// The transformer shapes, 1 and 2 threads: best and median over rounds × 10 runs.
    @Test func gemmThroughput() {
        let rounds = Int(ProcessInfo.processInfo.environment["TRANSFORMER_BENCH_ROUNDS"] ?? "") ?? 3
        print("GEMM GFLOP/s, best (median) of \(rounds) rounds × 10 runs")
        print(Self.pad("shape", 30) + "    1 thread         2 threads")
        for s in Self.shapes {
            var r1: [Rate] = [], r2: [Rate] = []
            for _ in 0..<rounds {
                r1.append(Self.run(s, threads: 1))
                r2.append(Self.run(s, threads: 2))
            }
            let b1 = r1.map(\.best).max()!, b2 = r2.map(\.best).max()!
            let m1 = r1.map(\.median).sorted()[rounds / 2], m2 = r2.map(\.median).sorted()[rounds / 2]
            print(Self.pad(s.name, 30) + String(format: "  %6.1f (%6.1f)   %6.1f (%6.1f)", b1, m1, b2, m2))
        }
        let small = Shape(name: "NN (512×384)·(384×384)", transA: false, transB: false, m: 512, n: 384, k: 384)
        let ref = Self.run(small, threads: 1, reference: true, reps: 5)
        let fast = Self.run(small, threads: 1)
        print(Self.pad(small.name, 30) + String(format: "  reference loop %.1f, fast 1 thread %.1f", ref.best, fast.best))
    }

    /// The benchmark shapes in the release build, checked against the reference with 1 and 2 threads.
    @Test func benchmarkShapesAreCorrect() {
        for s in Self.shapes {
            for threads in [1, 2] {
                let test = Case(transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, alpha: 0.5, beta: 0.5)
                let err = test.relativeError(seed: 5, threads: threads)
                #expect(err <= 1e-5, "\(s.name) threads=\(threads): relative error \(err)")
                print(Self.pad(s.name, 30) + "  threads=\(threads)  max |fast − reference| / max|C| = \(err)")
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
        print(String(format: "micro-kernel 6×16, kc=%d, L1-resident: %.1f GFLOP/s (= %.2f GHz × 32 flop/cycle)",
                     kc, g.best, g.best / 32))
    }

    /// Shapes of a small model: reference loop against `multiply` with 1 and 2 threads (median).
    @Test func smallShapes() {
        print("small shapes, median GFLOP/s: reference / multiply 1 thread / multiply 2 threads")
        for (m, n, k) in [(8, 8, 8), (16, 16, 16), (32, 32, 32), (32, 64, 64), (64, 64, 64), (64, 128, 64),
                          (128, 128, 128), (128, 512, 128), (256, 256, 256)] {
            let s = Shape(name: "\(m)×\(n)×\(k)", transA: false, transB: false, m: m, n: n, k: k)
            let reps = Self.reps(m, n, k, budget: 20_000_000)
            let r = Self.run(s, threads: 1, reference: true, reps: reps)
            let f1 = Self.run(s, threads: 1, reps: reps)
            let f2 = Self.run(s, threads: 2, reps: reps)
            print(Self.pad(s.name, 16) + String(format: "  %7.1f  %7.1f  %7.1f", r.median, f1.median, f2.median))
        }
    }

    // MARK: Tuning sweeps (TRANSFORMER_BENCH_TUNE=1)

    /// KC × MC × NC, one thread, the four transformer shapes.
    @Test(.enabled(if: tuning)) func tuneBlocks() {
        let saved = (Gemm.kcBlock, Gemm.mcBlock, Gemm.ncBlock)
        defer { (Gemm.kcBlock, Gemm.mcBlock, Gemm.ncBlock) = saved }
        print("block sweep, best GFLOP/s (1 thread): " + Self.shapes.map(\.name).joined(separator: " | "))
        for kc in [192, 256, 384, 512] {
            for mc in [48, 96, 144, 192, 240] {
                for nc in [1536, 4096] {
                    (Gemm.kcBlock, Gemm.mcBlock, Gemm.ncBlock) = (kc, mc, nc)
                    let r = Self.shapes.map { Self.run($0, threads: 1, reps: 5).best }
                    print("kc=\(kc) mc=\(mc) nc=\(nc): " + r.map { String(format: "%6.1f", $0) }.joined(separator: " "))
                }
            }
        }
    }

    /// Reference against the packed path forced on (smallWork = 0), one thread, small and skinny sizes.
    @Test(.enabled(if: tuning)) func smallThreshold() {
        let saved = Gemm.smallWork
        defer { Gemm.smallWork = saved }
        print("small: reference / packed, median GFLOP/s")
        for (m, n, k) in [(4, 4, 4), (8, 8, 8), (12, 12, 12), (16, 16, 16), (16, 16, 4), (32, 32, 4), (64, 64, 1),
                          (4, 64, 64), (2, 64, 64), (1, 256, 256), (64, 4, 64), (256, 8, 256), (8, 256, 256), (256, 256, 8)] {
            for (ta, tb) in [(false, false), (false, true), (true, false)] {
                let s = Shape(name: "\(m)×\(n)×\(k)", transA: ta, transB: tb, m: m, n: n, k: k)
                let reps = Self.reps(m, n, k, budget: 20_000_000)
                Gemm.smallWork = Int.max
                let r = Self.run(s, threads: 1, reps: reps)
                Gemm.smallWork = 0
                let f = Self.run(s, threads: 1, reps: reps)
                print(Self.pad(s.name + " \(ta ? "T" : "N")\(tb ? "T" : "N")", 16) + String(format: "  %7.1f  %7.1f", r.median, f.median))
            }
        }
    }

    /// 1 thread against 2 (resident pool, and concurrentPerform) with the parallel threshold off.
    @Test(.enabled(if: tuning)) func parallelThreshold() {
        let saved = (Gemm.parallelWork, Gemm.threadWork)
        defer { (Gemm.parallelWork, Gemm.threadWork) = saved }
        (Gemm.parallelWork, Gemm.threadWork) = (0, 1)
        print("parallel, median GFLOP/s: 1 thread / 2 threads pool / 2 threads concurrentPerform")
        for (m, n, k) in [(32, 32, 32), (32, 64, 32), (32, 64, 64), (64, 64, 64), (64, 128, 64), (128, 128, 64),
                          (128, 128, 128), (128, 256, 128), (256, 256, 128), (256, 256, 256), (512, 512, 64)] {
            let s = Shape(name: "\(m)×\(n)×\(k)", transA: false, transB: false, m: m, n: n, k: k)
            let reps = Self.reps(m, n, k)
            let f1 = Self.run(s, threads: 1, reps: reps)
            let f2 = Self.run(s, threads: 2, reps: reps)
            Gemm.useDispatch = true
            let f2d = Self.run(s, threads: 2, reps: reps)
            Gemm.useDispatch = false
            let us = 2 * Double(m * n * k) / f1.median / 1000
            print(Self.pad(s.name, 16) + String(format: "  %7.1f  %7.1f  %7.1f   (%.1f µs at 1 thread, 2^%.0f)",
                                                 f1.median, f2.median, f2d.median, us, log2(Double(m * n * k))))
        }
    }

    /// Worker idle policy: pure spin 50 µs against spin 20 µs + sched_yield polling to 100 µs.
    @Test(.enabled(if: tuning)) func spinPolicy() {
        let saved = (Gemm.parallelWork, Gemm.threadWork, GemmThreadPool.spinNanoseconds, GemmThreadPool.yieldNanoseconds)
        defer {
            (Gemm.parallelWork, Gemm.threadWork) = (saved.0, saved.1)
            (GemmThreadPool.spinNanoseconds, GemmThreadPool.yieldNanoseconds) = (saved.2, saved.3)
        }
        (Gemm.parallelWork, Gemm.threadWork) = (0, 1)
        print("spin policy, best-of-3 median GFLOP/s: 1T / 2T pure spin / 2T spin+yield")
        for (m, n, k) in [(32, 64, 64), (64, 64, 64), (64, 128, 64), (128, 128, 64), (128, 128, 128)] {
            let s = Shape(name: "\(m)×\(n)×\(k)", transA: false, transB: false, m: m, n: n, k: k)
            let reps = Self.reps(m, n, k)
            var r = [0.0, 0.0, 0.0]
            for _ in 0..<3 {
                r[0] = max(r[0], Self.run(s, threads: 1, reps: reps).median)
                (GemmThreadPool.spinNanoseconds, GemmThreadPool.yieldNanoseconds) = (50_000, 50_000)
                r[1] = max(r[1], Self.run(s, threads: 2, reps: reps).median)
                (GemmThreadPool.spinNanoseconds, GemmThreadPool.yieldNanoseconds) = (20_000, 100_000)
                r[2] = max(r[2], Self.run(s, threads: 2, reps: reps).median)
            }
            print(Self.pad(s.name, 16) + String(format: "  %7.1f  %7.1f  %7.1f", r[0], r[1], r[2]))
        }
    }

    /// Splitting M against splitting N across two threads.
    @Test(.enabled(if: tuning)) func splitPolicy() {
        let saved = (Gemm.parallelWork, Gemm.threadWork)
        defer { (Gemm.parallelWork, Gemm.threadWork, Gemm.splitPolicy) = (saved.0, saved.1, 0) }
        (Gemm.parallelWork, Gemm.threadWork) = (0, 1)
        print("split, median GFLOP/s (2 threads): M / N")
        var shapes = [(64, 128, 64), (128, 64, 64), (64, 256, 128), (32, 512, 128), (96, 256, 128), (16, 1024, 128),
                      (128, 128, 128), (256, 96, 128)].map {
            Shape(name: "\($0.0)×\($0.1)×\($0.2)", transA: false, transB: false, m: $0.0, n: $0.1, k: $0.2)
        }
        shapes += Self.shapes
        for s in shapes {
            let reps = Self.reps(s.m, s.n, s.k)
            Gemm.splitPolicy = 1
            let fm = Self.run(s, threads: 2, reps: reps)
            Gemm.splitPolicy = 2
            let fn = Self.run(s, threads: 2, reps: reps)
            print(Self.pad(s.name, 30) + String(format: "  %7.1f  %7.1f", fm.median, fn.median))
        }
    }
}
