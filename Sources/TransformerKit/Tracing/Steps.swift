import Foundation
import TensorKit

/// A value flowing through the model together with the trace id it came from and its row labels.
public struct Value: Sendable {
    public var id: String
    public var t: Tensor
    public var rows: [String]
    public init(id: String, t: Tensor, rows: [String]) { self.id = id; self.t = t; self.rows = rows }
}

/// Each function computes one step with a TensorKit kernel and, when tracing, records it —
/// so the computation and its trace record are written in one place and cannot drift apart.
struct Steps {
    let trace: Tracer?

    private func rec(
        _ id: String, _ title: String, _ op: TraceOp, _ inputs: [String], _ t: Tensor,
        rows: [String], cols: [String], _ formula: String, _ latex: String,
        attrs: [String: Double] = [:], extras: [String: [Float]] = [:], notes: [String] = []
    ) {
        trace?.record(
            id, title, op: op, inputs: inputs, t, rows: rows, cols: cols,
            formula: formula, latex: latex, attrs: attrs, extras: extras, notes: notes)
    }

    /// A parameter, registered with the trace when it is first read.
    func param(_ ps: ParameterSet, _ name: String) -> Value {
        guard let t = ps[name] else { preconditionFailure("missing parameter \(name)") }
        trace?.parameter(name, t)
        return Value(id: name, t: t, rows: [])
    }

    func input(_ id: String, _ title: String, ids: [Int], tokens: [String], notes: [String] = []) -> Value {
        let t = Tensor(shape: [ids.count, 1], data: ids.map(Float.init))
        rec(
            id, title, .input, [], t, rows: tokens, cols: ["id"], "ids = vocab[token]", "\\text{id} = \\text{vocab}[\\text{token}]",
            notes: notes)
        return Value(id: id, t: t, rows: tokens)
    }

    func lookup(_ id: String, _ title: String, table: Value, ids: Value, symbol: String) -> Value {
        let t = embeddingLookup(table.t, ids: ids.t.data.map { Int($0) })
        rec(
            id, title, .lookup, [table.id, ids.id], t, rows: ids.rows, cols: indexLabels("d", t.cols),
            "\(symbol) = E[ids]", "X_{\\text{emb}} = E[\\text{ids}]")
        return Value(id: id, t: t, rows: ids.rows)
    }

    func positional(_ id: String, _ title: String, rows: [String], dModel: Int, notes: [String]) -> Value {
        let t = sinusoidalPositionalEncoding(count: rows.count, dModel: dModel)
        rec(
            id, title, .positionalEncoding, [], t, rows: rows, cols: indexLabels("d", dModel),
            "PE(pos, 2i) = sin(pos / 10000^(2i/d)),  PE(pos, 2i+1) = cos(pos / 10000^(2i/d))",
            """
            PE_{(pos,2i)} = \\sin\\left(pos / 10000^{2i/d_{model}}\\right),\\; PE_{(pos,2i+1)} = \\cos\\left(pos / \
            10000^{2i/d_{model}}\\right)
            """,
            attrs: ["start": 0, "d_model": Double(dModel), "base": 10000], notes: notes)
        return Value(id: id, t: t, rows: rows)
    }

    func positionRows(_ id: String, _ title: String, table: Value, count: Int, rows: [String]) -> Value {
        let ids = Tensor(shape: [count, 1], data: (0..<count).map(Float.init))
        let idsID = id + "_positions"
        rec(idsID, "Positions", .input, [], ids, rows: rows, cols: ["pos"], "pos = 0, 1, …", "pos = 0, 1, \\ldots")
        let t = embeddingLookup(table.t, ids: (0..<count).map { $0 })
        rec(
            id, title, .lookup, [table.id, idsID], t, rows: rows, cols: indexLabels("d", t.cols), "P = P_table[pos]",
            "P = P_{\\text{table}}[pos]")
        return Value(id: id, t: t, rows: rows)
    }

    func add(
        _ id: String, _ title: String, _ a: Value, _ b: Value, _ formula: String, _ latex: String,
        cols: [String]? = nil, notes: [String] = []
    ) -> Value {
        let t = TensorKit.add(a.t, b.t)
        rec(id, title, .add, [a.id, b.id], t, rows: a.rows, cols: cols ?? indexLabels("d", t.cols), formula, latex, notes: notes)
        return Value(id: id, t: t, rows: a.rows)
    }

    func scale(
        _ id: String, _ title: String, _ a: Value, by factor: Float, _ formula: String, _ latex: String,
        cols: [String], notes: [String] = []
    ) -> Value {
        let t = TensorKit.scale(a.t, factor)
        rec(id, title, .scale, [a.id], t, rows: a.rows, cols: cols, formula, latex, attrs: ["factor": Double(factor)], notes: notes)
        return Value(id: id, t: t, rows: a.rows)
    }

    /// `x · W (+ b)`; recorded as `matmul` when there is no bias, `linear` when there is.
    func linear(
        _ id: String, _ title: String, _ x: Value, _ w: Value, _ b: Value?, _ formula: String, _ latex: String,
        cols: [String], notes: [String] = []
    ) -> Value {
        let t = TensorKit.linear(x.t, w.t, b?.t)
        if let b {
            rec(id, title, .linear, [x.id, w.id, b.id], t, rows: x.rows, cols: cols, formula, latex, notes: notes)
        } else {
            rec(
                id, title, .matmul, [x.id, w.id], t, rows: x.rows, cols: cols, formula, latex,
                attrs: ["transpose_a": 0, "transpose_b": 0], notes: notes)
        }
        return Value(id: id, t: t, rows: x.rows)
    }

    func matmul(
        _ id: String, _ title: String, _ a: Value, _ b: Value, transposeB: Bool, _ formula: String, _ latex: String,
        cols: [String], notes: [String] = []
    ) -> Value {
        let t = TensorKit.matmul(a.t, b.t, transposeB: transposeB)
        rec(
            id, title, .matmul, [a.id, b.id], t, rows: a.rows, cols: cols, formula, latex,
            attrs: ["transpose_a": 0, "transpose_b": transposeB ? 1 : 0], notes: notes)
        return Value(id: id, t: t, rows: a.rows)
    }

    func split(_ id: String, _ title: String, _ x: Value, head: Int, width: Int, symbol: String) -> Value {
        let t = sliceColumns(x.t, start: head * width, width: width)
        rec(
            id, title, .splitHeads, [x.id], t, rows: x.rows, cols: indexLabels("d", width),
            "\(symbol)_\(head + 1) = \(symbol)[:, \(head * width) ..< \((head + 1) * width)]",
            "\(symbol)_{\(head + 1)} = \(symbol)_{[:,\\,\(head * width):\((head + 1) * width)]}",
            attrs: ["head": Double(head), "width": Double(width)])
        return Value(id: id, t: t, rows: x.rows)
    }

    func maskMatrix(_ id: String, _ title: String, _ m: Tensor, causal: Bool, rows: [String], cols: [String], notes: [String]) -> Value {
        rec(
            id, title, .maskMatrix, [], m, rows: rows, cols: cols,
            causal ? "M[i, j] = 1 if j ≤ i else 0" : "M[i, j] = 0 where key j is <pad>, else 1",
            causal ? "M_{ij} = [\\, j \\le i \\,]" : "M_{ij} = [\\, k_j \\ne \\texttt{<pad>} \\,]",
            attrs: ["causal": causal ? 1 : 0], notes: notes)
        return Value(id: id, t: m, rows: rows)
    }

    func mask(_ id: String, _ title: String, _ s: Value, _ m: Value, cols: [String]) -> Value {
        let t = applyMask(s.t, m.t)
        rec(
            id, title, .mask, [s.id, m.id], t, rows: s.rows, cols: cols,
            "S' = S where M = 1, −∞ where M = 0", "S'_{ij} = \\begin{cases} S_{ij} & M_{ij} = 1 \\\\ -\\infty & M_{ij} = 0 \\end{cases}",
            notes: ["The mask is applied before the softmax: exp(−∞) = 0, so blocked weights are exactly 0 and each row still sums to 1."])
        return Value(id: id, t: t, rows: s.rows)
    }

    func softmax(_ id: String, _ title: String, _ x: Value, _ formula: String, _ latex: String, cols: [String], notes: [String] = [])
        -> Value
    {
        let t = softmaxRows(x.t)
        rec(id, title, .softmax, [x.id], t, rows: x.rows, cols: cols, formula, latex, notes: notes)
        return Value(id: id, t: t, rows: x.rows)
    }

    /// Values rounded to `decimals` places, carried on to the next step as a person would.
    func round(_ id: String, _ title: String, _ x: Value, decimals: Int, cols: [String]) -> Value {
        let t = roundValues(x.t, decimals: decimals)
        rec(
            id, title, .round, [x.id], t, rows: x.rows, cols: cols, "round(x, \(decimals))", "\\mathrm{round}(x, \(decimals))",
            attrs: ["decimals": Double(decimals)])
        return Value(id: id, t: t, rows: x.rows)
    }

    func concat(_ id: String, _ title: String, _ parts: [Value], cols: [String]) -> Value {
        let t = concatColumns(parts.map(\.t))
        rec(
            id, title, .concat, parts.map(\.id), t, rows: parts[0].rows, cols: cols,
            "Concat(head_1, …, head_h)", "\\mathrm{Concat}(\\mathrm{head}_1, \\ldots, \\mathrm{head}_h)")
        return Value(id: id, t: t, rows: parts[0].rows)
    }

    func layerNorm(_ id: String, _ title: String, _ x: Value, gamma: Value, beta: Value, eps: Float, notes: [String] = []) -> Value {
        let r = TensorKit.layerNorm(x.t, gamma: gamma.t, beta: beta.t, eps: eps)
        rec(
            id, title, .layerNorm, [x.id, gamma.id, beta.id], r.output, rows: x.rows, cols: indexLabels("d", r.output.cols),
            "LayerNorm(x) = (x − μ) / √(σ² + ε) · γ + β, per row (σ² = Σ(x − μ)² / N)",
            "\\mathrm{LN}(x) = \\frac{x - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}} \\odot \\gamma + \\beta",
            attrs: ["eps": Double(eps)], extras: ["mean": r.mean, "std": r.std], notes: notes)
        return Value(id: id, t: r.output, rows: x.rows)
    }

    func activation(_ id: String, _ kind: Activation, _ x: Value) -> Value {
        switch kind {
        case .relu:
            let t = TensorKit.relu(x.t)
            rec(
                id, "ReLU", .relu, [x.id], t, rows: x.rows, cols: indexLabels("h", t.cols), "ReLU(x) = max(0, x)",
                "\\mathrm{ReLU}(x) = \\max(0, x)")
            return Value(id: id, t: t, rows: x.rows)
        case .gelu, .geluTanh:
            let form: GELUForm = kind == .gelu ? .erf : .tanh
            let t = TensorKit.gelu(x.t, form: form)
            rec(
                id, "GELU", .gelu, [x.id], t, rows: x.rows, cols: indexLabels("h", t.cols),
                form == .erf ? "GELU(x) = x · Φ(x)" : "GELU(x) ≈ 0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))",
                form == .erf
                    ? "\\mathrm{GELU}(x) = x\\,\\Phi(x)"
                    : "\\mathrm{GELU}(x) \\approx \\tfrac{x}{2}\\left(1 + \\tanh\\left(\\sqrt{2/\\pi}\\,(x + 0.044715x^3)\\right)\\right)",
                attrs: ["tanh": form == .tanh ? 1 : 0])
            return Value(id: id, t: t, rows: x.rows)
        }
    }

    /// Rows `start ..< start + count` of `x`, with their labels.
    func selectRows(
        _ id: String, _ title: String, _ x: Value, start: Int, count: Int, cols: [String],
        _ formula: String, _ latex: String, notes: [String] = []
    ) -> Value {
        let c = x.t.cols
        let t = Tensor(shape: [count, c], data: Array(x.t.data[(start * c)..<((start + count) * c)]))
        let rows = Array(x.rows[start..<(start + count)])
        rec(
            id, title, .selectRows, [x.id], t, rows: rows, cols: cols, formula, latex,
            attrs: ["start": Double(start), "count": Double(count)], notes: notes)
        return Value(id: id, t: t, rows: rows)
    }

    func argmax(_ id: String, _ title: String, _ p: Value, tokens: (Int) -> String) -> (Value, [Int]) {
        var ids: [Int] = []
        for r in 0..<p.t.rows {
            let row = p.t.row(r)
            var best = 0
            for j in row.indices where row[j] > row[best] { best = j }
            ids.append(best)
        }
        let t = Tensor(shape: [ids.count, 1], data: ids.map(Float.init))
        rec(
            id, title, .argmax, [p.id], t, rows: p.rows, cols: ["id"], "ŷ = argmax_j P[i, j]", "\\hat y_i = \\arg\\max_j P_{ij}",
            notes: ["Predicted tokens: " + ids.map(tokens).joined(separator: " ")])
        return (Value(id: id, t: t, rows: p.rows), ids)
    }

    func crossEntropy(_ id: String, _ logits: Value, targets: Value, targetTokens: [String]) -> (Value, Float) {
        let logp = logSoftmaxRows(logits.t)
        var perRow: [Float] = []
        for r in 0..<logits.t.rows {
            perRow.append(-logp[r, Int(targets.t.data[r])])
        }
        let mean = perRow.reduce(0, +) / Float(max(perRow.count, 1))
        let t = Tensor(shape: [1, 1], data: [mean])
        rec(
            id, "Cross-entropy loss", .crossEntropy, [logits.id, targets.id], t, rows: ["loss"], cols: ["mean"],
            "L = −(1/n) Σ_i log P[i, target_i]", "L = -\\frac{1}{n}\\sum_i \\log P_{i,\\,y_i}",
            extras: ["per_row": perRow],
            notes: ["Per position: " + zip(targetTokens, perRow).map { "\($0) \(String(format: "%.4f", $1))" }.joined(separator: ", ")])
        return (Value(id: id, t: t, rows: ["loss"]), mean)
    }
}
