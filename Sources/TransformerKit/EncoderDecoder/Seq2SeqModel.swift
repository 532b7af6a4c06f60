import Foundation
import TensorKit

/// A batch of sentence pairs, padded to common lengths.
public struct Seq2SeqBatch: Sendable {
    public var batchSize: Int
    public var sourceLength: Int
    public var targetLength: Int
    /// `[batchSize · sourceLength]` source ids, padded with the pad id.
    public var source: [Int32]
    /// True where a source position is padding.
    public var sourcePadding: [Bool]
    /// `[batchSize · targetLength]` decoder inputs: `<start> y1 … yn <pad>…`.
    public var targetInput: [Int32]
    /// `[batchSize · targetLength]` targets: `y1 … yn <end> <pad>…`; pads are ignored by the loss.
    public var targetOutput: [Int32]
    /// The padding id (ignored by the loss).
    public var pad: Int32

    public init(pairs: [(source: [Int], target: [Int])], pad: Int, start: Int, end: Int) {
        batchSize = pairs.count
        self.pad = Int32(pad)
        sourceLength = max(1, pairs.map(\.source.count).max() ?? 1)
        targetLength = (pairs.map(\.target.count).max() ?? 0) + 1
        source = []; sourcePadding = []; targetInput = []; targetOutput = []
        for (s, t) in pairs {
            for i in 0..<sourceLength {
                source.append(Int32(i < s.count ? s[i] : pad)); sourcePadding.append(i >= s.count)
            }
            let inp = [start] + t, out = t + [end]
            for i in 0..<targetLength {
                targetInput.append(Int32(i < inp.count ? inp[i] : pad))
                targetOutput.append(Int32(i < out.count ? out[i] : pad))
            }
        }
    }

    /// Target tokens the loss counts (not padding).
    public var targetTokenCount: Int { targetOutput.filter { $0 != pad }.count }
}

/// The encoder–decoder Transformer for training and batched inference: parameters, gradients and
/// activations in flat buffers sized once, layers as forward/backward kernel pairs (TensorKit.Kernels).
///
/// It computes exactly what the step-by-step `TracedEncoderDecoder` computes (tested), for a whole batch,
/// with dropout where the paper puts it: on each sublayer's output before the residual add, and on
/// the sums of embeddings and positions.
public final class Seq2SeqModel: @unchecked Sendable {
    public let config: TransformerConfig
    public let layout: BufferLayout
    public let params: FlatBuffer
    public let grads: FlatBuffer
    /// The sinusoidal table `[maxLength, d_model]`.
    let positionTable: FlatBuffer

    public init(config: TransformerConfig, parameters: ParameterSet) throws {
        try config.validate()
        self.config = config
        layout = BufferLayout(config.parameterShapes)
        params = try FlatBuffer(layout: layout, parameters: parameters)
        grads = FlatBuffer(count: layout.total)
        let pe = sinusoidalPositionalEncoding(count: config.contextLength, dModel: config.dModel)
        positionTable = FlatBuffer(count: pe.count)
        for i in 0..<pe.count { positionTable[i] = pe.data[i] }
    }

    public convenience init(config: TransformerConfig, seed: UInt64) throws {
        try self.init(config: config, parameters: config.initialParameters(seed: seed))
    }

    /// The parameters as named tensors (for checkpoints and the step-by-step model).
    public func parameterSet() -> ParameterSet { tensors(of: params) }

    /// The gradients as named tensors.
    public func gradientSet() -> ParameterSet { tensors(of: grads) }

    func tensors(of buffer: FlatBuffer) -> ParameterSet { ParameterSet(buffer: buffer, layout: layout) }

    @inline(__always) func p(_ name: String) -> FloatPtr { params.pointer + layout.offset(name) }
    @inline(__always) func g(_ name: String) -> FloatPtr { grads.pointer + layout.offset(name) }
    func pOpt(_ name: String) -> FloatPtr? { layout.entry(name).map { params.pointer + $0.offset } }
    func gOpt(_ name: String) -> FloatPtr? { layout.entry(name).map { grads.pointer + $0.offset } }

    var sourceTable: String { "src_embed" }
    var targetTable: String { config.embeddings == .all ? "src_embed" : "tgt_embed" }
    var embedScale: Float { config.scaleEmbeddings ? Float(config.dModel).squareRoot() : 1 }
}

// MARK: - Activations

/// Every activation a forward pass keeps for its backward pass, plus the scratch the backward needs,
/// sized once for the largest batch (`maxBatch` sentences of at most `maxSource`/`maxTarget` tokens).
public final class Seq2SeqActivations: @unchecked Sendable {
    final class Attention {
        let q, k, v, ctx, out, keep, att: FlatBuffer
        init(nq: Int, nkv: Int, width: Int, d: Int, attCount: Int) {
            q = FlatBuffer(count: nq * width); k = FlatBuffer(count: nkv * width); v = FlatBuffer(count: nkv * width)
            ctx = FlatBuffer(count: nq * width); out = FlatBuffer(count: nq * d); keep = FlatBuffer(count: nq * d)
            att = FlatBuffer(count: attCount)
        }
    }
    final class FFN {
        let h, a, out, keep: FlatBuffer
        init(n: Int, dff: Int, d: Int) {
            h = FlatBuffer(count: n * dff); a = FlatBuffer(count: n * dff); out = FlatBuffer(count: n * d); keep = FlatBuffer(count: n * d)
        }
    }
    /// A residual sublayer: its layer norm (output and statistics) and the residual sum.
    final class Sub {
        let normOut, mean, rstd, residual: FlatBuffer
        init(n: Int, d: Int) {
            normOut = FlatBuffer(count: n * d); mean = FlatBuffer(count: n); rstd = FlatBuffer(count: n);
            residual = FlatBuffer(count: n * d)
        }
    }
    final class EncoderLayer {
        let input: FlatBuffer
        let attn: Attention, ffn: FFN, sub1: Sub, sub2: Sub
        init(n: Int, b: Int, s: Int, c: TransformerConfig) {
            input = FlatBuffer(count: n * c.dModel)
            attn = Attention(nq: n, nkv: n, width: c.attentionWidth, d: c.dModel, attCount: b * c.heads * s * s)
            ffn = FFN(n: n, dff: c.dFF, d: c.dModel)
            sub1 = Sub(n: n, d: c.dModel); sub2 = Sub(n: n, d: c.dModel)
        }
    }
    final class DecoderLayer {
        let input: FlatBuffer
        let selfAttn: Attention, crossAttn: Attention, ffn: FFN, sub1: Sub, sub2: Sub, sub3: Sub
        init(nt: Int, ns: Int, b: Int, s: Int, t: Int, c: TransformerConfig) {
            input = FlatBuffer(count: nt * c.dModel)
            selfAttn = Attention(nq: nt, nkv: nt, width: c.attentionWidth, d: c.dModel, attCount: b * c.heads * t * t)
            crossAttn = Attention(nq: nt, nkv: ns, width: c.attentionWidth, d: c.dModel, attCount: b * c.heads * t * s)
            ffn = FFN(n: nt, dff: c.dFF, d: c.dModel)
            sub1 = Sub(n: nt, d: c.dModel); sub2 = Sub(n: nt, d: c.dModel); sub3 = Sub(n: nt, d: c.dModel)
        }
    }

    public let maxBatch, maxSource, maxTarget: Int
    let encEmbed, encEmbedKeep, decEmbed, decEmbedKeep: FlatBuffer
    let encoder: [EncoderLayer]
    let decoder: [DecoderLayer]
    let encFinal: Sub, decFinal: Sub
    /// Encoder output `[b·s, d]` and decoder output `[b·t, d]`.
    let memory, decOut: FlatBuffer
    /// Logits `[b·t, V]`; after a training forward they hold ∂L/∂logits.
    public let logits: FlatBuffer
    let losses: FlatBuffer
    // Backward scratch.
    let dStream, dPrev, dRes, dSub, dH, dCtx, dQ, dK, dV, dFF1, dFF2, dMemory: FlatBuffer
    let srcIDs, tgtIDs, tgtOut: UnsafeMutablePointer<Int32>
    let srcPad: UnsafeMutablePointer<Bool>

    public init(config c: TransformerConfig, maxBatch b: Int, maxSource s: Int, maxTarget t: Int) {
        maxBatch = b; maxSource = s; maxTarget = t
        let ns = b * s, nt = b * t, d = c.dModel, a = c.attentionWidth, n = max(ns, nt)
        encEmbed = FlatBuffer(count: ns * d); encEmbedKeep = FlatBuffer(count: ns * d)
        decEmbed = FlatBuffer(count: nt * d); decEmbedKeep = FlatBuffer(count: nt * d)
        encoder = (0..<c.encoderLayers).map { _ in EncoderLayer(n: ns, b: b, s: s, c: c) }
        decoder = (0..<c.decoderLayers).map { _ in DecoderLayer(nt: nt, ns: ns, b: b, s: s, t: t, c: c) }
        encFinal = Sub(n: ns, d: d); decFinal = Sub(n: nt, d: d)
        memory = FlatBuffer(count: ns * d); decOut = FlatBuffer(count: nt * d)
        logits = FlatBuffer(count: nt * c.targetVocabSize); losses = FlatBuffer(count: nt)
        dStream = FlatBuffer(count: n * d); dPrev = FlatBuffer(count: n * d); dRes = FlatBuffer(count: n * d)
        dSub = FlatBuffer(count: n * d); dH = FlatBuffer(count: n * d)
        dCtx = FlatBuffer(count: n * a); dQ = FlatBuffer(count: n * a); dK = FlatBuffer(count: n * a); dV = FlatBuffer(count: n * a)
        dFF1 = FlatBuffer(count: n * c.dFF); dFF2 = FlatBuffer(count: n * c.dFF)
        dMemory = FlatBuffer(count: ns * d)
        srcIDs = .allocate(capacity: max(ns, 1)); srcIDs.initialize(repeating: 0, count: max(ns, 1))
        tgtIDs = .allocate(capacity: max(nt, 1)); tgtIDs.initialize(repeating: 0, count: max(nt, 1))
        tgtOut = .allocate(capacity: max(nt, 1)); tgtOut.initialize(repeating: 0, count: max(nt, 1))
        srcPad = .allocate(capacity: max(ns, 1)); srcPad.initialize(repeating: false, count: max(ns, 1))
    }

    deinit { srcIDs.deallocate(); tgtIDs.deallocate(); tgtOut.deallocate(); srcPad.deallocate() }
}

// MARK: - Forward and backward

extension Seq2SeqModel {
    /// Shape of the batch currently in the activations.
    public struct Shape: Sendable { public var b, s, t: Int }

    /// Runs a training (or evaluation) forward pass. Returns the mean loss over non-pad targets.
    /// With `computeGradient` the logits buffer is left holding ∂L/∂logits for `backward`.
    @discardableResult
    public func forward(
        _ batch: Seq2SeqBatch, acts: Seq2SeqActivations, labelSmoothing: Float = 0, dropout: Float = 0,
        rng: inout SeededRNG, computeGradient: Bool = true
    ) -> (loss: Float, tokens: Int) {
        let shape = load(batch, into: acts)
        encode(acts, shape, dropout: dropout, rng: &rng)
        decode(acts, shape, dropout: dropout, rng: &rng)
        let n = shape.b * shape.t
        let (sum, count) = Kernels.softmaxCrossEntropy(
            logits: acts.logits.pointer, losses: acts.losses.pointer, targets: acts.tgtOut, rows: n, vocab: config.targetVocabSize,
            smoothing: labelSmoothing, ignore: batch.pad, computeGradient: computeGradient)
        return (count > 0 ? Float(sum / Double(count)) : 0, count)
    }

    func load(_ batch: Seq2SeqBatch, into acts: Seq2SeqActivations) -> Shape {
        precondition(
            batch.batchSize <= acts.maxBatch && batch.sourceLength <= acts.maxSource && batch.targetLength <= acts.maxTarget,
            """
            batch \(batch.batchSize)×\(batch.sourceLength)/\(batch.targetLength) exceeds the activations' \
            \(acts.maxBatch)×\(acts.maxSource)/\(acts.maxTarget)
            """
        )
        for i in 0..<batch.source.count { acts.srcIDs[i] = batch.source[i]; acts.srcPad[i] = batch.sourcePadding[i] }
        for i in 0..<batch.targetInput.count { acts.tgtIDs[i] = batch.targetInput[i]; acts.tgtOut[i] = batch.targetOutput[i] }
        return Shape(b: batch.batchSize, s: batch.sourceLength, t: batch.targetLength)
    }

    // MARK: Encoder

    func encode(_ acts: Seq2SeqActivations, _ sh: Shape, dropout: Float, rng: inout SeededRNG) {
        let n = sh.b * sh.s, d = config.dModel
        let pos = config.positions == .learned ? p("src_pos") : positionTable.pointer
        Kernels.embeddingForward(
            out: acts.encEmbed.pointer, ids: acts.srcIDs, table: p(sourceTable), scale: embedScale, positions: pos, batch: n, length: sh.s,
            width: d)
        if dropout > 0 {
            Kernels.dropoutForward(acts.encEmbed.pointer, keep: acts.encEmbedKeep.pointer, count: n * d, p: dropout, rng: &rng)
        }
        var x = UnsafePointer(acts.encEmbed.pointer)
        for (l, L) in acts.encoder.enumerated() {
            x = encoderLayerForward(
                L, x, prefix: "encoder.layers.\(l)", keyPadding: UnsafePointer(acts.srcPad), b: sh.b, s: sh.s,
                dropout: dropout, rng: &rng)
        }
        if config.norm == .pre && config.encoderLayers > 0 {
            Kernels.layerNormForward(
                out: acts.encFinal.normOut.pointer, mean: acts.encFinal.mean.pointer, rstd: acts.encFinal.rstd.pointer, input: x,
                gamma: p("encoder.norm.gamma"), beta: p("encoder.norm.beta"), rows: n, width: d, eps: config.layerNormEps)
            x = UnsafePointer(acts.encFinal.normOut.pointer)
        }
        acts.memory.pointer.update(from: x, count: n * d)
    }

    // MARK: Decoder

    func decode(_ acts: Seq2SeqActivations, _ sh: Shape, dropout: Float, rng: inout SeededRNG) {
        let n = sh.b * sh.t, d = config.dModel
        let pos = config.positions == .learned ? p("tgt_pos") : positionTable.pointer
        Kernels.embeddingForward(
            out: acts.decEmbed.pointer, ids: acts.tgtIDs, table: p(targetTable), scale: embedScale, positions: pos, batch: n, length: sh.t,
            width: d)
        if dropout > 0 {
            Kernels.dropoutForward(acts.decEmbed.pointer, keep: acts.decEmbedKeep.pointer, count: n * d, p: dropout, rng: &rng)
        }
        var x = UnsafePointer(acts.decEmbed.pointer)
        let memory = UnsafePointer(acts.memory.pointer)
        for (l, L) in acts.decoder.enumerated() {
            let pre = "decoder.layers.\(l)"
            L.input.pointer.update(from: x, count: n * d)
            x = UnsafePointer(L.input.pointer)
            x = sublayerForward(
                x, L.sub1, norm: "\(pre).norm1", n: n, dropout: dropout, keep: L.selfAttn.keep, out: L.selfAttn.out, rng: &rng
            ) { h in
                attentionForward(
                    L.selfAttn, q: h, kv: h, param: "\(pre).self_attn", keyPadding: nil, causal: true, b: sh.b, tq: sh.t, tk: sh.t)
            }
            x = sublayerForward(
                x, L.sub2, norm: "\(pre).norm2", n: n, dropout: dropout, keep: L.crossAttn.keep, out: L.crossAttn.out, rng: &rng
            ) { h in
                attentionForward(
                    L.crossAttn, q: h, kv: memory, param: "\(pre).cross_attn", keyPadding: UnsafePointer(acts.srcPad), causal: false,
                    b: sh.b, tq: sh.t, tk: sh.s)
            }
            x = sublayerForward(x, L.sub3, norm: "\(pre).norm3", n: n, dropout: dropout, keep: L.ffn.keep, out: L.ffn.out, rng: &rng) { h in
                ffnForward(L.ffn, h, param: "\(pre).ffn", n: n)
            }
        }
        if config.norm == .pre {
            Kernels.layerNormForward(
                out: acts.decFinal.normOut.pointer, mean: acts.decFinal.mean.pointer, rstd: acts.decFinal.rstd.pointer, input: x,
                gamma: p("decoder.norm.gamma"), beta: p("decoder.norm.beta"), rows: n, width: d, eps: config.layerNormEps)
            x = UnsafePointer(acts.decFinal.normOut.pointer)
        }
        acts.decOut.pointer.update(from: x, count: n * d)
        // Output projection: y · W_out, or y · Eᵀ when tied.
        let v = config.targetVocabSize
        if config.embeddings == .separate {
            Kernels.linearForward(
                out: acts.logits.pointer, input: acts.decOut.pointer, weight: p("out_proj"), bias: nil, rows: n, width: d, outWidth: v)
        } else {
            Gemm.multiply(
                transA: false, transB: true, m: n, n: v, k: d, a: acts.decOut.pointer, lda: d, b: p(targetTable), ldb: d,
                beta: 0, c: acts.logits.pointer, ldc: v)
        }
    }

    // MARK: Backward

    /// Accumulates ∂L/∂parameters into `grads` from the ∂L/∂logits that `forward` left in the logits buffer.
    /// Call `grads.zero()` before a step's first backward.
    public func backward(_ batch: Seq2SeqBatch, acts: Seq2SeqActivations, dropout: Float = 0) {
        let sh = Shape(b: batch.batchSize, s: batch.sourceLength, t: batch.targetLength)
        let d = config.dModel, v = config.targetVocabSize
        let nt = sh.b * sh.t, ns = sh.b * sh.s
        // Output projection.
        let dY = acts.dStream.pointer
        dY.update(repeating: 0, count: nt * d)
        if config.embeddings == .separate {
            Kernels.linearBackward(
                dInput: dY, dWeight: g("out_proj"), dBias: nil, dOut: acts.logits.pointer, input: acts.decOut.pointer,
                weight: p("out_proj"), rows: nt, width: d, outWidth: v)
        } else {
            // logits = Y · Eᵀ: dY += dlogits · E, dE += dlogitsᵀ · Y
            Gemm.multiply(
                transA: false, transB: false, m: nt, n: d, k: v, a: acts.logits.pointer, lda: v, b: p(targetTable), ldb: d,
                beta: 1, c: dY, ldc: d)
            Gemm.multiply(
                transA: true, transB: false, m: v, n: d, k: nt, a: acts.logits.pointer, lda: v, b: acts.decOut.pointer, ldb: d,
                beta: 1, c: g(targetTable), ldc: d)
        }
        acts.dMemory.zero()
        // Decoder.
        if config.norm == .pre {
            finalNormBackward(
                acts.decFinal, input: acts.decoder.last.map { lastStream($0.sub3) } ?? UnsafePointer(acts.decEmbed.pointer),
                name: "decoder.norm", n: nt, acts: acts)
        }
        for (l, L) in acts.decoder.enumerated().reversed() {
            let pre = "decoder.layers.\(l)"
            let in3 = config.norm == .post ? UnsafePointer(L.sub2.normOut.pointer) : UnsafePointer(L.sub2.residual.pointer)
            let in2 = config.norm == .post ? UnsafePointer(L.sub1.normOut.pointer) : UnsafePointer(L.sub1.residual.pointer)
            sublayerBackward(L.sub3, input: in3, norm: "\(pre).norm3", n: nt, dropout: dropout, keep: L.ffn.keep, acts: acts) {
                h, dSub, dInput in
                ffnBackward(L.ffn, h, dSub, dInput, param: "\(pre).ffn", n: nt, acts: acts)
            }
            sublayerBackward(L.sub2, input: in2, norm: "\(pre).norm2", n: nt, dropout: dropout, keep: L.crossAttn.keep, acts: acts) {
                h, dSub, dInput in
                attentionBackward(
                    L.crossAttn, q: h, kv: acts.memory.pointer, dq: dInput, dkv: acts.dMemory.pointer, dOut: dSub,
                    param: "\(pre).cross_attn", b: sh.b, tq: sh.t, tk: sh.s, acts: acts)
            }
            sublayerBackward(
                L.sub1, input: UnsafePointer(L.input.pointer), norm: "\(pre).norm1", n: nt, dropout: dropout, keep: L.selfAttn.keep,
                acts: acts
            ) { h, dSub, dInput in
                attentionBackward(
                    L.selfAttn, q: h, kv: h, dq: dInput, dkv: dInput, dOut: dSub,
                    param: "\(pre).self_attn", b: sh.b, tq: sh.t, tk: sh.t, acts: acts)
            }
        }
        if dropout > 0 { Kernels.dropoutBackward(acts.dStream.pointer, keep: acts.decEmbedKeep.pointer, count: nt * d) }
        Kernels.embeddingBackward(
            dTable: g(targetTable), dPositions: config.positions == .learned ? g("tgt_pos") : nil, dOut: acts.dStream.pointer,
            ids: acts.tgtIDs,
            scale: embedScale, batch: nt, length: sh.t, width: d)
        // Encoder, starting from the gradient that reached the memory.
        acts.dStream.pointer.update(from: acts.dMemory.pointer, count: ns * d)
        if config.norm == .pre && config.encoderLayers > 0 {
            finalNormBackward(acts.encFinal, input: lastStream(acts.encoder.last!.sub2), name: "encoder.norm", n: ns, acts: acts)
        }
        for (l, L) in acts.encoder.enumerated().reversed() {
            let pre = "encoder.layers.\(l)"
            let in2 = config.norm == .post ? UnsafePointer(L.sub1.normOut.pointer) : UnsafePointer(L.sub1.residual.pointer)
            sublayerBackward(L.sub2, input: in2, norm: "\(pre).norm2", n: ns, dropout: dropout, keep: L.ffn.keep, acts: acts) {
                h, dSub, dInput in
                ffnBackward(L.ffn, h, dSub, dInput, param: "\(pre).ffn", n: ns, acts: acts)
            }
            sublayerBackward(
                L.sub1, input: UnsafePointer(L.input.pointer), norm: "\(pre).norm1", n: ns, dropout: dropout, keep: L.attn.keep, acts: acts
            ) { h, dSub, dInput in
                attentionBackward(
                    L.attn, q: h, kv: h, dq: dInput, dkv: dInput, dOut: dSub, param: "\(pre).self_attn", b: sh.b, tq: sh.s, tk: sh.s,
                    acts: acts)
            }
        }
        if dropout > 0 { Kernels.dropoutBackward(acts.dStream.pointer, keep: acts.encEmbedKeep.pointer, count: ns * d) }
        Kernels.embeddingBackward(
            dTable: g(sourceTable), dPositions: config.positions == .learned ? g("src_pos") : nil, dOut: acts.dStream.pointer,
            ids: acts.srcIDs,
            scale: embedScale, batch: ns, length: sh.s, width: d)
    }

    /// The stream value a pre-norm sublayer produced (its residual sum).
    func lastStream(_ sub: Seq2SeqActivations.Sub) -> UnsafePointer<Float> { UnsafePointer(sub.residual.pointer) }

    /// Through a final layer norm: dStream (w.r.t. its output) becomes the gradient w.r.t. its input.
    func finalNormBackward(_ sub: Seq2SeqActivations.Sub, input: UnsafePointer<Float>, name: String, n: Int, acts: Seq2SeqActivations) {
        let d = config.dModel
        acts.dPrev.pointer.update(repeating: 0, count: n * d)
        Kernels.layerNormBackward(
            dInput: acts.dPrev.pointer, dGamma: g("\(name).gamma"), dBeta: g("\(name).beta"), dOut: acts.dStream.pointer, input: input,
            gamma: p("\(name).gamma"), mean: sub.mean.pointer, rstd: sub.rstd.pointer, rows: n, width: d)
        acts.dStream.pointer.update(from: acts.dPrev.pointer, count: n * d)
    }

    /// One residual sublayer backward: on entry `dStream` holds ∂L/∂(sublayer output); on exit ∂L/∂(sublayer input).
    /// `f(h, dSub, dInput)` back-propagates the sublayer function from `dSub` into `dInput` (the gradient w.r.t. `h`).
    func sublayerBackward(
        _ sub: Seq2SeqActivations.Sub, input x: UnsafePointer<Float>, norm: String, n: Int, dropout: Float, keep: FlatBuffer,
        acts: Seq2SeqActivations, _ f: (UnsafePointer<Float>, UnsafePointer<Float>, FloatPtr) -> Void
    ) {
        let d = config.dModel, count = n * d
        let dStream = acts.dStream.pointer, dPrev = acts.dPrev.pointer, dSub = acts.dSub.pointer
        switch config.norm {
        case .post:
            // out = LN(x + drop(f(x)))
            let dRes = acts.dRes.pointer
            dRes.update(repeating: 0, count: count)
            Kernels.layerNormBackward(
                dInput: dRes, dGamma: g("\(norm).gamma"), dBeta: g("\(norm).beta"), dOut: dStream, input: sub.residual.pointer,
                gamma: p("\(norm).gamma"),
                mean: sub.mean.pointer, rstd: sub.rstd.pointer, rows: n, width: d)
            dPrev.update(from: dRes, count: count)
            dSub.update(from: dRes, count: count)
            if dropout > 0 { Kernels.dropoutBackward(dSub, keep: keep.pointer, count: count) }
            f(x, dSub, dPrev)
        case .pre:
            // out = x + drop(f(LN(x)))
            dPrev.update(from: dStream, count: count)
            dSub.update(from: dStream, count: count)
            if dropout > 0 { Kernels.dropoutBackward(dSub, keep: keep.pointer, count: count) }
            let dH = acts.dH.pointer
            dH.update(repeating: 0, count: count)
            f(UnsafePointer(sub.normOut.pointer), dSub, dH)
            Kernels.layerNormBackward(
                dInput: dPrev, dGamma: g("\(norm).gamma"), dBeta: g("\(norm).beta"), dOut: dH, input: x, gamma: p("\(norm).gamma"),
                mean: sub.mean.pointer, rstd: sub.rstd.pointer, rows: n, width: d)
        }
        dStream.update(from: dPrev, count: count)
    }

    func attentionBackward(
        _ A: Seq2SeqActivations.Attention, q xq: UnsafePointer<Float>, kv xkv: UnsafePointer<Float>,
        dq dXq: FloatPtr, dkv dXkv: FloatPtr, dOut: UnsafePointer<Float>, param p0: String,
        b: Int, tq: Int, tk: Int, acts: Seq2SeqActivations
    ) {
        let d = config.dModel, a = config.attentionWidth
        let nq = b * tq, nk = b * tk
        let dCtx = acts.dCtx.pointer, dQ = acts.dQ.pointer, dK = acts.dK.pointer, dV = acts.dV.pointer
        dCtx.update(repeating: 0, count: nq * a)
        Kernels.linearBackward(
            dInput: dCtx, dWeight: g("\(p0).w_o"), dBias: gOpt("\(p0).b_o"), dOut: dOut, input: A.ctx.pointer, weight: p("\(p0).w_o"),
            rows: nq, width: a, outWidth: d)
        dQ.update(repeating: 0, count: nq * a); dK.update(repeating: 0, count: nk * a); dV.update(repeating: 0, count: nk * a)
        Kernels.attentionBackward(
            dQ: dQ, dK: dK, dV: dV, dOut: dCtx, q: A.q.pointer, k: A.k.pointer, v: A.v.pointer, weights: A.att.pointer,
            batch: b, queries: tq, keys: tk, heads: config.heads, headSize: config.headSize, qStride: a, kvStride: a)
        Kernels.linearBackward(
            dInput: dXq, dWeight: g("\(p0).w_q"), dBias: gOpt("\(p0).b_q"), dOut: dQ, input: xq, weight: p("\(p0).w_q"), rows: nq, width: d,
            outWidth: a)
        Kernels.linearBackward(
            dInput: dXkv, dWeight: g("\(p0).w_k"), dBias: gOpt("\(p0).b_k"), dOut: dK, input: xkv, weight: p("\(p0).w_k"), rows: nk,
            width: d, outWidth: a)
        Kernels.linearBackward(
            dInput: dXkv, dWeight: g("\(p0).w_v"), dBias: gOpt("\(p0).b_v"), dOut: dV, input: xkv, weight: p("\(p0).w_v"), rows: nk,
            width: d, outWidth: a)
    }

    func ffnBackward(
        _ F: Seq2SeqActivations.FFN, _ x: UnsafePointer<Float>, _ dOut: UnsafePointer<Float>, _ dX: FloatPtr,
        param p0: String, n: Int, acts: Seq2SeqActivations
    ) {
        let d = config.dModel, ff = config.dFF
        let dA = acts.dFF1.pointer, dHid = acts.dFF2.pointer
        dA.update(repeating: 0, count: n * ff); dHid.update(repeating: 0, count: n * ff)
        Kernels.linearBackward(
            dInput: dA, dWeight: g("\(p0).w2"), dBias: g("\(p0).b2"), dOut: dOut, input: F.a.pointer, weight: p("\(p0).w2"), rows: n,
            width: ff, outWidth: d)
        switch config.activation {
        case .relu: Kernels.reluBackward(dInput: dHid, dOut: dA, input: F.h.pointer, count: n * ff)
        case .gelu: Kernels.geluBackward(dInput: dHid, dOut: dA, input: F.h.pointer, count: n * ff, form: .erf)
        case .geluTanh: Kernels.geluBackward(dInput: dHid, dOut: dA, input: F.h.pointer, count: n * ff, form: .tanh)
        }
        Kernels.linearBackward(
            dInput: dX, dWeight: g("\(p0).w1"), dBias: g("\(p0).b1"), dOut: dHid, input: x, weight: p("\(p0).w1"), rows: n, width: d,
            outWidth: ff)
    }
}

// MARK: - Inference

extension Seq2SeqModel {
    /// Encodes `b` copies of one source sentence (one per beam) into `acts.memory`.
    public func encode(source: [Int], copies b: Int, acts: Seq2SeqActivations) -> Shape {
        let s = source.count
        precondition(b <= acts.maxBatch && s <= acts.maxSource, "inference batch exceeds the activations")
        for bi in 0..<b { for i in 0..<s { acts.srcIDs[bi * s + i] = Int32(source[i]); acts.srcPad[bi * s + i] = false } }
        var rng = SeededRNG(seed: 0)
        let shape = Shape(b: b, s: s, t: 1)
        encode(acts, shape, dropout: 0, rng: &rng)
        return shape
    }

    /// Runs the decoder over `prefixes` (all the same length, at most `maxTarget`) against the memory
    /// from `encode`, and returns the log-probabilities of the next token after each prefix `[b][V]`.
    public func nextTokenLogProbs(prefixes: [[Int]], sourceLength s: Int, acts: Seq2SeqActivations) -> [[Float]] {
        let b = prefixes.count, t = prefixes[0].count, v = config.targetVocabSize
        precondition(t <= acts.maxTarget && prefixes.allSatisfy { $0.count == t })
        for bi in 0..<b { for i in 0..<t { acts.tgtIDs[bi * t + i] = Int32(prefixes[bi][i]) } }
        var rng = SeededRNG(seed: 0)
        decode(acts, Shape(b: b, s: s, t: t), dropout: 0, rng: &rng)
        return (0..<b).map { bi in
            let row = acts.logits.pointer + (bi * t + t - 1) * v
            var m = -Float.infinity
            for j in 0..<v { m = max(m, row[j]) }
            var sum: Float = 0
            for j in 0..<v { sum += Foundation.exp(row[j] - m) }
            let lse = m + Foundation.log(sum)
            return (0..<v).map { row[$0] - lse }
        }
    }
}
