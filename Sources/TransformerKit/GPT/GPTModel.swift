import Foundation
import TensorKit

/// The decoder-only Transformer in GPT-2's layout: token + learned position embeddings, `layers`
/// pre-norm blocks (causal multi-head self-attention, residual; layer norm, MLP with tanh-GELU,
/// residual), a final layer norm, and the output projection tied to the token embedding.
///
/// Field names follow Hugging Face's `GPT2Config` (`config.json`), so a GPT-2 checkpoint's config
/// reads directly.
public struct GPTConfig: Codable, Sendable, Equatable {
    public var vocabSize: Int
    /// Longest context (rows of the position table).
    public var contextLength: Int
    public var dModel: Int
    public var layers: Int
    public var heads: Int
    /// MLP width when set (`n_inner`); nil means 4 · d_model. Read `dFF`.
    public var explicitDFF: Int?
    public var layerNormEps: Float = 1e-5
    public var activation: String = "gelu_new"

    public init(vocabSize: Int, contextLength: Int, dModel: Int, layers: Int, heads: Int, dFF: Int? = nil) {
        self.vocabSize = vocabSize; self.contextLength = contextLength; self.dModel = dModel
        self.layers = layers; self.heads = heads; self.explicitDFF = dFF
    }

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", contextLength = "n_positions", dModel = "n_embd", layers = "n_layer", heads = "n_head"
        case explicitDFF = "n_inner", layerNormEps = "layer_norm_epsilon", activation = "activation_function"
    }

    /// The feed-forward (MLP) width.
    public var dFF: Int { explicitDFF ?? 4 * dModel }
    /// The width of one attention head.
    public var headSize: Int { dModel / heads }

    public func validate() throws {
        func fail(_ s: String) throws -> Never { throw ConfigError(message: s) }
        if vocabSize < 1 || contextLength < 1 || dModel < 1 || layers < 1 || heads < 1 {
            try fail("GPT config: vocab_size, n_positions, n_embd, n_layer and n_head must be positive")
        }
        if dModel % heads != 0 { try fail("GPT config: n_embd \(dModel) is not divisible by n_head \(heads)") }
        if dFF < 1 { try fail("GPT config: n_inner must be positive") }
        guard ["gelu_new", "gelu_pytorch_tanh", "gelu"].contains(activation) else {
            try fail("GPT config: activation_function \"\(activation)\" is not supported (gelu_new, gelu_pytorch_tanh, gelu)")
        }
    }

    var geluForm: GELUForm { activation == "gelu" ? .erf : .tanh }

    /// Hugging Face GPT-2 tensor names (without the `transformer.` prefix) and shapes. Weight matrices
    /// are `[in, out]` — GPT-2's Conv1D orientation, which is also this project's `x · W`.
    public var parameterShapes: [(String, [Int])] {
        let d = dModel, f = dFF
        var out: [(String, [Int])] = [("wte.weight", [vocabSize, d]), ("wpe.weight", [contextLength, d])]
        for l in 0..<layers {
            let p = "h.\(l)"
            out += [
                ("\(p).ln_1.weight", [d]), ("\(p).ln_1.bias", [d]),
                ("\(p).attn.c_attn.weight", [d, 3 * d]), ("\(p).attn.c_attn.bias", [3 * d]),
                ("\(p).attn.c_proj.weight", [d, d]), ("\(p).attn.c_proj.bias", [d]),
                ("\(p).ln_2.weight", [d]), ("\(p).ln_2.bias", [d]),
                ("\(p).mlp.c_fc.weight", [d, f]), ("\(p).mlp.c_fc.bias", [f]),
                ("\(p).mlp.c_proj.weight", [f, d]), ("\(p).mlp.c_proj.bias", [d])
            ]
        }
        out += [("ln_f.weight", [d]), ("ln_f.bias", [d])]
        return out
    }

    /// How the weight matrices start: `.gpt2` is GPT-2's (and nanoGPT's) N(0, 0.02) with the residual
    /// output projections (`c_proj`) scaled by 1/√(2·layers); `.normal` is N(0, 0.02) everywhere.
    /// At nanoGPT's small Shakespeare size (4 layers) the unscaled start trains to a lower loss in
    /// 2,000 steps (measured: validation 1.877/1.884 against 1.895–1.917, seeds 1–4).
    public enum Initialisation: String, Sendable, CaseIterable { case gpt2, normal }

    /// Zero biases, unit layer-norm gains, normal weights (see `Initialisation`). Normals by
    /// Box–Muller from the seeded generator.
    public func initialParameters(seed: UInt64, initialisation: Initialisation = .gpt2) -> ParameterSet {
        var rng = SeededRNG(seed: seed)
        var ps = ParameterSet()
        let residualScale = initialisation == .gpt2 ? 1 / Float(2 * layers).squareRoot() : 1
        for (name, shape) in parameterShapes {
            let n = shape.reduce(1, *)
            if name.hasSuffix("ln_1.weight") || name.hasSuffix("ln_2.weight") || name == "ln_f.weight" {
                ps.add(name, Tensor(repeating: 1, shape: shape))
            } else if shape.count == 1 {
                ps.add(name, Tensor(zeros: shape))
            } else {
                let std: Float = name.hasSuffix("c_proj.weight") ? 0.02 * residualScale : 0.02
                var data = [Float](repeating: 0, count: n)
                var i = 0
                while i < n {
                    let u1 = max(rng.nextUnit(), 1e-7), u2 = rng.nextUnit()
                    let r = (-2 * Foundation.log(u1)).squareRoot(), t = 2 * Float.pi * u2
                    data[i] = std * r * Foundation.cos(t)
                    if i + 1 < n { data[i + 1] = std * r * Foundation.sin(t) }
                    i += 2
                }
                ps.add(name, Tensor(shape: shape, data: data))
            }
        }
        return ps
    }
}

/// Activations of a GPT forward pass for `maxBatch` sequences of up to `maxLength` tokens.
public final class GPTActivations: @unchecked Sendable {
    final class Block {
        let ln1, mean1, rstd1, qkv, att, ctx, attnOut, res1, ln2, mean2, rstd2, fc, act, mlpOut, res2: FlatBuffer
        init(n: Int, b: Int, t: Int, c: GPTConfig) {
            let d = c.dModel, f = c.dFF
            ln1 = FlatBuffer(count: n * d); mean1 = FlatBuffer(count: n); rstd1 = FlatBuffer(count: n)
            qkv = FlatBuffer(count: n * 3 * d); att = FlatBuffer(count: b * c.heads * t * t); ctx = FlatBuffer(count: n * d)
            attnOut = FlatBuffer(count: n * d); res1 = FlatBuffer(count: n * d)
            ln2 = FlatBuffer(count: n * d); mean2 = FlatBuffer(count: n); rstd2 = FlatBuffer(count: n)
            fc = FlatBuffer(count: n * f); act = FlatBuffer(count: n * f); mlpOut = FlatBuffer(count: n * d);
            res2 = FlatBuffer(count: n * d)
        }
    }
    public let maxBatch, maxLength: Int
    let embed: FlatBuffer
    let blocks: [Block]
    let lnf, meanf, rstdf: FlatBuffer
    public let logits: FlatBuffer
    let losses: FlatBuffer
    let dStream, dPrev, dH, dQKV, dCtx, dFF1, dFF2: FlatBuffer
    /// Token ids and next-token targets (−1 = ignore) of the current batch, `[maxBatch·maxLength]`.
    public let ids, targets: UnsafeMutablePointer<Int32>

    public init(config c: GPTConfig, maxBatch b: Int, maxLength t: Int) {
        maxBatch = b; maxLength = t
        let n = b * t, d = c.dModel
        embed = FlatBuffer(count: n * d)
        blocks = (0..<c.layers).map { _ in Block(n: n, b: b, t: t, c: c) }
        lnf = FlatBuffer(count: n * d); meanf = FlatBuffer(count: n); rstdf = FlatBuffer(count: n)
        logits = FlatBuffer(count: n * c.vocabSize); losses = FlatBuffer(count: n)
        dStream = FlatBuffer(count: n * d); dPrev = FlatBuffer(count: n * d); dH = FlatBuffer(count: n * d)
        dQKV = FlatBuffer(count: n * 3 * d); dCtx = FlatBuffer(count: n * d)
        dFF1 = FlatBuffer(count: n * c.dFF); dFF2 = FlatBuffer(count: n * c.dFF)
        ids = .allocate(capacity: max(n, 1)); ids.initialize(repeating: 0, count: max(n, 1))
        targets = .allocate(capacity: max(n, 1)); targets.initialize(repeating: -1, count: max(n, 1))
    }
    deinit { ids.deallocate(); targets.deallocate() }
}

/// A GPT whose parameters, gradients and activations live in flat buffers, trained and run with
/// the same kernels as the encoder–decoder (TensorKit.Kernels).
public final class GPTModel: @unchecked Sendable {
    public let config: GPTConfig
    public let layout: BufferLayout
    public let params: FlatBuffer
    public let grads: FlatBuffer
    /// Where each block's tensors sit in `params`/`grads`, resolved once: the step does no name lookups.
    let blockOffsets: [BlockOffsets]

    struct BlockOffsets {
        let ln1w, ln1b, attnW, attnB, projW, projB, ln2w, ln2b, fcW, fcB, mlpW, mlpB: Int
        init(_ layout: BufferLayout, layer l: Int) {
            func o(_ s: String) -> Int { layout.offset("h.\(l).\(s)") }
            ln1w = o("ln_1.weight"); ln1b = o("ln_1.bias"); attnW = o("attn.c_attn.weight"); attnB = o("attn.c_attn.bias")
            projW = o("attn.c_proj.weight"); projB = o("attn.c_proj.bias"); ln2w = o("ln_2.weight"); ln2b = o("ln_2.bias")
            fcW = o("mlp.c_fc.weight"); fcB = o("mlp.c_fc.bias"); mlpW = o("mlp.c_proj.weight"); mlpB = o("mlp.c_proj.bias")
        }
    }

    public init(config: GPTConfig, parameters: ParameterSet) throws {
        try config.validate()
        self.config = config
        layout = BufferLayout(config.parameterShapes)
        params = try FlatBuffer(layout: layout, parameters: parameters)
        grads = FlatBuffer(count: layout.total)
        blockOffsets = (0..<config.layers).map { [layout] in BlockOffsets(layout, layer: $0) }
    }

    public convenience init(config: GPTConfig, seed: UInt64, initialisation: GPTConfig.Initialisation = .gpt2) throws {
        try config.validate()
        try self.init(config: config, parameters: config.initialParameters(seed: seed, initialisation: initialisation))
    }

    @inline(__always) func p(_ name: String) -> FloatPtr { params.pointer + layout.offset(name) }
    @inline(__always) func g(_ name: String) -> FloatPtr { grads.pointer + layout.offset(name) }
    @inline(__always) func p(_ offset: Int) -> FloatPtr { params.pointer + offset }
    @inline(__always) func g(_ offset: Int) -> FloatPtr { grads.pointer + offset }

    public func parameterSet() -> ParameterSet { tensors(of: params) }
    public func gradientSet() -> ParameterSet { tensors(of: grads) }
    func tensors(of buffer: FlatBuffer) -> ParameterSet { ParameterSet(buffer: buffer, layout: layout) }

    /// Forward over `b` sequences of `t` tokens (`ids` row-major `[b·t]`). With `targets` (−1 = ignore)
    /// returns the mean cross-entropy and leaves ∂L/∂logits in the logits buffer for `backward`.
    @discardableResult
    public func forward(ids: [Int32], targets: [Int32]?, b: Int, t: Int, acts: GPTActivations, computeGradient: Bool = true) -> Float {
        precondition(b <= acts.maxBatch && t <= acts.maxLength && t <= config.contextLength && ids.count == b * t)
        for i in 0..<(b * t) { acts.ids[i] = ids[i]; acts.targets[i] = targets?[i] ?? -1 }
        return forward(b: b, t: t, acts: acts, withTargets: targets != nil, computeGradient: computeGradient)
    }

    /// The same, on the ids (and targets) already in `acts.ids` / `acts.targets`: the training loop
    /// writes its batch there, so a step allocates nothing.
    @discardableResult
    public func forward(b: Int, t: Int, acts: GPTActivations, withTargets: Bool, computeGradient: Bool = true) -> Float {
        precondition(b <= acts.maxBatch && t <= acts.maxLength && t <= config.contextLength)
        let n = b * t, d = config.dModel, v = config.vocabSize, eps = config.layerNormEps
        Kernels.embeddingForward(
            out: acts.embed.pointer, ids: acts.ids, table: p("wte.weight"), scale: 1, positions: p("wpe.weight"), batch: n, length: t,
            width: d)
        var x = UnsafePointer(acts.embed.pointer)
        for (l, B) in acts.blocks.enumerated() {
            let o = blockOffsets[l]
            Kernels.layerNormForward(
                out: B.ln1.pointer, mean: B.mean1.pointer, rstd: B.rstd1.pointer, input: x, gamma: p(o.ln1w), beta: p(o.ln1b), rows: n,
                width: d, eps: eps)
            Kernels.linearForward(
                out: B.qkv.pointer, input: B.ln1.pointer, weight: p(o.attnW), bias: p(o.attnB), rows: n, width: d, outWidth: 3 * d)
            // Q, K and V are column blocks of one [n, 3d] buffer: strides 3d, offsets 0, d, 2d.
            Kernels.attentionForward(
                out: B.ctx.pointer, weights: B.att.pointer, q: B.qkv.pointer, k: B.qkv.pointer + d, v: B.qkv.pointer + 2 * d,
                keyPadding: nil, causal: true, batch: b, queries: t, keys: t, heads: config.heads, headSize: config.headSize,
                qStride: 3 * d, kvStride: 3 * d)
            Kernels.linearForward(
                out: B.attnOut.pointer, input: B.ctx.pointer, weight: p(o.projW), bias: p(o.projB), rows: n, width: d, outWidth: d)
            for i in 0..<(n * d) { B.res1.pointer[i] = x[i] + B.attnOut.pointer[i] }
            Kernels.layerNormForward(
                out: B.ln2.pointer, mean: B.mean2.pointer, rstd: B.rstd2.pointer, input: B.res1.pointer, gamma: p(o.ln2w), beta: p(o.ln2b),
                rows: n, width: d, eps: eps)
            Kernels.linearForward(
                out: B.fc.pointer, input: B.ln2.pointer, weight: p(o.fcW), bias: nil, rows: n, width: d, outWidth: config.dFF)
            Kernels.biasGELUForward(
                out: B.act.pointer, pre: B.fc.pointer, bias: p(o.fcB), rows: n, width: config.dFF, form: config.geluForm)
            Kernels.linearForward(
                out: B.mlpOut.pointer, input: B.act.pointer, weight: p(o.mlpW), bias: p(o.mlpB), rows: n, width: config.dFF, outWidth: d)
            for i in 0..<(n * d) { B.res2.pointer[i] = B.res1.pointer[i] + B.mlpOut.pointer[i] }
            x = UnsafePointer(B.res2.pointer)
        }
        Kernels.layerNormForward(
            out: acts.lnf.pointer, mean: acts.meanf.pointer, rstd: acts.rstdf.pointer, input: x, gamma: p("ln_f.weight"),
            beta: p("ln_f.bias"), rows: n, width: d, eps: eps)
        Gemm.multiply(
            transA: false, transB: true, m: n, n: v, k: d, a: acts.lnf.pointer, lda: d, b: p("wte.weight"), ldb: d, beta: 0,
            c: acts.logits.pointer, ldc: v)
        guard withTargets else { return .nan }
        let (sum, count) = Kernels.softmaxCrossEntropy(
            logits: acts.logits.pointer, losses: acts.losses.pointer, targets: acts.targets, rows: n, vocab: v,
            smoothing: 0, ignore: -1, computeGradient: computeGradient)
        return count > 0 ? Float(sum / Double(count)) : .nan
    }

    /// Accumulates ∂L/∂parameters from the ∂L/∂logits `forward` left behind. Zero `grads` first.
    public func backward(b: Int, t: Int, acts: GPTActivations) {
        let n = b * t, d = config.dModel, v = config.vocabSize, f = config.dFF
        let dX = acts.dStream.pointer
        dX.update(repeating: 0, count: n * d)
        // logits = lnf · wteᵀ
        let dLnf = acts.dH.pointer
        dLnf.update(repeating: 0, count: n * d)
        Gemm.multiply(
            transA: false, transB: false, m: n, n: d, k: v, a: acts.logits.pointer, lda: v, b: p("wte.weight"), ldb: d, beta: 1, c: dLnf,
            ldc: d)
        Gemm.multiply(
            transA: true, transB: false, m: v, n: d, k: n, a: acts.logits.pointer, lda: v, b: acts.lnf.pointer, ldb: d, beta: 1,
            c: g("wte.weight"), ldc: d)
        let lastStream = acts.blocks.last.map { UnsafePointer($0.res2.pointer) } ?? UnsafePointer(acts.embed.pointer)
        Kernels.layerNormBackward(
            dInput: dX, dGamma: g("ln_f.weight"), dBeta: g("ln_f.bias"), dOut: dLnf, input: lastStream, gamma: p("ln_f.weight"),
            mean: acts.meanf.pointer, rstd: acts.rstdf.pointer, rows: n, width: d)
        for (l, B) in acts.blocks.enumerated().reversed() {
            let o = blockOffsets[l]
            let input = l == 0 ? UnsafePointer(acts.embed.pointer) : UnsafePointer(acts.blocks[l - 1].res2.pointer)
            // MLP: res2 = res1 + proj(gelu(fc(ln2(res1))))
            let dAct = acts.dFF1.pointer, dFc = acts.dFF2.pointer, dLn = acts.dH.pointer
            dAct.update(repeating: 0, count: n * f); dFc.update(repeating: 0, count: n * f); dLn.update(repeating: 0, count: n * d)
            Kernels.linearBackward(
                dInput: dAct, dWeight: g(o.mlpW), dBias: g(o.mlpB), dOut: dX, input: B.act.pointer, weight: p(o.mlpW), rows: n, width: f,
                outWidth: d)
            Kernels.geluBackward(dInput: dFc, dOut: dAct, input: B.fc.pointer, count: n * f, form: config.geluForm)
            Kernels.linearBackward(
                dInput: dLn, dWeight: g(o.fcW), dBias: g(o.fcB), dOut: dFc, input: B.ln2.pointer, weight: p(o.fcW), rows: n, width: d,
                outWidth: f)
            // dX (w.r.t. res2) flows to res1 directly and through ln_2.
            Kernels.layerNormBackward(
                dInput: dX, dGamma: g(o.ln2w), dBeta: g(o.ln2b), dOut: dLn, input: B.res1.pointer, gamma: p(o.ln2w), mean: B.mean2.pointer,
                rstd: B.rstd2.pointer, rows: n, width: d)
            // Attention: res1 = input + proj(attn(ln1(input)))
            let dCtx = acts.dCtx.pointer, dQKV = acts.dQKV.pointer
            dCtx.update(repeating: 0, count: n * d); dQKV.update(repeating: 0, count: n * 3 * d); dLn.update(repeating: 0, count: n * d)
            Kernels.linearBackward(
                dInput: dCtx, dWeight: g(o.projW), dBias: g(o.projB), dOut: dX, input: B.ctx.pointer, weight: p(o.projW), rows: n, width: d,
                outWidth: d)
            Kernels.attentionBackward(
                dQ: dQKV, dK: dQKV + d, dV: dQKV + 2 * d, dOut: dCtx, q: B.qkv.pointer, k: B.qkv.pointer + d, v: B.qkv.pointer + 2 * d,
                weights: B.att.pointer,
                batch: b, queries: t, keys: t, heads: config.heads, headSize: config.headSize, qStride: 3 * d, kvStride: 3 * d)
            Kernels.linearBackward(
                dInput: dLn, dWeight: g(o.attnW), dBias: g(o.attnB), dOut: dQKV, input: B.ln1.pointer, weight: p(o.attnW), rows: n,
                width: d, outWidth: 3 * d)
            Kernels.layerNormBackward(
                dInput: dX, dGamma: g(o.ln1w), dBeta: g(o.ln1b), dOut: dLn, input: input, gamma: p(o.ln1w), mean: B.mean1.pointer,
                rstd: B.rstd1.pointer, rows: n, width: d)
        }
        Kernels.embeddingBackward(
            dTable: g("wte.weight"), dPositions: g("wpe.weight"), dOut: dX, ids: acts.ids, scale: 1, batch: n, length: t, width: d)
    }
}
