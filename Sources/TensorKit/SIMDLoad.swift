// MARK: - Eight floats at a time
//
// The kernels read and write `SIMD8<Float>` (one AVX2 register) at arbitrary float offsets, so the
// loads must be unaligned. One pair of helpers instead of `UnsafeRawPointer(p).loadUnaligned(…)`
// spelled out in every kernel.

/// The lane-wise maximum (for scores: neither may be NaN), and the largest lane. The standard library's
/// generic `pointwiseMax` and `max()` were left as calls here (2% of a Qwen2.5 prompt, in the softmax and
/// the 8-bit rounding).
@inline(__always) @inlinable
public func max8(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a.replacing(with: b, where: b .> a) }

@inline(__always) @inlinable
public func largestLane(_ v: SIMD8<Float>) -> Float {
    let h = max8(v, SIMD8(lowHalf: v.highHalf, highHalf: v.lowHalf))
    return Swift.max(Swift.max(h[0], h[1]), Swift.max(h[2], h[3]))
}

/// The 8 floats at `p` (any alignment).
@inline(__always) @inlinable
public func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

/// The 8 floats at `p` (any alignment).
@inline(__always) @inlinable
public func load8(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

/// Writes `v` to the 8 floats at `p` (any alignment).
@inline(__always) @inlinable
public func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}
