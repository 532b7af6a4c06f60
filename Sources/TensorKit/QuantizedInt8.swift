import Foundation

#if arch(x86_64) && TRANSFORMER_AVX2
    import _Builtin_intrinsics.intel
#endif

// MARK: - 8-bit activations: integer dot products against quantised blocks
//
// Generation is one matrix–vector product per weight matrix. With Float32 activations each weight
// is widened to a float and multiplied (`Quantized.dotRows`); here the input vector is first
// quantised to 8 bits per block of 32, and each block's 32 products are formed on integers: AVX2's
// `vpmaddubsw` multiplies 32 unsigned by 32 signed bytes into 16 sums of pairs, `vpmaddwd` folds those
// into 8 Int32 lanes. One float multiply-add per block (by the weight's scale times the input's) then
// adds them to the row's sum.
//
// A block's scale is the smallest power of two d with max|x|/d ≤ 127 (llama.cpp's Q8_0 takes
// max|x|/127 itself), so its largest |q| is 64…127, not always 127: on average about half a bit
// coarser, far below the 4- to 6-bit weights' own rounding. In exchange, multiplying by d is exact,
// and AVX-512 applies it with `vscalefps`, which does not share the multiply-add units that
// `vpdpbusd` needs: the 16-row VNNI kernels save one multiply in every 9 or 10 of their instructions
// on those units (CKernels/quant_vnni.c).
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

    /// Whether the integer kernels run here: the active `KernelSet` has them (x86-64 built for AVX2, on a
    /// CPU with AVX2, unless `TRANSFORMER_KERNELS=baseline`).
    public static var int8Available: Bool { KernelSet.active.hasInt8 }

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
/// scale `d` (x ≈ d·q, a power of two: `Quantized.activationScale`) and `s` = d·Σq (the block's sum, for formats with an offset).
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

    /// The scale of a block whose largest magnitude is `amax`: the smallest power of two d ≥ amax/127
    /// (0 for an all-zero block). For amax/127 below the smallest normal float, that smallest normal.
    @inline(__always) static func activationScale(_ amax: Float) -> Float {
        let d = amax / 127
        // a mantissa other than zero carries into the exponent; then the mantissa is cleared
        return d == 0 ? 0 : Float(bitPattern: (d.bitPattern &+ 0x7F_FFFF) & 0xFF80_0000)
    }

    /// Rounds `x` (`cols`, a multiple of 32) to 8 bits per block of 32: d = `activationScale(max|x|)`, a
    /// power of two, q = round(x/d) (to nearest, ties to even; |q| ≤ 127). `kernels` picks the
    /// implementation (both give the same bytes).
    public static func quantizeActivations(
        _ x: ConstFloatPtr, cols: Int, into a: Int8Activations, kernels: KernelSet = .active
    ) {
        #if arch(x86_64) && TRANSFORMER_AVX2
            if kernels.hasInt8 {
                quantizeActivationsAVX2(x, cols: cols, into: a)
                return
            }
        #endif
        for b in 0..<cols / 32 {
            let xb = x + 32 * b
            var amax: Float = 0
            for j in 0..<32 { amax = max(amax, abs(xb[j])) }
            let d = activationScale(amax), inv: Float = d > 0 ? 1 / d : 0
            var sum = 0
            for j in 0..<32 {
                let q = Int((xb[j] * inv).rounded(.toNearestOrEven))
                a.q[32 * b + j] = Int8(q)
                sum += q
            }
            a.d[b] = d
            a.s[b] = d * Float(sum)
        }
    }

    #if arch(x86_64) && TRANSFORMER_AVX2
        static func quantizeActivationsAVX2(_ x: ConstFloatPtr, cols: Int, into a: Int8Activations) {
            // Intrinsics: the generic SIMD conversions were not specialised here and took 7% of a token.
            let signBit = _mm256_set1_ps(-0.0)
            for b in 0..<cols / 32 {
                let xb = x + 32 * b
                let v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8), v2 = _mm256_loadu_ps(xb + 16), v3 = _mm256_loadu_ps(xb + 24)
                let m = _mm256_max_ps(
                    _mm256_max_ps(_mm256_andnot_ps(signBit, v0), _mm256_andnot_ps(signBit, v1)),
                    _mm256_max_ps(_mm256_andnot_ps(signBit, v2), _mm256_andnot_ps(signBit, v3)))
                let d = activationScale(largestLane(m)), inv: Float = d > 0 ? 1 / d : 0
                let scale = _mm256_set1_ps(inv)
                // round to Int32 (MXCSR's default: nearest, ties to even), pack to Int16, then Int8
                let i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, scale)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, scale))
                let i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, scale)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, scale))
                let sum = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3))
                // packs interleave 128-bit lanes; the permute puts the 32 bytes back in order
                let packed = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3))
                let ordered = _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
                UnsafeMutableRawPointer(a.q + 32 * b).storeBytes(of: ordered, as: __m256i.self)
                a.d[b] = d
                a.s[b] = d * Float(unsafeBitCast(sum, to: SIMD8<Int32>.self).wrappedSum())
            }
        }
    #endif

    /// `out[r] = row r · x` for the rows in `rows`, with `x` quantised (`a`). Only for formats with
    /// `hasInt8Kernel`.
    static func dotRowsInt8(_ out: FloatPtr, _ m: QuantizedMatrix, _ a: Int8Activations, rows: Range<Int>) {
        #if arch(x86_64) && TRANSFORMER_AVX2
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

#if arch(x86_64) && TRANSFORMER_AVX2
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

        /// Σ_b p_b · scale_b + offset_b over a row's blocks, where `body(b)` gives (p_b, scale_b, offset_b):
        /// two blocks at a time into two accumulators. With one, each block waited for the previous
        /// block's multiply-add (4–5 cycles): Q8_0 ran at 3.1 ns per block, Q5_0 at 2.3.
        @inline(__always) static func sumBlocks(_ blocks: Int, _ body: (Int) -> (SIMD8<Float>, Float, Float)) -> Float {
            var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>(), off0: Float = 0, off1: Float = 0
            var b = 0
            while b + 2 <= blocks {
                let (p0, s0, o0) = body(b), (p1, s1, o1) = body(b + 1)
                acc0.addProduct(p0, SIMD8(repeating: s0))
                acc1.addProduct(p1, SIMD8(repeating: s1))
                off0 += o0
                off1 += o1
                b += 2
            }
            if b < blocks {
                let (p, s, o) = body(b)
                acc0.addProduct(p, SIMD8(repeating: s))
                off0 += o
            }
            return (acc0 + acc1).sum() + (off0 + off1)
        }

        static func dotQ8_0(_ row: UnsafeRawPointer, _ a: Int8Activations, blocks: Int) -> Float {
            sumBlocks(blocks) { b in
                let blk = row + 34 * b
                return (signedDot(blk.loadUnaligned(fromByteOffset: 2, as: __m256i.self), xBlock(a, b)), half(blk) * a.d[b], 0)
            }
        }

        /// Q4_1: d·Σq·x + m·Σx; Q4_0: d·(Σq·x − 8·Σx). Σx per block is the quantisation's `s`.
        @inline(__always) static func dotQ4(_ row: UnsafeRawPointer, _ a: Int8Activations, blocks: Int, withMin: Bool) -> Float {
            let stride = withMin ? 20 : 18
            return sumBlocks(blocks) { b in
                let blk = row + stride * b, d = half(blk)
                let p = unsignedDot(nibbles(blk + (stride - 16)), xBlock(a, b))
                return (p, d * a.d[b], (withMin ? half(blk + 2) : -8 * d) * a.s[b])
            }
        }

        /// 32 bits → 32 bytes, 16 where the bit is set and 0 where not: each byte picks the bit's byte of
        /// `bits` (`vpshufb`), sets every other bit (`vpor`), and compares with all ones.
        @inline(__always) static func fifthBitBytes(_ bits: UInt32) -> __m256i {
            let spread = _mm256_shuffle_epi8(
                _mm256_set1_epi32(Int32(bitPattern: bits)),
                _mm256_set_epi64x(0x0303_0303_0303_0303, 0x0202_0202_0202_0202, 0x0101_0101_0101_0101, 0))
            let others = _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe)  // byte j: every bit but j mod 8
            let set = _mm256_cmpeq_epi8(_mm256_or_si256(spread, others), _mm256_set1_epi8(-1))
            return _mm256_and_si256(set, _mm256_set1_epi8(16))
        }

        /// Q5_1: d·Σq·x + m·Σx; Q5_0: d·(Σq·x − 16·Σx). Inlined into each caller, so `withMin` is a constant.
        @inline(__always) static func dotQ5(_ row: UnsafeRawPointer, _ a: Int8Activations, blocks: Int, withMin: Bool) -> Float {
            let stride = withMin ? 24 : 22, qhOffset = withMin ? 4 : 2
            return sumBlocks(blocks) { b in
                let blk = row + stride * b, d = half(blk)
                let qh = UInt32(littleEndian: blk.loadUnaligned(fromByteOffset: qhOffset, as: UInt32.self))
                let q = _mm256_or_si256(nibbles(blk + (qhOffset + 4)), fifthBitBytes(qh))
                return (unsignedDot(q, xBlock(a, b)), d * a.d[b], (withMin ? half(blk + 2) : -16 * d) * a.s[b])
            }
        }

        /// Q4_K: per 32-value sub-block j, d·scale_j·Σq·x − dmin·min_j·Σx.
        static func dotQ4K(_ row: UnsafeRawPointer, _ a: Int8Activations, blocks: Int) -> Float {
            var acc = SIMD8<Float>(), acc1 = SIMD8<Float>(), offsets: Float = 0
            let low = _mm256_set1_epi8(15)
            for b in 0..<blocks {
                let blk = row + 144 * b, d = half(blk), dmin = half(blk + 2), scales = blk + 4
                for g in 0..<4 {
                    let bytes = blk.loadUnaligned(fromByteOffset: 16 + 32 * g, as: __m256i.self)
                    let lo = _mm256_and_si256(bytes, low), hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low)
                    let j = 8 * b + 2 * g
                    let (sc1, m1) = scaleMinK4(2 * g, scales), (sc2, m2) = scaleMinK4(2 * g + 1, scales)
                    acc.addProduct(unsignedDot(lo, xBlock(a, j)), SIMD8(repeating: d * sc1 * a.d[j]))
                    acc1.addProduct(unsignedDot(hi, xBlock(a, j + 1)), SIMD8(repeating: d * sc2 * a.d[j + 1]))
                    offsets -= dmin * (m1 * a.s[j] + m2 * a.s[j + 1])
                }
            }
            return (acc + acc1).sum() + offsets
        }

        /// Q6_K: (6-bit value − 32), each 16 values with its own signed scale, all times d. A 32-value
        /// group's 8 lanes hold its first 16 values in lanes 0–3 and the next 16 in lanes 4–7, so one
        /// vector of two scales weighs both halves.
        static func dotQ6K(_ row: UnsafeRawPointer, _ a: Int8Activations, blocks: Int) -> Float {
            var acc = SIMD8<Float>(), acc1 = SIMD8<Float>()
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
                    let q3 = _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16(qc, 4), low), _mm256_and_si256(_mm256_srli_epi16(h, 2), two))
                    @inline(__always) func add(_ q: __m256i, _ k: Int) {
                        let j = 8 * b + 4 * n + k
                        let s0 = Float(sc.load(fromByteOffset: 2 * k, as: Int8.self))
                        let s1 = Float(sc.load(fromByteOffset: 2 * k + 1, as: Int8.self))
                        let scale = SIMD8<Float>(lowHalf: SIMD4(repeating: s0), highHalf: SIMD4(repeating: s1)) * (d * a.d[j])
                        let p = signedDot(_mm256_sub_epi8(q, bias), xBlock(a, j))
                        if k & 1 == 0 { acc.addProduct(p, scale) } else { acc1.addProduct(p, scale) }
                    }
                    add(q0, 0); add(q1, 1); add(q2, 2); add(q3, 3)
                }
            }
            return (acc + acc1).sum()
        }
    }
#endif
