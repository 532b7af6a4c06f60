// MARK: - Half precision
//
// safetensors files (F16) and GGUF blocks (their scales) store IEEE 754 binary16. One conversion
// serves both: the CPU's own (F16C on x86-64, through Swift's Float16) where Swift has Float16, the
// bit-level one below where it does not (macOS on Intel). Tests hold the two against each other on
// all 65,536 patterns.

/// IEEE 754 binary16 (its bits) to binary32, exactly: subnormals, infinities and NaN payloads included.
@inline(__always) @inlinable
public func floatFromHalf(_ bits: UInt16) -> Float {
    #if os(macOS) && arch(x86_64)
        return floatFromHalfBits(bits)
    #else
        return Float(Float16(bitPattern: bits))
    #endif
}

/// `floatFromHalf` computed from the bit fields, for platforms without `Float16`.
@inlinable
public func floatFromHalfBits(_ h: UInt16) -> Float {
    let sign = UInt32(h >> 15) << 31
    let exponent = UInt32(h >> 10) & 0x1F
    let mantissa = UInt32(h) & 0x3FF
    if exponent == 0 {
        let magnitude = Float(mantissa) * 0x1p-24  // subnormal or zero; exact
        return Float(bitPattern: magnitude.bitPattern | sign)
    }
    if exponent == 0x1F {
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    }
    return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
}
