// MARK: - Eight floats at a time
//
// The kernels read and write `SIMD8<Float>` (one AVX2 register) at arbitrary float offsets, so the
// loads must be unaligned. One pair of helpers instead of `UnsafeRawPointer(p).loadUnaligned(…)`
// spelled out in every kernel.

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
