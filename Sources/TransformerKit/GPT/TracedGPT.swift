import Foundation
import TensorKit

/// GPT computed step by step: one sequence, every intermediate matrix materialised, each step
/// recorded when a `Tracer` is passed — the reference path of `GPTModel` (tested against its fast
/// forward) and what `transformer walkthrough --model gpt` shows.
///
/// It is built from the same traced blocks as `TracedEncoderDecoder` (`Steps.residual`,
/// `Steps.attentionHeads`, `Steps.feedForward`); what is GPT's own is here: learned positions,
/// the fused Q/K/V projection, the causal-only mask, pre-norm, the tied output and the next token.
public struct TracedGPT: Sendable {
    public let config: GPTConfig
    public let parameters: ParameterSet

    /// Fails when a parameter the config needs is missing or has another shape.
    public init(config: GPTConfig, parameters: ParameterSet) throws {
        try config.validate()
        try parameters.check(against: config.parameterShapes)
        self.config = config
        self.parameters = parameters
    }

    /// The same weights as a fast model.
    public init(_ model: GPTModel) {
        config = model.config
        parameters = model.parameterSet()
    }

    public struct Output: Sendable {
        /// `[n, vocab]`, one row per position.
        public var logits: Tensor
        public var probabilities: Tensor
        /// The most likely next token after each prefix.
        public var predicted: [Int]
        /// Mean cross-entropy of the text predicting itself (position i's target is token i+1); nil for one token.
        public var loss: Float?
    }

    /// Runs `ids` (at most the context length) through the model. `tokens` label the rows (one per id),
    /// `vocabularyTokens` the logits' columns (one per vocabulary id; missing ones are labelled by number).
    public func forward(ids: [Int], tokens: [String]? = nil, vocabularyTokens: [String] = [], trace: Tracer? = nil) throws -> Output {
        let c = config, n = ids.count, ps = parameters
        guard n >= 1 else { throw ConfigError(message: "the text has no tokens") }
        guard n <= c.contextLength else {
            throw ConfigError(message: "the text has \(n) tokens, more than the model's context of \(c.contextLength) (n_positions)")
        }
        if let i = ids.firstIndex(where: { $0 < 0 || $0 >= c.vocabSize }) {
            throw ConfigError(message: "token id \(ids[i]) (position \(i)) is outside the vocabulary of \(c.vocabSize)")
        }
        let rows = tokens.map { $0.count == n ? $0 : ids.map(String.init) } ?? ids.map(String.init)
        let vocab = (0..<c.vocabSize).map { $0 < vocabularyTokens.count ? vocabularyTokens[$0] : "#\($0)" }
        let s = Steps(trace: trace)

        trace?.section = "input"
        let input = s.input(
            "in.ids", "Token ids", ids: ids, tokens: rows,
            notes: ["One stream of text, no source and no target: at every position GPT predicts the token that comes next."])
        let e = s.lookup("in.embed", "Token embeddings", table: s.param(ps, "wte.weight"), ids: input, symbol: "X_emb")
        let pos = s.positionRows("in.pos", "Learned position embeddings", table: s.param(ps, "wpe.weight"), count: n, rows: rows)
        var x = s.add(
            "in.x", "Token + position embeddings", e, pos, "X = W_te[ids] + W_pe[pos]", "X = W_{te}[\\text{ids}] + W_{pe}[pos]",
            notes: ["GPT-2 learns its position table (wpe) like any weight; there is no sin/cos formula and no ×√d_model."])
        let mask = s.maskMatrix(
            "mask", "Causal mask", causalMask(n), causal: true, rows: rows, cols: rows,
            notes: [
                """
                Every attention in every block uses this one mask: position i sees positions 0…i and never the future, so the \
                prediction at i can be trained against token i+1.
                """
            ])
        for l in 0..<c.layers {
            let h = "h.\(l)"
            trace?.section = "block \(l + 1) · causal self-attention"
            x = s.residual(
                x, id: "h\(l).attn", norm: .pre, gamma: s.param(ps, "\(h).ln_1.weight"), beta: s.param(ps, "\(h).ln_1.bias"),
                eps: c.layerNormEps
            ) { v in attention(v, layer: l, mask: mask, s) }
            trace?.section = "block \(l + 1) · MLP"
            x = s.residual(
                x, id: "h\(l).mlp", norm: .pre, gamma: s.param(ps, "\(h).ln_2.weight"), beta: s.param(ps, "\(h).ln_2.bias"),
                eps: c.layerNormEps
            ) { v in
                s.feedForward(
                    v, w1: s.param(ps, "\(h).mlp.c_fc.weight"), b1: s.param(ps, "\(h).mlp.c_fc.bias"),
                    w2: s.param(ps, "\(h).mlp.c_proj.weight"), b2: s.param(ps, "\(h).mlp.c_proj.bias"),
                    activation: c.geluForm == .tanh ? .geluTanh : .gelu, id: "h\(l).mlp", name: "MLP", subscripts: ("fc", "proj"),
                    notes: ["GPT-2's MLP is 4 × d_model wide (n_inner) with GELU in its tanh form."])
            }
        }
        trace?.section = "output"
        let final = s.layerNorm(
            "ln_f", "Final layer norm", x, gamma: s.param(ps, "ln_f.weight"), beta: s.param(ps, "ln_f.bias"), eps: c.layerNormEps,
            notes: ["Pre-norm blocks leave the residual stream un-normalised, so one more layer norm comes before the output."])
        let logits = s.matmul(
            "out.logits", "Logits (output tied to the token embedding)", final, s.param(ps, "wte.weight"), transposeB: true,
            "logits = X · W_teᵀ", "\\text{logits} = X W_{te}^\\top", cols: vocab,
            notes: [
                "The output layer is the token embedding transposed: a row's logit for token j is its dot product with token j's embedding."
            ])
        let probs = s.softmax(
            "out.probs", "Next-token probabilities at every position", logits, "P = softmax(logits) per row",
            "P_{ij} = \\frac{e^{z_{ij}}}{\\sum_k e^{z_{ik}}}", cols: vocab,
            notes: ["Row i is the model's guess for the token after position i, having seen positions 0…i only."])
        let (_, predicted) = s.argmax("out.predicted", "Most likely next token at every position", probs, tokens: { vocab[$0] })
        let last = probs.t.row(n - 1)
        let top = last.indices.sorted { last[$0] > last[$1] || (last[$0] == last[$1] && $0 < $1) }.prefix(10)
        _ = s.selectRows(
            "out.next", "The next token: the distribution at the last position", probs, start: n - 1, count: 1, cols: vocab,
            "p(next | text) = P[n−1, :]", "p(\\text{next} \\mid \\text{text}) = P_{n-1,\\,:}",
            notes: [
                """
                Only the last row predicts a token that is not yet in the text; generation samples from it, appends the token and \
                runs again.
                """,
                "Most likely next tokens: " + top.map { "\(vocab[$0]) \(String(format: "%.4f", last[$0]))" }.joined(separator: ", ")
            ])
        var loss: Float? = nil
        if n >= 2 {
            let known = s.selectRows(
                "out.logits_known", "Logits at the positions whose next token is in the text", logits, start: 0, count: n - 1,
                cols: vocab, "logits[0 ..< n−1, :]", "\\text{logits}_{0:n-1,\\,:}")
            let targets = s.input(
                "out.targets", "Targets: the text shifted left by one", ids: Array(ids[1...]), tokens: Array(rows[1...]),
                notes: ["Training needs no labels beyond the text: the target at position i is token i+1."])
            loss = s.crossEntropy("out.loss", known, targets: targets, targetTokens: targets.rows).1
        }
        return Output(logits: logits.t, probabilities: probs.t, predicted: predicted, loss: loss)
    }

    /// GPT-2's attention: Q, K and V from one fused projection (c_attn), the shared per-head
    /// attention under the causal mask, then the output projection (c_proj).
    func attention(_ x: Value, layer l: Int, mask: Value, _ s: Steps) -> Value {
        let ps = parameters, d = config.dModel, p = "h.\(l).attn", id = "h\(l).attn"
        let qkv = s.linear(
            "\(id).qkv", "Q, K and V in one product", x, s.param(ps, "\(p).c_attn.weight"), s.param(ps, "\(p).c_attn.bias"),
            "[Q K V] = X · W_attn + b_attn", "[Q\\;K\\;V] = X W_{attn} + b_{attn}", cols: indexLabels("d", 3 * d),
            notes: ["GPT-2 keeps W_Q, W_K and W_V side by side in one [d, 3d] matrix (c_attn): one product gives all three."])
        let q = s.columns("\(id).q", "Queries Q", qkv, block: 0, width: d, "Q = [Q K V][:, 0 ..< \(d)]", "Q = [Q\\;K\\;V]_{[:,\\,0:\(d)]}")
        let k = s.columns(
            "\(id).k", "Keys K", qkv, block: 1, width: d, "K = [Q K V][:, \(d) ..< \(2 * d)]", "K = [Q\\;K\\;V]_{[:,\\,\(d):\(2 * d)]}")
        let v = s.columns(
            "\(id).v", "Values V", qkv, block: 2, width: d, "V = [Q K V][:, \(2 * d) ..< \(3 * d)]",
            "V = [Q\\;K\\;V]_{[:,\\,\(2 * d):\(3 * d)]}")
        let cat = s.attentionHeads(q: q, k: k, v: v, mask: mask, heads: config.heads, headSize: config.headSize, id: id)
        return s.linear(
            "\(id).out", "Output projection", cat, s.param(ps, "\(p).c_proj.weight"), s.param(ps, "\(p).c_proj.bias"),
            "MultiHead = Concat(heads) · W_proj + b_proj",
            "\\mathrm{MultiHead} = \\mathrm{Concat}(\\mathrm{head}_1,\\ldots,\\mathrm{head}_h) W_{proj} + b_{proj}",
            cols: indexLabels("d", d))
    }
}
