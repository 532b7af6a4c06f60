import Foundation

#if arch(x86_64) && TRANSFORMER_AVX2
    import _Builtin_intrinsics.intel
#endif

extension Quantized {
    /// `out[i, r] = m[r] · x[i]` for `n` inputs at once (one decoding step of `n` conversations). `x` is
    /// `[n, cols]`; each `out` is `[n, m.rows]`, as `matmul` writes it.
    ///
    /// With one input this is `matvec`. With several, each weight block is read and unpacked once for
    /// all `n` inputs, so a step of 8 costs far less than 8 steps of 1:
    /// - with 8-bit activations, formats of 32-value blocks (Q8_0, Q4_0/1, Q5_0/1) go through an integer
    ///   kernel that unpacks a block once and takes its dot product with 4 inputs at a time
    ///   (`hasBatchedInt8Kernel`; equal to `matvec`'s 8-bit path to rounding);
    /// - otherwise each tile of 4 weight rows is de-quantised into Float32 and multiplied by all inputs with
    ///   a register-blocked kernel (2 rows × 4 inputs: 8 accumulators, 6 loads per 8 multiply-adds; equal
    ///   to `matvec`'s Float32 path to rounding).
    public static func matvecRows(
        _ products: [(out: FloatPtr, matrix: QuantizedMatrix)], _ x: ConstFloatPtr, n: Int,
        activations: ActivationPrecision = .float32
    ) {
        precondition(n >= 1, "matvecRows: n must be at least 1")
        let cols = products[0].matrix.cols
        precondition(products.allSatisfy { $0.matrix.cols == cols }, "matvecRows: the matrices must have the same width")
        if n == 1 {
            withUnsafeTemporaryAllocation(of: Float.self, capacity: cols / 32 + 1) { s in
                matvec(products, x, scratch: s.baseAddress!, activations: activations)
            }
            return
        }
        var offsets: [Int] = [], total = 0
        for p in products { offsets.append(total); total += p.matrix.rows }
        let starts = offsets
        let jobs = products.map { (SharedPointer($0.out), $0.matrix) }
        let x0 = SharedPointer(x)
        let int8 = activations.effective == .int8 && products.contains { hasBatchedInt8Kernel($0.matrix.type) }
        let blocks = cols / 32
        // the n inputs rounded to 8 bits (only when some matrix takes them): bytes, then scales and scaled sums
        let q8 = UnsafeMutablePointer<Int8>.allocate(capacity: int8 ? n * cols : 0)
        let ds = UnsafeMutablePointer<Float>.allocate(capacity: int8 ? 2 * n * blocks : 0)
        defer { q8.deallocate(); ds.deallocate() }
        if int8 { for i in 0..<n { quantizeActivations(x + i * cols, cols: cols, into: rowActivations(q8, ds, i, cols)) } }
        let q0 = SharedPointer(q8), d0 = SharedPointer(ds)
        parallelRanges(count: total, costPerItem: cols * n) { range in
            let tile = UnsafeMutablePointer<Float>.allocate(capacity: tileRows * cols)
            defer { tile.deallocate() }
            for (j, (o, m)) in jobs.enumerated() {
                let lo = max(range.lowerBound, starts[j]) - starts[j], hi = min(range.upperBound, starts[j] + m.rows) - starts[j]
                if int8 && hasBatchedInt8Kernel(m.type) {
                    if lo < hi {
                        dotRowsInt8Batched(o.pointer, m, { rowActivations(q0.pointer, d0.pointer, $0, cols) }, n: n, rows: lo..<hi)
                    }
                    continue
                }
                var t = lo
                while t < hi {
                    let rows = min(tileRows, hi - t)
                    let w: ConstFloatPtr
                    if m.type == .f32 {
                        w = m.row(t).assumingMemoryBound(to: Float.self)
                    } else {
                        for k in 0..<rows { dequantizeSIMD(m.type, m.row(t + k), tile + k * cols, count: cols) }
                        w = UnsafePointer(tile)
                    }
                    tileProducts(w, rows: rows, x0.readOnly, n: n, cols: cols, out: o.pointer + t, outStride: m.rows)
                    t += rows
                }
            }
        }
    }

    /// `dequantize` with SIMD for the 32-value formats without high bits (Q8_0, Q4_0, Q4_1): the same
    /// values bit for bit (the same products and sums, 8 at a time); the others go to `dequantize`.
    /// The scalar reference took a quarter of a batched decoding step.
    public static func dequantizeSIMD(_ type: GGMLType, _ src: UnsafeRawPointer, _ dst: FloatPtr, count: Int) {
        @inline(__always) func put(_ o: FloatPtr, _ v: SIMD8<Float>) { UnsafeMutableRawPointer(o).storeBytes(of: v, as: SIMD8<Float>.self) }
        switch type {
        case .q8_0:
            for b in 0..<count / 32 {
                let blk = src + 34 * b, d = SIMD8<Float>(repeating: half(blk)), o = dst + 32 * b
                for h in 0..<4 { put(o + 8 * h, d * floats((blk + 2 + 8 * h).loadUnaligned(as: SIMD8<Int8>.self))) }
            }
        case .q4_0, .q4_1:
            let withMin = type == .q4_1, bytes = withMin ? 20 : 18
            for b in 0..<count / 32 {
                let blk = src + bytes * b, o = dst + 32 * b
                let d = SIMD8<Float>(repeating: half(blk)), m = SIMD8<Float>(repeating: withMin ? half(blk + 2) : 0)
                let q = (blk + (withMin ? 4 : 2)).loadUnaligned(as: SIMD16<UInt8>.self)
                let lo = q & 15, hi = q &>> 4
                if withMin {  // d·q + m
                    put(o, d * floats(lo.lowHalf) + m); put(o + 8, d * floats(lo.highHalf) + m)
                    put(o + 16, d * floats(hi.lowHalf) + m); put(o + 24, d * floats(hi.highHalf) + m)
                } else {  // d·(q − 8)
                    put(o, d * (floats(lo.lowHalf) - 8)); put(o + 8, d * (floats(lo.highHalf) - 8))
                    put(o + 16, d * (floats(hi.lowHalf) - 8)); put(o + 24, d * (floats(hi.highHalf) - 8))
                }
            }
        default:
            dequantize(type, src, dst, count: count)
        }
    }

    /// Input row i's 8-bit view: `cols` bytes at `q + i·cols`; scales and scaled sums in `ds` (2 per block and row).
    @inline(__always) static func rowActivations(_ q: UnsafeMutablePointer<Int8>, _ ds: FloatPtr, _ i: Int, _ cols: Int) -> Int8Activations
    {
        let blocks = cols / 32
        return Int8Activations(q: q + i * cols, d: ds + 2 * i * blocks, s: ds + 2 * i * blocks + blocks)
    }

    /// Formats the batched integer kernel reads (blocks of 32 with one scale, and an offset or a minimum).
    public static func hasBatchedInt8Kernel(_ type: GGMLType) -> Bool {
        switch type {
        case .q8_0, .q4_0, .q4_1, .q5_0, .q5_1: return ActivationPrecision.int8Available
        default: return false
        }
    }

    /// `out[i·m.rows + r] = row r · x_i` for the rows in `rows` and every input, `a(i)` being input i rounded
    /// to 8 bits. Only for formats with `hasBatchedInt8Kernel`.
    static func dotRowsInt8Batched(
        _ out: FloatPtr, _ m: QuantizedMatrix, _ a: (Int) -> Int8Activations, n: Int, rows: Range<Int>
    ) {
        #if arch(x86_64) && TRANSFORMER_AVX2
            // (weights as bytes, scale d, offset per unit of Σx, signed?) of the block at `blk`
            switch m.type {
            case .q8_0:
                batchedBlocks(out, m, a, n, rows, stride: 34) { blk in
                    (blk.loadUnaligned(fromByteOffset: 2, as: __m256i.self), half(blk), 0, true)
                }
            case .q4_0:
                batchedBlocks(out, m, a, n, rows, stride: 18) { blk in
                    let d = half(blk)
                    return (nibbles(blk + 2), d, -8 * d, false)
                }
            case .q4_1:
                batchedBlocks(out, m, a, n, rows, stride: 20) { blk in (nibbles(blk + 4), half(blk), half(blk + 2), false) }
            case .q5_0:
                batchedBlocks(out, m, a, n, rows, stride: 22) { blk in
                    let d = half(blk), qh = UInt32(littleEndian: blk.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
                    return (_mm256_or_si256(nibbles(blk + 6), fifthBitBytes(qh)), d, -16 * d, false)
                }
            case .q5_1:
                batchedBlocks(out, m, a, n, rows, stride: 24) { blk in
                    let qh = UInt32(littleEndian: blk.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
                    return (_mm256_or_si256(nibbles(blk + 8), fifthBitBytes(qh)), half(blk), half(blk + 2), false)
                }
            default: preconditionFailure("no batched integer kernel for \(m.type)")
            }
        #else
            preconditionFailure("no integer kernels in this build")
        #endif
    }

    /// Weight rows per de-quantised tile (4 × 1,536 floats = 24 KB: in L1 while the n inputs pass over it).
    static let tileRows = 4

    /// `out[i·outStride + r] = w[r] · x[i]` for `rows` Float32 rows and `n` inputs, 2 rows × 4 inputs at a time.
    static func tileProducts(_ w: ConstFloatPtr, rows: Int, _ x: ConstFloatPtr, n: Int, cols: Int, out: FloatPtr, outStride: Int) {
        var r = 0
        while r < rows {
            let pair = r + 1 < rows
            let w0 = w + r * cols, w1 = pair ? w0 + cols : w0
            var i = 0
            while i < n {
                let k = min(4, n - i)
                // fewer than 4 inputs left: repeat the last (its extra sums are not stored)
                let xa = x + i * cols, xb = x + min(i + 1, n - 1) * cols
                let xc = x + min(i + 2, n - 1) * cols, xd = x + min(i + 3, n - 1) * cols
                var a0 = SIMD8<Float>(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0
                var c = 0
                while c + 8 <= cols {
                    let u = load8(w0 + c), v = load8(w1 + c)
                    let p = load8(xa + c), q = load8(xb + c), s = load8(xc + c), z = load8(xd + c)
                    a0.addProduct(u, p); b0.addProduct(v, p)
                    a1.addProduct(u, q); b1.addProduct(v, q)
                    a2.addProduct(u, s); b2.addProduct(v, s)
                    a3.addProduct(u, z); b3.addProduct(v, z)
                    c += 8
                }
                var ta: (Float, Float, Float, Float) = (a0.sum(), a1.sum(), a2.sum(), a3.sum())
                var tb: (Float, Float, Float, Float) = (b0.sum(), b1.sum(), b2.sum(), b3.sum())
                while c < cols {  // a width that is not a multiple of 8 (Float32 matrices only)
                    ta.0 += w0[c] * xa[c]; ta.1 += w0[c] * xb[c]; ta.2 += w0[c] * xc[c]; ta.3 += w0[c] * xd[c]
                    tb.0 += w1[c] * xa[c]; tb.1 += w1[c] * xb[c]; tb.2 += w1[c] * xc[c]; tb.3 += w1[c] * xd[c]
                    c += 1
                }
                let o = out + i * outStride + r
                o[0] = ta.0
                if k > 1 { o[outStride] = ta.1 }
                if k > 2 { o[2 * outStride] = ta.2 }
                if k > 3 { o[3 * outStride] = ta.3 }
                if pair {
                    o[1] = tb.0
                    if k > 1 { o[outStride + 1] = tb.1 }
                    if k > 2 { o[2 * outStride + 1] = tb.2 }
                    if k > 3 { o[3 * outStride + 1] = tb.3 }
                }
                i += 4
            }
            r += pair ? 2 : 1
        }
    }
}

#if arch(x86_64) && TRANSFORMER_AVX2
    extension Quantized {
        /// For each row and each group of 4 inputs (then 2, then 1): every block unpacked once (`unpack`), then its dot product
        /// with the 4 inputs' blocks (`vpmaddubsw`: unsigned weights; a signed format passes |w| and moves w's
        /// sign onto x), scaled by d·d_x into one accumulator per input; the offset term (a minimum, or
        /// −8·d for Q4_0) times the input block's sum Σx. Four independent chains hide the multiply-add latency.
        @inline(__always) static func batchedBlocks(
            _ out: FloatPtr, _ m: QuantizedMatrix, _ a: (Int) -> Int8Activations, _ n: Int, _ rows: Range<Int>, stride: Int,
            _ unpack: (UnsafeRawPointer) -> (__m256i, Float, Float, Bool)
        ) {
            let blocks = m.cols / 32
            for r in rows {
                let row = m.row(r)
                var i = 0
                while i < n {
                    // groups of 4, then 2 and 1 (a group never repeats an input: 5 inputs cost 4 + 1, not 8)
                    let k = n - i >= 4 ? 4 : n - i >= 2 ? 2 : 1
                    let a0 = a(i), a1 = a(i + min(1, k - 1)), a2 = a(i + min(2, k - 1)), a3 = a(i + min(3, k - 1))
                    var c0 = SIMD8<Float>(), c1 = c0, c2 = c0, c3 = c0
                    var o0: Float = 0, o1: Float = 0, o2: Float = 0, o3: Float = 0
                    for b in 0..<blocks {
                        let (raw, d, off, signed) = unpack(row + stride * b)
                        let w = signed ? _mm256_sign_epi8(raw, raw) : raw
                        @inline(__always) func dot(_ x: __m256i) -> SIMD8<Float> { unsignedDot(w, signed ? _mm256_sign_epi8(x, raw) : x) }
                        c0.addProduct(dot(xBlock(a0, b)), SIMD8(repeating: d * a0.d[b]))
                        o0 += off * a0.s[b]
                        if k > 1 {
                            c1.addProduct(dot(xBlock(a1, b)), SIMD8(repeating: d * a1.d[b]))
                            o1 += off * a1.s[b]
                        }
                        if k > 2 {
                            c2.addProduct(dot(xBlock(a2, b)), SIMD8(repeating: d * a2.d[b]))
                            c3.addProduct(dot(xBlock(a3, b)), SIMD8(repeating: d * a3.d[b]))
                            o2 += off * a2.s[b]; o3 += off * a3.s[b]
                        }
                    }
                    let o = out + i * m.rows + r
                    o[0] = c0.sum() + o0
                    if k > 1 { o[m.rows] = c1.sum() + o1 }
                    if k > 2 { o[2 * m.rows] = c2.sum() + o2; o[3 * m.rows] = c3.sum() + o3 }
                    i += k
                }
            }
        }
    }
#endif
