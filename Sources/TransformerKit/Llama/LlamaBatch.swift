import Foundation
import TensorKit

/// One decoding step for several conversations at once (a server's parallel slots): each session
/// gets one token at its own next position, and the matrix products see all the rows together
/// (`Quantized.matvecRows`: each weight is read once per step, not once per conversation). Only
/// attention, which reads each session's own KV cache, runs row by row.
///
/// Row i's logits equal `sessions[i].feed([tokens[i]])` exactly: the same kernels in the same order.
public final class LlamaBatchDecoder {
    public let model: LlamaModel
    /// The most sessions one step takes.
    public let maxRows: Int
    /// As `LlamaSession.activations`: 8-bit activations for the integer kernels, or Float32.
    public var activations: ActivationPrecision
    private let x, h, q, k, v, ctx, tmp, gate, up, logits: FlatBuffer

    public init(model: LlamaModel, maxRows: Int, activations: ActivationPrecision = .default) {
        precondition(maxRows >= 1, "LlamaBatchDecoder: maxRows must be at least 1")
        self.model = model
        self.maxRows = maxRows
        self.activations = activations
        let c = model.config, n = maxRows, kv = c.kvHeads * c.headSize
        x = FlatBuffer(count: n * c.dModel); h = FlatBuffer(count: n * c.dModel); tmp = FlatBuffer(count: n * c.dModel)
        q = FlatBuffer(count: n * c.queryWidth); ctx = FlatBuffer(count: n * c.queryWidth)
        k = FlatBuffer(count: n * kv); v = FlatBuffer(count: n * kv)
        gate = FlatBuffer(count: n * c.dFF); up = FlatBuffer(count: n * c.dFF)
        logits = FlatBuffer(count: n * c.vocabSize)
    }

    /// Row i's logits after the last `step`: valid until the next one.
    public func logits(row i: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: logits.pointer + i * model.config.vocabSize, count: model.config.vocabSize)
    }

    /// Feeds `tokens[i]` to `sessions[i]` at its next position; `logits(row: i)` then holds what follows.
    /// - Throws: `LlamaError` when a session is full, an id is out of range, or the sessions are not
    ///   distinct sessions of this decoder's model.
    public func step(_ sessions: [LlamaSession], _ tokens: [Int]) throws {
        let c = model.config, n = sessions.count, d = c.dModel, V = c.vocabSize
        guard n == tokens.count, (1...maxRows).contains(n) else {
            throw LlamaError(description: "a batch step takes 1…\(maxRows) sessions, one token each (got \(n) and \(tokens.count))")
        }
        guard Set(sessions.map { ObjectIdentifier($0) }).count == n, sessions.allSatisfy({ $0.model === model }) else {
            throw LlamaError(description: "a batch step needs distinct sessions of the decoder's model")
        }
        if let bad = tokens.first(where: { $0 < 0 || $0 >= V }) {
            throw LlamaError(description: "token id \(bad) is outside the vocabulary (0..<\(V))")
        }
        if let full = sessions.first(where: { $0.length >= $0.maxLength }) {
            throw LlamaError(description: "a session is full: its context of \(full.maxLength) tokens holds no more")
        }
        for s in sessions { s.reserve(positions: s.length + 1, batch: 1) }
        let kvDim = c.kvHeads * c.headSize, qw = c.queryWidth, arch = c.architecture
        let emb = model.tokenEmbedding
        for (i, t) in tokens.enumerated() { Quantized.dequantize(emb.type, emb.row(t), x.pointer + i * d, count: d) }
        if arch.scalesEmbedding {
            let s = Float(d).squareRoot()
            for j in 0..<n * d { x[j] *= s }
        }
        let rotate = arch.ropePairs == .halves ? Kernels.ropeForwardNeox : Kernels.ropeForward
        for (l, b) in model.blocks.enumerated() {
            Kernels.rmsNormForward(out: h.pointer, input: x.pointer, weight: b.attnNorm, rows: n, width: d, eps: c.rmsEps)
            linear([(q.pointer, b.q), (k.pointer, b.k), (v.pointer, b.v)], h.pointer, n: n)
            if let qb = b.qBias, let kb = b.kBias, let vb = b.vBias {
                Kernels.addBias(q.pointer, bias: qb, rows: n, width: qw)
                Kernels.addBias(k.pointer, bias: kb, rows: n, width: kvDim)
                Kernels.addBias(v.pointer, bias: vb, rows: n, width: kvDim)
            }
            if let qn = b.qNorm, let kn = b.kNorm {
                Kernels.rmsNormForward(out: q.pointer, input: q.pointer, weight: qn, rows: n * c.heads, width: c.headSize, eps: c.rmsEps)
                Kernels.rmsNormForward(out: k.pointer, input: k.pointer, weight: kn, rows: n * c.kvHeads, width: c.headSize, eps: c.rmsEps)
            }
            let local = c.isSlidingWindow(layer: l)
            // Each row at its own session's position, against its own cache.
            for (i, s) in sessions.enumerated() {
                let pos = s.length, table = local ? s.ropeLocal.pointer : s.rope.pointer
                let qi = q.pointer + i * qw, kNew = s.kCache[l].pointer + pos * kvDim, vNew = s.vCache[l].pointer + pos * kvDim
                kNew.update(from: k.pointer + i * kvDim, count: kvDim)
                vNew.update(from: v.pointer + i * kvDim, count: kvDim)
                rotate(qi, table, 1, pos, c.heads, c.headSize, qw)
                rotate(kNew, table, 1, pos, c.kvHeads, c.headSize, kvDim)
                Kernels.cachedAttentionForward(
                    out: ctx.pointer + i * qw, q: qi, kCache: s.kCache[l].pointer, vCache: s.vCache[l].pointer,
                    n: 1, start: pos, heads: c.heads, kvHeads: c.kvHeads, headSize: c.headSize,
                    window: local ? c.slidingWindow ?? .max : .max)
            }
            linear([(tmp.pointer, b.o)], ctx.pointer, n: n)
            if let pn = b.postAttnNorm {
                Kernels.rmsNormForward(out: tmp.pointer, input: tmp.pointer, weight: pn, rows: n, width: d, eps: c.rmsEps)
            }
            for j in 0..<n * d { x[j] += tmp[j] }
            Kernels.rmsNormForward(out: h.pointer, input: x.pointer, weight: b.ffnNorm, rows: n, width: d, eps: c.rmsEps)
            linear([(gate.pointer, b.gate), (up.pointer, b.up)], h.pointer, n: n)
            switch arch.gate {
            case .silu: Kernels.swigluForward(out: gate.pointer, gate: gate.pointer, up: up.pointer, count: n * c.dFF)
            case .geluTanh: Kernels.gegluForward(out: gate.pointer, gate: gate.pointer, up: up.pointer, count: n * c.dFF)
            }
            linear([(tmp.pointer, b.down)], gate.pointer, n: n)
            if let pn = b.postFFNNorm {
                Kernels.rmsNormForward(out: tmp.pointer, input: tmp.pointer, weight: pn, rows: n, width: d, eps: c.rmsEps)
            }
            for j in 0..<n * d { x[j] += tmp[j] }
        }
        Kernels.rmsNormForward(out: h.pointer, input: x.pointer, weight: model.outputNorm, rows: n, width: d, eps: c.rmsEps)
        linear([(logits.pointer, model.output)], h.pointer, n: n)
        for s in sessions { s.length += 1 }
    }

    private func linear(_ products: [(FloatPtr, QuantizedMatrix)], _ inp: FloatPtr, n: Int) {
        Quantized.matvecRows(products.map { (out: $0.0, matrix: $0.1) }, inp, n: n, activations: activations)
    }
}
