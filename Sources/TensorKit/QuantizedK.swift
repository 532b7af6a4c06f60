import Foundation

// MARK: - Q5_0, Q5_1 and the K-quants
//
// The block layouts of ggml's `ggml-common.h`, de-quantised as `ggml-quants.c` does
// (`dequantize_row_q4_K` …); tested value for value against the `gguf` Python package.
//
//   Q5_0  d:f16, qh:u32, qs:u8[16]                        x = d·(q − 16), q = nibble | bit << 4      22 bytes / 32
//   Q5_1  d:f16, m:f16, qh:u32, qs:u8[16]                 x = d·q + m                                24 bytes / 32
//
// A K-quant block holds 256 values in sub-blocks of 16 or 32, each with its own small scale (and
// minimum) that multiplies the block's f16 `d` (and `dmin`):
//
//   Q2_K  scales:u8[16], qs:u8[64], d, dmin               16 × 16 values, 2 bits; scale|min nibbles  84 bytes
//   Q3_K  hmask:u8[32], qs:u8[64], scales:u8[12], d        16 × 16 values, 2 bits + 1 high bit; 6-bit scales − 32   110 bytes
//   Q4_K  d, dmin, scales:u8[12], qs:u8[128]              8 × 32 values, 4 bits; 6-bit scales and mins   144 bytes
//   Q5_K  d, dmin, scales:u8[12], qh:u8[32], qs:u8[128]   8 × 32 values, 4 bits + 1 high bit           176 bytes
//   Q6_K  ql:u8[128], qh:u8[64], scales:i8[16], d          16 × 16 values, 4 + 2 bits − 32              210 bytes

extension Quantized {
    @inline(__always) static func byte(_ p: UnsafeRawPointer, _ i: Int) -> UInt8 { p.load(fromByteOffset: i, as: UInt8.self) }

    /// Q5_0 (`minimum` false) or Q5_1: the fifth bit of value j is bit j of `qh`.
    static func dequantizeQ5(_ src: UnsafeRawPointer, _ dst: FloatPtr, blocks: Int, minimum: Bool) {
        let stride = minimum ? 24 : 22, qhOffset = minimum ? 4 : 2
        for b in 0..<blocks {
            let blk = src + stride * b, o = dst + 32 * b, d = half(blk)
            let m = minimum ? half(blk + 2) : -16 * d
            let qh = UInt32(littleEndian: blk.loadUnaligned(fromByteOffset: qhOffset, as: UInt32.self))
            for j in 0..<16 {
                let q = byte(blk, qhOffset + 4 + j)
                let lo = UInt32(q & 15) | ((qh >> UInt32(j)) & 1) << 4
                let hi = UInt32(q >> 4) | ((qh >> UInt32(j + 16)) & 1) << 4
                o[j] = d * Float(lo) + m
                o[j + 16] = d * Float(hi) + m
            }
        }
    }

    /// Q4_K and Q5_K pack eight 6-bit scales and eight 6-bit minimums in 12 bytes (`get_scale_min_k4`):
    /// sub-blocks 0–3 in the low 6 bits of bytes 0–3 (scales) and 4–7 (minimums); sub-blocks 4–7 in the
    /// nibbles of bytes 8–11, with their top two bits in the top bits of bytes 0–7.
    @inline(__always) static func scaleMinK4(_ j: Int, _ q: UnsafeRawPointer) -> (scale: Float, min: Float) {
        if j < 4 { return (Float(byte(q, j) & 63), Float(byte(q, j + 4) & 63)) }
        let scale = (byte(q, j + 4) & 0xF) | ((byte(q, j - 4) >> 6) << 4)
        let min = (byte(q, j + 4) >> 4) | ((byte(q, j) >> 6) << 4)
        return (Float(scale), Float(min))
    }

    static func dequantizeQ2K(_ src: UnsafeRawPointer, _ dst: FloatPtr, blocks: Int) {
        for b in 0..<blocks {
            let blk = src + 84 * b, d = half(blk + 80), dmin = half(blk + 82)
            var y = dst + 256 * b, scale = 0
            for group in 0..<2 {
                let q = blk + 16 + 32 * group
                for shift in stride(from: 0, to: 8, by: 2) {
                    for part in 0..<2 {  // values l and l + 16 of these 32 bytes
                        let sc = byte(blk, scale)
                        scale += 1
                        let dl = d * Float(sc & 0xF), ml = dmin * Float(sc >> 4)
                        for l in 0..<16 { y[l] = dl * Float((byte(q, l + 16 * part) >> UInt8(shift)) & 3) - ml }
                        y += 16
                    }
                }
            }
        }
    }

    static func dequantizeQ3K(_ src: UnsafeRawPointer, _ dst: FloatPtr, blocks: Int) {
        for b in 0..<blocks {
            let blk = src + 110 * b, d = half(blk + 108)
            let hmask = blk, qs = blk + 32
            // Sixteen 6-bit scales: low nibbles in bytes 0–7, high two bits in bytes 8–11.
            var scales = [Int](repeating: 0, count: 16)
            for i in 0..<16 {
                let low = i < 8 ? byte(blk + 96, i) & 0xF : byte(blk + 96, i - 8) >> 4
                let high = (byte(blk + 96, 8 + i % 4) >> UInt8(2 * (i / 4))) & 3
                scales[i] = Int(low | high << 4) - 32
            }
            var y = dst + 256 * b, scale = 0, bit: UInt8 = 1
            for group in 0..<2 {
                let q = qs + 32 * group
                for shift in stride(from: 0, to: 8, by: 2) {
                    for part in 0..<2 {
                        let dl = d * Float(scales[scale])
                        scale += 1
                        for l in 0..<16 {
                            let i = l + 16 * part
                            let low = Int((byte(q, i) >> UInt8(shift)) & 3)
                            y[l] = dl * Float(low - (byte(hmask, i) & bit != 0 ? 0 : 4))
                        }
                        y += 16
                    }
                    bit <<= 1
                }
            }
        }
    }

    /// Q4_K (`highBits` false) or Q5_K: four groups of 64 values, each the low then the high nibbles of
    /// 32 bytes, with sub-block scales 2g and 2g + 1; Q5_K's fifth bit of value l in sub-block s is bit s
    /// of `qh[l]`.
    static func dequantizeQ45K(_ src: UnsafeRawPointer, _ dst: FloatPtr, blocks: Int, highBits: Bool) {
        let stride = highBits ? 176 : 144, qsOffset = highBits ? 48 : 16
        for b in 0..<blocks {
            let blk = src + stride * b, d = half(blk), dmin = half(blk + 2), scales = blk + 4
            let qh = blk + 16
            var y = dst + 256 * b
            for g in 0..<4 {
                let q = blk + qsOffset + 32 * g
                let (s1, m1) = scaleMinK4(2 * g, scales), (s2, m2) = scaleMinK4(2 * g + 1, scales)
                let d1 = d * s1, d2 = d * s2, o1 = dmin * m1, o2 = dmin * m2
                for l in 0..<32 {
                    var lo = byte(q, l) & 0xF, hi = byte(q, l) >> 4
                    if highBits {
                        let h = byte(qh, l)
                        lo |= ((h >> UInt8(2 * g)) & 1) << 4
                        hi |= ((h >> UInt8(2 * g + 1)) & 1) << 4
                    }
                    y[l] = d1 * Float(lo) - o1
                    y[l + 32] = d2 * Float(hi) - o2
                }
                y += 64
            }
        }
    }

    /// A Q4_K block's 256 values as integers 0…15 (`q`), with the scale d·sc_j and minimum dmin·m_j of each
    /// 32-value sub-block j (value i = scale[i / 32]·q[i] − minimum[i / 32], as `dequantizeQ45K` computes it).
    static func q4KIntegers(_ blk: UnsafeRawPointer, _ q: inout [UInt8], scale: inout [Float], minimum: inout [Float]) {
        let d = half(blk), dmin = half(blk + 2)
        for g in 0..<4 {
            let (s1, m1) = scaleMinK4(2 * g, blk + 4), (s2, m2) = scaleMinK4(2 * g + 1, blk + 4)
            scale[2 * g] = d * s1; scale[2 * g + 1] = d * s2
            minimum[2 * g] = dmin * m1; minimum[2 * g + 1] = dmin * m2
            for l in 0..<32 {
                q[64 * g + l] = byte(blk, 16 + 32 * g + l) & 0xF
                q[64 * g + 32 + l] = byte(blk, 16 + 32 * g + l) >> 4
            }
        }
    }

    /// A Q6_K block's 256 values as integers 0…63 (`q`), with the scale d·sc_j of each 16 values (value i =
    /// scale[i / 16]·(q[i] − 32), as `dequantizeQ6K` computes it).
    static func q6KIntegers(_ blk: UnsafeRawPointer, _ q: inout [UInt8], scale: inout [Float]) {
        let d = half(blk + 208)
        for j in 0..<16 { scale[j] = d * Float(blk.load(fromByteOffset: 192 + j, as: Int8.self)) }
        for n in 0..<2 {
            let ql = blk + 64 * n, qh = blk + 128 + 32 * n
            for l in 0..<32 {
                let h = byte(qh, l), v = 128 * n + l
                q[v] = (byte(ql, l) & 0xF) | (h & 3) << 4
                q[v + 32] = (byte(ql, l + 32) & 0xF) | ((h >> 2) & 3) << 4
                q[v + 64] = (byte(ql, l) >> 4) | ((h >> 4) & 3) << 4
                q[v + 96] = (byte(ql, l + 32) >> 4) | ((h >> 6) & 3) << 4
            }
        }
    }

    static func dequantizeQ6K(_ src: UnsafeRawPointer, _ dst: FloatPtr, blocks: Int) {
        for b in 0..<blocks {
            let blk = src + 210 * b, d = half(blk + 208)
            for n in 0..<2 {
                let ql = blk + 64 * n, qh = blk + 128 + 32 * n, sc = blk + 192 + 8 * n
                let y = dst + 256 * b + 128 * n
                for l in 0..<32 {
                    let s = l / 16, h = byte(qh, l)
                    let q1 = Int((byte(ql, l) & 0xF) | (h & 3) << 4) - 32
                    let q2 = Int((byte(ql, l + 32) & 0xF) | ((h >> 2) & 3) << 4) - 32
                    let q3 = Int((byte(ql, l) >> 4) | ((h >> 4) & 3) << 4) - 32
                    let q4 = Int((byte(ql, l + 32) >> 4) | ((h >> 6) & 3) << 4) - 32
                    func scale(_ i: Int) -> Float { d * Float(sc.load(fromByteOffset: i, as: Int8.self)) }
                    y[l] = scale(s) * Float(q1)
                    y[l + 32] = scale(s + 2) * Float(q2)
                    y[l + 64] = scale(s + 4) * Float(q3)
                    y[l + 96] = scale(s + 6) * Float(q4)
                }
            }
        }
    }

    // MARK: Fused dot products (the weights de-quantised in registers)

    /// Σ over 8 values of q·x, q as floats.
    @inline(__always) static func dot8(_ q: SIMD8<UInt8>, _ x: ConstFloatPtr) -> SIMD8<Float> { floats(q) * load8(x) }

    /// Q4_K: each 32-value sub-block s is d·sc_s·q − dmin·m_s, so its dot product with x is
    /// d·sc_s·Σ q·x − dmin·m_s·Σx, with Σx per 32 values precomputed in `sums` (as for Q4_1).
    @inline(__always) static func dotQ4K(_ row: UnsafeRawPointer, _ x: ConstFloatPtr, _ sums: ConstFloatPtr, blocks: Int) -> Float {
        var acc = SIMD8<Float>(), offsets: Float = 0
        for b in 0..<blocks {
            let blk = row + 144 * b, d = half(blk), dmin = half(blk + 2), scales = blk + 4
            for g in 0..<4 {
                // two 16-byte loads: Swift's SIMD32<UInt8> shifts compile to one byte at a time
                let qa = blk.loadUnaligned(fromByteOffset: 16 + 32 * g, as: SIMD16<UInt8>.self)
                let qb = blk.loadUnaligned(fromByteOffset: 32 + 32 * g, as: SIMD16<UInt8>.self)
                let loA = qa & 15, loB = qb & 15, hiA = qa &>> 4, hiB = qb &>> 4
                let xs = x + 256 * b + 64 * g
                var s0 = dot8(loA.lowHalf, xs), s1 = dot8(hiA.lowHalf, xs + 32)
                s0.addProduct(floats(loA.highHalf), load8(xs + 8))
                s0.addProduct(floats(loB.lowHalf), load8(xs + 16))
                s0.addProduct(floats(loB.highHalf), load8(xs + 24))
                s1.addProduct(floats(hiA.highHalf), load8(xs + 40))
                s1.addProduct(floats(hiB.lowHalf), load8(xs + 48))
                s1.addProduct(floats(hiB.highHalf), load8(xs + 56))
                let (sc1, m1) = scaleMinK4(2 * g, scales), (sc2, m2) = scaleMinK4(2 * g + 1, scales)
                acc.addProduct(s0, SIMD8(repeating: d * sc1))
                acc.addProduct(s1, SIMD8(repeating: d * sc2))
                offsets -= dmin * (m1 * sums[8 * b + 2 * g] + m2 * sums[8 * b + 2 * g + 1])
            }
        }
        return acc.sum() + offsets
    }

    /// Q6_K: 6-bit values (4 low bits in `ql`, 2 high bits in `qh`) minus 32, each 16 with its own
    /// signed 8-bit scale, all times d.
    @inline(__always) static func dotQ6K(_ row: UnsafeRawPointer, _ x: ConstFloatPtr, blocks: Int) -> Float {
        var acc = SIMD8<Float>()
        let bias = SIMD8<Float>(repeating: 32)
        for b in 0..<blocks {
            let blk = row + 210 * b, d = half(blk + 208)
            for n in 0..<2 {
                let ql = blk + 64 * n, qh = blk + 128 + 32 * n, sc = blk + 192 + 8 * n
                let xs = x + 256 * b + 128 * n
                for l0 in stride(from: 0, to: 32, by: 16) {
                    let a = ql.loadUnaligned(fromByteOffset: l0, as: SIMD16<UInt8>.self)
                    let c = ql.loadUnaligned(fromByteOffset: l0 + 32, as: SIMD16<UInt8>.self)
                    let h = qh.loadUnaligned(fromByteOffset: l0, as: SIMD16<UInt8>.self)
                    let s = l0 / 16
                    // values 32k + l0 ..< 32k + l0 + 16, k = 0…3, with scale s + 2k
                    @inline(__always) func add(_ q: SIMD16<UInt8>, _ k: Int) {
                        let xk = xs + 32 * k + l0
                        var t = (floats(q.lowHalf) - bias) * load8(xk)
                        t.addProduct(floats(q.highHalf) - bias, load8(xk + 8))
                        acc.addProduct(t, SIMD8(repeating: d * Float(sc.load(fromByteOffset: s + 2 * k, as: Int8.self))))
                    }
                    add((a & 15) | ((h & 3) &<< 4), 0)
                    add((c & 15) | (((h &>> 2) & 3) &<< 4), 1)
                    add((a &>> 4) | (((h &>> 4) & 3) &<< 4), 2)
                    add((c &>> 4) | ((h &>> 6) &<< 4), 3)
                }
            }
        }
        return acc.sum()
    }

    /// A row's dot product for the types without a fused kernel: each block de-quantised into a buffer
    /// on the stack, then a SIMD dot product with `x`.
    static func dotByBlocks(_ type: GGMLType, _ row: UnsafeRawPointer, _ x: ConstFloatPtr, cols: Int) -> Float {
        let bs = type.blockSize, bytes = type.blockBytes
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: bs) { buffer in
            let w = buffer.baseAddress!
            var s: Float = 0
            for b in 0..<cols / bs {
                dequantize(type, row + bytes * b, w, count: bs)
                s += dotF32(w, x + bs * b, cols: bs)
            }
            return s
        }
    }
}
