import Foundation
import TensorKit
import TransformerKit

/// A step whose recorded values (or shape, labels, extras, references) do not agree with what its
/// op computes from its inputs and attributes.
public struct ReplayMismatch: Codable, Sendable, Equatable, CustomStringConvertible {
    /// The step id (or, for a malformed parameter, the parameter's name).
    public var stepID: String
    /// The op's name as in the trace (`"parameter"` for a malformed parameter).
    public var op: String
    /// One line saying what disagrees.
    public var message: String
    /// Largest absolute difference between recorded and recomputed values, when both exist.
    public var maxDifference: Float?

    public init(stepID: String, op: String, message: String, maxDifference: Float? = nil) {
        self.stepID = stepID; self.op = op; self.message = message; self.maxDifference = maxDifference
    }

    public var description: String { "\(stepID) [\(op)]: \(message)" }
}

/// Recomputes every step of a trace from its op, its inputs (earlier steps' recorded values or
/// parameters) and its attributes with the TensorKit kernels, and lists every step whose recorded
/// values disagree (tolerance `1e-5 + 1e-5·|x|`; `-inf` must be `-inf`).
///
/// Each step is first recomputed from the *recorded* values of its inputs. If that disagrees and an
/// input was itself wrong, it is also recomputed from the corrected inputs, and accepted when it
/// matches that. So a single wrong step is reported once — whether it was tampered with afterwards
/// (its consumers match the corrected chain) or computed wrongly by the model (its consumers match
/// its recorded values) — rather than once for every step downstream of it.
///
/// A malformed trace (unknown input names, inconsistent shapes, missing attributes) yields
/// mismatches with a message, never a crash.
public func replay(_ doc: TraceDocument) -> [ReplayMismatch] {
    ReplayEngine(doc).run()
}

/// Loads a saved trace (`transformer walkthrough --format json`) and replays it.
public func replay(contentsOf url: URL) throws -> [ReplayMismatch] {
    replay(try TraceDocument.load(from: url))
}

/// Same as `replay(contentsOf:)`.
public func replayFromJSON(url: URL) throws -> [ReplayMismatch] {
    try replay(contentsOf: url)
}

// MARK: - Tolerance

/// `|a − b| ≤ 1e-5 + 1e-5·|b|`; infinities must be equal, NaN matches only NaN.
func replayClose(_ a: Float, _ b: Float) -> Bool {
    if a == b { return true }
    if a.isNaN || b.isNaN { return a.isNaN && b.isNaN }
    if !a.isFinite || !b.isFinite { return false }
    return abs(a - b) <= 1e-5 + 1e-5 * abs(b)
}

/// `nil` when the two agree; otherwise what differs, in one line.
func replayCompare(
    recorded: [Float], computed: [Float], recordedShape: [Int], computedShape: [Int],
    rowLabels: [String] = [], colLabels: [String] = [], what: String = "values"
) -> (message: String, maxDiff: Float?)? {
    guard recordedShape == computedShape else {
        return ("recorded shape \(shapeText(recordedShape)), but the op gives \(shapeText(computedShape))", nil)
    }
    guard recorded.count == computed.count else {
        return ("\(recorded.count) recorded \(what), the op gives \(computed.count)", nil)
    }
    var bad = 0, first = -1
    var worst: Float = 0
    for i in recorded.indices where !replayClose(recorded[i], computed[i]) {
        bad += 1
        if first < 0 { first = i }
        let d = abs(recorded[i] - computed[i])
        worst = max(worst, d.isNaN ? .infinity : d)
    }
    if bad == 0 { return nil }
    let cols = max(computedShape.last ?? 1, 1)
    let r = first / cols, c = first % cols
    let rl = rowLabels.indices.contains(r) ? " \(rowLabels[r])" : ""
    let cl = colLabels.indices.contains(c) ? " \(colLabels[c])" : ""
    let cell = computedShape.count >= 2 ? "row \(r + 1)\(rl), column \(c + 1)\(cl)" : "entry \(first + 1)"
    let msg =
        """
        \(bad) of \(recorded.count) \(what) differ from the recomputation; first at \(cell): recorded \
        \(describeNumber(recorded[first])), recomputed \(describeNumber(computed[first])) (largest difference \
        \(describeNumber(worst)))
        """
    return (msg, worst)
}

func shapeText(_ s: [Int]) -> String { s.isEmpty ? "[]" : s.map(String.init).joined(separator: "×") }

func describeNumber(_ v: Float) -> String {
    if v.isNaN { return "NaN" }
    if v.isInfinite { return v < 0 ? "-inf" : "inf" }
    if v == v.rounded() && abs(v) < 1e7 { return String(Int(v)) }
    return String(format: "%.6g", Double(v))
}

// MARK: - Recomputing one step

/// Why a step cannot be recomputed (bad reference, wrong shapes, missing attribute…).
struct ReplayIssue: Error, CustomStringConvertible {
    var message: String
    init(_ m: String) { message = m }
    var description: String { message }
}

/// What an op gives: the values and, for some ops, per-row extras.
struct ReplayResult {
    var tensor: Tensor
    var extras: [String: [Float]] = [:]
}

/// A tensor from a shape and values, or an issue when they do not fit (a malformed JSON trace).
func checkedTensor(shape: [Int], values: [Float], what: String) throws -> Tensor {
    guard shape.allSatisfy({ $0 >= 0 }),
        shape.reduce(
            Optional(1),
            { n, d in
                n.flatMap { n in
                    let (p, o) = n.multipliedReportingOverflow(by: d); return o ? nil : p
                }
            }) == values.count
    else {
        throw ReplayIssue("\(what) has shape \(shapeText(shape)) but \(values.count) values")
    }
    return Tensor(shape: shape, data: values)
}

extension TraceDocument {
    /// A step's (earlier than `before`, when given) or a parameter's recorded values, validated.
    func replayTensor(_ ref: String, before index: Int? = nil) throws -> Tensor {
        if let i = steps.firstIndex(where: { $0.id == ref }) {
            if let index, i >= index {
                throw ReplayIssue(
                    i == index
                        ? "input \"\(ref)\" is the step itself"
                        : "input \"\(ref)\" is a later step (number \(i + 1)); inputs must come earlier")
            }
            let s = steps[i]
            return try checkedTensor(shape: s.shape, values: s.values, what: "input step \(ref)")
        }
        if let p = parameter(ref) {
            return try checkedTensor(shape: p.shape, values: p.values, what: "parameter \(ref)")
        }
        throw ReplayIssue("unknown input \"\(ref)\": no earlier step has that id and no parameter has that name")
    }
}

private func attr(_ step: TraceStep, _ name: String, default def: Double? = nil) throws -> Double {
    if let v = step.attrs[name] {
        guard v.isFinite else { throw ReplayIssue("attr \(name) is not a finite number") }
        return v
    }
    if let def { return def }
    throw ReplayIssue("missing attr \(name)")
}

private func intAttr(_ step: TraceStep, _ name: String, default def: Int? = nil) throws -> Int {
    let v = try attr(step, name, default: def.map(Double.init))
    guard v == v.rounded(), abs(v) < 1e9 else { throw ReplayIssue("attr \(name) = \(v) is not a whole number") }
    return Int(v)
}

private func flag(_ step: TraceStep, _ name: String) throws -> Bool {
    let v = try intAttr(step, name, default: 0)
    guard v == 0 || v == 1 else { throw ReplayIssue("attr \(name) must be 0 or 1 (got \(v))") }
    return v == 1
}

/// Whole, non-negative ids from a column (or any tensor), each below `limit` when given.
private func wholeIDs(_ t: Tensor, what: String, below limit: Int? = nil) throws -> [Int] {
    try t.data.enumerated().map { i, v in
        guard v.isFinite, v == v.rounded(), v >= 0 else {
            throw ReplayIssue("\(what) entry \(i + 1) is \(describeNumber(v)), not a whole non-negative id")
        }
        let id = Int(v)
        if let limit, id >= limit { throw ReplayIssue("\(what) entry \(i + 1) is \(id), outside a table of \(limit) rows") }
        return id
    }
}

private func expectInputs(_ step: TraceStep, _ n: ClosedRange<Int>) throws {
    guard n.contains(step.inputs.count) else {
        let want = n.lowerBound == n.upperBound ? "\(n.lowerBound)" : "\(n.lowerBound) to \(n.upperBound)"
        throw ReplayIssue("\(step.op.rawValue) takes \(want) inputs, the step lists \(step.inputs.count)")
    }
}

/// Recomputes `step` from already resolved input tensors (in `step.inputs` order).
/// Leaves (`input`, `mask_matrix`) are checked for their properties and return their own values.
func recompute(_ step: TraceStep, inputs x: [Tensor], doc: TraceDocument) throws -> ReplayResult {
    let own = { try checkedTensor(shape: step.shape, values: step.values, what: "the step") }
    switch step.op {
    case .input:
        try expectInputs(step, 0...0)
        let t = try own()
        _ = try wholeIDs(t, what: "id")
        return ReplayResult(tensor: t)
    case .maskMatrix:
        try expectInputs(step, 0...0)
        let t = try own()
        if let i = t.data.firstIndex(where: { $0 != 0 && $0 != 1 }) {
            throw ReplayIssue("mask entry \(i + 1) is \(describeNumber(t.data[i])); a mask holds only 0 and 1")
        }
        let causal = step.attrs["causal"] != nil ? try flag(step, "causal") : try flag(step, "kind")
        if causal {
            guard t.shape.count == 2, t.rows == t.cols else {
                throw ReplayIssue("a causal mask must be square (shape \(shapeText(t.shape)))")
            }
            for r in 0..<t.rows {
                for c in 0..<t.cols where t[r, c] != (c <= r ? 1 : 0) {
                    throw ReplayIssue(
                        """
                        a causal mask has ones on and below the diagonal and zeros above it; row \(r + 1), column \(c + 1) is \
                        \(describeNumber(t[r, c]))
                        """
                    )
                }
            }
            return ReplayResult(tensor: t)
        }
        return ReplayResult(tensor: t)
    case .lookup:
        try expectInputs(step, 2...2)
        let table = x[0]
        let ids = try wholeIDs(x[1], what: "id", below: table.rows)
        return ReplayResult(tensor: embeddingLookup(table.asMatrix, ids: ids))
    case .positionalEncoding:
        try expectInputs(step, 0...0)
        let d = try intAttr(step, "d_model"), start = try intAttr(step, "start", default: 0)
        let base = try attr(step, "base", default: 10000)
        guard d >= 1 else { throw ReplayIssue("attr d_model must be at least 1 (got \(d))") }
        guard step.shape.count == 2 else {
            throw ReplayIssue("positional encoding must be a matrix [positions, d_model] (shape \(shapeText(step.shape)))")
        }
        return ReplayResult(tensor: sinusoidalPositionalEncoding(count: step.shape[0], dModel: d, start: start, base: base))
    case .add:
        try expectInputs(step, 2...2)
        guard x[0].shape == x[1].shape else {
            throw ReplayIssue("add: input shapes \(shapeText(x[0].shape)) and \(shapeText(x[1].shape)) differ")
        }
        return ReplayResult(tensor: TensorKit.add(x[0], x[1]))
    case .biasAdd:
        try expectInputs(step, 2...2)
        guard x[1].count == x[0].cols else { throw ReplayIssue("bias_add: the bias has \(x[1].count) values for \(x[0].cols) columns") }
        return ReplayResult(tensor: addBias(x[0], x[1]))
    case .matmul:
        try expectInputs(step, 2...2)
        let ta = try flag(step, "transpose_a"), tb = try flag(step, "transpose_b")
        let a = x[0].asMatrix, b = x[1].asMatrix
        let k1 = ta ? a.rows : a.cols, k2 = tb ? b.cols : b.rows
        guard k1 == k2 else {
            throw ReplayIssue("matmul: inner dimensions differ (\(ta ? "aᵀ" : "a") has \(k1) columns, \(tb ? "bᵀ" : "b") has \(k2) rows)")
        }
        return ReplayResult(tensor: matmul(a, b, transposeA: ta, transposeB: tb))
    case .linear:
        try expectInputs(step, 2...3)
        let xm = x[0].asMatrix, w = x[1].asMatrix
        guard xm.cols == w.rows else { throw ReplayIssue("linear: x has \(xm.cols) columns, W has \(w.rows) rows") }
        if x.count == 3 {
            guard x[2].count == w.cols else { throw ReplayIssue("linear: the bias has \(x[2].count) values for \(w.cols) outputs") }
            return ReplayResult(tensor: linear(xm, w, x[2]))
        }
        return ReplayResult(tensor: linear(xm, w))
    case .transpose:
        try expectInputs(step, 1...1)
        return ReplayResult(tensor: transpose(x[0].asMatrix))
    case .scale:
        try expectInputs(step, 1...1)
        let f = try attr(step, "factor")
        return ReplayResult(tensor: scale(x[0], Float(f)))
    case .mask:
        try expectInputs(step, 2...2)
        guard x[0].shape == x[1].shape else {
            throw ReplayIssue("mask: the mask \(shapeText(x[1].shape)) does not fit the scores \(shapeText(x[0].shape))")
        }
        return ReplayResult(tensor: applyMask(x[0], x[1]))
    case .softmax:
        try expectInputs(step, 1...1)
        return ReplayResult(tensor: softmaxRows(x[0].asMatrix))
    case .splitHeads:
        try expectInputs(step, 1...1)
        let head = try intAttr(step, "head"), width = try intAttr(step, "width")
        let m = x[0].asMatrix
        guard head >= 0, width >= 1, (head + 1) * width <= m.cols else {
            throw ReplayIssue("split_heads: head \(head) of width \(width) does not fit \(m.cols) columns")
        }
        return ReplayResult(tensor: sliceColumns(m, start: head * width, width: width))
    case .concat:
        guard !step.inputs.isEmpty else { throw ReplayIssue("concat needs at least one input") }
        let parts = x.map(\.asMatrix)
        guard Set(parts.map(\.rows)).count == 1 else { throw ReplayIssue("concat: inputs have different row counts \(parts.map(\.rows))") }
        return ReplayResult(tensor: concatColumns(parts))
    case .layerNorm:
        try expectInputs(step, 1...3)
        let eps = try attr(step, "eps")
        let m = x[0].asMatrix
        let gamma = x.count > 1 ? x[1] : nil, beta = x.count > 2 ? x[2] : nil
        for (name, v) in [("gamma", gamma), ("beta", beta)] {
            if let v, v.count != m.cols { throw ReplayIssue("layer_norm: \(name) has \(v.count) values for \(m.cols) columns") }
        }
        let r = layerNorm(m, gamma: gamma, beta: beta, eps: Float(eps))
        return ReplayResult(tensor: r.output, extras: ["mean": r.mean, "std": r.std])
    case .relu:
        try expectInputs(step, 1...1)
        return ReplayResult(tensor: relu(x[0]))
    case .gelu:
        try expectInputs(step, 1...1)
        return ReplayResult(tensor: gelu(x[0], form: try flag(step, "tanh") ? .tanh : .erf))
    case .selectRows:
        try expectInputs(step, 1...1)
        let start = try intAttr(step, "start"), count = try intAttr(step, "count")
        let m = x[0].asMatrix
        guard start >= 0, count >= 1, start + count <= m.rows else {
            throw ReplayIssue("select_rows: rows \(start) ..< \(start + count) do not fit \(m.rows) rows")
        }
        return ReplayResult(tensor: Tensor(shape: [count, m.cols], data: Array(m.data[(start * m.cols)..<((start + count) * m.cols)])))
    case .argmax:
        try expectInputs(step, 1...1)
        let p = x[0].asMatrix
        guard p.cols >= 1 else { throw ReplayIssue("argmax of rows with no columns") }
        var ids: [Float] = []
        for r in 0..<p.rows {
            let row = p.row(r)
            var best = 0
            for j in row.indices where row[j] > row[best] { best = j }
            ids.append(Float(best))
        }
        return ReplayResult(tensor: Tensor(shape: [ids.count, 1], data: ids))
    case .crossEntropy:
        try expectInputs(step, 2...2)
        let logits = x[0].asMatrix
        let targets = try wholeIDs(x[1], what: "target", below: logits.cols)
        guard targets.count == logits.rows else {
            throw ReplayIssue("cross_entropy: \(targets.count) targets for \(logits.rows) rows of logits")
        }
        let logp = logSoftmaxRows(logits)
        let perRow = (0..<logits.rows).map { -logp[$0, targets[$0]] }
        let mean = perRow.reduce(0, +) / Float(max(perRow.count, 1))
        return ReplayResult(tensor: Tensor(shape: [1, 1], data: [mean]), extras: ["per_row": perRow])
    case .softmaxCrossEntropyGrad:
        try expectInputs(step, 2...2)
        let logits = x[0].asMatrix
        let targets = try wholeIDs(x[1], what: "target", below: logits.cols)
        guard targets.count == logits.rows else {
            throw ReplayIssue("softmax_cross_entropy_grad: \(targets.count) targets for \(logits.rows) rows")
        }
        return ReplayResult(tensor: crossEntropyGradient(logits: logits, targets: targets))
    case .gradient:
        try expectInputs(step, 2...2)
        guard let name = step.inputs.last, doc.parameter(name) != nil else {
            throw ReplayIssue("gradient: the second input must be a parameter")
        }
        let grads = try TrainingStepTrace.gradients(of: doc)
        guard let g = grads[name] else { throw ReplayIssue("gradient: the model has no parameter \(name)") }
        return ReplayResult(tensor: g)
    case .sgdUpdate:
        try expectInputs(step, 2...2)
        guard x[0].shape == x[1].shape else {
            throw ReplayIssue("sgd_update: the weight is \(shapeText(x[0].shape)) but its gradient is \(shapeText(x[1].shape))")
        }
        let lr = Float(try attr(step, "lr"))
        return ReplayResult(tensor: TensorKit.add(x[0], TensorKit.scale(x[1], -lr)))
    case .round:
        try expectInputs(step, 1...1)
        let d = try intAttr(step, "decimals")
        guard (0...8).contains(d) else { throw ReplayIssue("round: decimals must be 0 to 8 (got \(d))") }
        return ReplayResult(tensor: roundValues(x[0], decimals: d))
    }
}

extension TraceDocument {
    /// Recomputes the step at `index` from the recorded values of its inputs (a local check).
    func recomputeFromRecorded(stepAt index: Int) throws -> ReplayResult {
        let step = steps[index]
        let inputs = try step.inputs.map { try replayTensor($0, before: index) }
        return try recompute(step, inputs: inputs, doc: self)
    }

    /// Where the step's recorded values disagree with its recomputation from its recorded inputs,
    /// or `nil` when they agree.
    func localReplayProblem(_ id: String) -> String? {
        guard let i = steps.firstIndex(where: { $0.id == id }) else { return "no step \(id)" }
        let step = steps[i]
        do {
            let r = try recomputeFromRecorded(stepAt: i)
            return replayCompare(
                recorded: step.values, computed: r.tensor.data, recordedShape: step.shape, computedShape: r.tensor.shape,
                rowLabels: step.rowLabels, colLabels: step.colLabels)?.message
        } catch {
            return "\(error)"
        }
    }
}

// MARK: - The whole trace

private struct ReplayEngine {
    let doc: TraceDocument

    init(_ doc: TraceDocument) { self.doc = doc }

    func run() -> [ReplayMismatch] {
        var out: [ReplayMismatch] = []
        var params: [String: Tensor] = [:]
        var seenParams = Set<String>()
        for p in doc.parameters {
            if !seenParams.insert(p.name).inserted {
                out.append(ReplayMismatch(stepID: p.name, op: "parameter", message: "the parameter is listed twice"))
                continue
            }
            do { params[p.name] = try checkedTensor(shape: p.shape, values: p.values, what: "the parameter") } catch {
                out.append(ReplayMismatch(stepID: p.name, op: "parameter", message: "\(error)"))
            }
        }
        // Recorded values (usable ones) and expected values (the corrected chain), by step id.
        var recorded: [String: Tensor] = [:]
        var expected: [String: Tensor] = [:]
        var diverged = Set<String>()
        var seenSteps = Set<String>()
        for step in doc.steps {
            let op = step.op.rawValue
            func report(_ message: String, _ diff: Float? = nil) {
                out.append(ReplayMismatch(stepID: step.id, op: op, message: message, maxDifference: diff))
            }
            if !seenSteps.insert(step.id).inserted {
                report("duplicate step id (an earlier step has the same id)")
                continue
            }
            // Resolve references first: an unknown name or a forward reference is the step's fault.
            var refProblems: [String] = []
            for ref in step.inputs where recorded[ref] == nil && expected[ref] == nil && params[ref] == nil {
                if doc.steps.contains(where: { $0.id == ref }) {
                    refProblems.append(
                        seenSteps.contains(ref) && ref != step.id
                            ? "input \"\(ref)\" cannot be used (see that step's mismatch)"
                            : "input \"\(ref)\" is \(ref == step.id ? "the step itself" : "a later step"); inputs must come earlier")
                } else if doc.parameters.contains(where: { $0.name == ref }) {
                    refProblems.append("input \"\(ref)\" is a malformed parameter")
                } else {
                    refProblems.append("unknown input \"\(ref)\": no earlier step has that id and no parameter has that name")
                }
            }
            var own: Tensor? = nil
            do { own = try checkedTensor(shape: step.shape, values: step.values, what: "the step") } catch { report("\(error)") }
            if let own, step.shape.count == 2 {
                if !step.rowLabels.isEmpty && step.rowLabels.count != own.rows {
                    report("\(step.rowLabels.count) row labels for \(own.rows) rows")
                }
                if !step.colLabels.isEmpty && step.colLabels.count != own.cols {
                    report("\(step.colLabels.count) column labels for \(own.cols) columns")
                }
            }
            if !refProblems.isEmpty {
                report(refProblems.joined(separator: "; "))
                if let own { recorded[step.id] = own; expected[step.id] = own }
                continue
            }
            let recordedInputs = step.inputs.map { recorded[$0] ?? expected[$0] ?? params[$0]! }
            let chainNeeded = step.inputs.contains { diverged.contains($0) }
            let local = Result { try recompute(step, inputs: recordedInputs, doc: doc) }
            let chain: Result<ReplayResult, Error>? =
                chainNeeded
                ? Result { try recompute(step, inputs: step.inputs.map { expected[$0] ?? params[$0]! }, doc: doc) } : nil

            func problem(_ r: Result<ReplayResult, Error>) -> (String, Float?)? {
                switch r {
                case .failure(let e): return ("\(e)", nil)
                case .success(let v):
                    guard let own else { return ("the recorded values cannot be read", nil) }
                    if let p = replayCompare(
                        recorded: own.data, computed: v.tensor.data, recordedShape: own.shape, computedShape: v.tensor.shape,
                        rowLabels: step.rowLabels, colLabels: step.colLabels)
                    {
                        return p
                    }
                    for key in v.extras.keys.sorted() {
                        guard let rec = step.extras[key] else { return ("missing extras \"\(key)\"", nil) }
                        if let p = replayCompare(
                            recorded: rec, computed: v.extras[key]!, recordedShape: [rec.count], computedShape: [v.extras[key]!.count],
                            what: "extras \"\(key)\" values")
                        {
                            return p
                        }
                    }
                    return nil
                }
            }
            let localProblem = problem(local)
            let chainProblem = chain.flatMap(problem)
            if let localProblem, chain == nil || chainProblem != nil {
                report(localProblem.0, localProblem.1)
            }
            let exp = (try? chain?.get())?.tensor ?? (try? local.get())?.tensor ?? own
            if let own { recorded[step.id] = own }
            if let exp { expected[step.id] = exp }
            if let own, let exp,
                replayCompare(recorded: own.data, computed: exp.data, recordedShape: own.shape, computedShape: exp.shape) == nil
            {
                // in agreement: consumers need no second computation
            } else {
                diverged.insert(step.id)
            }
        }
        return out
    }
}
