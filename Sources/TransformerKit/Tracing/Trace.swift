import TensorKit

/// The operations a trace step may record. Each one can be recomputed from its inputs and
/// attributes alone (see `Replay` in the Walkthrough module), which is what makes a trace checkable.
public enum TraceOp: String, Codable, Sendable, CaseIterable {
    /// Token ids given to the model (a column `[n, 1]`).
    case input
    /// Rows of a table picked by id: inputs `[table, ids]`.
    case lookup
    /// The sinusoidal table; attrs `start`, `d_model`, `base`.
    case positionalEncoding = "positional_encoding"
    /// Elementwise `a + b`.
    case add
    /// `op(a) · op(b)`; attrs `transpose_a`, `transpose_b` (0 or 1).
    case matmul
    case transpose
    /// `a · factor`; attr `factor`.
    case scale
    /// A 0/1 matrix (1 = may attend); attr `causal` = 1 for the look-ahead mask, 0 for a padding mask.
    case maskMatrix = "mask_matrix"
    /// Scores with blocked positions set to −∞: inputs `[scores, mask_matrix]`.
    case mask
    /// Row-wise softmax.
    case softmax
    /// Columns of one head: attrs `head`, `width`.
    case splitHeads = "split_heads"
    /// Inputs side by side (the heads).
    case concat
    /// `x · W + b`: inputs `[x, W]` or `[x, W, b]`.
    case linear
    /// `x + b` per row.
    case biasAdd = "bias_add"
    /// inputs `[x, gamma, beta]`; attr `eps`; extras `mean`, `std`.
    case layerNorm = "layer_norm"
    case relu
    /// attr `tanh` = 1 for the tanh form.
    case gelu
    /// Rows `start ..< start + count` of the input (GPT: the last position's distribution): attrs `start`, `count`.
    case selectRows = "select_rows"
    /// Index of the largest value in each row.
    case argmax
    /// Mean of `-log softmax(logits)[target]` over rows: inputs `[logits, targets]`; extras `per_row`.
    case crossEntropy = "cross_entropy"
    /// ∂L/∂logits of the mean cross-entropy: `(softmax(z) − onehot(y)) / n`; inputs `[logits, targets]`.
    case softmaxCrossEntropyGrad = "softmax_cross_entropy_grad"
    /// ∂L/∂W for a parameter, by back-propagation through the whole model: inputs `[loss, parameter]`.
    /// A checker replays it by running the backward pass on the trace's parameters and ids.
    case gradient
    /// One plain gradient-descent step `W − lr · ∂L/∂W`: inputs `[parameter, gradient]`; attr `lr`.
    case sgdUpdate = "sgd_update"
    /// Each value rounded to `decimals` places (half away from zero): what a person carries on to the
    /// next step after computing a softmax or a sine by hand. Attr `decimals`.
    case round
}

/// One recorded step of a computation: a matrix with its labels, its formula and where it came from.
public struct TraceStep: Codable, Sendable, Equatable {
    public var id: String
    public var title: String
    public var op: TraceOp
    /// Ids of earlier steps, or names of parameters.
    public var inputs: [String]
    public var shape: [Int]
    public var rowLabels: [String]
    public var colLabels: [String]
    /// Row-major; masked scores are `-inf` (written `"-inf"` in JSON).
    public var values: [Float]
    /// The formula in plain text, e.g. `Q = X · W_Q`.
    public var formula: String
    /// The same in LaTeX.
    public var latex: String
    /// Where in the model: e.g. `encoder layer 1 · self-attention · head 1`.
    public var section: String
    public var attrs: [String: Double]
    /// Per-row statistics and similar (layer norm's `mean` and `std`).
    public var extras: [String: [Float]]
    /// Explanations, and where a well-known article gets this step wrong.
    public var notes: [String]

    enum CodingKeys: String, CodingKey {
        case id, title, op, inputs, shape, values, formula, latex, section, attrs, extras, notes
        case rowLabels = "row_labels", colLabels = "col_labels"
    }

    public var tensor: Tensor { Tensor(shape: shape, data: values) }
}

/// A parameter as written into a trace: name, shape and values.
public struct TraceParameter: Codable, Sendable, Equatable {
    public var name: String
    public var shape: [Int]
    public var values: [Float]
    public var tensor: Tensor { Tensor(shape: shape, data: values) }
}

/// Collects steps while a model runs. Pass `nil` instead of a tracer and nothing is recorded.
public final class Tracer {
    public private(set) var steps: [TraceStep] = []
    public private(set) var parameters: [TraceParameter] = []
    private var parameterNames = Set<String>()
    private var stepIDs = Set<String>()
    /// Current section, set by layers as they run.
    public var section = ""

    public init() {}

    /// Records a parameter the computation read (once).
    public func parameter(_ name: String, _ t: Tensor) {
        guard !parameterNames.contains(name) else { return }
        parameterNames.insert(name)
        parameters.append(TraceParameter(name: name, shape: t.shape, values: t.data))
    }

    public func record(
        _ id: String, _ title: String, op: TraceOp, inputs: [String], _ t: Tensor,
        rows: [String], cols: [String], formula: String, latex: String,
        attrs: [String: Double] = [:], extras: [String: [Float]] = [:], notes: [String] = []
    ) {
        precondition(!stepIDs.contains(id), "duplicate trace step id \(id)")
        stepIDs.insert(id)
        steps.append(
            TraceStep(
                id: id, title: title, op: op, inputs: inputs, shape: t.shape,
                rowLabels: rows, colLabels: cols, values: t.data, formula: formula, latex: latex,
                section: section, attrs: attrs, extras: extras, notes: notes))
    }

    /// Adds a note to an already recorded step.
    public func annotate(_ id: String, _ note: String) {
        if let i = steps.lastIndex(where: { $0.id == id }) { steps[i].notes.append(note) }
    }
}

/// Column labels `prefix0 … prefix(n-1)`.
public func indexLabels(_ prefix: String, _ n: Int) -> [String] { (0..<n).map { "\(prefix)\($0)" } }
