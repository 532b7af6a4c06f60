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
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q8_0 = 8

    /// Values per block (1 for the float types).
    public var blockSize: Int { self == .f32 || self == .f16 ? 1 : 32 }

    /// Bytes per block.
    public var blockBytes: Int {
        switch self {
        case .f32: 4
        case .f16: 2
        case .q4_0: 18
        case .q4_1: 20
        case .q8_0: 34
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

    static let names: [UInt32: String] = [0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
                                          10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K",
                                          16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S",
                                          22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64",
                                          29: "IQ1_M", 30: "BF16"]
}

/// A row-major matrix `[rows, cols]` in one of the ggml formats, read in place (e.g. from a
/// memory-mapped file: the owner keeps the bytes alive). `cols` is a multiple of the block size.
public struct QuantizedMatrix: @unchecked Sendable {
    public let type: GGMLType
    public let rows: Int, cols: Int
    public let data: UnsafeRawPointer
    public var rowBytes: Int { type.byteCount(cols) }

    public init(type: GGMLType, rows: Int, cols: Int, data: UnsafeRawPointer) {
        precondition(cols % type.blockSize == 0, "a \(type.name) row must be a whole number of blocks")
        self.type = type; self.rows = rows; self.cols = cols; self.data = data
    }

    @inline(__always) public func row(_ r: Int) -> UnsafeRawPointer { data + r * rowBytes }
}

public enum Quantized {
    @inline(__always) static func half(_ p: UnsafeRawPointer) -> Float {
        Float(Float16(bitPattern: p.loadUnaligned(as: UInt16.self)))
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
        }
    }

    /// The whole matrix as Float32, `[rows, cols]`.
    public static func dequantize(_ m: QuantizedMatrix, into dst: FloatPtr) {
        let d0 = UInt(bitPattern: dst)
        parallelRanges(count: m.rows, costPerItem: m.cols) { rows in
            let dst = UnsafeMutablePointer<Float>(bitPattern: d0)!
            for r in rows { dequantize(m.type, m.row(r), dst + r * m.cols, count: m.cols) }
        }
    }

    // MARK: - Dot products on the blocks

    @inline(__always) static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always) static func floats(_ v: SIMD8<UInt8>) -> SIMD8<Float> {
        SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: v))
    }

    @inline(__always) static func floats(_ v: SIMD8<Int8>) -> SIMD8<Float> {
        SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: v))
    }

    /// `row · x` for one row of `cols` values. `blockSums[b]` = Σ x over block b (Q4_1's minimum
    /// multiplies it, so the inner loop need not add `m` 32 times).
    @inline(__always)
    static func dot(_ type: GGMLType, _ row: UnsafeRawPointer, _ x: ConstFloatPtr, _ blockSums: ConstFloatPtr, cols: Int) -> Float {
        switch type {
        case .f32:
            let w = row.assumingMemoryBound(to: Float.self)
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
            var i = 0
            while i + 32 <= cols {
                a0 = (load8(w + i) * load8(x + i)) + a0
                a1 = (load8(w + i + 8) * load8(x + i + 8)) + a1
                a2 = (load8(w + i + 16) * load8(x + i + 16)) + a2
                a3 = (load8(w + i + 24) * load8(x + i + 24)) + a3
                i += 32
            }
            var s = ((a0 + a1) + (a2 + a3)).sum()
            while i < cols { s += w[i] * x[i]; i += 1 }
            return s
        case .f16:
            var s: Float = 0
            for i in 0..<cols { s += half(row + 2 * i) * x[i] }
            return s
        case .q8_0:
            var acc = SIMD8<Float>()
            for b in 0..<cols / 32 {
                let blk = row + 34 * b, xb = x + 32 * b
                let q = blk.loadUnaligned(fromByteOffset: 2, as: SIMD32<Int8>.self)
                var s = floats(q.lowHalf.lowHalf) * load8(xb)
                s = floats(q.lowHalf.highHalf) * load8(xb + 8) + s
                s = floats(q.highHalf.lowHalf) * load8(xb + 16) + s
                s = floats(q.highHalf.highHalf) * load8(xb + 24) + s
                acc = s * half(blk) + acc
            }
            return acc.sum()
        case .q4_0, .q4_1:
            // Q4_0: d·Σ(q − 8)x = d·(Σ q·x − 8·Σx); Q4_1: d·Σ q·x + m·Σx.
            let stride = type == .q4_1 ? 20 : 18, qOffset = stride - 16
            var acc = SIMD8<Float>(), offsets: Float = 0
            for b in 0..<cols / 32 {
                let blk = row + stride * b, xb = x + 32 * b
                let q = blk.loadUnaligned(fromByteOffset: qOffset, as: SIMD16<UInt8>.self)
                let lo = q & 15, hi = q &>> 4
                var s = floats(lo.lowHalf) * load8(xb)
                s = floats(lo.highHalf) * load8(xb + 8) + s
                s = floats(hi.lowHalf) * load8(xb + 16) + s
                s = floats(hi.highHalf) * load8(xb + 24) + s
                let d = half(blk)
                acc = s * d + acc
                offsets += (type == .q4_1 ? half(blk + 2) : -8 * d) * blockSums[b]
            }
            return acc.sum() + offsets
        }
    }

    /// `out[r] = Σ_c m[r, c] · x[c]`: a matrix–vector product read straight from the blocks, rows split
    /// across the threads. `scratch` holds `cols / 32` floats.
    public static func matvec(_ out: FloatPtr, _ m: QuantizedMatrix, _ x: ConstFloatPtr, scratch: FloatPtr) {
        if m.type == .q4_0 || m.type == .q4_1 {
            for b in 0..<m.cols / 32 {
                var s = SIMD8<Float>()
                for j in stride(from: 0, to: 32, by: 8) { s += load8(x + 32 * b + j) }
                scratch[b] = s.sum()
            }
        }
        let o0 = UInt(bitPattern: out), x0 = UInt(bitPattern: x), s0 = UInt(bitPattern: scratch)
        parallelRanges(count: m.rows, costPerItem: m.cols) { rows in
            let out = UnsafeMutablePointer<Float>(bitPattern: o0)!, x = UnsafePointer<Float>(bitPattern: x0)!
            let sums = UnsafePointer<Float>(bitPattern: s0)!
            for r in rows { out[r] = dot(m.type, m.row(r), x, sums, cols: m.cols) }
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
        Gemm.multiply(transA: false, transB: true, m: n, n: m.rows, k: m.cols, a: x, lda: m.cols, b: w, ldb: m.cols, beta: 0, c: out, ldc: m.rows)
    }
}
