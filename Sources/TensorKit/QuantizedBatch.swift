import CKernels
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
    ///   kernel that unpacks a block once and takes its dot product with 4 inputs at a time, or, from
    ///   `eightRowsFrom` inputs on, Q4_0/Q4_1/Q8_0 blocks of 8 rows across the lanes (`hasBatchedInt8Kernel`;
    ///   equal to `matvec`'s 8-bit path to rounding);
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
        let q0 = SharedPointer(q8), d0 = SharedPointer(ds)
        // VNNI reads the inputs side by side per block: laid out once here for every matrix and thread, as they are rounded
        let byBlock = int8 && KernelSet.active.hasVNNI && n >= packedFrom && products.contains { $0.matrix.packed != nil }
        if int8 && !byBlock { for i in 0..<n { quantizeActivations(x + i * cols, cols: cols, into: rowActivations(q8, ds, i, cols)) } }
        func run(_ inputs: InputsByBlock?) {
            parallelRanges(count: total, costPerItem: cols * n) { range in
                let tile = UnsafeMutablePointer<Float>.allocate(capacity: tileRows * cols)
                defer { tile.deallocate() }
                for (j, (o, m)) in jobs.enumerated() {
                    let lo = max(range.lowerBound, starts[j]) - starts[j], hi = min(range.upperBound, starts[j] + m.rows) - starts[j]
                    if int8 && hasBatchedInt8Kernel(m.type) {
                        if lo < hi {
                            dotRowsInt8Batched(
                                o.pointer, m, { rowActivations(q0.pointer, d0.pointer, $0, cols) }, n: n, rows: lo..<hi, inputs: inputs)
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
        if byBlock {
            withQuantizedInputsByBlock(x, n: n, cols: cols, rows: q8, ds) { run($0) }
        } else {
            run(nil)
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

    /// Formats the batched integer kernel reads (blocks of 32 with one scale, and an offset or a minimum; Q4_K and
    /// Q6_K through their packed rows, or else one input at a time).
    public static func hasBatchedInt8Kernel(_ type: GGMLType) -> Bool {
        switch type {
        case .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q6_K: return ActivationPrecision.int8Available
        default: return false
        }
    }

    /// The packed rows of `rows`: from the first multiple of 8 to the last group `p` holds (the rows before and
    /// after go one by one, as the thread pool's ranges need not start at a multiple of 8).
    static func packedGroups(_ rows: Range<Int>, _ p: PackedRows) -> (Int, Int) {
        let a0 = min(rows.upperBound, (rows.lowerBound + 7) / 8 * 8)
        return (a0, max(a0, min(rows.upperBound, p.rows) / 8 * 8))
    }

    /// `out[i·m.rows + r] = row r · x_i` for the rows in `rows` and every input, `a(i)` being input i rounded
    /// to 8 bits. Only for formats with `hasBatchedInt8Kernel`. `kernels` picks VNNI or AVX2 for packed rows
    /// (`leftovers`: the rows around the packed groups, which go one by one).
    static func dotRowsInt8Batched(
        _ out: FloatPtr, _ m: QuantizedMatrix, _ a: (Int) -> Int8Activations, n: Int, rows: Range<Int>, kernels: KernelSet = .active,
        inputs: InputsByBlock? = nil, leftovers: Bool = false
    ) {
        #if arch(x86_64) && TRANSFORMER_AVX2
            if kernels.hasVNNI, !leftovers, let p = m.packed, n >= packedFrom {
                // CKernels' VNNI copies for the packed groups, with the inputs side by side per block (`inputs`, or made
                // here); the rows before the first group and after the last through the AVX2 paths below, one by one
                let (a0, a1) = packedGroups(rows, p)
                if a0 < a1 {
                    @inline(__always) func groups(_ x: InputsByBlock) {
                        withUnsafeTemporaryAllocation(of: Float.self, capacity: 16 * n) { acc in
                            // two groups at a time in 512-bit registers while there are two (not for one input: its
                            // sums stay in a register in the 8-row kernel)
                            var r = a0
                            while n > 1, r + 16 <= a1 {
                                sixteenRowsPackedVNNI(out, m, p, x, n, r, acc: acc.baseAddress!)
                                r += 16
                            }
                            while r < a1 {
                                eightRowsPackedVNNI(out, m, p, x, n, r, acc: acc.baseAddress!)
                                r += 8
                            }
                        }
                    }
                    if let inputs { groups(inputs) } else { withInputsByBlock(a, n: n, blocks: m.cols / 32) { groups($0) } }
                }
                for part in [rows.lowerBound..<a0, a1..<rows.upperBound] where !part.isEmpty {
                    dotRowsInt8Batched(out, m, a, n: n, rows: part, kernels: kernels, leftovers: true)
                }
                return
            }
            // (weights as bytes, scale d, offset per unit of Σx, signed?) of the block at `blk`
            switch m.type {
            case .q8_0:
                if let p = m.packed, n >= packedFrom {
                    let (a0, a1) = packedGroups(rows, p)
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: 8 * n) { acc in
                        for r in Swift.stride(from: a0, to: a1, by: 8) {
                            eightRowsPackedQ8(out, m, p, a, n, r, acc: acc.baseAddress!)
                        }
                    }
                    for part in [rows.lowerBound..<a0, a1..<rows.upperBound] where !part.isEmpty {
                        batchedBlocks(out, m, a, n, part, stride: 34) { blk in
                            (blk.loadUnaligned(fromByteOffset: 2, as: __m256i.self), half(blk), 0, true)
                        }
                    }
                    return
                }
                let split = rows.lowerBound + (n >= eightRowsFrom ? (rows.count / 8) * 8 : 0)
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 8 * n) { acc in
                    for r in stride(from: rows.lowerBound, to: split, by: 8) { eightRowsQ8(out, m, a, n, r, acc: acc.baseAddress!) }
                }
                batchedBlocks(out, m, a, n, split..<rows.upperBound, stride: 34) { blk in
                    (blk.loadUnaligned(fromByteOffset: 2, as: __m256i.self), half(blk), 0, true)
                }
            case .q4_0, .q4_1:
                // 8 rows at a time across the lanes (from 6 inputs on: below that, gathering and transposing
                // the 8 rows' blocks costs more than it saves); the rows left over one by one
                let withMin = m.type == .q4_1, stride = withMin ? 20 : 18
                if let p = m.packed, n >= packedFrom {
                    // the packed groups start at multiples of 8: the rows before the first and after the last go one by one
                    let (a0, a1) = packedGroups(rows, p)
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: 8 * n) { acc in
                        // two copies of the kernel, each with its format's scales fixed; Q4_0's −8 off the integer sums
                        if withMin {
                            for r in Swift.stride(from: a0, to: a1, by: 8) {
                                eightRowsPacked(out, m, p, a, n, r, withMin: true, acc: acc.baseAddress!)
                            }
                            return
                        }
                        let sums = inputSums(a, n: n, blocks: m.cols / 32, halves: false, times: 8)
                        defer { sums.deallocate() }
                        for r in Swift.stride(from: a0, to: a1, by: 8) {
                            eightRowsPacked(out, m, p, a, n, r, withMin: false, sums: sums, acc: acc.baseAddress!)
                        }
                    }
                    for part in [rows.lowerBound..<a0, a1..<rows.upperBound] where !part.isEmpty {
                        if withMin {
                            batchedBlocks(out, m, a, n, part, stride: 20) { blk in (nibbles(blk + 4), half(blk), half(blk + 2), false) }
                        } else {
                            batchedBlocks(out, m, a, n, part, stride: 18) { blk in
                                let d = half(blk)
                                return (nibbles(blk + 2), d, -8 * d, false)
                            }
                        }
                    }
                    return
                }
                let split = rows.lowerBound + (n >= eightRowsFrom ? (rows.count / 8) * 8 : 0)
                var r = rows.lowerBound
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 8 * n) { acc in
                    while r < split {
                        eightRows4Bit(out, m, a, n, r, stride: stride, withMin: withMin, acc: acc.baseAddress!)
                        r += 8
                    }
                }
                if withMin {
                    batchedBlocks(out, m, a, n, split..<rows.upperBound, stride: 20) { blk in
                        (nibbles(blk + 4), half(blk), half(blk + 2), false)
                    }
                } else {
                    batchedBlocks(out, m, a, n, split..<rows.upperBound, stride: 18) { blk in
                        let d = half(blk)
                        return (nibbles(blk + 2), d, -8 * d, false)
                    }
                }
            case .q5_0:
                if let p = m.packed, n >= packedFrom {
                    // 8 packed rows at a time; the rows before the first group and after the last one by one
                    let (a0, a1) = packedGroups(rows, p)
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: 8 * n) { acc in
                        let sums = inputSums(a, n: n, blocks: m.cols / 32, halves: false, times: 16)
                        defer { sums.deallocate() }
                        for r in Swift.stride(from: a0, to: a1, by: 8) {
                            eightRowsPacked(out, m, p, a, n, r, withMin: false, fifthBits: true, sums: sums, acc: acc.baseAddress!)
                        }
                    }
                    for part in [rows.lowerBound..<a0, a1..<rows.upperBound] where !part.isEmpty {
                        batchedBlocks(out, m, a, n, part, stride: 22) { blk in
                            let d = half(blk), qh = UInt32(littleEndian: blk.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
                            return (_mm256_or_si256(nibbles(blk + 6), fifthBitBytes(qh)), d, -16 * d, false)
                        }
                    }
                    return
                }
                batchedBlocks(out, m, a, n, rows, stride: 22) { blk in
                    let d = half(blk), qh = UInt32(littleEndian: blk.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
                    return (_mm256_or_si256(nibbles(blk + 6), fifthBitBytes(qh)), d, -16 * d, false)
                }
            case .q4_K, .q6_K:
                if let p = m.packed, n >= packedFrom {
                    let (a0, a1) = packedGroups(rows, p)
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: 8 * n) { acc in
                        if m.type == .q4_K {
                            for r in Swift.stride(from: a0, to: a1, by: 8) {
                                eightRowsPacked(
                                    out, m, p, a, n, r, withMin: true, scales32: true, acc: acc.baseAddress!)
                            }
                            return
                        }
                        // Q6_K's offset: 32 times the sum of each 16 input bytes (a scale per 16 values)
                        let sums = inputSums(a, n: n, blocks: m.cols / 32, halves: true, times: 32)
                        defer { sums.deallocate() }
                        for r in Swift.stride(from: a0, to: a1, by: 8) {
                            eightRowsPackedQ6K(out, m, p, a, n, r, sums: sums, acc: acc.baseAddress!)
                        }
                    }
                    // the rows outside the packed groups, one input at a time
                    for part in [rows.lowerBound..<a0, a1..<rows.upperBound] where !part.isEmpty {
                        for i in 0..<n { dotRowsInt8(out + i * m.rows, m, a(i), rows: part) }
                    }
                    return
                }
                for i in 0..<n { dotRowsInt8(out + i * m.rows, m, a(i), rows: rows) }
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

    /// The integer sums of bytes 0…15 and 16…31 of the 32 at `p`.
    @inline(__always) static func halfSums(_ p: UnsafePointer<Int8>) -> (Int32, Int32) {
        #if arch(x86_64) && TRANSFORMER_AVX2
            // `vpsadbw` sums unsigned bytes in 4 groups of 8: x + 128 makes the signed bytes unsigned, 16·128 comes off
            let v = UnsafeRawPointer(p).loadUnaligned(as: __m256i.self)
            let g: SIMD4<Int64> = _mm256_sad_epu8(_mm256_xor_si256(v, _mm256_set1_epi8(-128)), _mm256_setzero_si256())
            return (Int32(truncatingIfNeeded: g[0] &+ g[1]) &- 2048, Int32(truncatingIfNeeded: g[2] &+ g[3]) &- 2048)
        #else
            var lo: Int32 = 0, hi: Int32 = 0
            for j in 0..<16 { lo += Int32(p[j]); hi += Int32(p[16 + j]) }
            return (lo, hi)
        #endif
    }

    /// `times` × the integer sum of each input's blocks of 32 bytes (`halves`: of bytes 0…15 and 16…31 apart), input
    /// i's at `(i · blocks + b) · k + h`, k being 2 with `halves` and 1 without; the caller deallocates. The AVX2
    /// kernels take a format's offset (Q4_0's 8, Q5_0's 16, Q6_K's 32) off their integer sums with these. (A
    /// buffer, not a closure around the kernels: inside one, the AVX2 kernels ran a third slower.)
    static func inputSums(_ a: (Int) -> Int8Activations, n: Int, blocks: Int, halves: Bool, times: Int32) -> UnsafeMutablePointer<Int32> {
        let k = halves ? 2 : 1
        let sums = UnsafeMutablePointer<Int32>.allocate(capacity: n * blocks * k)
        for i in 0..<n {
            let q = a(i).q, o = sums + i * blocks * k
            for b in 0..<blocks {
                let (lo, hi) = halfSums(q + 32 * b)
                if halves {
                    o[2 * b] = times &* lo
                    o[2 * b + 1] = times &* hi
                } else {
                    o[b] = times &* (lo &+ hi)
                }
            }
        }
        return sums
    }

    /// The n inputs' 8-bit blocks side by side, as CKernels' VNNI kernels read them: block b of input i at
    /// `q + 32·(b·n + i)`, its scale at `d[b·n + i]`, its scaled sum at `s[b·n + i]`, and the integer sums of its bytes
    /// 0…15 and 16…31 at `o[2(b·n + i)]` and `o[2(b·n + i) + 1]` (the kernels take Q4_0's, Q5_0's and Q6_K's offsets
    /// off their integer sums with these). A block's inputs are then one stream, not n rows far apart reached through
    /// n pointers: alone, the Q5_0 kernel went from 126–140 to 164 G multiply-adds/s.
    struct InputsByBlock: @unchecked Sendable {
        let q: UnsafePointer<Int8>
        let d: UnsafePointer<Float>, s: UnsafePointer<Float>
        let o: UnsafePointer<Int32>
        /// `o` times −32, where the 16-row VNNI kernel starts Q6_K's sums
        let o32: UnsafePointer<Int32>
        /// −8, −16 and −128 times Σx of block b of input i at `b·n + i`: where the 16-row VNNI kernels start Q4_0's, Q5_0's
        /// and Q8_0's sums
        let z8: UnsafePointer<Int32>, z16: UnsafePointer<Int32>, z128: UnsafePointer<Int32>
        /// log2 of the scale at `b·n + i` (−∞ for 0), for the 16-row VNNI kernels' `vscalefps`
        let e: UnsafePointer<Float>

        /// Scratch for the sums of `count` input blocks: o and o32 (2·count each), z8, z16, z128 and e (count each).
        struct Sums {
            let o: UnsafeMutablePointer<Int32>, o32: UnsafeMutablePointer<Int32>
            let z8: UnsafeMutablePointer<Int32>, z16: UnsafeMutablePointer<Int32>, z128: UnsafeMutablePointer<Int32>
            let e: UnsafeMutablePointer<Float>

            static func with<R>(count: Int, _ body: (Sums) -> R) -> R {
                withUnsafeTemporaryAllocation(of: Int32.self, capacity: 8 * count) { buffer in
                    let o = buffer.baseAddress!, z = o + 4 * count
                    return body(
                        Sums(
                            o: o, o32: o + 2 * count, z8: z, z16: z + count, z128: z + 2 * count,
                            e: UnsafeMutableRawPointer(z + 3 * count).assumingMemoryBound(to: Float.self)))
                }
            }
        }

        init(q: UnsafePointer<Int8>, d: UnsafePointer<Float>, s: UnsafePointer<Float>, _ sums: Sums) {
            (self.q, self.d, self.s, o, o32) = (q, d, s, UnsafePointer(sums.o), UnsafePointer(sums.o32))
            (z8, z16, z128, e) = (UnsafePointer(sums.z8), UnsafePointer(sums.z16), UnsafePointer(sums.z128), UnsafePointer(sums.e))
        }
    }

    /// Calls `body` with the inputs `a(0)…a(n−1)` (of `blocks` blocks) side by side (`InputsByBlock`). One input is
    /// already in that layout: only its sums are made. One pass over the blocks (sums, exponent, bytes and scales
    /// together: two passes took 2.7% of a Qwen2.5 prompt).
    static func withInputsByBlock<R>(_ a: (Int) -> Int8Activations, n: Int, blocks: Int, _ body: (InputsByBlock) -> R) -> R {
        let count = n * blocks
        return InputsByBlock.Sums.with(count: count) { sums in
            withUnsafeTemporaryAllocation(of: Int8.self, capacity: n == 1 ? 0 : 32 * count) { qs in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: n == 1 ? 0 : 2 * count) { ds in
                    // one input is read where it is
                    let q = n == 1 ? nil : qs.baseAddress, d = n == 1 ? nil : ds.baseAddress, s = d.map { $0 + count }
                    for i in 0..<n {
                        let x = a(i)
                        for b in 0..<blocks {
                            let j = b * n + i, (h0, h1) = halfSums(x.q + 32 * b), scale = x.d[b]
                            (sums.o[2 * j], sums.o[2 * j + 1], sums.o32[2 * j], sums.o32[2 * j + 1]) = (h0, h1, -32 * h0, -32 * h1)
                            (sums.z8[j], sums.z16[j], sums.z128[j]) = (-8 * (h0 + h1), -16 * (h0 + h1), -128 * (h0 + h1))
                            sums.e[j] = scaleExponent(scale)
                            if let q, let d, let s {
                                UnsafeMutableRawPointer(q + 32 * j).copyMemory(from: x.q + 32 * b, byteCount: 32)
                                (d[j], s[j]) = (scale, x.s[b])
                            }
                        }
                    }
                    let x = a(0)
                    return body(InputsByBlock(q: UnsafePointer(q ?? x.q), d: UnsafePointer(d ?? x.d), s: UnsafePointer(s ?? x.s), sums))
                }
            }
        }
    }

    /// log2 d for a block scale d (−∞ for 0), the `InputsByBlock.e` the 16-row VNNI kernels scale by with `vscalefps`:
    /// a multiply by d only for the powers of two `quantizeActivations` makes.
    @inline(__always) static func scaleExponent(_ d: Float) -> Float {
        let bits = d.bitPattern
        precondition(bits & 0x7F_FFFF == 0, "InputsByBlock: a block scale is not a power of two")
        return d > 0 ? Float(Int(bits >> 23) - 127) : -.infinity
    }

    /// `quantizeActivations` of the n rows of `x` (`[n, cols]`, n > 1) into `rowActivations(q8, ds, i, cols)`, and
    /// `withInputsByBlock` of them: with VNNI in one pass of CKernels' `tk_quantize_by_block` (512-bit; the two Swift
    /// passes took 3.7% of a Qwen2.5 prompt, 20 ns a block), else those two.
    static func withQuantizedInputsByBlock<R>(
        _ x: ConstFloatPtr, n: Int, cols: Int, rows q8: UnsafeMutablePointer<Int8>, _ ds: FloatPtr, kernels: KernelSet = .active,
        _ body: (InputsByBlock) -> R
    ) -> R {
        if kernels.hasVNNI {
            let count = n * (cols / 32)
            return InputsByBlock.Sums.with(count: count) { sums in
                withUnsafeTemporaryAllocation(of: Int8.self, capacity: 32 * count) { qs in
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * count) { dss in
                        let q = qs.baseAddress!, d = dss.baseAddress!, s = d + count
                        tk_quantize_by_block(x, n, cols, q8, ds, q, d, s, sums.o, sums.o32, sums.z8, sums.z16, sums.z128, sums.e)
                        return body(InputsByBlock(q: UnsafePointer(q), d: UnsafePointer(d), s: UnsafePointer(s), sums))
                    }
                }
            }
        }
        for i in 0..<n { quantizeActivations(x + i * cols, cols: cols, into: rowActivations(q8, ds, i, cols), kernels: kernels) }
        return withInputsByBlock({ rowActivations(q8, ds, $0, cols) }, n: n, blocks: cols / 32, body)
    }

    /// Inputs from which the integer kernel takes 8 rows at a time (`gguf-bench --batch 8` on SmolLM2 Q4_1:
    /// 8 inputs 22–24 ms a step against 27 row by row; 2 and 4 inputs slower than row by row).
    static let eightRowsFrom = 6
    /// Inputs from which a packed matrix (`PackedRows`) takes the packed kernel: from one (a chat's token; SmolLM2
    /// Q4_1, one thread: 101–113 tokens/s against 82–88 row by row). `TRANSFORMER_PACKED_FROM` overrides, to compare.
    nonisolated(unsafe) static var packedFrom = Int(ProcessInfo.processInfo.environment["TRANSFORMER_PACKED_FROM"] ?? "") ?? 1

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

        /// Rows r…r+7 of a 4-bit matrix (Q4_0, Q4_1) times all n inputs, one row per lane. Each block of
        /// the 8 rows is unpacked once and transposed so that register k holds bytes 4k…4k+3 of every row;
        /// an input's block is then 8 `vpmaddubsw` against its bytes 4k…4k+3 broadcast, summed in 16 bits
        /// (|Σ| ≤ 8 · 2 · 15 · 127 = 30,480 < 2¹⁵), one `vpmaddwd`, one conversion and one multiply-add for
        /// all 8 rows: a quarter of the per-input work of one row at a time. Results are stored 8 at once.
        @inline(__always) static func eightRows4Bit(
            _ out: FloatPtr, _ m: QuantizedMatrix, _ a: (Int) -> Int8Activations, _ n: Int, _ r: Int, stride: Int, withMin: Bool,
            acc: FloatPtr
        ) {
            let blocks = m.cols / 32, first = m.row(r), rowBytes = m.rowBytes
            acc.initialize(repeating: 0, count: 8 * n)
            for b in 0..<blocks {
                var dw = SIMD8<Float>(), mw = SIMD8<Float>()
                var w0 = __m256i(), w1 = w0, w2 = w0, w3 = w0, w4 = w0, w5 = w0, w6 = w0, w7 = w0
                @inline(__always) func load(_ j: Int) -> __m256i {
                    let blk = first + rowBytes * j + stride * b
                    dw[j] = half(blk)
                    mw[j] = withMin ? half(blk + 2) : -8 * dw[j]
                    return nibbles(blk + (stride - 16))
                }
                w0 = load(0); w1 = load(1); w2 = load(2); w3 = load(3); w4 = load(4); w5 = load(5); w6 = load(6); w7 = load(7)
                let (t0, t1, t2, t3, t4, t5, t6, t7) = transpose8(w0, w1, w2, w3, w4, w5, w6, w7)
                fourBitInputs(t0, t1, t2, t3, t4, t5, t6, t7, dw: dw, mw: mw, b, a, n, acc: acc)
            }
            for i in 0..<n { UnsafeMutableRawPointer(out + i * m.rows + r).copyMemory(from: acc + 8 * i, byteCount: 32) }
        }

        /// `eightRows4Bit` on rows repacked at load (`PackedRows`): the 8 rows' scales (and Q4_1's minimums) are
        /// one load and one widening each, and their nibbles come already transposed, from one contiguous stream.
        /// The flags name the layout, and each call site passes constants so that it gets its own copy: Q4_0 none,
        /// Q4_1 `withMin`, Q4_K `withMin` and `scales32` (Float32 scales and minimums), Q5_0 `fifthBits`.
        @inline(__always) static func eightRowsPacked(
            _ out: FloatPtr, _ m: QuantizedMatrix, _ p: PackedRows, _ a: (Int) -> Int8Activations, _ n: Int, _ r: Int,
            withMin: Bool, scales32: Bool = false, fifthBits: Bool = false, sums: UnsafePointer<Int32>? = nil, acc: FloatPtr
        ) {
            let blocks = m.cols / 32, base = UnsafeRawPointer(p.pointer) + (r / 8) * blocks * p.blockBytes
            acc.initialize(repeating: 0, count: 8 * n)
            let low = _mm256_set1_epi8(15), weights = scales32 ? 64 : fifthBits ? 48 : withMin ? 32 : 16
            for b in 0..<blocks {
                let blk = base + b * p.blockBytes
                // Σx's factor: Q4_1's and Q4_K's minimum, Q4_0's −8·d and Q5_0's −16·d (their weights are q − 8 and
                // q − 16); Q4_K's scales are Float32
                let dw: SIMD8<Float> =
                    scales32 ? blk.loadUnaligned(as: SIMD8<Float>.self) : _mm256_cvtph_ps(blk.loadUnaligned(as: __m128i.self))
                let mw: SIMD8<Float> =
                    scales32
                    ? blk.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
                    : withMin ? _mm256_cvtph_ps(blk.loadUnaligned(fromByteOffset: 16, as: __m128i.self)) : dw * (fifthBits ? -16 : -8)
                @inline(__always) func word(_ k: Int) -> __m256i { blk.loadUnaligned(fromByteOffset: weights + 32 * k, as: __m256i.self) }
                // Q5_0's fifth bits: mask k (bit 4r + i for byte 4r + i of register k) to 16s, as the row kernel does
                @inline(__always) func high(_ k: Int) -> __m256i {
                    fifthBits
                        ? fifthBitBytes(UInt32(littleEndian: blk.load(fromByteOffset: 16 + 4 * k, as: UInt32.self)))
                        : _mm256_setzero_si256()
                }
                let p0 = word(0), p1 = word(1), p2 = word(2), p3 = word(3)
                let t0 = _mm256_or_si256(_mm256_and_si256(p0, low), high(0)), t1 = _mm256_or_si256(_mm256_and_si256(p1, low), high(1))
                let t2 = _mm256_or_si256(_mm256_and_si256(p2, low), high(2)), t3 = _mm256_or_si256(_mm256_and_si256(p3, low), high(3))
                let t4 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(p0, 4), low), high(4))
                let t5 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(p1, 4), low), high(5))
                let t6 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(p2, 4), low), high(6))
                let t7 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(p3, 4), low), high(7))
                fourBitInputs(
                    t0, t1, t2, t3, t4, t5, t6, t7, dw: dw, mw: mw, b, a, n, fiveBits: fifthBits, sums: sums, blocks: blocks, acc: acc)
            }
            for i in 0..<n { UnsafeMutableRawPointer(out + i * m.rows + r).copyMemory(from: acc + 8 * i, byteCount: 32) }
        }

        /// `eightRowsPacked`, `eightRowsPackedQ8` and `eightRowsPackedQ6K` through CKernels' AVX-512 VNNI copies
        /// (`vpdpbusd`), for packed Q4_0, Q4_1, Q5_0, Q8_0, Q4_K or Q6_K rows r…r+7: `out[i·m.rows + r + j]` = row
        /// r + j · input i (`acc`: 8·n floats).
        static func eightRowsPackedVNNI(
            _ out: FloatPtr, _ m: QuantizedMatrix, _ p: PackedRows, _ x: InputsByBlock, _ n: Int, _ r: Int, acc: FloatPtr
        ) {
            let blocks = m.cols / 32, base = UnsafeRawPointer(p.pointer) + (r / 8) * blocks * p.blockBytes
            switch m.type {
            case .q8_0: tk_q8_packed_rows_vnni(base, blocks, p.blockBytes, n, x.q, x.d, acc)
            case .q6_K: tk_q6k_packed_rows_vnni(base, blocks, p.blockBytes, n, x.q, x.d, x.o, acc)
            default:
                let f = m.type == .q4_1 ? TK_Q4_1 : m.type == .q5_0 ? TK_Q5_0 : m.type == .q4_K ? TK_Q4_K : TK_Q4_0
                let offset: Int32 = m.type == .q4_0 ? 8 : m.type == .q5_0 ? 16 : 0
                tk_q4_packed_rows_vnni(base, blocks, p.blockBytes, Int32(f), n, x.q, x.d, x.s, x.o, offset, acc)
            }
            for i in 0..<n { UnsafeMutableRawPointer(out + i * m.rows + r).copyMemory(from: acc + 8 * i, byteCount: 32) }
        }

        /// Packed rows r…r+15 (two groups) through CKernels' 16-row VNNI copies: `out[i·m.rows + r + j]` = row r + j ·
        /// input i, the same bit for bit as `eightRowsPackedVNNI` on r and r + 8 (`acc`: 16·n floats).
        static func sixteenRowsPackedVNNI(
            _ out: FloatPtr, _ m: QuantizedMatrix, _ p: PackedRows, _ x: InputsByBlock, _ n: Int, _ r: Int, acc: FloatPtr
        ) {
            let blocks = m.cols / 32, base = UnsafeRawPointer(p.pointer) + (r / 8) * blocks * p.blockBytes
            switch m.type {
            case .q8_0: tk_q8_packed_rows16_vnni(base, blocks, p.blockBytes, n, x.q, x.e, x.z128, acc, out + r, m.rows)
            case .q6_K: tk_q6k_packed_rows16_vnni(base, blocks, p.blockBytes, n, x.q, x.e, x.o32, acc, out + r, m.rows)
            default:
                let f = m.type == .q4_1 ? TK_Q4_1 : m.type == .q5_0 ? TK_Q5_0 : m.type == .q4_K ? TK_Q4_K : TK_Q4_0
                let start = m.type == .q4_0 ? x.z8 : m.type == .q5_0 ? x.z16 : nil  // the others' minimums are per row
                tk_q4_packed_rows16_vnni(base, blocks, p.blockBytes, Int32(f), n, x.q, x.e, x.s, start, acc, out + r, m.rows)
            }
        }

        /// Packed Q6_K rows r…r+7 times all n inputs (`PackedRows`): the 6-bit values 0…63 against the input bytes,
        /// values 0…15 and 16…31 summed apart, each less its `sums` (per input and 32-value block, 32 times the sum
        /// of input bytes 0…15, then of 16…31: the −32 of the weights), then scaled by its own 8 row scales.
        @inline(__always) static func eightRowsPackedQ6K(
            _ out: FloatPtr, _ m: QuantizedMatrix, _ p: PackedRows, _ a: (Int) -> Int8Activations, _ n: Int, _ r: Int,
            sums: UnsafePointer<Int32>, acc: FloatPtr
        ) {
            let blocks = m.cols / 32, base = UnsafeRawPointer(p.pointer) + (r / 8) * blocks * p.blockBytes
            acc.initialize(repeating: 0, count: 8 * n)
            let ones = _mm256_set1_epi16(1)
            for b in 0..<blocks {
                let blk = base + b * p.blockBytes
                let lo = blk.loadUnaligned(as: SIMD8<Float>.self), hi = blk.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
                @inline(__always) func t(_ k: Int) -> __m256i { blk.loadUnaligned(fromByteOffset: 64 + 32 * k, as: __m256i.self) }
                let t0 = t(0), t1 = t(1), t2 = t(2), t3 = t(3), t4 = t(4), t5 = t(5), t6 = t(6), t7 = t(7)
                for i in 0..<n {
                    let x = a(i), xb = UnsafeRawPointer(x.q + 32 * b), sx = sums + 2 * (i * blocks + b)
                    @inline(__always) func pair(_ u: __m256i, _ v: __m256i, _ k: Int) -> __m256i {
                        // two words' pairs of products (each ≤ 2 · 63 · 128 = 16,128) still fit in 16 bits
                        let wu = _mm256_set1_epi32(xb.loadUnaligned(fromByteOffset: 4 * k, as: Int32.self))
                        let wv = _mm256_set1_epi32(xb.loadUnaligned(fromByteOffset: 4 * k + 4, as: Int32.self))
                        return _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(u, wu), _mm256_maddubs_epi16(v, wv)), ones)
                    }
                    let s0 = _mm256_sub_epi32(_mm256_add_epi32(pair(t0, t1, 0), pair(t2, t3, 2)), _mm256_set1_epi32(sx[0]))
                    let s1 = _mm256_sub_epi32(_mm256_add_epi32(pair(t4, t5, 4), pair(t6, t7, 6)), _mm256_set1_epi32(sx[1]))
                    var dot = (_mm256_cvtepi32_ps(s0) as SIMD8<Float>) * lo
                    dot.addProduct(_mm256_cvtepi32_ps(s1), hi)
                    let q = UnsafeMutableRawPointer(acc + 8 * i)
                    var c = q.load(as: SIMD8<Float>.self)
                    c.addProduct(dot, SIMD8(repeating: x.d[b]))
                    q.storeBytes(of: c, as: SIMD8<Float>.self)
                }
            }
            for i in 0..<n { UnsafeMutableRawPointer(out + i * m.rows + r).copyMemory(from: acc + 8 * i, byteCount: 32) }
        }

        /// `eightRowsQ8` on rows repacked at load (`PackedRows`): scales in one load, words already transposed.
        @inline(__always) static func eightRowsPackedQ8(
            _ out: FloatPtr, _ m: QuantizedMatrix, _ p: PackedRows, _ a: (Int) -> Int8Activations, _ n: Int, _ r: Int,
            acc: FloatPtr
        ) {
            let blocks = m.cols / 32, base = UnsafeRawPointer(p.pointer) + (r / 8) * blocks * p.blockBytes
            acc.initialize(repeating: 0, count: 8 * n)
            for b in 0..<blocks {
                let blk = base + b * p.blockBytes
                let dw: SIMD8<Float> = _mm256_cvtph_ps(blk.loadUnaligned(as: __m128i.self))
                @inline(__always) func t(_ k: Int) -> __m256i { blk.loadUnaligned(fromByteOffset: 16 + 32 * k, as: __m256i.self) }
                let t0 = t(0), t1 = t(1), t2 = t(2), t3 = t(3), t4 = t(4), t5 = t(5), t6 = t(6), t7 = t(7)
                q8Inputs(t0, t1, t2, t3, t4, t5, t6, t7, dw: dw, b, a, n, acc: acc)
            }
            for i in 0..<n { UnsafeMutableRawPointer(out + i * m.rows + r).copyMemory(from: acc + 8 * i, byteCount: 32) }
        }

        /// The per-input half of the 8-row 4-bit kernels: block `b`'s weights `t0…t7` (word k of the 8 rows,
        /// values 0…15) times every input's block, summed in 16 bits (|Σ| ≤ 8 · 2 · 15 · 127 = 30,480 < 2¹⁵),
        /// then `acc[i] += dot · d_w·d_x + m_w · Σx`.
        @inline(__always) static func fourBitInputs(
            _ t0: __m256i, _ t1: __m256i, _ t2: __m256i, _ t3: __m256i, _ t4: __m256i, _ t5: __m256i, _ t6: __m256i, _ t7: __m256i,
            dw: SIMD8<Float>, mw: SIMD8<Float>, _ b: Int, _ a: (Int) -> Int8Activations, _ n: Int, fiveBits: Bool = false,
            sums: UnsafePointer<Int32>? = nil, blocks: Int = 0, acc: FloatPtr
        ) {
            let ones = _mm256_set1_epi16(1)
            for i in 0..<n {
                let x = a(i), xb = UnsafeRawPointer(x.q + 32 * b)
                @inline(__always) func word(_ k: Int) -> __m256i {
                    _mm256_set1_epi32(xb.loadUnaligned(fromByteOffset: 4 * k, as: Int32.self))
                }
                var s16 = _mm256_maddubs_epi16(t0, word(0))
                s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(t1, word(1)))
                s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(t2, word(2)))
                s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(t3, word(3)))
                // 5-bit values: 4 words' pairs reach 4 · 2 · 31 · 128 = 31,744, so the second 4 go in a second sum
                var h16 = fiveBits ? _mm256_maddubs_epi16(t4, word(4)) : _mm256_add_epi16(s16, _mm256_maddubs_epi16(t4, word(4)))
                h16 = _mm256_add_epi16(h16, _mm256_maddubs_epi16(t5, word(5)))
                h16 = _mm256_add_epi16(h16, _mm256_maddubs_epi16(t6, word(6)))
                h16 = _mm256_add_epi16(h16, _mm256_maddubs_epi16(t7, word(7)))
                let s32 =
                    fiveBits ? _mm256_add_epi32(_mm256_madd_epi16(s16, ones), _mm256_madd_epi16(h16, ones)) : _mm256_madd_epi16(h16, ones)
                let q = UnsafeMutableRawPointer(acc + 8 * i)
                var c = q.load(as: SIMD8<Float>.self)
                if let sums {  // Q4_0's and Q5_0's offset off the integer sum (`inputSums`), as the VNNI kernel does
                    let dot: SIMD8<Float> = _mm256_cvtepi32_ps(_mm256_sub_epi32(s32, _mm256_set1_epi32(sums[i * blocks + b])))
                    c.addProduct(dot, dw * x.d[b])
                } else {
                    let dot: SIMD8<Float> = _mm256_cvtepi32_ps(s32)
                    c.addProduct(dot, dw * x.d[b])
                    c.addProduct(mw, SIMD8(repeating: x.s[b]))
                }
                q.storeBytes(of: c, as: SIMD8<Float>.self)
            }
        }

        /// The per-input half of the 8-row Q8_0 kernels: signed weights `t0…t7`, so `vpmaddubsw` takes |w| and
        /// the input bytes with w's signs; its pairs (up to 2 · 128 · 127) go to 32 bits (`vpmaddwd`) at once.
        @inline(__always) static func q8Inputs(
            _ t0: __m256i, _ t1: __m256i, _ t2: __m256i, _ t3: __m256i, _ t4: __m256i, _ t5: __m256i, _ t6: __m256i, _ t7: __m256i,
            dw: SIMD8<Float>, _ b: Int, _ a: (Int) -> Int8Activations, _ n: Int, acc: FloatPtr
        ) {
            let ones = _mm256_set1_epi16(1)
            let u0 = _mm256_sign_epi8(t0, t0), u1 = _mm256_sign_epi8(t1, t1), u2 = _mm256_sign_epi8(t2, t2)
            let u3 = _mm256_sign_epi8(t3, t3), u4 = _mm256_sign_epi8(t4, t4), u5 = _mm256_sign_epi8(t5, t5)
            let u6 = _mm256_sign_epi8(t6, t6), u7 = _mm256_sign_epi8(t7, t7)
            for i in 0..<n {
                let x = a(i), xb = UnsafeRawPointer(x.q + 32 * b)
                @inline(__always) func part(_ u: __m256i, _ t: __m256i, _ k: Int) -> __m256i {
                    let w = _mm256_set1_epi32(xb.loadUnaligned(fromByteOffset: 4 * k, as: Int32.self))
                    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, _mm256_sign_epi8(w, t)), ones)
                }
                let s0 = _mm256_add_epi32(part(u0, t0, 0), part(u1, t1, 1)), s1 = _mm256_add_epi32(part(u2, t2, 2), part(u3, t3, 3))
                let s2 = _mm256_add_epi32(part(u4, t4, 4), part(u5, t5, 5)), s3 = _mm256_add_epi32(part(u6, t6, 6), part(u7, t7, 7))
                let dot: SIMD8<Float> = _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_add_epi32(s0, s1), _mm256_add_epi32(s2, s3)))
                let q = UnsafeMutableRawPointer(acc + 8 * i)
                var c = q.load(as: SIMD8<Float>.self)
                c.addProduct(dot, dw * x.d[b])
                q.storeBytes(of: c, as: SIMD8<Float>.self)
            }
        }

        /// 8×8 transpose of 32-bit words: t_k = word k (bytes 4k…4k+3) of w0 … w7.
        @inline(__always) static func transpose8(
            _ w0: __m256i, _ w1: __m256i, _ w2: __m256i, _ w3: __m256i, _ w4: __m256i, _ w5: __m256i, _ w6: __m256i, _ w7: __m256i
        ) -> (__m256i, __m256i, __m256i, __m256i, __m256i, __m256i, __m256i, __m256i) {
            let a0 = _mm256_unpacklo_epi32(w0, w1), a1 = _mm256_unpackhi_epi32(w0, w1)
            let a2 = _mm256_unpacklo_epi32(w2, w3), a3 = _mm256_unpackhi_epi32(w2, w3)
            let a4 = _mm256_unpacklo_epi32(w4, w5), a5 = _mm256_unpackhi_epi32(w4, w5)
            let a6 = _mm256_unpacklo_epi32(w6, w7), a7 = _mm256_unpackhi_epi32(w6, w7)
            let b0 = _mm256_unpacklo_epi64(a0, a2), b1 = _mm256_unpackhi_epi64(a0, a2)
            let b2 = _mm256_unpacklo_epi64(a1, a3), b3 = _mm256_unpackhi_epi64(a1, a3)
            let b4 = _mm256_unpacklo_epi64(a4, a6), b5 = _mm256_unpackhi_epi64(a4, a6)
            let b6 = _mm256_unpacklo_epi64(a5, a7), b7 = _mm256_unpackhi_epi64(a5, a7)
            // b0 = (word 0 of rows 0-3 | word 4 of rows 0-3), b4 the same for rows 4-7; b1: 1|5, b2: 2|6, b3: 3|7.
            // `vperm2i128` is not importable (an immediate): a low half is inserted, a high half moved down and blended.
            let highDown = _mm256_setr_epi32(4, 5, 6, 7, 4, 5, 6, 7), highHalf = _mm256_setr_epi32(0, 0, 0, 0, -1, -1, -1, -1)
            @inline(__always) func lows(_ p: __m256i, _ q: __m256i) -> __m256i {
                _mm256_set_m128i(_mm256_castsi256_si128(q), _mm256_castsi256_si128(p))
            }
            @inline(__always) func highs(_ p: __m256i, _ q: __m256i) -> __m256i {
                _mm256_blendv_epi8(_mm256_permutevar8x32_epi32(p, highDown), q, highHalf)
            }
            return (lows(b0, b4), lows(b1, b5), lows(b2, b6), lows(b3, b7), highs(b0, b4), highs(b1, b5), highs(b2, b6), highs(b3, b7))
        }

        /// Rows r…r+7 of a Q8_0 matrix times all n inputs, one row per lane, as `eightRows4Bit`. The weights
        /// are signed: `vpmaddubsw` takes |w| and the broadcast input bytes with w's signs, and its pairs
        /// (up to 2 · 128 · 127) leave no room to add in 16 bits, so each goes to 32 bits (`vpmaddwd`) first.
        @inline(__always) static func eightRowsQ8(
            _ out: FloatPtr, _ m: QuantizedMatrix, _ a: (Int) -> Int8Activations, _ n: Int, _ r: Int, acc: FloatPtr
        ) {
            let blocks = m.cols / 32, first = m.row(r), rowBytes = m.rowBytes
            acc.initialize(repeating: 0, count: 8 * n)
            for b in 0..<blocks {
                var dw = SIMD8<Float>()
                @inline(__always) func load(_ j: Int) -> __m256i {
                    let blk = first + rowBytes * j + 34 * b
                    dw[j] = half(blk)
                    return blk.loadUnaligned(fromByteOffset: 2, as: __m256i.self)
                }
                let (t0, t1, t2, t3, t4, t5, t6, t7) = transpose8(load(0), load(1), load(2), load(3), load(4), load(5), load(6), load(7))
                q8Inputs(t0, t1, t2, t3, t4, t5, t6, t7, dw: dw, b, a, n, acc: acc)
            }
            for i in 0..<n { UnsafeMutableRawPointer(out + i * m.rows + r).copyMemory(from: acc + 8 * i, byteCount: 32) }
        }
    }
#endif
