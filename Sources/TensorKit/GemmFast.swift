import Foundation

// MARK: - Fast SGEMM
//
// The Goto/BLIS scheme, in pure Swift:
//
//   for jc in N by NC                      (B block: KC×NC, lives in L3)
//     for pc in K by KC                    pack op(B)[pc.., jc..] into NR-wide column panels
//       for ic in M by MC                  pack alpha·op(A)[ic.., pc..] into MR-tall row panels (L2)
//         for jr in NC by NR               one B micro-panel (KC×NR, lives in L1)
//           for ir in MC by MR             one A micro-panel (MR×KC, streams from L2)
//             micro-kernel: MR×NR tile of C += A-panel · B-panel
//
// Both packed panels are k-major (each k step is MR contiguous floats of A, NR of B), zero-padded to
// full tiles, so the micro-kernel never branches on edges; partial tiles are computed into a scratch
// tile and only the valid part is written back. Transposes and alpha are absorbed while packing.

extension Gemm {
    /// Micro-tile rows (broadcast operand) and columns (vector operand; two SIMD8<Float> wide).
    /// 6×16 = 12 ymm accumulators + 2 B vectors + 1 broadcast = 15 of the 16 AVX2 registers.
    @usableFromInline static let mr = 6
    @usableFromInline static let nr = 16

    /// Cache blocking. The KC×NR B micro-panel (24 KB at KC = 384) stays in L1 (32–48 KB) across the
    /// ir loop; the MC×KC A block (114×384×4 = 175 KB) stays in L2 (0.5–1 MB); the KC×NC B block
    /// (≤ 4.5 MB) is read from L3. Measured on Zen 5 (one thread, the four transformer shapes): flat
    /// within ±1% for KC 192–512, MC 48–240, NC 1536–4096; KC = 384 was best by ~1% (it also makes
    /// k = 384 a single pass over C).
    @_spi(Tuning) public nonisolated(unsafe) static var kcBlock = 384
    @_spi(Tuning) public nonisolated(unsafe) static var mcBlock = 114
    @_spi(Tuning) public nonisolated(unsafe) static var ncBlock = 3072

    /// Below this many multiply-adds (m·n·k) the plain loop wins: packing costs more than it saves
    /// (measured: 4×4×4 reference 1.6 vs packed 0.9 GFLOP/s; 8×8×8 4.5 vs 5.4).
    @_spi(Tuning) public nonisolated(unsafe) static var smallWork = 512
    /// Below this many multiply-adds (≈ 2 µs of work) one thread does the whole product. With the
    /// resident pool two threads can win from 2^17 (32×64×64), but only reliably from ~2^18–2^19:
    /// below that the gain depends on where the OS has put the worker.
    @_spi(Tuning) public nonisolated(unsafe) static var parallelWork = 1 << 18
    /// And each thread gets at least this many.
    @_spi(Tuning) public nonisolated(unsafe) static var threadWork = 1 << 17

    /// How many threads a large product may use (default: the active processor count). Settable,
    /// e.g. to compare 1 against 2 threads; values below 1 are treated as 1, values above the processor
    /// count as the processor count. Lock-protected.
    public static var threads: Int {
        get { ThreadSetting.shared.value }
        set { ThreadSetting.shared.value = max(1, newValue) }
    }

    /// The packed, cache-blocked, multi-threaded SGEMM behind `multiply`. Same contract as `reference`.
    public static func fast(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m <= 0 || n <= 0 { return }
        if k <= 0 || alpha == 0 {
            scaleC(m: m, n: n, beta: beta, c: c, ldc: ldc)
            return
        }
        if m == 1 {
            gemvRow(transB: transB, n: n, k: k, alpha: alpha, a: a, aStride: transA ? lda : 1, b: b, ldb: ldb, beta: beta, c: c)
            return
        }
        let work = m * n * k
        // Tiny products, and one- or two-row products with B untransposed (the reference's row-axpy
        // form streams B once), are faster unpacked.
        if work < smallWork || (m <= 2 && !transB) {
            reference(
                transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        split(
            bf16: false, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
            beta: beta, c: c, ldc: ldc)
    }

    /// Splits a product too large for one thread across the pool and runs each share through `blocked`
    /// (Float32), or with `bf16` through the AVX-512 BF16 kernel (`tk_gemm_bf16`). Needs m, n, k ≥ 1.
    static func split(
        bf16: Bool, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        let work = m * n * k
        // Split the larger of M and N across threads: each thread then packs its own copy of the
        // other operand's block, and the duplicated packing (k·min(m, n) per thread) is the smaller one.
        let splitM = splitPolicy == 0 ? m >= n : splitPolicy == 1
        let units = splitM ? (m + mr - 1) / mr : (n + nr - 1) / nr
        let t = work >= parallelWork ? max(1, min(threads, processors, units, work / threadWork)) : 1
        // One thread's share, through the kernel asked for.
        @Sendable func share(m: Int, n: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
            if bf16 {
                blockedBF16(
                    transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                    a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            } else {
                blocked(
                    transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                    a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            }
        }
        if t == 1 {
            share(m: m, n: n, a: a, b: b, c: c)
            return
        }
        // Pointers are not Sendable; carry them as addresses into the worker closure.
        let aAddr = UInt(bitPattern: a), bAddr = UInt(bitPattern: b), cAddr = UInt(bitPattern: c)
        @Sendable func part(_ part: Int) {
            let lo = units * part / t, hi = units * (part + 1) / t
            if lo >= hi { return }
            let a = UnsafePointer<Float>(bitPattern: aAddr)!
            let b = UnsafePointer<Float>(bitPattern: bAddr)!
            let c = UnsafeMutablePointer<Float>(bitPattern: cAddr)!
            if splitM {
                let i0 = lo * mr, i1 = min(m, hi * mr)
                share(m: i1 - i0, n: n, a: transA ? a + i0 : a + i0 * lda, b: b, c: c + i0 * ldc)
            } else {
                let j0 = lo * nr, j1 = min(n, hi * nr)
                share(m: m, n: j1 - j0, a: a, b: transB ? b + j0 * ldb : b + j0, c: c + j0)
            }
        }
        if #available(macOS 15.0, *), !useDispatch {
            // The pool is busy only if another thread is mid-product; then do this one alone.
            if !GemmThreadPool.shared.run(parts: t, { part($0) }) {
                for i in 0..<t { part(i) }
            }
        } else {
            DispatchQueue.concurrentPerform(iterations: t) { part($0) }
        }
    }

    /// Never more threads than processors (the pool's workers spin while waiting).
    static let processors = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// 0: split the larger of M and N; 1: always M; 2: always N (for measurement).
    @_spi(Tuning) public nonisolated(unsafe) static var splitPolicy = 0

    /// Use `DispatchQueue.concurrentPerform` instead of the resident pool (for comparison). Behind the
    /// same lock as `threads` (read once per multi-threaded product): `GemmTests.dispatchPath` flips it
    /// while other suites' products read it on other threads, a data race on a plain static (found
    /// by reading while adding the sanitizer runs; TSan had not caught it).
    @_spi(Tuning) public static var useDispatch: Bool {
        get { ThreadSetting.shared.useDispatch }
        set { ThreadSetting.shared.useDispatch = newValue }
    }

    /// C = beta·C (beta 0 overwrites, so NaN garbage in C does not survive).
    static func scaleC(m: Int, n: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if beta == 1 { return }
        for i in 0..<m {
            let ci = c + i * ldc
            if beta == 0 { ci.update(repeating: 0, count: n) } else { for j in 0..<n { ci[j] *= beta } }
        }
    }

    /// One thread's share: the five-loop blocked product.
    static func blocked(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        // Balanced blocks: k = 384 is one KC block, k = 400 two of 200 rather than 384 + 16.
        let kBlocks = (k + kcBlock - 1) / kcBlock
        let kc0 = (k + kBlocks - 1) / kBlocks
        let mBlocks = (m + mcBlock - 1) / mcBlock
        let mc0 = roundUp((m + mBlocks - 1) / mBlocks, mr)
        let nBlocks = (n + ncBlock - 1) / ncBlock
        let nc0 = roundUp((n + nBlocks - 1) / nBlocks, nr)

        // One buffer: packed B block, packed A block, and a 6×16 scratch tile for partial edge tiles.
        let aCount = roundUp(mc0 * kc0, 16), bCount = roundUp(nc0 * kc0, 16)
        let buffer = PackBuffers.acquire(floats: bCount + aCount + mr * nr)
        defer { PackBuffers.release(buffer) }
        let packedB = buffer.pointer
        let packedA = packedB + bCount
        let edgeTile = packedA + aCount

        var jc = 0
        while jc < n {
            let nc = min(nc0, n - jc)
            var pc = 0
            while pc < k {
                let kc = min(kc0, k - pc)
                packB(transB: transB, kc: kc, nc: nc, b: b, ldb: ldb, row: pc, col: jc, into: packedB)
                let betaHere: Float = pc == 0 ? beta : 1
                var ic = 0
                while ic < m {
                    let mc = min(mc0, m - ic)
                    packA(transA: transA, mc: mc, kc: kc, alpha: alpha, a: a, lda: lda, row: ic, col: pc, into: packedA)
                    var jr = 0
                    while jr < nc {
                        let cols = min(nr, nc - jr)
                        let bPanel = UnsafePointer(packedB + jr * kc)
                        var ir = 0
                        while ir < mc {
                            let rows = min(mr, mc - ir)
                            let aPanel = UnsafePointer(packedA + ir * kc)
                            let cTile = c + (ic + ir) * ldc + (jc + jr)
                            if rows == mr && cols == nr {
                                kernel6x16(kc: kc, a: aPanel, b: bPanel, c: cTile, ldc: ldc, beta: betaHere)
                            } else {
                                // Edge: full tile into scratch, then only the valid rows × cols into C.
                                kernel6x16(kc: kc, a: aPanel, b: bPanel, c: edgeTile, ldc: nr, beta: 0)
                                for r in 0..<rows {
                                    let src = edgeTile + r * nr, dst = cTile + r * ldc
                                    if betaHere == 0 {
                                        for j in 0..<cols { dst[j] = src[j] }
                                    } else if betaHere == 1 {
                                        for j in 0..<cols { dst[j] += src[j] }
                                    } else {
                                        for j in 0..<cols { dst[j] = src[j] + betaHere * dst[j] }
                                    }
                                }
                            }
                            ir += mr
                        }
                        jr += nr
                    }
                    ic += mc
                }
                pc += kc
            }
            jc += nc
        }
    }

    @inline(__always)
    static func roundUp(_ x: Int, _ to: Int) -> Int { (x + to - 1) / to * to }

    // MARK: Packing

    /// alpha·op(A)[row..<row+mc, col..<col+kc] → ⌈mc/MR⌉ panels, each kc steps of MR floats.
    /// Rows past mc are zero.
    static func packA(
        transA: Bool, mc: Int, kc: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
        row: Int, col: Int, into dst: UnsafeMutablePointer<Float>
    ) {
        var i = 0
        var d = dst
        while i < mc {
            let rows = min(mr, mc - i)
            if transA {
                // op(A)[r, p] = a[p·lda + r]: each k step is `rows` contiguous floats.
                var src = a + col * lda + row + i
                if rows == mr {
                    for _ in 0..<kc {
                        d[0] = alpha * src[0]; d[1] = alpha * src[1]; d[2] = alpha * src[2]
                        d[3] = alpha * src[3]; d[4] = alpha * src[4]; d[5] = alpha * src[5]
                        d += mr; src += lda
                    }
                } else {
                    for _ in 0..<kc {
                        for r in 0..<rows { d[r] = alpha * src[r] }
                        for r in rows..<mr { d[r] = 0 }
                        d += mr; src += lda
                    }
                }
            } else {
                // op(A)[r, p] = a[r·lda + p]: read MR rows side by side, eight k steps at a time.
                let base = a + (row + i) * lda + col
                if rows == mr {
                    let r0 = base, r1 = base + lda, r2 = base + 2 * lda
                    let r3 = base + 3 * lda, r4 = base + 4 * lda, r5 = base + 5 * lda
                    let va = SIMD8<Float>(repeating: alpha)
                    var p = 0
                    while p + 8 <= kc {
                        let x0 = load8(r0 + p) * va, x1 = load8(r1 + p) * va, x2 = load8(r2 + p) * va
                        let x3 = load8(r3 + p) * va, x4 = load8(r4 + p) * va, x5 = load8(r5 + p) * va
                        for q in 0..<8 {
                            d[0] = x0[q]; d[1] = x1[q]; d[2] = x2[q]
                            d[3] = x3[q]; d[4] = x4[q]; d[5] = x5[q]
                            d += mr
                        }
                        p += 8
                    }
                    while p < kc {
                        d[0] = alpha * r0[p]; d[1] = alpha * r1[p]; d[2] = alpha * r2[p]
                        d[3] = alpha * r3[p]; d[4] = alpha * r4[p]; d[5] = alpha * r5[p]
                        d += mr; p += 1
                    }
                } else {
                    for p in 0..<kc {
                        for r in 0..<rows { d[r] = alpha * base[r * lda + p] }
                        for r in rows..<mr { d[r] = 0 }
                        d += mr
                    }
                }
            }
            i += mr
        }
    }

    /// op(B)[row..<row+kc, col..<col+nc] → ⌈nc/NR⌉ panels, each kc steps of NR floats.
    /// Columns past nc are zero.
    static func packB(
        transB: Bool, kc: Int, nc: Int, b: UnsafePointer<Float>, ldb: Int,
        row: Int, col: Int, into dst: UnsafeMutablePointer<Float>
    ) {
        var j = 0
        var d = dst
        while j < nc {
            let cols = min(nr, nc - j)
            if transB {
                // op(B)[p, c] = b[c·ldb + p]: NR source rows, each contiguous in k.
                let base = b + (col + j) * ldb + row
                if cols == nr {
                    var p = 0
                    while p + 8 <= kc {
                        // Transpose a 16×8 block: read 8 k-steps from each of the 16 rows.
                        for cc in 0..<nr {
                            let x = load8(base + cc * ldb + p)
                            for q in 0..<8 { d[q * nr + cc] = x[q] }
                        }
                        d += 8 * nr
                        p += 8
                    }
                    while p < kc {
                        for cc in 0..<nr { d[cc] = base[cc * ldb + p] }
                        d += nr; p += 1
                    }
                } else {
                    for p in 0..<kc {
                        for cc in 0..<cols { d[cc] = base[cc * ldb + p] }
                        for cc in cols..<nr { d[cc] = 0 }
                        d += nr
                    }
                }
            } else {
                // op(B)[p, c] = b[p·ldb + c]: each k step is NR contiguous floats.
                var src = b + row * ldb + col + j
                if cols == nr {
                    for _ in 0..<kc {
                        store8(load8(src), d)
                        store8(load8(src + 8), d + 8)
                        d += nr; src += ldb
                    }
                } else {
                    for _ in 0..<kc {
                        for cc in 0..<cols { d[cc] = src[cc] }
                        for cc in cols..<nr { d[cc] = 0 }
                        d += nr; src += ldb
                    }
                }
            }
            j += nr
        }
    }

    // MARK: Micro-kernel

    /// C[6×16] = A-panel · B-panel + beta·C over kc steps. Twelve SIMD8 accumulators in registers;
    /// each k step: one broadcast per row, two B vectors, twelve fused multiply-adds.
    @inline(never)
    @_spi(Tuning) public static func kernel6x16(
        kc: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
        c: UnsafeMutablePointer<Float>, ldc: Int, beta: Float
    ) {
        var c00 = SIMD8<Float>(), c01 = SIMD8<Float>()
        var c10 = SIMD8<Float>(), c11 = SIMD8<Float>()
        var c20 = SIMD8<Float>(), c21 = SIMD8<Float>()
        var c30 = SIMD8<Float>(), c31 = SIMD8<Float>()
        var c40 = SIMD8<Float>(), c41 = SIMD8<Float>()
        var c50 = SIMD8<Float>(), c51 = SIMD8<Float>()
        var pa = a, pb = b
        for _ in 0..<kc {
            let b0 = load8(pb), b1 = load8(pb + 8)
            var x = SIMD8<Float>(repeating: pa[0])
            c00 = c00.addingProduct(x, b0); c01 = c01.addingProduct(x, b1)
            x = SIMD8<Float>(repeating: pa[1])
            c10 = c10.addingProduct(x, b0); c11 = c11.addingProduct(x, b1)
            x = SIMD8<Float>(repeating: pa[2])
            c20 = c20.addingProduct(x, b0); c21 = c21.addingProduct(x, b1)
            x = SIMD8<Float>(repeating: pa[3])
            c30 = c30.addingProduct(x, b0); c31 = c31.addingProduct(x, b1)
            x = SIMD8<Float>(repeating: pa[4])
            c40 = c40.addingProduct(x, b0); c41 = c41.addingProduct(x, b1)
            x = SIMD8<Float>(repeating: pa[5])
            c50 = c50.addingProduct(x, b0); c51 = c51.addingProduct(x, b1)
            pa += 6; pb += 16
        }
        if beta == 0 {
            store8(c00, c); store8(c01, c + 8)
            store8(c10, c + ldc); store8(c11, c + ldc + 8)
            store8(c20, c + 2 * ldc); store8(c21, c + 2 * ldc + 8)
            store8(c30, c + 3 * ldc); store8(c31, c + 3 * ldc + 8)
            store8(c40, c + 4 * ldc); store8(c41, c + 4 * ldc + 8)
            store8(c50, c + 5 * ldc); store8(c51, c + 5 * ldc + 8)
        } else if beta == 1 {
            update(c, c00, c01, 1); update(c + ldc, c10, c11, 1)
            update(c + 2 * ldc, c20, c21, 1); update(c + 3 * ldc, c30, c31, 1)
            update(c + 4 * ldc, c40, c41, 1); update(c + 5 * ldc, c50, c51, 1)
        } else {
            update(c, c00, c01, beta); update(c + ldc, c10, c11, beta)
            update(c + 2 * ldc, c20, c21, beta); update(c + 3 * ldc, c30, c31, beta)
            update(c + 4 * ldc, c40, c41, beta); update(c + 5 * ldc, c50, c51, beta)
        }
    }

    /// One 16-wide row of C: c = acc + beta·c.
    @inline(__always)
    static func update(_ c: UnsafeMutablePointer<Float>, _ v0: SIMD8<Float>, _ v1: SIMD8<Float>, _ beta: Float) {
        if beta == 1 {
            store8(load8(c) + v0, c)
            store8(load8(c + 8) + v1, c + 8)
        } else {
            let vb = SIMD8<Float>(repeating: beta)
            store8(v0.addingProduct(vb, load8(c)), c)
            store8(v1.addingProduct(vb, load8(c + 8)), c + 8)
        }
    }
}

/// The `Gemm.threads` and `Gemm.useDispatch` values behind a lock (Swift 6 strict concurrency;
/// `Atomic` would need macOS 15, and the package's floor is macOS 13).
final class ThreadSetting: @unchecked Sendable {
    static let shared = ThreadSetting()
    private let lock = NSLock()
    private var stored = ProcessInfo.processInfo.activeProcessorCount
    private var dispatch = false
    var value: Int {
        get { lock.lock(); defer { lock.unlock() }; return stored }
        set { lock.lock(); stored = newValue; lock.unlock() }
    }
    var useDispatch: Bool {
        get { lock.lock(); defer { lock.unlock() }; return dispatch }
        set { lock.lock(); dispatch = newValue; lock.unlock() }
    }
}

/// Packing buffers, reused across calls so a large product does not fault in fresh pages each time.
/// A small free list behind a lock; each call takes one buffer per thread and gives it back.
final class PackBuffers: @unchecked Sendable {
    struct Buffer {
        let pointer: UnsafeMutablePointer<Float>
        let capacity: Int
    }

    private static let shared = PackBuffers()
    private let lock = NSLock()
    private var free: [Buffer] = []
    /// Two threads each hold a packing buffer and an attention scratch at once.
    private static let keep = 8

    static func acquire(floats: Int) -> Buffer {
        let s = shared
        s.lock.lock()
        if let i = s.free.firstIndex(where: { $0.capacity >= floats }) {
            let buf = s.free.remove(at: i)
            s.lock.unlock()
            return buf
        }
        s.lock.unlock()
        let raw = UnsafeMutableRawPointer.allocate(byteCount: floats * 4, alignment: 64)
        return Buffer(pointer: raw.bindMemory(to: Float.self, capacity: floats), capacity: floats)
    }

    static func release(_ buf: Buffer) {
        let s = shared
        s.lock.lock()
        s.free.append(buf)
        var evicted: Buffer?
        if s.free.count > keep, let i = s.free.indices.min(by: { s.free[$0].capacity < s.free[$1].capacity }) {
            evicted = s.free.remove(at: i)
        }
        s.lock.unlock()
        if let e = evicted { UnsafeMutableRawPointer(e.pointer).deallocate() }
    }
}
