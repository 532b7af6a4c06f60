import Foundation
import TensorKit

/// The pieces of the Transformer a worksheet can ask a person to compute by hand.
public enum ExerciseTopic: String, CaseIterable, Codable, Sendable {
    /// Z = A · X with given attention weights (the by-hand posts' "X1 := X1 + X2").
    case attentionWeighting = "attention-weighting"
    /// The position-wise feed-forward network: linear, ReLU, linear.
    case ffn
    /// Q, K, V, scores, 1/√d_k, softmax, A·V for one head.
    case attention
    /// The same with the decoder's look-ahead mask.
    case decoderMask = "decoder-mask"
    /// Queries from the decoder, keys and values from the encoder's output.
    case crossAttention = "cross-attention"
    /// Two heads side by side, concatenated and projected by W_O.
    case multiHead = "multi-head"
    /// Add & norm: the residual sum and its layer norm.
    case layerNorm = "layer-norm"
    /// The sinusoidal table added to the embeddings.
    case positionalEncoding = "positional-encoding"
    /// A row-wise softmax on its own.
    case softmax
    /// The output layer's logits, softmax, loss, gradient and one gradient-descent step.
    case backpropOutput = "backprop-output"

    /// A title for a worksheet section.
    public var title: String {
        switch self {
        case .attentionWeighting: "Attention weighting"
        case .ffn: "Position-wise feed-forward network"
        case .attention: "Scaled dot-product attention"
        case .decoderMask: "Masked (decoder) self-attention"
        case .crossAttention: "Encoder–decoder (cross) attention"
        case .multiHead: "Multi-head attention"
        case .layerNorm: "Add & norm"
        case .positionalEncoding: "Sinusoidal positional encoding"
        case .softmax: "Softmax"
        case .backpropOutput: "Training the output layer: one step of back-propagation"
        }
    }
}

/// What an exercise computes from: the given matrices by short name (`X`, `W1`, `W_Q`, …, listed
/// per topic in `ExerciseTrace.record`), the labels of their rows and the person's rounding.
public struct ExerciseInputs: Sendable {
    /// Row labels of the main input (tokens or positions).
    public var tokens: [String]
    /// Row labels of the encoder's output, for cross-attention.
    public var memoryTokens: [String] = []
    public var tensors: [String: Tensor]
    /// Column labels of the output layer, and the target's index in each row (backprop-output).
    public var vocabulary: [String] = []
    public var targets: [Int] = []
    public var heads: Int = 2
    /// Decimals a person carries on after a softmax or a sine (the `round` steps).
    public var roundTo: Int = 2
    /// Layer norm's ε: 0 on integer worksheets keeps σ exact.
    public var eps: Float = 0
    public var learningRate: Float = 1

    public init(tokens: [String], tensors: [String: Tensor]) {
        self.tokens = tokens; self.tensors = tensors
    }
}

/// Records worksheet computations with the same step functions and blocks the traced models use
/// (`attentionHeads`, `feedForward`, `layerNorm`, …), so a worksheet's answers are the
/// walkthrough's computation on the worksheet's numbers.
public enum ExerciseTrace {
    /// Records `topics` in order under `prefix` (step ids `prefix.hidden`, parameters `prefix.W1`).
    /// Each topic after the first takes the previous one's output as its `X` (the by-hand posts'
    /// attention weighting, then the feed-forward network).
    ///
    /// Inputs per topic: attention-weighting `X [n,d]`, `A [n,n]`; ffn `X`, `W1 [d,f]`, `b1`, `W2 [f,d]`,
    /// `b2`; attention and decoder-mask `X`, `W_Q`, `W_K`, `W_V [d,d_k]`; cross-attention `Y [n,d]`,
    /// `M [m,d]` and the three projections; multi-head those of attention `[d, h·d_k]` and
    /// `W_O [h·d_k, d]`; layer-norm `X`, `F`, `gamma`, `beta`; positional-encoding `E [n,d]`; softmax
    /// `S`; backprop-output `H [n,d]`, `W [d,V]` with `targets`.
    public static func record(_ topics: [ExerciseTopic], prefix p: String, _ inputs: ExerciseInputs, into tracer: Tracer) {
        let s = Steps(trace: tracer)
        var carried: Value? = nil
        for topic in topics {
            tracer.section = topic.title
            carried = record(topic, prefix: p, inputs, carried, s)
        }
    }

    private static func record(_ topic: ExerciseTopic, prefix p: String, _ inp: ExerciseInputs, _ carried: Value?, _ s: Steps) -> Value {
        func given(_ name: String, rows: [String]? = nil) -> Value {
            guard let t = inp.tensors[name] else { preconditionFailure("exercise \(topic.rawValue) needs the input \(name)") }
            s.trace?.parameter("\(p).\(name)", t)
            return Value(id: "\(p).\(name)", t: t, rows: rows ?? inp.tokens)
        }
        let x = { carried ?? given("X") }
        switch topic {
        case .attentionWeighting:
            let xv = x(), a = given("A")
            return s.matmul(
                "\(p).z", "Attention weighting Z = A · X", a, xv, transposeB: false, "Z = A · X", "Z = A X",
                cols: indexLabels("d", xv.t.cols),
                notes: [
                    """
                    Row i of Z mixes the rows of X with the weights in row i of A: with a 1 on the diagonal and one beside it, \
                    Z_i = X_i + X_(i+1). (The by-hand posts keep positions in columns and write Z = X · A.)
                    """
                ])
        case .ffn:
            return s.feedForward(
                x(), w1: given("W1"), b1: given("b1"), w2: given("W2"), b2: given("b2"), activation: .relu, id: p)
        case .attention, .decoderMask, .crossAttention, .multiHead:
            let heads = topic == .multiHead ? inp.heads : 1
            let queries = topic == .crossAttention ? given("Y") : x()
            let memory = topic == .crossAttention ? given("M", rows: inp.memoryTokens) : queries
            let wq = given("W_Q"), wk = given("W_K"), wv = given("W_V")
            let width = wq.t.cols
            let dk = width / heads
            let q = s.linear("\(p).q", "Queries Q = X·W_Q", queries, wq, nil, "Q = X · W_Q", "Q = X W^Q", cols: indexLabels("d", width))
            let k = s.linear("\(p).k", "Keys K = X·W_K", memory, wk, nil, "K = X · W_K", "K = X W^K", cols: indexLabels("d", width))
            let v = s.linear("\(p).v", "Values V = X·W_V", memory, wv, nil, "V = X · W_V", "V = X W^V", cols: indexLabels("d", width))
            var mask: Value? = nil
            if topic == .decoderMask {
                let n = queries.t.rows
                let m = Tensor(shape: [n, n], data: (0..<(n * n)).map { $0 % n <= $0 / n ? 1 : 0 })
                mask = s.maskMatrix(
                    "\(p).mask", "Look-ahead mask", m, causal: true, rows: queries.rows, cols: queries.rows,
                    notes: ["Position i may attend to positions 1 … i only: the decoder must not see the words it is about to predict."])
            }
            let heads_ = s.attentionHeads(q: q, k: k, v: v, mask: mask, heads: heads, headSize: dk, id: p, roundWeights: inp.roundTo)
            guard topic == .multiHead else { return heads_ }
            let wo = given("W_O")
            return s.linear(
                "\(p).out", "Output projection Concat · W_O", heads_, wo, nil, "MultiHead = Concat(head_1, …, head_h) · W_O",
                "\\mathrm{MultiHead} = \\mathrm{Concat}(\\mathrm{head}_1, \\ldots, \\mathrm{head}_h) W^O", cols: indexLabels("d", wo.t.cols)
            )
        case .layerNorm:
            let xv = x(), f = given("F")
            let sum = s.add("\(p).residual", "Add (residual)", xv, f, "x + Sublayer(x)", "x + \\mathrm{Sublayer}(x)")
            return s.layerNorm(
                "\(p).norm", "Layer norm", sum, gamma: given("gamma"), beta: given("beta"), eps: inp.eps,
                notes: inp.eps == 0
                    ? [
                        "ε is 0 here so that σ stays exact; a model adds ε = 1e-5 under the square root so that a constant row cannot divide by 0."
                    ]
                    : [])
        case .positionalEncoding:
            let e = given("E")
            let pe = s.positional(
                "\(p).pe", "Positional encoding", rows: inp.tokens, dModel: e.t.cols,
                notes: ["Columns 2i and 2i+1 share one frequency 1/10000^(2i/d): sine in the even column, cosine in the odd one."])
            let cols = indexLabels("d", e.t.cols)
            let carriedPE = s.round(
                "\(p).pe_rounded", "Positional encoding rounded to \(inp.roundTo) decimals", pe, decimals: inp.roundTo, cols: cols)
            return s.add("\(p).x", "Embedding + position", e, carriedPE, "X = E + PE", "X = E + PE")
        case .softmax:
            let sc = given("S")
            return s.softmax(
                "\(p).weights", "Softmax per row", sc, "softmax(x)_j = e^(x_j) / Σ_k e^(x_k)",
                "\\mathrm{softmax}(x)_j = \\frac{e^{x_j}}{\\sum_k e^{x_k}}",
                cols: indexLabels("k", sc.t.cols),
                notes: ["Every row sums to 1; subtracting the row's largest value first changes nothing."])
        case .backpropOutput:
            return backprop(prefix: p, inp, s, given)
        }
    }

    private static func backprop(prefix p: String, _ inp: ExerciseInputs, _ s: Steps, _ given: (String, [String]?) -> Value) -> Value {
        let h = given("H", nil), w = given("W", nil)
        let vocab = inp.vocabulary
        let logits = s.linear("\(p).logits", "Logits z = H · W", h, w, nil, "z = H · W", "z = H W", cols: vocab)
        _ = s.softmax(
            "\(p).probs", "Probabilities softmax(z)", logits, "P = softmax(z) per row", "P = \\mathrm{softmax}(z)", cols: vocab)
        let targets = s.input(
            "\(p).targets", "Target: the next word is " + inp.targets.map { "\"\(vocab[$0])\"" }.joined(separator: ", "),
            ids: inp.targets, tokens: inp.tokens,
            notes: ["The word that should come next at each position."])
        _ = s.crossEntropy("\(p).loss", logits, targets: targets, targetTokens: inp.targets.map { vocab[$0] })
        let g = crossEntropyGradient(logits: logits.t, targets: inp.targets)
        s.trace?.record(
            "\(p).grad", "Gradient at the logits ∂L/∂z", op: .softmaxCrossEntropyGrad, inputs: [logits.id, targets.id], g, rows: inp.tokens,
            cols: vocab, formula: "∂L/∂z = (P − onehot(target)) / n",
            latex: "\\frac{\\partial L}{\\partial z} = \\frac{P - \\mathrm{onehot}(y)}{n}",
            notes: ["Negative only at the target: the step raises the target's logit and lowers the others."])
        let gr = s.round(
            "\(p).grad_rounded", "Gradient rounded to \(inp.roundTo) decimals", Value(id: "\(p).grad", t: g, rows: inp.tokens),
            decimals: inp.roundTo, cols: vocab)
        let dw = matmul(h.t, gr.t, transposeA: true)
        let dRows = indexLabels("d", w.t.rows)
        s.trace?.record(
            "\(p).dW", "∂L/∂W = Hᵀ · ∂L/∂z", op: .matmul, inputs: [h.id, gr.id], dw, rows: dRows, cols: vocab,
            formula: "∂L/∂W = Hᵀ · ∂L/∂z", latex: "\\frac{\\partial L}{\\partial W} = H^\\top \\frac{\\partial L}{\\partial z}",
            attrs: ["transpose_a": 1, "transpose_b": 0])
        let lr = inp.learningRate
        let updated = TensorKit.add(w.t, TensorKit.scale(dw, -lr))
        s.trace?.record(
            "\(p).updated", "W after one step", op: .sgdUpdate, inputs: [w.id, "\(p).dW"], updated, rows: dRows, cols: vocab,
            formula: "W ← W − η · ∂L/∂W  (η = \(describeRate(lr)))", latex: "W \\leftarrow W - \\eta \\frac{\\partial L}{\\partial W}",
            attrs: ["lr": Double(lr)],
            notes: lr == 1 ? ["η = 1 keeps the arithmetic short; a real run uses a rate near 1e-3 and AdamW."] : [])
        return Value(id: "\(p).updated", t: updated, rows: dRows)
    }

    private static func describeRate(_ x: Float) -> String { x == x.rounded() ? String(Int(x)) : String(x) }
}
