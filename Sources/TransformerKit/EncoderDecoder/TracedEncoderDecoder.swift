import Foundation
import TensorKit

/// The encoder–decoder Transformer of "Attention Is All You Need", computed step by step.
///
/// This is the reference path: one sentence at a time, every intermediate matrix materialised,
/// each step recorded when a `Tracer` is passed. Faster batched code is tested against it.
public struct TracedEncoderDecoder: Sendable {
    public let config: TransformerConfig
    public var parameters: ParameterSet

    public init(config: TransformerConfig, seed: UInt64) throws {
        try config.validate()
        self.config = config
        self.parameters = config.initialParameters(seed: seed)
    }

    public init(config: TransformerConfig, parameters: ParameterSet) throws {
        try config.validate()
        try parameters.check(against: config.parameterShapes)
        self.config = config
        self.parameters = parameters
    }

    public struct Output: Sendable {
        public var memory: Tensor
        public var logits: Tensor
        public var probabilities: Tensor
        public var predicted: [Int]
        /// Mean cross-entropy against the targets, when targets were given.
        public var loss: Float?
    }

    /// Runs source ids through the encoder and target ids (teacher forcing: `<start> y1 … yn`)
    /// through the decoder; `targets` (`y1 … yn <end>`) give the loss.
    public func forward(
        source: [Int], target: [Int], targets: [Int]? = nil,
        sourceTokens: [String], targetTokens: [String], vocabularyTokens: [String],
        sourcePadding: [Bool]? = nil, trace: Tracer? = nil
    ) throws -> Output {
        guard !source.isEmpty, !target.isEmpty else { throw ConfigError(message: "source and target must not be empty") }
        for (what, seq) in [("source", source), ("target", target)] where seq.count > config.contextLength {
            throw ConfigError(
                message:
                    """
                    the \(what) has \(seq.count) tokens, longer than the positional table (\(config.contextLength) positions); \
                    use a longer max length
                    """
            )
        }
        if let bad = source.first(where: { $0 < 0 || $0 >= config.sourceVocabSize }) {
            throw ConfigError(message: "source token id \(bad) is outside the vocabulary of \(config.sourceVocabSize)")
        }
        if let bad = (target + (targets ?? [])).first(where: { $0 < 0 || $0 >= config.targetVocabSize }) {
            throw ConfigError(message: "target token id \(bad) is outside the vocabulary of \(config.targetVocabSize)")
        }
        if let targets, targets.count != target.count {
            throw ConfigError(message: "targets (\(targets.count)) must be as long as the decoder input (\(target.count))")
        }
        let s = Steps(trace: trace)
        let ps = parameters
        trace?.section = "encoder input"
        let srcIDs = s.input("src.ids", "Source token ids", ids: source, tokens: sourceTokens)
        let memory = encode(srcIDs, padding: sourcePadding ?? Array(repeating: false, count: source.count), s)
        trace?.section = "decoder input"
        let tgtIDs = s.input(
            "tgt.ids", "Decoder input ids (shifted right: <start> first)", ids: target, tokens: targetTokens,
            notes: [
                """
                Teacher forcing: in training the decoder sees the whole target at once, shifted right by <start>; the causal mask \
                keeps position i from seeing positions after i.
                """
            ])
        let dec = decode(tgtIDs, memory: memory.value, memoryPadding: memory.padding, s)
        trace?.section = "output"
        let vocabCols = vocabularyTokens
        let logits: Value
        switch config.embeddings {
        case .separate:
            logits = s.linear(
                "out.logits", "Logits", dec, s.param(ps, "out_proj"), nil, "logits = X · W_out", "\\text{logits} = X W_{out}",
                cols: vocabCols,
                notes: [
                    "The output layer is applied to every position (row) independently: [n, d_model] · [d_model, V]. Nothing is flattened."
                ])
        case .tiedOutput, .all:
            let e = s.param(ps, config.embeddings == .all ? "src_embed" : "tgt_embed")
            logits = s.matmul(
                "out.logits", "Logits (output tied to the embedding)", dec, e, transposeB: true,
                "logits = X · Eᵀ", "\\text{logits} = X E^\\top", cols: vocabCols)
        }
        let probs = s.softmax(
            "out.probs", "Next-token probabilities", logits, "P = softmax(logits) per row",
            "P_{ij} = \\frac{e^{z_{ij}}}{\\sum_k e^{z_{ik}}}", cols: vocabCols)
        let (_, predicted) = s.argmax(
            "out.predicted", "Predicted next tokens", probs, tokens: { vocabularyTokens.indices.contains($0) ? vocabularyTokens[$0] : "?" })
        var loss: Float? = nil
        if let targets {
            let tv = s.input(
                "out.targets", "Target ids (the decoder input shifted left: <end> last)", ids: targets,
                tokens: targets.map { vocabularyTokens.indices.contains($0) ? vocabularyTokens[$0] : "?" })
            loss = s.crossEntropy("out.loss", logits, targets: tv, targetTokens: tv.rows).1
        }
        return Output(memory: memory.value.t, logits: logits.t, probabilities: probs.t, predicted: predicted, loss: loss)
    }

    // MARK: - Encoder

    func encode(_ ids: Value, padding: [Bool], _ s: Steps) -> (value: Value, padding: [Bool]) {
        s.trace?.section = "encoder input"
        var x = embed(ids, table: "src_embed", positions: "src_pos", prefix: "src", s)
        let mask = s.maskMatrix(
            "enc.mask", "Encoder self-attention mask (padding only)", paddingMask(queries: ids.rows.count, keyIsPadding: padding),
            causal: false, rows: ids.rows, cols: ids.rows,
            notes: ["The encoder sees the whole source: only <pad> keys are blocked, never the future."])
        for l in 0..<config.encoderLayers {
            let p = "encoder.layers.\(l)", id = "enc\(l)"
            s.trace?.section = "encoder layer \(l + 1) · self-attention"
            x = sublayer(x, id: "\(id).attn", normName: "\(p).norm1", s) { h in
                attention(q: h, kv: h, mask: mask, param: "\(p).self_attn", id: "\(id).self_attn", s)
            }
            s.trace?.section = "encoder layer \(l + 1) · feed-forward"
            x = sublayer(x, id: "\(id).ffn_out", normName: "\(p).norm2", s) { h in
                feedForward(h, param: "\(p).ffn", id: "\(id).ffn", s)
            }
        }
        if config.norm == .pre && config.encoderLayers > 0 {
            s.trace?.section = "encoder output"
            x = s.layerNorm(
                "enc.final_norm", "Final encoder layer norm", x, gamma: s.param(parameters, "encoder.norm.gamma"),
                beta: s.param(parameters, "encoder.norm.beta"), eps: config.layerNormEps)
        }
        return (x, padding)
    }

    // MARK: - Decoder

    func decode(_ ids: Value, memory: Value, memoryPadding: [Bool], _ s: Steps) -> Value {
        s.trace?.section = "decoder input"
        let table = config.embeddings == .all ? "src_embed" : "tgt_embed"
        var x = embed(ids, table: table, positions: "tgt_pos", prefix: "tgt", s)
        let n = ids.rows.count
        let causal = s.maskMatrix(
            "dec.mask", "Decoder self-attention mask (causal)", causalMask(n), causal: true, rows: ids.rows, cols: ids.rows,
            notes: ["Position i may attend to positions 0…i only: the decoder must not peek at the words it is to predict."])
        let cross = s.maskMatrix(
            "dec.cross_mask", "Cross-attention mask (source padding)",
            paddingMask(queries: n, keyIsPadding: memoryPadding), causal: false, rows: ids.rows, cols: memory.rows,
            notes: ["Every target position may look at every real source position."])
        for l in 0..<config.decoderLayers {
            let p = "decoder.layers.\(l)", id = "dec\(l)"
            s.trace?.section = "decoder layer \(l + 1) · masked self-attention"
            x = sublayer(x, id: "\(id).self", normName: "\(p).norm1", s) { h in
                attention(q: h, kv: h, mask: causal, param: "\(p).self_attn", id: "\(id).self_attn", s)
            }
            s.trace?.section = "decoder layer \(l + 1) · encoder–decoder attention"
            x = sublayer(x, id: "\(id).cross", normName: "\(p).norm2", s) { h in
                attention(
                    q: h, kv: memory, mask: cross, param: "\(p).cross_attn", id: "\(id).cross_attn", s,
                    notes: [
                        """
                        Queries come from the decoder; keys and values come from the encoder output (memory). (Seed 002 says the \
                        encoder gives Q and K: it does not.)
                        """
                    ])
            }
            s.trace?.section = "decoder layer \(l + 1) · feed-forward"
            x = sublayer(x, id: "\(id).ffn_out", normName: "\(p).norm3", s) { h in
                feedForward(h, param: "\(p).ffn", id: "\(id).ffn", s)
            }
        }
        if config.norm == .pre {
            s.trace?.section = "decoder output"
            x = s.layerNorm(
                "dec.final_norm", "Final decoder layer norm", x, gamma: s.param(parameters, "decoder.norm.gamma"),
                beta: s.param(parameters, "decoder.norm.beta"), eps: config.layerNormEps)
        }
        return x
    }

    // MARK: - Building blocks

    /// Token embeddings (optionally × √d_model) plus positions.
    func embed(_ ids: Value, table: String, positions: String, prefix: String, _ s: Steps) -> Value {
        let d = config.dModel
        var e = s.lookup("\(prefix).embed", "Word embeddings", table: s.param(parameters, table), ids: ids, symbol: "X_emb")
        if config.scaleEmbeddings {
            e = s.scale(
                "\(prefix).embed_scaled", "Embeddings × √d_model", e, by: Float(Double(d).squareRoot()),
                "X_emb · √d_model", "X_{\\text{emb}} \\cdot \\sqrt{d_{model}}", cols: indexLabels("d", d))
        }
        let pe: Value
        switch config.positions {
        case .sinusoidal:
            pe = s.positional(
                "\(prefix).pe", "Positional encoding", rows: ids.rows, dModel: d,
                notes: positionalNotes(first: ids.rows.first ?? "", d: d))
        case .learned:
            pe = s.positionRows(
                "\(prefix).pe", "Learned position embeddings", table: s.param(parameters, positions), count: ids.rows.count, rows: ids.rows)
        }
        return s.add("\(prefix).x", "Embedding + position", e, pe, "X = X_emb + PE", "X = X_{\\text{emb}} + PE")
    }

    /// The per-element working of the positional encoding for the first token, as seed 002 lays it out.
    func positionalNotes(first: String, d: Int) -> [String] {
        var notes = ["Worked for the first token \(first) (pos 0); i is the pair index, so columns 2i and 2i+1 share a frequency:"]
        for j in 0..<d {
            let i = j / 2, e = positionalEncodingExponent(column: j, dModel: d)
            let fn = j % 2 == 0 ? "sin" : "cos"
            notes.append(
                "  d\(j): \(fn)(0 / 10000^(2·\(i)/\(d))) = \(fn)(0 / 10000^\(String(format: "%.4f", e))) = \(j % 2 == 0 ? "0" : "1")")
        }
        notes.append(
            "Second position (pos 1): "
                + (0..<d).map { j in
                    String(format: "%.4f", sinusoidalPositionalEncoding(count: 2, dModel: d)[1, j])
                }.joined(separator: ", "))
        return notes
    }

    /// One residual sublayer, with the norm where the config puts it.
    func sublayer(_ x: Value, id: String, normName: String, _ s: Steps, _ f: (Value) -> Value) -> Value {
        s.residual(
            x, id: id, norm: config.norm, gamma: s.param(parameters, "\(normName).gamma"),
            beta: s.param(parameters, "\(normName).beta"), eps: config.layerNormEps, f)
    }

    /// Multi-head scaled dot-product attention: `Concat(head_1…head_h) · W_O`,
    /// `head_i = softmax(mask(Q_i K_iᵀ / √d_k)) V_i`.
    func attention(q xq: Value, kv xkv: Value, mask: Value, param p: String, id: String, _ s: Steps, notes: [String] = []) -> Value {
        let ps = parameters
        func bias(_ n: String) -> Value? { config.attentionBias ? s.param(ps, "\(p).\(n)") : nil }
        let aCols = indexLabels("d", config.attentionWidth)
        let q = s.linear(
            "\(id).q", "Queries Q", xq, s.param(ps, "\(p).w_q"), bias("b_q"), "Q = X · W_Q", "Q = X W^Q", cols: aCols,
            notes: notes + ["Q is the input times a weight matrix, not the weight matrix itself (seed 002 shows Q = K = V = W)."])
        let k = s.linear("\(id).k", "Keys K", xkv, s.param(ps, "\(p).w_k"), bias("b_k"), "K = X · W_K", "K = X W^K", cols: aCols)
        let v = s.linear("\(id).v", "Values V", xkv, s.param(ps, "\(p).w_v"), bias("b_v"), "V = X · W_V", "V = X W^V", cols: aCols)
        let cat = s.attentionHeads(q: q, k: k, v: v, mask: mask, heads: config.heads, headSize: config.headSize, id: id)
        return s.linear(
            "\(id).out", "Output projection", cat, s.param(ps, "\(p).w_o"), bias("b_o"),
            "MultiHead = Concat(heads) · W_O", "\\mathrm{MultiHead} = \\mathrm{Concat}(\\mathrm{head}_1,\\ldots,\\mathrm{head}_h) W^O",
            cols: indexLabels("d", config.dModel))
    }

    /// Position-wise feed-forward network: `act(x · W1 + b1) · W2 + b2`, the same weights for every row.
    func feedForward(_ x: Value, param p: String, id: String, _ s: Steps) -> Value {
        let ps = parameters
        return s.feedForward(
            x, w1: s.param(ps, "\(p).w1"), b1: s.param(ps, "\(p).b1"), w2: s.param(ps, "\(p).w2"), b2: s.param(ps, "\(p).b2"),
            activation: config.activation, id: id,
            notes: ["Two linear layers with the activation between them (seed 002 stops after one linear layer and the ReLU)."])
    }
}

// MARK: - Single layers (for checking against other implementations)

extension TracedEncoderDecoder {
    /// One encoder layer applied to `x` `[n, d_model]` (no embeddings, no final norm).
    public func encoderLayer(_ x: Tensor, layer l: Int, keyIsPadding: [Bool]? = nil, trace: Tracer? = nil) -> Tensor {
        let s = Steps(trace: trace), p = "encoder.layers.\(l)", id = "enc\(l)"
        let rows = (0..<x.rows).map { "x\($0)" }
        let m = s.maskMatrix(
            "\(id).layer_mask", "Mask", paddingMask(queries: x.rows, keyIsPadding: keyIsPadding ?? Array(repeating: false, count: x.rows)),
            causal: false, rows: rows, cols: rows, notes: [])
        var v = Value(id: "\(id).layer_input", t: x, rows: rows)
        v = sublayer(v, id: "\(id).attn", normName: "\(p).norm1", s) { h in
            attention(q: h, kv: h, mask: m, param: "\(p).self_attn", id: "\(id).self_attn", s)
        }
        v = sublayer(v, id: "\(id).ffn_out", normName: "\(p).norm2", s) { h in feedForward(h, param: "\(p).ffn", id: "\(id).ffn", s) }
        return v.t
    }

    /// One decoder layer applied to `x` `[n, d_model]` with encoder output `memory` `[m, d_model]`, causal self-attention.
    public func decoderLayer(_ x: Tensor, memory: Tensor, layer l: Int, trace: Tracer? = nil) -> Tensor {
        let s = Steps(trace: trace), p = "decoder.layers.\(l)", id = "dec\(l)"
        let rows = (0..<x.rows).map { "y\($0)" }, mrows = (0..<memory.rows).map { "m\($0)" }
        let causal = s.maskMatrix("\(id).layer_mask", "Causal mask", causalMask(x.rows), causal: true, rows: rows, cols: rows, notes: [])
        let cross = s.maskMatrix(
            "\(id).layer_cross_mask", "Cross mask", paddingMask(queries: x.rows, keyIsPadding: Array(repeating: false, count: memory.rows)),
            causal: false, rows: rows, cols: mrows, notes: [])
        let mem = Value(id: "\(id).memory", t: memory, rows: mrows)
        var v = Value(id: "\(id).layer_input", t: x, rows: rows)
        v = sublayer(v, id: "\(id).self", normName: "\(p).norm1", s) { h in
            attention(q: h, kv: h, mask: causal, param: "\(p).self_attn", id: "\(id).self_attn", s)
        }
        v = sublayer(v, id: "\(id).cross", normName: "\(p).norm2", s) { h in
            attention(q: h, kv: mem, mask: cross, param: "\(p).cross_attn", id: "\(id).cross_attn", s)
        }
        v = sublayer(v, id: "\(id).ffn_out", normName: "\(p).norm3", s) { h in feedForward(h, param: "\(p).ffn", id: "\(id).ffn", s) }
        return v.t
    }
}
