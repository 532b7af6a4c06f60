import Foundation

// MARK: - ggml's block formats
//
// A quantised row is a run of blocks of 32 values; each block stores a Float16 scale (and, for Q4_1,
// a Float16 minimum) and 32 small integers:
//
//   Q8_0  d:f16, q:int8[32]                     x = d·q                 34 bytes / 32 values
//   Q4_0  d:f16, q:uint8[16] (two nibbles each) x = d·(q − 8)           18 bytes
//   Q4_1  d:f16, m:f16, q:uint8[16]             x = d·q + m             20 bytes
//
// In the 4-bit formats byte j holds value j in its low nibble and value j + 16 in its high nibble.

/// The tensor element types of ggml (the ids GGUF files use). Only the ones this project reads have
/// cases; `name(of:)` names the others for error messages.
public enum GGMLType: UInt32, Sendable, CaseIterable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14

    /// Values per block (1 for the float types, 256 for the K-quants).
    public var blockSize: Int {
        switch self {
        case .f32, .f16: 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0: 32
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K: 256
        }
    }

    /// Bytes per block.
    public var blockBytes: Int {
        switch self {
        case .f32: 4
        case .f16: 2
        case .q4_0: 18
        case .q4_1: 20
        case .q5_0: 22
        case .q5_1: 24
        case .q8_0: 34
        case .q2_K: 84
        case .q3_K: 110
        case .q4_K: 144
        case .q5_K: 176
        case .q6_K: 210
        }
    }

    /// Bytes of `count` values (`count` a multiple of `blockSize`).
    public func byteCount(_ count: Int) -> Int { count / blockSize * blockBytes }

    /// ggml's name: "Q4_1".
    public var name: String { Self.names[rawValue]! }

    /// ggml's name and id for a type id, known to this project or not: "Q6_K (type 14)".
    public static func name(of raw: UInt32) -> String {
        names[raw].map { "\($0) (type \(raw))" } ?? "type \(raw)"
    }

    static let names: [UInt32: String] = [
        0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
        10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K",
        16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S",
        22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64",
        29: "IQ1_M", 30: "BF16"
    ]
}

/// A row-major matrix `[rows, cols]` in one of the ggml formats, read in place (e.g. from a
/// memory-mapped file: the owner keeps the bytes alive). `cols` is a multiple of the block size.
public struct QuantizedMatrix: @unchecked Sendable {
    public let type: GGMLType
    public let rows: Int, cols: Int
    public let data: UnsafeRawPointer
    public var rowBytes: Int { type.byteCount(cols) }
    /// The rows again, 8 at a time interleaved for the batched integer kernel (Q4_0, Q4_1), when made.
    public var packed: PackedRows?

    public init(type: GGMLType, rows: Int, cols: Int, data: UnsafeRawPointer) {
        precondition(cols % type.blockSize == 0, "a \(type.name) row must be a whole number of blocks")
        self.type = type; self.rows = rows; self.cols = cols; self.data = data
    }

    @inline(__always) public func row(_ r: Int) -> UnsafeRawPointer { data + r * rowBytes }
}

public enum Quantized {
    @inline(__always) static func half(_ p: UnsafeRawPointer) -> Float {
        floatFromHalf(UInt16(littleEndian: p.loadUnaligned(as: UInt16.self)))
    }

    /// De-quantises `count` values (a multiple of the block size) starting at `src`. The reference:
    /// plain scalar code, straight from the block layouts above.
    public static func dequantize(_ type: GGMLType, _ src: UnsafeRawPointer, _ dst: FloatPtr, count: Int) {
        switch type {
        case .f32:
            for i in 0..<count { dst[i] = src.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) }
        case .f16:
            for i in 0..<count { dst[i] = half(src + 2 * i) }
        case .q8_0:
            for b in 0..<count / 32 {
                let blk = src + 34 * b, d = half(blk), o = dst + 32 * b
                for j in 0..<32 { o[j] = d * Float(blk.load(fromByteOffset: 2 + j, as: Int8.self)) }
            }
        case .q4_0:
            for b in 0..<count / 32 {
                let blk = src + 18 * b, d = half(blk), o = dst + 32 * b
                for j in 0..<16 {
                    let q = blk.load(fromByteOffset: 2 + j, as: UInt8.self)
                    o[j] = d * Float(Int(q & 15) - 8)
                    o[j + 16] = d * Float(Int(q >> 4) - 8)
                }
            }
        case .q4_1:
            for b in 0..<count / 32 {
                let blk = src + 20 * b, d = half(blk), m = half(blk + 2), o = dst + 32 * b
                for j in 0..<16 {
                    let q = blk.load(fromByteOffset: 4 + j, as: UInt8.self)
                    o[j] = d * Float(q & 15) + m
                    o[j + 16] = d * Float(q >> 4) + m
                }
            }
        case .q5_0: dequantizeQ5(src, dst, blocks: count / 32, minimum: false)
        case .q5_1: dequantizeQ5(src, dst, blocks: count / 32, minimum: true)
        case .q2_K: dequantizeQ2K(src, dst, blocks: count / 256)
        case .q3_K: dequantizeQ3K(src, dst, blocks: count / 256)
        case .q4_K: dequantizeQ45K(src, dst, blocks: count / 256, highBits: false)
        case .q5_K: dequantizeQ45K(src, dst, blocks: count / 256, highBits: true)
        case .q6_K: dequantizeQ6K(src, dst, blocks: count / 256)
        }
    }

    /// The whole matrix as Float32, `[rows, cols]`.
    public static func dequantize(_ m: QuantizedMatrix, into dst: FloatPtr) {
        let d0 = SharedPointer(dst)
        parallelRanges(count: m.rows, costPerItem: m.cols) { rows in
            let dst = d0.pointer
            for r in rows { dequantize(m.type, m.row(r), dst + r * m.cols, count: m.cols) }
        }
    }

    // MARK: - Dot products on the blocks
    //
    // One function per format, so the loop over a row's blocks has no branch on the type. Swift does
    // not fuse `a * b + c`, hence `addProduct` (an FMA with -target-cpu haswell). Each block's 32
    // products go into two accumulators, then one FMA by the block's scale adds them to the row's sum,
    // alternating between two row accumulators. Measured (`transformer gguf-bench --kernels`): this
    // form compiles to one straight block body, 1.8 ns per Q4_1 block on one thread; one accumulator,
    // or two blocks unrolled by hand, let LLVM's vectoriser interleave blocks into shuffles and
    // blends and ran 4× slower.

    // Lane by lane, which LLVM turns into one widening (`vpmovzxbd`/`vpmovsxbd`) and one conversion: the generic
    // `SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded:))` stopped being inlined (Swift 6.3: two calls per 8 values,
    // 78% of a token's time with Float32 activations, 17 tokens/s on SmolLM2 Q4_1).
    @inline(__always) static func floats(_ v: SIMD8<UInt8>) -> SIMD8<Float> {
        SIMD8(Float(v[0]), Float(v[1]), Float(v[2]), Float(v[3]), Float(v[4]), Float(v[5]), Float(v[6]), Float(v[7]))
    }

    @inline(__always) static func floats(_ v: SIMD8<Int8>) -> SIMD8<Float> {
        SIMD8(Float(v[0]), Float(v[1]), Float(v[2]), Float(v[3]), Float(v[4]), Float(v[5]), Float(v[6]), Float(v[7]))
    }

    @inline(__always) static func dotF32(_ w: ConstFloatPtr, _ x: ConstFloatPtr, cols: Int) -> Float {
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
        var i = 0
        while i + 32 <= cols {
            a0.addProduct(load8(w + i), load8(x + i))
            a1.addProduct(load8(w + i + 8), load8(x + i + 8))
            a2.addProduct(load8(w + i + 16), load8(x + i + 16))
            a3.addProduct(load8(w + i + 24), load8(x + i + 24))
            i += 32
        }
        var s = ((a0 + a1) + (a2 + a3)).sum()
        while i < cols { s += w[i] * x[i]; i += 1 }
        return s
    }

    @inline(__always) static func dotQ8_0(_ row: UnsafeRawPointer, _ x: ConstFloatPtr, blocks: Int) -> Float {
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
        for b in 0..<blocks {
            let blk = row + 34 * b, xb = x + 32 * b
            let q = blk.loadUnaligned(fromByteOffset: 2, as: SIMD32<Int8>.self)
            var s0 = floats(q.lowHalf.lowHalf) * load8(xb)
            var s1 = floats(q.lowHalf.highHalf) * load8(xb + 8)
            s0.addProduct(floats(q.highHalf.lowHalf), load8(xb + 16))
            s1.addProduct(floats(q.highHalf.highHalf), load8(xb + 24))
            let d = SIMD8<Float>(repeating: half(blk))
            if b & 1 == 0 { acc0.addProduct(s0 + s1, d) } else { acc1.addProduct(s0 + s1, d) }
        }
        return (acc0 + acc1).sum()
    }

    /// The 32 products of a block whose values 0–15 are `lo` and 16–31 are `hi` (small integers) with
    /// `x`, summed into 8 lanes (two accumulators, as the note above explains). Shared by Q4_0/Q4_1/Q5_0/Q5_1.
    @inline(__always) static func nibbleDot(_ lo: SIMD16<UInt8>, _ hi: SIMD16<UInt8>, _ xb: ConstFloatPtr) -> SIMD8<Float> {
        var s0 = floats(lo.lowHalf) * load8(xb)
        var s1 = floats(lo.highHalf) * load8(xb + 8)
        s0.addProduct(floats(hi.lowHalf), load8(xb + 16))
        s1.addProduct(floats(hi.highHalf), load8(xb + 24))
        return s0 + s1
    }

    /// Q4_1: Σ (d·q + m)·x = d·Σ q·x + m·Σx, with Σx per block precomputed in `sums`.
    /// Q4_0: d·Σ (q − 8)·x = d·(Σ q·x − 8·Σx).
    @inline(__always) static func dotQ4(_ row: UnsafeRawPointer, _ x: ConstFloatPtr, _ sums: ConstFloatPtr, blocks: Int, withMin: Bool)
        -> Float
    {
        let stride = withMin ? 20 : 18, qOffset = stride - 16
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>(), offsets: Float = 0
        for b in 0..<blocks {
            let blk = row + stride * b, xb = x + 32 * b
            let q = blk.loadUnaligned(fromByteOffset: qOffset, as: SIMD16<UInt8>.self)
            let lo = q & 15, hi = q &>> 4
            let d = half(blk), p = nibbleDot(lo, hi, xb)
            if b & 1 == 0 { acc0.addProduct(p, SIMD8(repeating: d)) } else { acc1.addProduct(p, SIMD8(repeating: d)) }
            offsets.addProduct(withMin ? half(blk + 2) : -8 * d, sums[b])
        }
        return (acc0 + acc1).sum() + offsets
    }

    /// For Q5_0 and Q5_1: bit j of a byte of `qh` becomes byte j (0 or 16) of a UInt64, so that two
    /// lookups give the fifth bits of 16 values as one SIMD16<UInt8>.
    nonisolated(unsafe) static let fifthBits: UnsafePointer<UInt64> = {  // written once, then only read
        let t = UnsafeMutablePointer<UInt64>.allocate(capacity: 256)
        for b in 0..<256 {
            var v: UInt64 = 0
            for j in 0..<8 where (b >> j) & 1 == 1 { v |= 0x10 << (8 * UInt64(j)) }
            t[b] = v
        }
        return UnsafePointer(t)
    }()

    /// Q5_1: Σ (d·q + m)·x = d·Σ q·x + m·Σx; Q5_0: d·Σ (q − 16)·x = d·(Σ q·x − 16·Σx), the fifth bit of
    /// each q looked up from `qh` (`fifthBits`), the rest as `dotQ4`.
    @inline(__always) static func dotQ5(_ row: UnsafeRawPointer, _ x: ConstFloatPtr, _ sums: ConstFloatPtr, blocks: Int, withMin: Bool)
        -> Float
    {
        let stride = withMin ? 24 : 22, qhOffset = withMin ? 4 : 2
        let table = fifthBits
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>(), offsets: Float = 0
        for b in 0..<blocks {
            let blk = row + stride * b, xb = x + 32 * b
            let qh = UInt32(littleEndian: blk.loadUnaligned(fromByteOffset: qhOffset, as: UInt32.self))
            let q = blk.loadUnaligned(fromByteOffset: qhOffset + 4, as: SIMD16<UInt8>.self)
            let h0 = unsafeBitCast(SIMD2<UInt64>(table[Int(qh & 0xFF)], table[Int((qh >> 8) & 0xFF)]), to: SIMD16<UInt8>.self)
            let h1 = unsafeBitCast(SIMD2<UInt64>(table[Int((qh >> 16) & 0xFF)], table[Int(qh >> 24)]), to: SIMD16<UInt8>.self)
            let lo = (q & 15) | h0, hi = (q &>> 4) | h1
            let d = half(blk), p = nibbleDot(lo, hi, xb)
            if b & 1 == 0 { acc0.addProduct(p, SIMD8(repeating: d)) } else { acc1.addProduct(p, SIMD8(repeating: d)) }
            offsets.addProduct(withMin ? half(blk + 2) : -16 * d, sums[b])
        }
        return (acc0 + acc1).sum() + offsets
    }

    /// `out[r] = row r · x` for the rows in `rows`. `sums[b]` = Σ x over block b (for the 4-bit formats).
    static func dotRows(_ out: FloatPtr, _ m: QuantizedMatrix, _ x: ConstFloatPtr, _ sums: ConstFloatPtr, rows: Range<Int>) {
        let blocks = m.cols / 32
        switch m.type {
        case .f32:
            for r in rows { out[r] = dotF32(m.row(r).assumingMemoryBound(to: Float.self), x, cols: m.cols) }
        case .f16:
            for r in rows {
                let row = m.row(r)
                var s: Float = 0
                for i in 0..<m.cols { s += half(row + 2 * i) * x[i] }
                out[r] = s
            }
        case .q8_0:
            for r in rows { out[r] = dotQ8_0(m.row(r), x, blocks: blocks) }
        case .q4_1:
            for r in rows { out[r] = dotQ4(m.row(r), x, sums, blocks: blocks, withMin: true) }
        case .q4_0:
            for r in rows { out[r] = dotQ4(m.row(r), x, sums, blocks: blocks, withMin: false) }
        case .q5_1:
            for r in rows { out[r] = dotQ5(m.row(r), x, sums, blocks: blocks, withMin: true) }
        case .q5_0:
            for r in rows { out[r] = dotQ5(m.row(r), x, sums, blocks: blocks, withMin: false) }
        case .q4_K:
            for r in rows { out[r] = dotQ4K(m.row(r), x, sums, blocks: m.cols / 256) }
        case .q6_K:
            for r in rows { out[r] = dotQ6K(m.row(r), x, blocks: m.cols / 256) }
        case .q2_K, .q3_K, .q5_K:
            for r in rows { out[r] = dotByBlocks(m.type, m.row(r), x, cols: m.cols) }
        }
    }

    /// `out[r] = Σ_c m[r, c] · x[c]`: a matrix–vector product read straight from the blocks, rows split
    /// across the threads. `scratch` holds `cols / 32` floats.
    public static func matvec(
        _ out: FloatPtr, _ m: QuantizedMatrix, _ x: ConstFloatPtr, scratch: FloatPtr, activations: ActivationPrecision = .float32
    ) {
        matvec([(out, m)], x, scratch: scratch, activations: activations)
    }

    /// Several matrix–vector products with the same input (Q, K and V; gate and up) as one parallel
    /// job over all their rows: one wake-up of the second thread instead of one per matrix.
    ///
    /// With `activations: .int8`, matrices in a format with an integer kernel (`hasInt8Kernel`) see `x`
    /// rounded to 8 bits per block of 32 (QuantizedInt8.swift); the others keep the Float32 path.
    public static func matvec(
        _ products: [(out: FloatPtr, matrix: QuantizedMatrix)], _ x: ConstFloatPtr, scratch: FloatPtr,
        activations: ActivationPrecision = .float32
    ) {
        let cols = products[0].matrix.cols
        precondition(products.allSatisfy { $0.matrix.cols == cols }, "matvec: the matrices must have the same width")
        let int8 = activations.effective == .int8 && products.contains { hasInt8Kernel($0.matrix.type) }
        guard int8 else { return matvecJob(products, x, scratch: scratch, int8: nil) }
        withUnsafeTemporaryAllocation(of: Int8.self, capacity: cols) { q in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * (cols / 32)) { ds in
                let a = Int8Activations(q: q.baseAddress!, d: ds.baseAddress!, s: ds.baseAddress! + cols / 32)
                quantizeActivations(x, cols: cols, into: a)
                matvecJob(products, x, scratch: scratch, int8: a)
            }
        }
    }

    /// The parallel job of `matvec`: each matrix through the integer kernel when `int8` is given and
    /// its format has one, through `dotRows` otherwise.
    private static func matvecJob(
        _ products: [(out: FloatPtr, matrix: QuantizedMatrix)], _ x: ConstFloatPtr, scratch: FloatPtr, int8: Int8Activations?
    ) {
        let cols = products[0].matrix.cols
        let needsSums: (QuantizedMatrix) -> Bool = { m in
            [.q4_0, .q4_1, .q5_0, .q5_1, .q4_K].contains(m.type) && !(int8 != nil && hasInt8Kernel(m.type))
        }
        if products.contains(where: { needsSums($0.matrix) }) {
            for b in 0..<cols / 32 {
                var s = load8(x + 32 * b)
                s += load8(x + 32 * b + 8); s += load8(x + 32 * b + 16); s += load8(x + 32 * b + 24)
                scratch[b] = s.sum()
            }
        }
        // Global row g is row g − starts[i] of product i.
        var offsets: [Int] = [], total = 0
        for p in products { offsets.append(total); total += p.matrix.rows }
        let starts = offsets
        let jobs = products.map { (SharedPointer($0.out), $0.matrix) }
        let x0 = SharedPointer(x), s0 = SharedPointer(scratch)
        let a0 = int8.map { (SharedPointer($0.q), SharedPointer($0.d), SharedPointer($0.s)) }
        parallelRanges(count: total, costPerItem: cols) { range in
            let x = x0.readOnly, sums = s0.readOnly
            let a = a0.map { Int8Activations(q: $0.0.pointer, d: $0.1.pointer, s: $0.2.pointer) }
            for (i, (o, m)) in jobs.enumerated() {
                let lo = max(range.lowerBound, starts[i]) - starts[i], hi = min(range.upperBound, starts[i] + m.rows) - starts[i]
                guard lo < hi else { continue }
                if let a, m.packed != nil, packedFrom <= 1 {
                    // rows repacked by 8: 8 rows per pass, their scales widened together, no horizontal sums
                    dotRowsInt8Batched(o.pointer, m, { _ in a }, n: 1, rows: lo..<hi)
                } else if let a, hasInt8Kernel(m.type) {
                    dotRowsInt8(o.pointer, m, a, rows: lo..<hi)
                } else {
                    dotRows(o.pointer, m, x, sums, rows: lo..<hi)
                }
            }
        }
    }

    /// `out[n, rows] = x[n, cols] · mᵀ` for a batch (a prompt): the matrix is de-quantised on the fly
    /// into `scratch` (`rows · cols` floats) and multiplied by the packed GEMM. For n = 1 use `matvec`.
    public static func matmul(_ out: FloatPtr, _ m: QuantizedMatrix, _ x: ConstFloatPtr, n: Int, scratch: FloatPtr) {
        let w: ConstFloatPtr
        if m.type == .f32 {
            w = m.data.assumingMemoryBound(to: Float.self)
        } else {
            dequantize(m, into: scratch)
            w = UnsafePointer(scratch)
        }
        Gemm.multiply(
            transA: false, transB: true, m: n, n: m.rows, k: m.cols, a: x, lda: m.cols, b: w, ldb: m.cols, beta: 0, c: out, ldc: m.rows)
    }
}
