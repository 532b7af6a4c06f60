import Foundation
import TensorKit

/// BERT computed step by step for one sentence, every intermediate matrix materialised and each step
/// recorded when a `Tracer` is passed — the reference path of `BERTModel` (tested against its fast
/// forward) and what `transformer walkthrough --model bert` shows.
///
/// Built from the same traced blocks as the encoder–decoder and GPT (`Steps.residual`,
/// `Steps.attentionHeads`, `Steps.feedForward`); BERT's own parts are here: three embeddings summed
/// and normalised, post-norm encoder layers, and the sentence embedding (mean over the tokens, then
/// divided by its length).
public struct TracedBERT: Sendable {
    public let config: BERTConfig
    /// Under `BERTConfig.parameterShapes` names (`encoder.layers.N.self_attn.w_q`, `[in, out]`).
    public let parameters: ParameterSet

    public init(_ model: BERTModel) {
        config = model.config
        parameters = ParameterSet(buffer: model.params, layout: model.layout)
    }

    public struct Output: Sendable {
        /// The last hidden state `[n, hidden]`.
        public var hidden: Tensor
        /// Mean-pooled and L2-normalised, as sentence-transformers gives it.
        public var embedding: [Float]
    }

    /// Runs one sentence's ids (`[CLS] … [SEP]`, at most `max_position_embeddings`); `tokens` label the rows.
    public func forward(ids: [Int], tokens: [String]? = nil, trace: Tracer? = nil) throws -> Output {
        let c = config, n = ids.count, ps = parameters
        guard n >= 1 else { throw ConfigError(message: "the sentence has no tokens") }
        guard n <= c.contextLength else {
            throw ConfigError(
                message: "the sentence has \(n) tokens, more than the model's \(c.contextLength) positions (max_position_embeddings)")
        }
        if let i = ids.firstIndex(where: { $0 < 0 || $0 >= c.vocabSize }) {
            throw ConfigError(message: "token id \(ids[i]) (position \(i)) is outside the vocabulary of \(c.vocabSize)")
        }
        let rows = tokens.map { $0.count == n ? $0 : ids.map(String.init) } ?? ids.map(String.init)
        let s = Steps(trace: trace), d = c.dModel

        trace?.section = "embeddings"
        let input = s.input(
            "in.ids", "Token ids (WordPiece)", ids: ids, tokens: rows,
            notes: ["[CLS] … [SEP] around the sentence's word pieces; ## marks a piece that continues a word."])
        let e = s.lookup(
            "in.embed", "Word embeddings", table: s.param(ps, "embeddings.word_embeddings.weight"), ids: input, symbol: "X_word")
        let pos = s.positionRows(
            "in.pos", "Learned position embeddings", table: s.param(ps, "embeddings.position_embeddings.weight"), count: n, rows: rows)
        let typeIDs = s.input(
            "in.type_ids", "Token types (segment ids)", ids: [Int](repeating: 0, count: n), tokens: rows,
            notes: ["One sentence is one segment: every type is 0. (BERT's pre-training used type 1 for the second sentence of a pair.)"])
        let types = s.lookup(
            "in.type", "Token-type embeddings", table: s.param(ps, "embeddings.token_type_embeddings.weight"), ids: typeIDs,
            symbol: "X_type")
        let sum = s.add("in.word_pos", "Word + position embeddings", e, pos, "X_word + X_pos", "X_{word} + X_{pos}")
        let x0 = s.add(
            "in.sum", "Word + position + type embeddings", sum, types, "X = X_word + X_pos + X_type", "X = X_{word} + X_{pos} + X_{type}",
            notes: ["No ×√d_model and no sin/cos: BERT learns all three tables."])
        var x = s.layerNorm(
            "in.x", "Embedding layer norm", x0, gamma: s.param(ps, "embeddings.LayerNorm.weight"),
            beta: s.param(ps, "embeddings.LayerNorm.bias"),
            eps: c.layerNormEps, notes: ["BERT normalises the embeddings before the first layer (ε = \(c.layerNormEps))."])
        let mask = s.maskMatrix(
            "mask", "Attention mask", Tensor(repeating: 1, shape: [n, n]), causal: false, rows: rows, cols: rows,
            notes: [
                """
                An encoder sees the whole sentence in both directions; in a padded batch the <pad> columns would be 0 (one \
                sentence here has none).
                """
            ])
        let enc = c.encoder
        for l in 0..<c.layers {
            let p = "encoder.layers.\(l)"
            trace?.section = "layer \(l + 1) · self-attention"
            x = s.residual(
                x, id: "l\(l).attn", norm: .post, gamma: s.param(ps, "\(p).norm1.gamma"), beta: s.param(ps, "\(p).norm1.beta"),
                eps: c.layerNormEps
            ) { v in
                let q = s.linear(
                    "l\(l).attn.q", "Queries Q", v, s.param(ps, "\(p).self_attn.w_q"), s.param(ps, "\(p).self_attn.b_q"),
                    "Q = X · W_Q + b_Q", "Q = X W_Q + b_Q", cols: indexLabels("d", d))
                let k = s.linear(
                    "l\(l).attn.k", "Keys K", v, s.param(ps, "\(p).self_attn.w_k"), s.param(ps, "\(p).self_attn.b_k"),
                    "K = X · W_K + b_K", "K = X W_K + b_K", cols: indexLabels("d", d))
                let vv = s.linear(
                    "l\(l).attn.v", "Values V", v, s.param(ps, "\(p).self_attn.w_v"), s.param(ps, "\(p).self_attn.b_v"),
                    "V = X · W_V + b_V", "V = X W_V + b_V", cols: indexLabels("d", d))
                let cat = s.attentionHeads(q: q, k: k, v: vv, mask: mask, heads: c.heads, headSize: enc.headSize, id: "l\(l).attn")
                return s.linear(
                    "l\(l).attn.out", "Output projection", cat, s.param(ps, "\(p).self_attn.w_o"), s.param(ps, "\(p).self_attn.b_o"),
                    "MultiHead = Concat(heads) · W_O + b_O",
                    "\\mathrm{MultiHead} = \\mathrm{Concat}(\\mathrm{head}_1,\\ldots,\\mathrm{head}_h) W_O + b_O",
                    cols: indexLabels("d", d))
            }
            trace?.section = "layer \(l + 1) · feed-forward"
            x = s.residual(
                x, id: "l\(l).ffn", norm: .post, gamma: s.param(ps, "\(p).norm2.gamma"), beta: s.param(ps, "\(p).norm2.beta"),
                eps: c.layerNormEps
            ) { v in
                s.feedForward(
                    v, w1: s.param(ps, "\(p).ffn.w1"), b1: s.param(ps, "\(p).ffn.b1"), w2: s.param(ps, "\(p).ffn.w2"),
                    b2: s.param(ps, "\(p).ffn.b2"),
                    activation: enc.activation, id: "l\(l).ffn",
                    notes: [
                        "BERT's feed-forward is \(c.dFF) wide, with \(enc.activation == .gelu ? "the exact GELU, x·Φ(x)" : "GELU in its tanh form")."
                    ])
            }
        }
        trace?.section = "sentence embedding"
        // Mean pooling as a product with a row of 1/n: a step every renderer and the replay know.
        var pooling = ParameterSet()
        pooling.add("pooling.mean", Tensor(repeating: 1 / Float(n), shape: [1, n]))
        var weights = s.param(pooling, "pooling.mean")
        weights.rows = ["sentence"]
        let mean = s.matmul(
            "out.mean", "Mean over the tokens (mean pooling)", weights, x, transposeB: false,
            "u = (1/n) Σ_i H[i, :] = [1/n … 1/n] · H", "u = \\tfrac{1}{n} \\textstyle\\sum_i H_{i,:}", cols: indexLabels("d", d),
            notes: [
                "sentence-transformers averages the last hidden state over the real tokens, [CLS] and [SEP] included (padding excluded)."
            ])
        let norm = mean.t.data.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
        let out = s.scale(
            "out.embedding", "Sentence embedding (L2-normalised)", mean, by: Float(1 / max(norm, 1e-12)),
            "e = u / ‖u‖  (‖u‖ = \(String(format: "%.4f", norm)))", "e = \\frac{u}{\\lVert u \\rVert}", cols: indexLabels("d", d),
            notes: ["Unit length, so the cosine similarity of two sentences is the dot product of their embeddings."])
        return Output(hidden: x.t, embedding: out.t.data)
    }
}
