import Foundation
@_spi(Tuning) import TensorKit

/// The GEMM's speed figures (`transformer bench --only gemm`) and the sweeps that chose its block
/// sizes and thresholds (`--only gemm-tune`). Benchmarks, not tests: they print, and only the
/// correctness check on the benchmark shapes can fail the command.
enum GemmBenchmarks {
    struct Shape {
        var name: String
        var transA: Bool, transB: Bool
        var m: Int, n: Int, k: Int
    }

    /// A transformer layer's products: (4096×384)·(384×1536), the two its backward pass needs, and the
    /// square projection.
    static let shapes = [
        Shape(name: "NN (4096×384)·(384×1536)", transA: false, transB: false, m: 4096, n: 1536, k: 384),
        Shape(name: "NT (4096×1536)·(384×1536)ᵀ", transA: false, transB: true, m: 4096, n: 384, k: 1536),
        Shape(name: "TN (4096×384)ᵀ·(4096×1536)", transA: true, transB: false, m: 384, n: 1536, k: 4096),
        Shape(name: "NN (4096×384)·(384×384)", transA: false, transB: false, m: 4096, n: 384, k: 384)
    ]

    struct Rate { var best: Double, median: Double }

    /// Random operands for `s`, and C.
    struct Operands {
        let a: [Float], b: [Float]
        var c: [Float]
        let lda: Int, ldb: Int

        init(_ s: Shape, seed: UInt64) {
            var rng = SeededRNG(seed: seed)
            let (aRows, aCols) = s.transA ? (s.k, s.m) : (s.m, s.k)
            let (bRows, bCols) = s.transB ? (s.n, s.k) : (s.k, s.n)
            a = rng.uniform(shape: [aRows * aCols], low: -1, high: 1).data
            b = rng.uniform(shape: [bRows * bCols], low: -1, high: 1).data
            c = rng.uniform(shape: [s.m * s.n], low: -1, high: 1).data
            lda = aCols; ldb = bCols
        }

        mutating func multiply(_ s: Shape, alpha: Float = 1, beta: Float = 0, reference: Bool = false) {
            let (lda, ldb) = (lda, ldb)
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    c.withUnsafeMutableBufferPointer { pc in
                        if reference {
                            Gemm.reference(
                                transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, alpha: alpha,
                                a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb, beta: beta,
                                c: pc.baseAddress!, ldc: s.n)
                        } else {
                            Gemm.multiply(
                                transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, alpha: alpha,
                                a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb, beta: beta,
                                c: pc.baseAddress!, ldc: s.n)
                        }
                    }
                }
            }
        }
    }

    /// GFLOP/s of `body` (which performs `flops` operations): best and median of `reps` timed runs
    /// after one warm-up (pages in the buffers, wakes the workers).
    static func gflops(flops: Double, reps: Int, _ body: () -> Void) -> Rate {
        body()
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
        var ops = Operands(s, seed: 1)
        let saved = Gemm.threads
        Gemm.threads = threads
        defer { Gemm.threads = saved }
        return gflops(flops: 2 * Double(s.m) * Double(s.n) * Double(s.k), reps: reps) { ops.multiply(s, reference: reference) }
    }

    /// Repetitions worth ~`budget` multiply-adds, at least 10.
    static func reps(_ m: Int, _ n: Int, _ k: Int, budget: Int = 40_000_000) -> Int { max(10, budget / (m * n * k)) }

    static func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
    }

    static func shape(_ m: Int, _ n: Int, _ k: Int, _ ta: Bool = false, _ tb: Bool = false) -> Shape {
        Shape(name: "\(m)×\(n)×\(k)" + (ta || tb ? " \(ta ? "T" : "N")\(tb ? "T" : "N")" : ""), transA: ta, transB: tb, m: m, n: n, k: k)
    }

    // MARK: - Figures (--only gemm)

    /// The check the old `benchmarkShapesAreCorrect` test made: `Gemm.fast` (the packed GEMM itself,
    /// whatever backend `multiply` uses) against `Gemm.reference` on each benchmark shape and thread
    /// count, with alpha 0.5, beta 0.5 and every leading dimension padded by 3. Prints
    /// max |fast − reference| / max |C| per shape and thread count; returns false when one exceeds
    /// `tolerance`, a value is not finite, or the padding past column n was written.
    static let tolerance: Float = 1e-5

    static func checkShapes(threads: [Int]) -> Bool {
        var ok = true
        for s in shapes {
            let (aRows, aCols) = s.transA ? (s.k, s.m) : (s.m, s.k)
            let (bRows, bCols) = s.transB ? (s.n, s.k) : (s.k, s.n)
            let padding = 3, lda = aCols + padding, ldb = bCols + padding, ldc = s.n + padding
            var rng = SeededRNG(seed: 5)
            let a = rng.uniform(shape: [aRows * lda], low: -1, high: 1).data
            let b = rng.uniform(shape: [bRows * ldb], low: -1, high: 1).data
            let c0 = rng.uniform(shape: [s.m * ldc], low: -1, high: 1).data
            func product(threads: Int?) -> [Float] {
                var c = c0
                a.withUnsafeBufferPointer { pa in
                    b.withUnsafeBufferPointer { pb in
                        c.withUnsafeMutableBufferPointer { pc in
                            if let threads {
                                let saved = Gemm.threads
                                Gemm.threads = threads
                                defer { Gemm.threads = saved }
                                Gemm.fast(
                                    transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, alpha: 0.5,
                                    a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb, beta: 0.5,
                                    c: pc.baseAddress!, ldc: ldc)
                            } else {
                                Gemm.reference(
                                    transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, alpha: 0.5,
                                    a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb, beta: 0.5,
                                    c: pc.baseAddress!, ldc: ldc)
                            }
                        }
                    }
                }
                return c
            }
            let reference = product(threads: nil)
            var scale: Float = 0
            for i in 0..<s.m { for j in 0..<s.n { scale = max(scale, abs(reference[i * ldc + j])) } }
            for t in threads {
                let fast = product(threads: t)
                var diff: Float = 0, padTouched = false
                for i in 0..<s.m {
                    for j in 0..<ldc {
                        let x = fast[i * ldc + j]
                        if j >= s.n {
                            if x != c0[i * ldc + j] { padTouched = true }
                        } else {
                            // Not finite (NaN included) counts as infinitely wrong; `max` would skip a NaN.
                            diff = max(diff, x.isFinite ? abs(x - reference[i * ldc + j]) : .infinity)
                        }
                    }
                }
                let err = diff / max(scale, 1)
                let good = err <= tolerance && !padTouched
                let verdict = good ? "ok" : padTouched ? "WRONG (wrote past column n)" : "WRONG (over 1e-5)"
                print(pad(s.name, 30) + String(format: "  threads %d: max |fast − reference| / max|C| = %.2e  ", t, err) + verdict)
                ok = ok && good
            }
        }
        return ok
    }

    /// The benchmark shapes at each thread count: best and median over `rounds` rounds × 10 runs.
    static func throughput(threads: [Int], rounds: Int) {
        print("GEMM GFLOP/s, best (median) of \(rounds) rounds × 10 runs")
        print(pad("shape", 30) + threads.map { "  \($0) thread\($0 == 1 ? " " : "s")      " }.joined())
        for s in shapes {
            var line = pad(s.name, 30)
            for t in threads {
                let r = (0..<rounds).map { _ in run(s, threads: t) }
                let best = r.map(\.best).max()!, median = r.map(\.median).sorted()[rounds / 2]
                line += String(format: "  %6.1f (%6.1f)", best, median)
            }
            print(line)
        }
        let small = shape(512, 384, 384)
        let ref = run(small, threads: 1, reference: true, reps: 5), fast = run(small, threads: 1)
        print(pad("NN (512×384)·(384×384)", 30) + String(format: "  reference loop %.1f, fast 1 thread %.1f", ref.best, fast.best))
    }

    /// The micro-kernel alone on L1-resident panels: the practical FMA ceiling of this machine.
    static func kernelPeak() {
        let kc = 256
        let a = UnsafeMutablePointer<Float>.allocate(capacity: 6 * kc), b = UnsafeMutablePointer<Float>.allocate(capacity: 16 * kc)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: 6 * 16)
        defer { a.deallocate(); b.deallocate(); c.deallocate() }
        a.initialize(repeating: 0.001, count: 6 * kc); b.initialize(repeating: 0.002, count: 16 * kc)
        c.initialize(repeating: 0, count: 96)
        let calls = 20_000
        let g = gflops(flops: 2 * 6 * 16 * Double(kc) * Double(calls), reps: 5) {
            for _ in 0..<calls { Gemm.kernel6x16(kc: kc, a: a, b: b, c: c, ldc: 16, beta: 1) }
        }
        print(String(format: "micro-kernel 6×16, kc=%d, L1-resident: %.1f GFLOP/s (= %.2f GHz × 32 flop/cycle)", kc, g.best, g.best / 32))
    }

    /// A small model's shapes: the reference loop against `multiply` on 1 and 2 threads (medians).
    static func smallShapes() {
        print("small shapes, median GFLOP/s: reference / multiply 1 thread / multiply 2 threads")
        for (m, n, k) in [
            (8, 8, 8), (16, 16, 16), (32, 32, 32), (32, 64, 64), (64, 64, 64), (64, 128, 64),
            (128, 128, 128), (128, 512, 128), (256, 256, 256)
        ] {
            let s = shape(m, n, k), r = reps(m, n, k, budget: 20_000_000)
            let ref = run(s, threads: 1, reference: true, reps: r), f1 = run(s, threads: 1, reps: r), f2 = run(s, threads: 2, reps: r)
            print(pad(s.name, 16) + String(format: "  %7.1f  %7.1f  %7.1f", ref.median, f1.median, f2.median))
        }
    }

    // MARK: - Sweeps (--only gemm-tune)

    static func tune() {
        tuneBlocks(); smallThreshold(); parallelThreshold(); spinPolicy(); splitPolicy()
    }

    /// KC × MC × NC, one thread, the benchmark shapes.
    static func tuneBlocks() {
        let saved = (Gemm.kcBlock, Gemm.mcBlock, Gemm.ncBlock)
        defer { (Gemm.kcBlock, Gemm.mcBlock, Gemm.ncBlock) = saved }
        print("block sweep, best GFLOP/s (1 thread): " + shapes.map(\.name).joined(separator: " | "))
        for kc in [192, 256, 384, 512] {
            for mc in [48, 96, 114, 144, 192, 240] {
                for nc in [1536, 3072, 4096] {
                    (Gemm.kcBlock, Gemm.mcBlock, Gemm.ncBlock) = (kc, mc, nc)
                    let r = shapes.map { run($0, threads: 1, reps: 5).best }
                    print("kc=\(kc) mc=\(mc) nc=\(nc): " + r.map { String(format: "%6.1f", $0) }.joined(separator: " "))
                }
            }
        }
    }

    /// The plain loop against the packed path forced on (smallWork = 0), one thread, small and skinny sizes.
    static func smallThreshold() {
        let saved = Gemm.smallWork
        defer { Gemm.smallWork = saved }
        print("small: plain loop / packed, median GFLOP/s (the threshold is \(saved) multiply-adds)")
        for (m, n, k) in [
            (4, 4, 4), (8, 8, 8), (12, 12, 12), (16, 16, 16), (16, 16, 4), (32, 32, 4), (64, 64, 1),
            (4, 64, 64), (2, 64, 64), (1, 256, 256), (64, 4, 64), (256, 8, 256), (8, 256, 256), (256, 256, 8)
        ] {
            for (ta, tb) in [(false, false), (false, true), (true, false)] {
                let s = shape(m, n, k, ta, tb), r = reps(m, n, k, budget: 20_000_000)
                Gemm.smallWork = Int.max
                let plain = run(s, threads: 1, reps: r)
                Gemm.smallWork = 0
                let packed = run(s, threads: 1, reps: r)
                print(pad(s.name, 16) + String(format: "  %7.1f  %7.1f", plain.median, packed.median))
            }
        }
    }

    /// 1 thread against 2 (the resident pool, and concurrentPerform) with the parallel threshold off.
    static func parallelThreshold() {
        let saved = (Gemm.parallelWork, Gemm.threadWork)
        defer { (Gemm.parallelWork, Gemm.threadWork) = saved }
        (Gemm.parallelWork, Gemm.threadWork) = (0, 1)
        print("parallel, median GFLOP/s: 1 thread / 2 threads pool / 2 threads concurrentPerform")
        for (m, n, k) in [
            (32, 32, 32), (32, 64, 32), (32, 64, 64), (64, 64, 64), (64, 128, 64), (128, 128, 64),
            (128, 128, 128), (128, 256, 128), (256, 256, 128), (256, 256, 256), (512, 512, 64)
        ] {
            let s = shape(m, n, k), r = reps(m, n, k)
            let f1 = run(s, threads: 1, reps: r), f2 = run(s, threads: 2, reps: r)
            Gemm.useDispatch = true
            let f2d = run(s, threads: 2, reps: r)
            Gemm.useDispatch = false
            let us = 2 * Double(m * n * k) / f1.median / 1000
            print(
                pad(s.name, 16)
                    + String(
                        format: "  %7.1f  %7.1f  %7.1f   (%.1f µs at 1 thread, 2^%.0f)",
                        f1.median, f2.median, f2d.median, us, log2(Double(m * n * k))))
        }
    }

    /// The worker's idle policy: pure spin 50 µs against spin 20 µs + sched_yield polling to 100 µs.
    static func spinPolicy() {
        guard #available(macOS 15.0, *) else { print("spin policy: needs macOS 15"); return }
        let saved = (Gemm.parallelWork, Gemm.threadWork, GemmThreadPool.spinNanoseconds, GemmThreadPool.yieldNanoseconds)
        defer {
            (Gemm.parallelWork, Gemm.threadWork) = (saved.0, saved.1)
            (GemmThreadPool.spinNanoseconds, GemmThreadPool.yieldNanoseconds) = (saved.2, saved.3)
        }
        (Gemm.parallelWork, Gemm.threadWork) = (0, 1)
        print("spin policy, best-of-3 median GFLOP/s: 1 thread / 2 threads pure spin / 2 threads spin + yield")
        for (m, n, k) in [(32, 64, 64), (64, 64, 64), (64, 128, 64), (128, 128, 64), (128, 128, 128)] {
            let s = shape(m, n, k), r = reps(m, n, k)
            var best = [0.0, 0.0, 0.0]
            for _ in 0..<3 {
                best[0] = max(best[0], run(s, threads: 1, reps: r).median)
                (GemmThreadPool.spinNanoseconds, GemmThreadPool.yieldNanoseconds) = (50_000, 50_000)
                best[1] = max(best[1], run(s, threads: 2, reps: r).median)
                (GemmThreadPool.spinNanoseconds, GemmThreadPool.yieldNanoseconds) = (20_000, 100_000)
                best[2] = max(best[2], run(s, threads: 2, reps: r).median)
            }
            print(pad(s.name, 16) + String(format: "  %7.1f  %7.1f  %7.1f", best[0], best[1], best[2]))
        }
    }

    /// Splitting M against splitting N across two threads.
    static func splitPolicy() {
        let saved = (Gemm.parallelWork, Gemm.threadWork)
        defer { (Gemm.parallelWork, Gemm.threadWork, Gemm.splitPolicy) = (saved.0, saved.1, 0) }
        (Gemm.parallelWork, Gemm.threadWork) = (0, 1)
        print("split, median GFLOP/s (2 threads): rows (M) / columns (N)")
        let small = [
            (64, 128, 64), (128, 64, 64), (64, 256, 128), (32, 512, 128), (96, 256, 128), (16, 1024, 128),
            (128, 128, 128), (256, 96, 128)
        ].map { shape($0.0, $0.1, $0.2) }
        for s in small + shapes {
            let r = reps(s.m, s.n, s.k)
            Gemm.splitPolicy = 1
            let byRows = run(s, threads: 2, reps: r)
            Gemm.splitPolicy = 2
            let byColumns = run(s, threads: 2, reps: r)
            print(pad(s.name, 30) + String(format: "  %7.1f  %7.1f", byRows.median, byColumns.median))
        }
    }
}
