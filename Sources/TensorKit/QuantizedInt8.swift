import Foundation

#if arch(x86_64)
    import _Builtin_intrinsics.intel
#endif

// MARK: - 8-bit activations: integer dot products against quantised blocks
//
// Generation is one matrix–vector product per weight matrix. With Float32 activations each weight
// is widened to a float and multiplied (`Quantized.dotRows`); here the input vector is first
// quantised to 8 bits per block of 32 (scale = max|x| / 127, as llama.cpp's Q8_0), and each block's
// 32 products are formed on integers: AVX2's `vpmaddubsw` multiplies 32 unsigned by 32 signed bytes
// into 16 sums of pairs, `vpmaddwd` folds those into 8 Int32 lanes. One float multiply-add per block
// (by the weight's scale times the input's) then adds them to the row's sum.
//
// The weights' integers are used as stored, unsigned where the format is (Q4_0's 0…15, then
// d·(Σq·x − 8·Σx) with Σx per block known from the quantisation), so most formats need no sign trick.
// Results differ from the Float32 path by the activations' rounding (relative 1e-3 or so on a
// logit); `QuantizedInt8Tests` checks every kernel against the exact product of the de-quantised
// weights with the *quantised* input, which they must match to float rounding.

/// How matrix–vector products on quantised weights treat their input vector.
public enum ActivationPrecision: String, Sendable, CaseIterable {
    /// Float32 throughout: the exact product of the de-quantised weights with the input.
    case float32 = "f32"
    /// The input rounded to 8 bits per block of 32, integer dot products (x86-64 with AVX2; elsewhere
    /// this falls back to `float32`).
    case int8

    /// Whether this build has the integer kernels (x86-64, built for AVX2).
    public static var int8Available: Bool {
        #if arch(x86_64)
            return true
        #else
            return false
        #endif
    }

    /// `TRANSFORMER_ACTIVATIONS` (`f32` or `int8`) when set, else `int8` where available.
    public static let `default`: ActivationPrecision = {
        if let v = ProcessInfo.processInfo.environment["TRANSFORMER_ACTIVATIONS"], let p = ActivationPrecision(rawValue: v) {
            return p == .int8 && !int8Available ? .float32 : p
        }
        return int8Available ? .int8 : .float32
    }()

    /// What a product with these settings actually runs (`int8` where it is not available runs Float32).
    public var effective: ActivationPrecision { self == .int8 && Self.int8Available ? .int8 : .float32 }
}

/// An input vector quantised for the integer kernels: blocks of 32 values `q` (Int8), each with its
/// scale `d` (x ≈ d·q) and `s` = d·Σq (the block's sum, for formats with an offset).
public struct Int8Activations {
    /// `cols` values, block b at `q + 32·b`.
    public let q: UnsafeMutablePointer<Int8>
    /// Per block: the scale, and the scale times the sum of the block's values.
    public let d: FloatPtr, s: FloatPtr
    /// Views buffers of `cols` bytes and `cols / 32` floats each.
    public init(q: UnsafeMutablePointer<Int8>, d: FloatPtr, s: FloatPtr) { self.q = q; self.d = d; self.s = s }
}

extension Quantized {
    /// Formats with an integer kernel.
    public static func hasInt8Kernel(_ type: GGMLType) -> Bool {
        switch type {
        case .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q6_K: return ActivationPrecision.int8Available
        default: return false
        }
    }

    /// Rounds `x` (`cols`, a multiple of 32) to 8 bits per block of 32: d = max|x|/127, q = round(x/d).
    public static func quantizeActivations(_ x: ConstFloatPtr, cols: Int, into a: Int8Activations) {
        for b in 0..<cols / 32 {
            let xb = x + 32 * b
            var m = SIMD8<Float>()
            for k in 0..<4 {
                let v = load8(xb + 8 * k)
                m = pointwiseMax(m, pointwiseMax(v, -v))
            }
            let amax = m.max(), d = amax / 127, inv: Float = amax > 0 ? 127 / amax : 0
            var sum = SIMD8<Int32>()
            for k in 0..<4 {
                let r = SIMD8<Int32>(load8(xb + 8 * k) * inv, rounding: .toNearestOrEven)
                sum &+= r
                UnsafeMutableRawPointer(a.q + 32 * b + 8 * k).storeBytes(of: SIMD8<Int8>(truncatingIfNeeded: r), as: SIMD8<Int8>.self)
            }
            a.d[b] = d
            a.s[b] = d * Float(sum.wrappedSum())
        }
    }

    /// `out[r] = row r · x` for the rows in `rows`, with `x` quantised (`a`). Only for formats with
    /// `hasInt8Kernel`.
    static func dotRowsInt8(_ out: FloatPtr, _ m: QuantizedMatrix, _ a: Int8Activations, rows: Range<Int>) {
        #if arch(x86_64)
            let blocks = m.cols / 32
            switch m.type {
            case .q8_0: for r in rows { out[r] = dotQ8_0(m.row(r), a, blocks: blocks) }
            case .q4_0: for r in rows { out[r] = dotQ4(m.row(r), a, blocks: blocks, withMin: false) }
            case .q4_1: for r in rows { out[r] = dotQ4(m.row(r), a, blocks: blocks, withMin: true) }
            case .q5_0: for r in rows { out[r] = dotQ5(m.row(r), a, blocks: blocks, withMin: false) }
            case .q5_1: for r in rows { out[r] = dotQ5(m.row(r), a, blocks: blocks, withMin: true) }
            case .q4_K: for r in rows { out[r] = dotQ4K(m.row(r), a, blocks: m.cols / 256) }
            case .q6_K: for r in rows { out[r] = dotQ6K(m.row(r), a, blocks: m.cols / 256) }
            default: preconditionFailure("no integer kernel for \(m.type)")
            }
        #else
            preconditionFailure("no integer kernels in this build")
        #endif
    }
}

#if arch(x86_64)
    extension Quantized {
        /// The input's block `b` as 32 signed bytes.
        @inline(__always) static func xBlock(_ a: Int8Activations, _ b: Int) -> __m256i {
            UnsafeRawPointer(a.q + 32 * b).loadUnaligned(as: __m256i.self)
        }

        /// Σ w·x over 32 unsigned bytes `w` (each < 128) and signed bytes `x`, as 8 Int32 lanes (lane k
        /// holds bytes 4k…4k+3) converted to floats.
        @inline(__always) static func unsignedDot(_ w: __m256i, _ x: __m256i) -> SIMD8<Float> {
            _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1)))
        }

        /// The same for signed `w`: |w| times x with w's sign (`vpsignb`), so `vpmaddubsw` still applies.
        @inline(__always) static func signedDot(_ w: __m256i, _ x: __m256i) -> SIMD8<Float> {
            unsignedDot(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w))
        }

        /// 16 bytes of nibbles → 32 bytes: the low nibbles, then the high ones (values 0…15).
        @inline(__always) static func nibbles(_ p: UnsafeRawPointer) -> __m256i {
            let t = p.loadUnaligned(as: __m128i.self)
            return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(15))
        }

        static func dotQ8_0(_ row: UnsafeRawPointer, _ a: Int8Activations, blocks: Int) -> Float {
            var acc = SIMD8<Float>()
            for b in 0..<blocks {
                let blk = row + 34 * b
                let p = signedDot(blk.loadUnaligned(fromByteOffset: 2, as: __m256i.self), xBlock(a, b))
                acc.addProduct(p, SIMD8(repeating: half(blk) * a.d[b]))
            }
            return acc.sum()
        }

        /// Q4_1: d·Σq·x + m·Σx; Q4_0: d·(Σq·x − 8·Σx). Σx per block is the quantisation's `s`.
        static func dotQ4(_ row: UnsafeRawPointer, _ a: Int8Activations, blocks: Int, withMin: Bool) -> Float {
            let stride = withMin ? 20 : 18
            var acc = SIMD8<Float>(), offsets: Float = 0
            for b in 0..<blocks {
                let blk = row + stride * b, d = half(blk)
                let p = unsignedDot(nibbles(blk + (stride - 16)), xBlock(a, b))
                acc.addProduct(p, SIMD8(repeating: d * a.d[b]))
                offsets.addProduct(withMin ? half(blk + 2) : -8 * d, a.s[b])
            }
            return acc.sum() + offsets
        }

        /// Q5_1: d·Σq·x + m·Σx; Q5_0: d·(Σq·x − 16·Σx); the fifth bits from `qh` through `fifthBits`.
        static func dotQ5(_ row: UnsafeRawPointer, _ a: Int8Activations, blocks: Int, withMin: Bool) -> Float {
            let stride = withMin ? 24 : 22, qhOffset = withMin ? 4 : 2
            let table = fifthBits
            var acc = SIMD8<Float>(), offsets: Float = 0
            for b in 0..<blocks {
                let blk = row + stride * b, d = half(blk)
                let qh = UInt32(littleEndian: blk.loadUnaligned(fromByteOffset: qhOffset, as: UInt32.self))
                let high = unsafeBitCast(
                    SIMD4<UInt64>(table[Int(qh & 0xFF)], table[Int((qh >> 8) & 0xFF)], table[Int((qh >> 16) & 0xFF)], table[Int(qh >> 24)]),
                    to: __m256i.self)
                let q = _mm256_or_si256(nibbles(blk + (qhOffset + 4)), high)
                acc.addProduct(unsignedDot(q, xBlock(a, b)), SIMD8(repeating: d * a.d[b]))
                offsets.addProduct(withMin ? half(blk + 2) : -16 * d, a.s[b])
            }
            return acc.sum() + offsets
        }

        /// Q4_K: per 32-value sub-block j, d·scale_j·Σq·x − dmin·min_j·Σx.
        static func dotQ4K(_ row: UnsafeRawPointer, _ a: Int8Activations, blocks: Int) -> Float {
            var acc = SIMD8<Float>(), offsets: Float = 0
            let low = _mm256_set1_epi8(15)
            for b in 0..<blocks {
                let blk = row + 144 * b, d = half(blk), dmin = half(blk + 2), scales = blk + 4
                for g in 0..<4 {
                    let bytes = blk.loadUnaligned(fromByteOffset: 16 + 32 * g, as: __m256i.self)
                    let lo = _mm256_and_si256(bytes, low), hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low)
                    let j = 8 * b + 2 * g
                    let (sc1, m1) = scaleMinK4(2 * g, scales), (sc2, m2) = scaleMinK4(2 * g + 1, scales)
                    acc.addProduct(unsignedDot(lo, xBlock(a, j)), SIMD8(repeating: d * sc1 * a.d[j]))
                    acc.addProduct(unsignedDot(hi, xBlock(a, j + 1)), SIMD8(repeating: d * sc2 * a.d[j + 1]))
                    offsets -= dmin * (m1 * a.s[j] + m2 * a.s[j + 1])
                }
            }
            return acc.sum() + offsets
        }

        /// Q6_K: (6-bit value − 32), each 16 values with its own signed scale, all times d. A 32-value
        /// group's 8 lanes hold its first 16 values in lanes 0–3 and the next 16 in lanes 4–7, so one
        /// vector of two scales weighs both halves.
        static func dotQ6K(_ row: UnsafeRawPointer, _ a: Int8Activations, blocks: Int) -> Float {
            var acc = SIMD8<Float>()
            let low = _mm256_set1_epi8(15), two = _mm256_set1_epi8(0x30), bias = _mm256_set1_epi8(32)
            for b in 0..<blocks {
                let blk = row + 210 * b, d = half(blk + 208)
                for n in 0..<2 {
                    let ql = blk + 64 * n, sc = blk + 192 + 8 * n
                    let qa = ql.loadUnaligned(as: __m256i.self), qc = ql.loadUnaligned(fromByteOffset: 32, as: __m256i.self)
                    let h = blk.loadUnaligned(fromByteOffset: 128 + 32 * n, as: __m256i.self)
                    // values 32k ..< 32k + 32 of this half, k = 0…3: low bits, then 2 high bits at 0x30
                    let q0 = _mm256_or_si256(_mm256_and_si256(qa, low), _mm256_and_si256(_mm256_slli_epi16(h, 4), two))
                    let q1 = _mm256_or_si256(_mm256_and_si256(qc, low), _mm256_and_si256(_mm256_slli_epi16(h, 2), two))
                    let q2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qa, 4), low), _mm256_and_si256(h, two))
                    let q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qc, 4), low), _mm256_and_si256(_mm256_srli_epi16(h, 2), two))
                    @inline(__always) func add(_ q: __m256i, _ k: Int) {
                        let j = 8 * b + 4 * n + k
                        let s0 = Float(sc.load(fromByteOffset: 2 * k, as: Int8.self))
                        let s1 = Float(sc.load(fromByteOffset: 2 * k + 1, as: Int8.self))
                        let scale = SIMD8<Float>(lowHalf: SIMD4(repeating: s0), highHalf: SIMD4(repeating: s1)) * (d * a.d[j])
                        acc.addProduct(signedDot(_mm256_sub_epi8(q, bias), xBlock(a, j)), scale)
                    }
                    add(q0, 0); add(q1, 1); add(q2, 2); add(q3, 3)
                }
            }
            return acc.sum()
        }
    }
#endif
