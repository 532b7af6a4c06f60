import Foundation

/// A Q4_0, Q4_1 or Q8_0 matrix's rows repacked 8 at a time for the batched integer kernel, so that a step of
/// several conversations reads one contiguous stream instead of 8 rows' scattered 20-byte blocks, and
/// no longer transposes or gathers scales at run time.
///
/// Per group of 8 rows and per block (192 bytes): the 8 scales d (Float32), the 8 offsets per unit of
/// Σx (Q4_1: the minimum m; Q4_0: −8·d), then 4 × 32 bytes: register k holds bytes 4k…4k+3 of each
/// row's 16 nibble bytes, row r at bytes 4r…4r+3. Its low nibbles are weights 4k…4k+3 of the 8 rows,
/// its high nibbles weights 16+4k…16+4k+3: the transposed words the kernel multiplies with.
///
/// Q8_0 (288 bytes per group and block): the 8 scales, then 8 × 32 bytes: register k holds bytes 4k…4k+3 of
/// each row's 32 weights, row r at bytes 4r…4r+3.
public final class PackedRows: @unchecked Sendable {
    /// Bytes per group of 8 rows and block of 32 columns.
    let blockBytes: Int
    let pointer: UnsafeMutableRawPointer
    /// Rows packed: the matrix's rows rounded down to a multiple of 8 (the rest go row by row).
    let rows: Int

    /// Packs `m` (Q4_0, Q4_1 or Q8_0), or returns nil for any other format.
    public init?(_ m: QuantizedMatrix) {
        guard m.type == .q4_0 || m.type == .q4_1 || m.type == .q8_0 else { return nil }
        let blocks = m.cols / 32, groups = m.rows / 8
        rows = groups * 8
        blockBytes = m.type == .q8_0 ? 288 : 192
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(1, groups * blocks * blockBytes), alignment: 64)
        if m.type == .q8_0 {
            for g in 0..<groups {
                for b in 0..<blocks {
                    let dst = pointer + (g * blocks + b) * blockBytes
                    for r in 0..<8 {
                        let blk = m.row(8 * g + r) + 34 * b
                        dst.storeBytes(of: Quantized.half(blk), toByteOffset: 4 * r, as: Float.self)
                        for k in 0..<8 {
                            for j in 0..<4 {
                                dst.storeBytes(
                                    of: blk.load(fromByteOffset: 2 + 4 * k + j, as: UInt8.self), toByteOffset: 32 + 32 * k + 4 * r + j,
                                    as: UInt8.self)
                            }
                        }
                    }
                }
            }
            return
        }
        let withMin = m.type == .q4_1, stride = withMin ? 20 : 18
        for g in 0..<groups {
            for b in 0..<blocks {
                let dst = pointer + (g * blocks + b) * blockBytes
                for r in 0..<8 {
                    let blk = m.row(8 * g + r) + stride * b
                    let d = Quantized.half(blk)
                    dst.storeBytes(of: d, toByteOffset: 4 * r, as: Float.self)
                    dst.storeBytes(of: withMin ? Quantized.half(blk + 2) : -8 * d, toByteOffset: 32 + 4 * r, as: Float.self)
                    let q = blk + (stride - 16)
                    for k in 0..<4 {
                        for j in 0..<4 {
                            dst.storeBytes(
                                of: q.load(fromByteOffset: 4 * k + j, as: UInt8.self), toByteOffset: 64 + 32 * k + 4 * r + j, as: UInt8.self
                            )
                        }
                    }
                }
            }
        }
    }

    deinit { pointer.deallocate() }
}
