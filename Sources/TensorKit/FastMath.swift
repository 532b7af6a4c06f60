/// Vectorised elementary functions for the hot activation kernels.
///
/// libm's `tanhf` and `expm1f` are scalar calls; in a small GPT's training step they cost more than
/// the matrix products (measured: ~40% of the step). These work on 8 floats at a time.
public enum FastMath {
    /// e^x for 8 lanes: x = n·ln2 + r, e^r by Cephes' degree-6 polynomial, 2^n through the exponent
    /// bits. Relative error about 2e-7 over the float range; inputs are clamped to [-87.3, 88.7].
    /// `fused`: the reduction and the polynomial by fused multiply-adds (a third fewer instructions; not
    /// the same roundings, so training, whose figures are checked against PyTorch's, keeps the default).
    @inline(__always)
    public static func exp(_ x0: SIMD8<Float>, fused: Bool = false) -> SIMD8<Float> {
        // Clamp by compare-and-select: `clamped` goes through generic pointwiseMin/Max calls that
        // were not inlined (measured ~4% of a small GPT's step).
        let lo = SIMD8<Float>(repeating: -87.3), hi = SIMD8<Float>(repeating: 88.7)
        var x = x0
        x.replace(with: lo, where: x .< lo)
        x.replace(with: hi, where: x .> hi)
        // a·b + c, fused or not
        @inline(__always) func madd(_ a: SIMD8<Float>, _ b: SIMD8<Float>, _ c: SIMD8<Float>) -> SIMD8<Float> {
            fused ? c.addingProduct(a, b) : a * b + c
        }
        let n = madd(x, SIMD8(repeating: 1.442_695_04), SIMD8(repeating: 0.5)).rounded(.down)
        var r = madd(n, SIMD8(repeating: -0.693_359_375), x)
        r = madd(n, SIMD8(repeating: 2.121_944_4e-4), r)
        var y = SIMD8<Float>(repeating: 1.987_569_15e-4)
        y = madd(y, r, SIMD8(repeating: 1.398_199_950_7e-3))
        y = madd(y, r, SIMD8(repeating: 8.333_451_907_3e-3))
        y = madd(y, r, SIMD8(repeating: 4.166_579_589_4e-2))
        y = madd(y, r, SIMD8(repeating: 1.666_666_545_9e-1))
        y = madd(y, r, SIMD8(repeating: 5.000_000_120_1e-1))
        y = madd(y, r * r, r) + 1
        // n is a whole number in [-127, 128]: adding 1.5·2²³ puts it in the low mantissa bits, so
        // reinterpreting and subtracting the magic's bits gives it as an integer without a
        // (scalarised) float-to-int conversion.
        let magic = SIMD8<Float>(repeating: 12_582_912)
        let ni = unsafeBitCast(n + magic, to: SIMD8<Int32>.self) &- unsafeBitCast(magic, to: SIMD8<Int32>.self)
        let bits = (ni &+ 127) &<< 23
        return y * unsafeBitCast(bits, to: SIMD8<Float>.self)
    }

    /// erf for 8 lanes: x·P(x²)/Q(x²) on x clamped to [−4, 4] (beyond which erf is ±1 in float),
    /// the rational approximation Eigen and XLA use for float. Absolute error below 1e-6 (tested
    /// against libm's `erf`); no exp, one division.
    @inline(__always)
    public static func erf(_ x0: SIMD8<Float>) -> SIMD8<Float> {
        let lo = SIMD8<Float>(repeating: -4), hi = SIMD8<Float>(repeating: 4)
        var x = x0  // compare-and-select, as in `exp`
        x.replace(with: lo, where: x .< lo)
        x.replace(with: hi, where: x .> hi)
        let x2 = x * x
        var p = x2 * -2.726_142_258_013_06e-10 + 2.770_681_424_959_02e-08
        p = x2 * p - 2.101_024_020_825_08e-06
        p = x2 * p - 5.692_506_394_623_46e-05
        p = x2 * p - 7.349_906_303_268_55e-04
        p = x2 * p - 2.954_599_808_540_25e-03
        p = x2 * p - 1.609_603_332_624_15e-02
        var q = x2 * -1.456_607_184_649_96e-05 - 2.133_740_552_789_05e-04
        q = x2 * q - 1.682_826_974_382_03e-03
        q = x2 * q - 7.373_329_167_204_68e-03
        q = x2 * q - 1.426_473_905_141_89e-02
        return x * p / q
    }

    /// tanh for 8 lanes, as 1 − 2 / (e^{2x} + 1) (exact limits ±1 for large |x|).
    @inline(__always)
    public static func tanh(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let e = exp(2 * x)
        return 1 - 2 / (e + 1)
    }
}

extension Kernels {
    /// GELU forward in either form, 8 at a time, on both cores when the block is large.
    static func geluForwardFast(_ out: FloatPtr, _ inp: ConstFloatPtr, count: Int, form: GELUForm) {
        let o0 = SharedPointer(out), i0 = SharedPointer(inp)
        parallelRanges(count: (count + 7) / 8, costPerItem: 200) { blocks in
            let lo = blocks.lowerBound * 8, hi = min(count, blocks.upperBound * 8)
            let o = o0.pointer + lo, x = i0.readOnly + lo
            switch form {
            case .tanh: geluTanhForwardSerial(o, x, count: hi - lo)
            case .erf: geluErfForwardSerial(o, x, count: hi - lo)
            }
        }
    }

    /// GELU (tanh form) forward, 8 at a time.
    static func geluTanhForwardSerial(_ out: FloatPtr, _ inp: ConstFloatPtr, count: Int) {
        let c = Float((2.0 / Double.pi).squareRoot())
        var i = 0
        while i + 8 <= count {
            let x = load8(inp + i)
            let t = FastMath.tanh(c * (x + 0.044715 * x * x * x))
            store8(0.5 * x * (1 + t), out + i)
            i += 8
        }
        while i < count { out[i] = gelu(inp[i], form: .tanh); i += 1 }
    }

    /// GELU (exact form, `x·Φ(x) = ½x(1 + erf(x/√2))`, BERT's) forward, 8 at a time.
    static func geluErfForwardSerial(_ out: FloatPtr, _ inp: ConstFloatPtr, count: Int) {
        let r: Float = 0.707_106_781_186_547_5  // 1/√2
        var i = 0
        while i + 8 <= count {
            let x = load8(inp + i)
            store8(0.5 * x * (1 + FastMath.erf(x * r)), out + i)
            i += 8
        }
        while i < count { out[i] = gelu(inp[i], form: .erf); i += 1 }
    }

    /// GELU (tanh form) backward, 8 at a time: dinp += (0.5(1+t) + 0.5x(1−t²)·u′) · dout.
    static func geluTanhBackward(_ dinp: FloatPtr, _ dout: ConstFloatPtr, _ inp: ConstFloatPtr, count: Int) {
        let d0 = SharedPointer(dinp), o0 = SharedPointer(dout), i0 = SharedPointer(inp)
        parallelRanges(count: (count + 7) / 8, costPerItem: 300) { blocks in
            let lo = blocks.lowerBound * 8, hi = min(count, blocks.upperBound * 8)
            geluTanhBackwardSerial(d0.pointer + lo, o0.readOnly + lo, i0.readOnly + lo, count: hi - lo)
        }
    }

    static func geluTanhBackwardSerial(_ dinp: FloatPtr, _ dout: ConstFloatPtr, _ inp: ConstFloatPtr, count: Int) {
        let c = Float((2.0 / Double.pi).squareRoot())
        var i = 0
        while i + 8 <= count {
            let x = load8(inp + i)
            let d = load8(dout + i)
            let t = FastMath.tanh(c * (x + 0.044715 * x * x * x))
            let du = c * (1 + 3 * 0.044715 * x * x)
            let g = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du
            let old = load8(dinp + i)
            store8(old + g * d, dinp + i)
            i += 8
        }
        while i < count { dinp[i] += geluDerivative(inp[i], form: .tanh) * dout[i]; i += 1 }
    }
}

extension Kernels {
    /// `pre[i, ·] += bias`, then `out[i, ·] = GELU(pre[i, ·])`, row by row for `[n, c]`: the bias add and
    /// the activation in one pass over memory (each row is still in L1 when the activation reads it).
    /// `pre` keeps the biased pre-activation for the backward pass.
    public static func biasGELUForward(out: FloatPtr, pre: FloatPtr, bias: ConstFloatPtr, rows n: Int, width c: Int, form: GELUForm) {
        let a = (SharedPointer(out), SharedPointer(pre), SharedPointer(bias))
        parallelRanges(count: n, costPerItem: 25 * c) { rows in
            let out = a.0.pointer, pre = a.1.pointer, bias = a.2.readOnly
            for i in rows {
                let p = pre + i * c, o = out + i * c
                var j = 0
                while j + 8 <= c { store8(load8(p + j) + load8(bias + j), p + j); j += 8 }
                while j < c { p[j] += bias[j]; j += 1 }
                switch form {
                case .tanh: geluTanhForwardSerial(o, p, count: c)
                case .erf: geluErfForwardSerial(o, p, count: c)
                }
            }
        }
    }
}
