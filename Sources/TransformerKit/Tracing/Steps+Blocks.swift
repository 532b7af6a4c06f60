import Foundation
import TensorKit

/// The blocks both traced models are built from — a residual sublayer, multi-head attention after
/// the projections, the position-wise feed-forward network — written once, so the encoder–decoder
/// and GPT walkthroughs show the same steps under the same ids and cannot drift apart.
extension Steps {
    /// One residual sublayer, with the norm where `norm` puts it: post-norm `LN(x + f(x))` (the paper)
    /// or pre-norm `x + f(LN(x))` (GPT-2). Records `<id>.norm` and `<id>.residual`.
    func residual(_ x: Value, id: String, norm: NormPlacement, gamma: Value, beta: Value, eps: Float, _ f: (Value) -> Value) -> Value {
        switch norm {
        case .post:
            let y = f(x)
            let sum = add("\(id).residual", "Add (residual)", x, y, "x + Sublayer(x)", "x + \\mathrm{Sublayer}(x)")
            return layerNorm("\(id).norm", "Layer norm (add & norm)", sum, gamma: gamma, beta: beta, eps: eps)
        case .pre:
            let h = layerNorm("\(id).norm", "Layer norm (before the sublayer)", x, gamma: gamma, beta: beta, eps: eps)
            let y = f(h)
            return add("\(id).residual", "Add (residual)", x, y, "x + Sublayer(LayerNorm(x))", "x + \\mathrm{Sublayer}(\\mathrm{LN}(x))")
        }
    }

    /// Scaled dot-product attention per head, from projected `q` `[n, h·d_k]`, `k` and `v` `[m, h·d_k]`:
    /// `head_i = softmax(mask(Q_i K_iᵀ / √d_k)) V_i`, then the heads side by side `[n, h·d_k]`.
    /// The output projection W_O is the caller's (its name and bias differ between models).
    ///
    /// A worksheet passes no mask when nothing is blocked, and `roundWeights` to carry the weights on
    /// rounded as a person would (`<hid>.weights_rounded`); the models pass neither.
    func attentionHeads(
        q: Value, k: Value, v: Value, mask: Value?, heads h: Int, headSize dk: Int, id: String, roundWeights: Int? = nil
    ) -> Value {
        var out: [Value] = []
        for i in 0..<h {
            let hid = h == 1 ? id : "\(id).head\(i)"
            let qi = h == 1 ? q : split("\(hid).q", "Q, head \(i + 1)", q, head: i, width: dk, symbol: "Q")
            let ki = h == 1 ? k : split("\(hid).k", "K, head \(i + 1)", k, head: i, width: dk, symbol: "K")
            let vi = h == 1 ? v : split("\(hid).v", "V, head \(i + 1)", v, head: i, width: dk, symbol: "V")
            let scores = matmul(
                "\(hid).scores", "Scores Q·Kᵀ", qi, ki, transposeB: true, "S = Q · Kᵀ", "S = Q K^\\top", cols: ki.rows,
                notes: ["Entry (i, j) is the dot product of query i with key j: how well token i's question matches token j's label."])
            let factor = Float(1 / Double(dk).squareRoot())
            let scaled = scale(
                "\(hid).scaled", "Scaled by 1/√d_k", scores, by: factor,
                "S / √d_k  (√\(dk) = \(String(format: "%.4f", Double(dk).squareRoot())))", "\\frac{S}{\\sqrt{d_k}}", cols: ki.rows,
                notes: [
                    """
                    Divide by √d_k = √\(dk) (the width of one head's keys), not by d_model or d_k itself: this keeps the dot \
                    products' variance near 1 so the softmax does not saturate.
                    """
                ])
            let masked = mask.map { self.mask("\(hid).masked", "Masked", scaled, $0, cols: ki.rows) } ?? scaled
            var weights = softmax(
                "\(hid).weights", "Attention weights softmax(·)", masked, "A = softmax(S') per row",
                "A_{ij} = \\frac{e^{S'_{ij}}}{\\sum_k e^{S'_{ik}}}", cols: ki.rows,
                notes: ["Every row sums to 1."])
            if let d = roundWeights {
                weights = round("\(hid).weights_rounded", "Weights rounded to \(d) decimals", weights, decimals: d, cols: ki.rows)
            }
            out.append(
                matmul(
                    "\(hid).context", "Weighted values A·V", weights, vi, transposeB: false, "head = A · V", "\\mathrm{head} = A V",
                    cols: indexLabels("d", dk)))
        }
        return h == 1 ? out[0] : concat("\(id).concat", "Heads concatenated", out, cols: indexLabels("d", h * dk))
    }

    /// Position-wise feed-forward network `act(x · W1 + b1) · W2 + b2`, the same weights for every row.
    /// Records `<id>.hidden`, `<id>.act`, `<id>.out`. `name` and `subscripts` name it as the model does
    /// (the paper's FFN with W1, W2; GPT-2's MLP with W_fc, W_proj).
    func feedForward(
        _ x: Value, w1: Value, b1: Value, w2: Value, b2: Value, activation: Activation, id: String,
        name: String = "FFN", subscripts: (String, String) = ("1", "2"), notes: [String] = []
    ) -> Value {
        let (i, o) = subscripts
        let (ti, to) = (i.count > 1 ? "_\(i)" : i, o.count > 1 ? "_\(o)" : o)  // W1 in text, but W_fc
        let (li, lo) = (i.count > 1 ? "{\(i)}" : i, o.count > 1 ? "{\(o)}" : o)  // W_1, W_{fc} in LaTeX
        let hidden = linear(
            "\(id).hidden", "\(name) hidden layer x·W\(ti) + b\(ti)", x, w1, b1, "H = X · W\(ti) + b\(ti)", "H = X W_\(li) + b_\(li)",
            cols: indexLabels("h", w1.t.cols),
            notes: ["Position-wise: every row goes through the same weights, independently."])
        let a = self.activation("\(id).act", activation, hidden)
        return linear(
            "\(id).out", "\(name) output ·W\(to) + b\(to)", a, w2, b2, "\(name)(X) = act(H) · W\(to) + b\(to)",
            "\\mathrm{\(name)}(X) = \\mathrm{act}(H) W_\(lo) + b_\(lo)", cols: indexLabels("d", w2.t.cols), notes: notes)
    }

    /// Columns `block·width ..< (block+1)·width` of `x`, recorded as `split_heads` with its own formula
    /// (GPT-2 computes Q, K and V in one product and splits the result into three).
    func columns(_ id: String, _ title: String, _ x: Value, block: Int, width: Int, _ formula: String, _ latex: String) -> Value {
        let t = sliceColumns(x.t, start: block * width, width: width)
        trace?.record(
            id, title, op: .splitHeads, inputs: [x.id], t, rows: x.rows, cols: indexLabels("d", width),
            formula: formula, latex: latex, attrs: ["head": Double(block), "width": Double(width)])
        return Value(id: id, t: t, rows: x.rows)
    }
}
