import Foundation

// MARK: - The pieces a Llama block adds to GPT's
//
// RMSNorm instead of layer norm, rotary position embeddings instead of learned positions, grouped-
// query attention reading a KV cache (CachedAttention.swift, shared with the GPT), and the SwiGLU
// feed-forward's gate. Inference only (forward).

extension Kernels {
    /// `out[i, :] = inp[i, :] / √(mean(inp[i, :]²) + eps) · weight` for `n` rows of `c`.
    public static func rmsNormForward(out: FloatPtr, input inp: ConstFloatPtr, weight: ConstFloatPtr, rows n: Int, width c: Int, eps: Float)
    {
        for i in 0..<n {
            let x = inp + i * c, o = out + i * c
            var ss: Float = 0
            for j in 0..<c { ss += x[j] * x[j] }
            let r = 1 / (ss / Float(c) + eps).squareRoot()
            for j in 0..<c { o[j] = x[j] * r * weight[j] }
        }
    }

    /// Rotary position embedding, in place, for `n` rows (positions `start ..< start + n`) of `heads`
    /// heads of size `headSize`. Pairs are adjacent, (x[2i], x[2i+1]) rotated by pos · θ_i — the order
    /// of GGUF files, whose converter permuted Q and K's rows from Hugging Face's half-split layout
    /// (x[i], x[i + d/2]). Both give the same q·k, so the weights need no un-permuting.
    /// `cosSin[pos][i]` holds (cos, sin) of pos · θ_i, θ_i = base^(−2i/d).
    public static func ropeForward(_ x: FloatPtr, cosSin: ConstFloatPtr, n: Int, start: Int, heads: Int, headSize: Int, rowStride: Int) {
        let half = headSize / 2
        for t in 0..<n {
            let cs = cosSin + (start + t) * headSize
            for h in 0..<heads {
                let v = x + t * rowStride + h * headSize
                for i in 0..<half {
                    let c = cs[2 * i], s = cs[2 * i + 1]
                    let a = v[2 * i], b = v[2 * i + 1]
                    v[2 * i] = a * c - b * s
                    v[2 * i + 1] = a * s + b * c
                }
            }
        }
    }

    /// Rotary position embedding with the pairs half a head apart, (x[i], x[i + d/2]) — Hugging Face's
    /// `rotate_half`, which llama.cpp calls NEOX and uses for Qwen2 and Gemma, whose GGUF weights are
    /// stored un-permuted. Same table and angles as `ropeForward`.
    public static func ropeForwardNeox(
        _ x: FloatPtr, cosSin: ConstFloatPtr, n: Int, start: Int, heads: Int, headSize: Int, rowStride: Int
    ) {
        let half = headSize / 2
        for t in 0..<n {
            let cs = cosSin + (start + t) * headSize
            for h in 0..<heads {
                let v = x + t * rowStride + h * headSize
                for i in 0..<half {
                    let c = cs[2 * i], s = cs[2 * i + 1]
                    let a = v[i], b = v[i + half]
                    v[i] = a * c - b * s
                    v[i + half] = a * s + b * c
                }
            }
        }
    }

    /// The (cos, sin) table `ropeForward` reads: `[positions, headSize]`, computed in Double:
    /// θ = (p / scale) · base^(−2i/d) / divisors[i]. `scale` is linear RoPE scaling (positions
    /// stretched by a factor); `divisors` (`headSize / 2` of them) are Llama 3.1's per-frequency
    /// scaling as GGUF stores it (`rope_freqs.weight`).
    public static func ropeTable(
        _ out: FloatPtr, positions: Int, headSize: Int, base: Double, scale: Double = 1, divisors: [Float]? = nil
    ) {
        for p in 0..<positions {
            for i in 0..<headSize / 2 {
                let theta = Double(p) / scale * Foundation.pow(base, -2 * Double(i) / Double(headSize)) / Double(divisors?[i] ?? 1)
                out[p * headSize + 2 * i] = Float(Foundation.cos(theta))
                out[p * headSize + 2 * i + 1] = Float(Foundation.sin(theta))
            }
        }
    }

    /// `x[i, :] += bias` for `rows` rows of `width` (Qwen2's Q, K and V biases).
    public static func addBias(_ x: FloatPtr, bias: ConstFloatPtr, rows: Int, width: Int) {
        for i in 0..<rows {
            let r = x + i * width
            var j = 0
            while j + 8 <= width {
                store8(load8(r + j) + load8(bias + j), r + j)
                j += 8
            }
            while j < width { r[j] += bias[j]; j += 1 }
        }
    }

    /// SwiGLU's gate: `out = silu(gate) · up`, silu(x) = x / (1 + e^−x), 8 at a time.
    public static func swigluForward(out: FloatPtr, gate: ConstFloatPtr, up: ConstFloatPtr, count: Int) {
        var i = 0
        while i + 8 <= count {
            let g = load8(gate + i)
            let u = load8(up + i)
            store8(g / (1 + FastMath.exp(-g, fused: true)) * u, out + i)
            i += 8
        }
        while i < count { out[i] = gate[i] / (1 + Foundation.exp(-gate[i])) * up[i]; i += 1 }
    }

    /// GeGLU's gate (Gemma): `out = gelu(gate) · up` with GELU's tanh form,
    /// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), 8 at a time.
    public static func gegluForward(out: FloatPtr, gate: ConstFloatPtr, up: ConstFloatPtr, count: Int) {
        let c: Float = 0.797_884_6  // √(2/π)
        var i = 0
        while i + 8 <= count {
            let g = load8(gate + i)
            let t = FastMath.tanh(c * (g + 0.044715 * g * g * g))
            store8(0.5 * g * (1 + t) * load8(up + i), out + i)
            i += 8
        }
        while i < count { out[i] = gelu(gate[i], form: .tanh) * up[i]; i += 1 }
    }
}
