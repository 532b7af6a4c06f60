import Foundation

extension Quantized {
    /// `out[i, r] = m[r] · x[i]` for `n` inputs at once (one decoding step of `n` conversations). `x` is
    /// `[n, cols]`; each `out` is `[n, m.rows]`, as `matmul` writes it.
    ///
    /// With one input this is `matvec`. With several, each tile of 4 weight rows is de-quantised once
    /// into Float32 and multiplied by all `n` inputs with a register-blocked kernel (2 rows × 4 inputs:
    /// 8 accumulators, 6 loads per 8 multiply-adds), so a step of 8 costs far less than 8 steps of 1: the
    /// weights are read and unpacked once, and the products run at the FMA units' pace. The batched
    /// products are Float32 whatever `activations` says (equal to `matvec`'s Float32 path to rounding).
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
        parallelRanges(count: total, costPerItem: cols * n) { range in
            let tile = UnsafeMutablePointer<Float>.allocate(capacity: tileRows * cols)
            defer { tile.deallocate() }
            for (j, (o, m)) in jobs.enumerated() {
                let lo = max(range.lowerBound, starts[j]) - starts[j], hi = min(range.upperBound, starts[j] + m.rows) - starts[j]
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
