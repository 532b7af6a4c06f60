import Foundation
import TensorKit

/// One step for several conversations at once (a server's parallel slots): each session gets its next
/// token, or the next part of its prompt, at its own positions, and the matrix products see all the rows
/// together (`Quantized.matvecRows`: each weight block is read and unpacked once per step, not once per
/// conversation). Only attention, which reads each session's own KV cache, runs session by session.
///
/// Part i's logits (those after its last token) equal `sessions[i].feed(tokens[i])`'s to rounding (the
/// products' kernels depend on how many rows they see); with one session and one token, exactly.
public final class LlamaBatchDecoder {
    public let model: LlamaModel
    /// The most rows (tokens, over all sessions) one step takes.
    public let maxRows: Int
    /// The most sessions one step takes (each leaves one row of logits).
    public let maxSessions: Int
    /// As `LlamaSession.activations`: 8-bit activations for the integer kernels, or Float32.
    public var activations: ActivationPrecision
    private let x, h, q, k, v, ctx, tmp, gate, up, logits: FlatBuffer

    public init(model: LlamaModel, maxRows: Int, maxSessions: Int? = nil, activations: ActivationPrecision = .default) {
        precondition(maxRows >= 1, "LlamaBatchDecoder: maxRows must be at least 1")
        self.model = model
        self.maxRows = maxRows
        self.maxSessions = min(maxSessions ?? maxRows, maxRows)
        self.activations = activations
        let c = model.config, n = maxRows, kv = c.kvHeads * c.headSize
        x = FlatBuffer(count: n * c.dModel); h = FlatBuffer(count: n * c.dModel); tmp = FlatBuffer(count: n * c.dModel)
        q = FlatBuffer(count: n * c.queryWidth); ctx = FlatBuffer(count: n * c.queryWidth)
        k = FlatBuffer(count: n * kv); v = FlatBuffer(count: n * kv)
        gate = FlatBuffer(count: n * c.dFF); up = FlatBuffer(count: n * c.dFF)
        logits = FlatBuffer(count: self.maxSessions * c.vocabSize)
    }

    /// Part i's logits after the last `step` (what follows its last token): valid until the next one.
    public func logits(row i: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: logits.pointer + i * model.config.vocabSize, count: model.config.vocabSize)
    }

    /// Feeds `tokens[i]` to `sessions[i]` at its next position; `logits(row: i)` then holds what follows.
    public func step(_ sessions: [LlamaSession], _ tokens: [Int]) throws {
        guard sessions.count == tokens.count else {
            throw LlamaError(description: "a batch step takes one token per session (got \(sessions.count) and \(tokens.count))")
        }
        try step(zip(sessions, tokens).map { ($0, [$1]) })
    }

    /// Feeds each part's tokens to its session at its next positions (a prompt, or a part of one, read in
    /// the same step as other sessions' next tokens); `logits(row: i)` then holds what follows part i.
    /// - Throws: `LlamaError` when a session would overflow, an id is out of range, a part is empty, the
    ///   rows or sessions exceed `maxRows` or `maxSessions`, or the sessions are not distinct sessions of
    ///   this decoder's model.
    public func step(_ parts: [(session: LlamaSession, tokens: [Int])]) throws {
        let c = model.config, d = c.dModel, V = c.vocabSize
        let n = parts.reduce(0) { $0 + $1.tokens.count }, sessions = parts.map(\.session)
        guard (1...maxSessions).contains(parts.count), n <= maxRows, parts.allSatisfy({ !$0.tokens.isEmpty }) else {
            throw LlamaError(
                description: "a batch step takes 1…\(maxSessions) sessions with at least one token each and "
                    + "\(maxRows) tokens in all (got \(parts.count) sessions, \(n) tokens)")
        }
        guard Set(sessions.map { ObjectIdentifier($0) }).count == parts.count, sessions.allSatisfy({ $0.model === model }) else {
            throw LlamaError(description: "a batch step needs distinct sessions of the decoder's model")
        }
        if let bad = parts.lazy.flatMap(\.tokens).first(where: { $0 < 0 || $0 >= V }) {
            throw LlamaError(description: "token id \(bad) is outside the vocabulary (0..<\(V))")
        }
        if let full = parts.first(where: { $0.session.length + $0.tokens.count > $0.session.maxLength }) {
            throw LlamaError(
                description: "a session is full: its context of \(full.session.maxLength) tokens cannot take "
                    + "\(full.tokens.count) more after \(full.session.length)")
        }
        for p in parts { p.session.reserve(positions: p.session.length + p.tokens.count, batch: 1) }
        let kvDim = c.kvHeads * c.headSize, qw = c.queryWidth, arch = c.architecture
        let emb = model.tokenEmbedding
        for (i, t) in parts.flatMap(\.tokens).enumerated() { Quantized.dequantize(emb.type, emb.row(t), x.pointer + i * d, count: d) }
        if arch.scalesEmbedding {
            let s = Float(d).squareRoot()
            for j in 0..<n * d { x[j] *= s }
        }
        // the first row of each part
        var firstRow: [Int] = [], r = 0
        for p in parts { firstRow.append(r); r += p.tokens.count }
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
            // Each part at its own session's positions, against its own cache (causal within the part);
            // the single tokens' attention in one parallel region.
            var singles: [(out: FloatPtr, q: ConstFloatPtr, kCache: ConstFloatPtr, vCache: ConstFloatPtr, start: Int)] = []
            for (i, p) in parts.enumerated() {
                let s = p.session, m = p.tokens.count, row = firstRow[i]
                let pos = s.length, table = local ? s.ropeLocal.pointer : s.rope.pointer
                let qi = q.pointer + row * qw, kNew = s.kCache[l].pointer + pos * kvDim, vNew = s.vCache[l].pointer + pos * kvDim
                kNew.update(from: k.pointer + row * kvDim, count: m * kvDim)
                vNew.update(from: v.pointer + row * kvDim, count: m * kvDim)
                rotate(qi, table, m, pos, c.heads, c.headSize, qw)
                rotate(kNew, table, m, pos, c.kvHeads, c.headSize, kvDim)
                if m == 1 {
                    let kc = ConstFloatPtr(s.kCache[l].pointer), vc = ConstFloatPtr(s.vCache[l].pointer)
                    singles.append((ctx.pointer + row * qw, ConstFloatPtr(qi), kc, vc, pos))
                    continue
                }
                Kernels.cachedAttentionForward(
                    out: ctx.pointer + row * qw, q: qi, kCache: s.kCache[l].pointer, vCache: s.vCache[l].pointer,
                    n: m, start: pos, heads: c.heads, kvHeads: c.kvHeads, headSize: c.headSize,
                    window: local ? c.slidingWindow ?? .max : .max)
            }
            Kernels.cachedAttentionRows(
                singles, heads: c.heads, kvHeads: c.kvHeads, headSize: c.headSize, window: local ? c.slidingWindow ?? .max : .max)
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
        // logits for each part's last row only
        for (i, p) in parts.enumerated() {
            (tmp.pointer + i * d).update(from: x.pointer + (firstRow[i] + p.tokens.count - 1) * d, count: d)
        }
        Kernels.rmsNormForward(out: h.pointer, input: tmp.pointer, weight: model.outputNorm, rows: parts.count, width: d, eps: c.rmsEps)
        linear([(logits.pointer, model.output)], h.pointer, n: parts.count)
        for p in parts { p.session.length += p.tokens.count }
    }

    private func linear(_ products: [(FloatPtr, QuantizedMatrix)], _ inp: FloatPtr, n: Int) {
        Quantized.matvecRows(products.map { (out: $0.0, matrix: $0.1) }, inp, n: n, activations: activations)
    }
}
