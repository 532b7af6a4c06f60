import Foundation

/// A Q4_0, Q4_1, Q5_0, Q8_0, Q4_K or Q6_K matrix's rows repacked 8 at a time for the integer kernels, so that a step reads
/// one contiguous stream instead of 8 rows' scattered 18-, 20- or 34-byte blocks, and no longer transposes
/// or gathers scales at run time. The packed copy is exactly as large as the rows it packs (the scales
/// stay 16-bit, widened 8 at a time by `vcvtph2ps`).
///
/// Per group of 8 rows and per block (Q4_0 144 bytes, Q4_1 160): the 8 scales d (Float16), for Q4_1 the 8
/// minimums m (Float16), then 4 × 32 bytes: register k holds bytes 4k…4k+3 of each row's 16 nibble bytes,
/// row r at bytes 4r…4r+3. Its low nibbles are weights 4k…4k+3 of the 8 rows, its high nibbles weights
/// 16+4k…16+4k+3: the transposed words the kernel multiplies with.
///
/// Q8_0 (272 bytes per group and block): the 8 scales, then 8 × 32 bytes: register k holds bytes 4k…4k+3 of
/// each row's 32 weights, row r at bytes 4r…4r+3.
///
/// Q5_0 (176 bytes): the 8 scales, 8 masks of 32 bits (VNNI adds 16 under one with `vpaddb`, AVX2 spreads one to bytes), then
/// the nibbles as Q4_0's. Mask w (w < 4: register w's low nibbles; w ≥ 4: register w − 4's high ones) has bit
/// 4r + i set when that weight of row r has its fifth bit, i.e. bit 4w + i of the row's `qh`.
///
/// The K-quants go per 32 values too (one "block" below is a 32-value sub-block of the 256-value blocks), their
/// scales multiplied out into Float32 (d·sc is not exact in 16 bits), so these copies are larger than the rows:
/// - Q4_K (192 bytes, 4/3 of the rows): 8 scales d·sc_j, 8 minimums −dmin·m_j, then the nibbles as Q4_0's
///   (byte i of a row: value i low, value i + 16 high);
/// - Q6_K (320 bytes, 3/2 of the rows): 8 scales d·sc of values 0…15, 8 of values 16…31, then 8 words as Q8_0's
///   holding the 6-bit values 0…63 as bytes (the weight is scale·(q − 32)).
public final class PackedRows: @unchecked Sendable {
    /// Bytes per group of 8 rows and block of 32 columns.
    let blockBytes: Int
    let pointer: UnsafeMutableRawPointer
    /// Rows packed: the matrix's rows rounded down to a multiple of 8 (the rest go row by row).
    let rows: Int

    /// Packs `m` (Q4_0, Q4_1, Q5_0, Q8_0, Q4_K and Q6_K), or returns nil for any other format.
    public init?(_ m: QuantizedMatrix) {
        guard
            m.type == .q4_0 || m.type == .q4_1 || m.type == .q8_0 || m.type == .q5_0 || m.type == .q4_K
                || m.type == .q6_K
        else { return nil }
        let blocks = m.cols / 32, groups = m.rows / 8
        rows = groups * 8
        if m.type == .q4_K || m.type == .q6_K {
            blockBytes = m.type == .q4_K ? 192 : 320
            pointer = UnsafeMutableRawPointer.allocate(byteCount: max(1, groups * blocks * blockBytes), alignment: 64)
            Self.packK(m, into: pointer, blockBytes: blockBytes, groups: groups)
            return
        }
        let scaleBytes = m.type == .q5_0 ? 48 : m.type == .q4_1 ? 32 : 16, weightBytes = m.type == .q8_0 ? 256 : 128
        blockBytes = scaleBytes + weightBytes
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(1, groups * blocks * blockBytes), alignment: 64)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: max(1, groups * blocks * blockBytes))  // Q5_0's masks are or-ed in
        let stride = m.type == .q8_0 ? 34 : m.type == .q4_1 ? 20 : m.type == .q5_0 ? 22 : 18, weightsAt = stride - weightBytes / 8
        for g in 0..<groups {
            for b in 0..<blocks {
                let dst = pointer + (g * blocks + b) * blockBytes
                for r in 0..<8 {
                    let blk = m.row(8 * g + r) + stride * b
                    // the 16-bit scale (and Q4_1's minimum) copied as stored
                    dst.storeBytes(of: blk.loadUnaligned(as: UInt16.self), toByteOffset: 2 * r, as: UInt16.self)
                    if m.type == .q4_1 {
                        dst.storeBytes(of: blk.loadUnaligned(fromByteOffset: 2, as: UInt16.self), toByteOffset: 16 + 2 * r, as: UInt16.self)
                    }
                    if m.type == .q5_0 {
                        // row r's fifth bits, 4 per mask: bits 4w…4w+3 of qh to bits 4r…4r+3 of mask w
                        let qh = UInt32(littleEndian: blk.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
                        for w in 0..<8 {
                            let at = 16 + 4 * w, bits = ((qh >> UInt32(4 * w)) & 0xF) << UInt32(4 * r)
                            dst.storeBytes(of: dst.load(fromByteOffset: at, as: UInt32.self) | bits, toByteOffset: at, as: UInt32.self)
                        }
                    }
                    for k in 0..<weightBytes / 32 {
                        dst.storeBytes(
                            of: blk.loadUnaligned(fromByteOffset: weightsAt + 4 * k, as: UInt32.self),
                            toByteOffset: scaleBytes + 32 * k + 4 * r, as: UInt32.self)
                    }
                }
            }
        }
    }

    /// The K-quant layouts above, from each 256-value block's integers and scales.
    private static func packK(_ m: QuantizedMatrix, into dst: UnsafeMutableRawPointer, blockBytes: Int, groups: Int) {
        let subBlocks = m.cols / 32, q4 = m.type == .q4_K
        var q = [UInt8](repeating: 0, count: 256), scale = [Float](repeating: 0, count: 16), minimum = scale
        for g in 0..<groups {
            for r in 0..<8 {
                let row = m.row(8 * g + r)
                for kb in 0..<m.cols / 256 {
                    if q4 {
                        Quantized.q4KIntegers(row + 144 * kb, &q, scale: &scale, minimum: &minimum)
                    } else {
                        Quantized.q6KIntegers(row + 210 * kb, &q, scale: &scale)
                    }
                    for j in 0..<8 {
                        let blk = dst + (g * subBlocks + 8 * kb + j) * blockBytes
                        let v = 32 * j
                        if q4 {
                            blk.storeBytes(of: scale[j], toByteOffset: 4 * r, as: Float.self)
                            blk.storeBytes(of: -minimum[j], toByteOffset: 32 + 4 * r, as: Float.self)
                            // byte i of the row's 16: value i low, i + 16 high; word k = bytes 4k…4k+3
                            for i in 0..<16 {
                                blk.storeBytes(
                                    of: q[v + i] | q[v + i + 16] << 4, toByteOffset: 64 + 32 * (i / 4) + 4 * r + i % 4, as: UInt8.self)
                            }
                        } else {
                            blk.storeBytes(of: scale[2 * j], toByteOffset: 4 * r, as: Float.self)
                            blk.storeBytes(of: scale[2 * j + 1], toByteOffset: 32 + 4 * r, as: Float.self)
                            for i in 0..<32 {
                                blk.storeBytes(of: q[v + i], toByteOffset: 64 + 32 * (i / 4) + 4 * r + i % 4, as: UInt8.self)
                            }
                        }
                    }
                }
            }
        }
    }

    deinit { pointer.deallocate() }
}
