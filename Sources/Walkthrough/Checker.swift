import Foundation
import TensorKit
import TransformerKit

/// The result of comparing a hand-computed matrix with one step of a trace.
public struct CheckReport: Codable, Sendable {
    /// A value that is wrong, with the step's labels for where it is.
    public struct WrongCell: Codable, Sendable, Equatable {
        public var row: Int
        public var col: Int
        public var rowLabel: String
        public var colLabel: String
        public var user: Float
        /// As the user wrote it.
        public var userText: String
        public var correct: Float
        public var tolerance: Float
    }

    /// A likely cause: the user's matrix equals an alternative recomputed from the step's inputs
    /// (a known mistake), or a property every correct matrix has fails.
    public struct Diagnosis: Codable, Sendable, Equatable {
        /// Stable name, e.g. `row_sums`, `missing_scale`, `transposed`.
        public var code: String
        public var message: String
        /// The alternative fits most values but not all (another slip on top of this mistake).
        public var partial: Bool = false
    }

    public var stepID: String
    public var stepTitle: String
    public var op: String
    public var formula: String
    public var inputs: [String]
    public var expectedShape: [Int]
    public var userShape: [Int]
    /// The user's matrix had the step's shape transposed, so it was compared with the transpose.
    public var comparedWithTranspose: Bool
    /// Values compared (0 when the shapes do not fit).
    public var cellCount: Int
    public var wrongCells: [WrongCell]
    public var diagnoses: [Diagnosis]
    /// Each row's sum, for a softmax step.
    public var rowSums: [Float]?
    public var notes: [String]
    /// How the tolerance was chosen.
    public var tolerance: String
    public var isCorrect: Bool

    enum CodingKeys: String, CodingKey {
        case stepID = "step", stepTitle = "title", op, formula, inputs, expectedShape = "expected_shape", userShape = "user_shape"
        case comparedWithTranspose = "compared_with_transpose", cellCount = "cell_count", wrongCells = "wrong_cells"
        case diagnoses, rowSums = "row_sums", notes, tolerance, isCorrect = "correct"
    }

    public func jsonData(pretty: Bool = true) throws -> Data { try TraceDocument.encoder(pretty: pretty).encode(self) }

    /// The report for a terminal. `maxCells` limits the listed wrong values (all are in the JSON).
    public func renderText(maxCells: Int = 40, decimals: Int = 4) -> String {
        var out: [String] = []
        out.append("Checking \(stepID) — \(stepTitle)")
        out.append(
            "  \(formula) · shape \(shapeText(expectedShape)) · op \(op)\(inputs.isEmpty ? "" : " · inputs: " + inputs.joined(separator: ", "))"
        )
        out.append("  tolerance: \(tolerance)")
        out.append("")
        if isCorrect {
            out.append("✓ Correct: all \(cellCount) values match.")
        } else if cellCount == 0 {
            out.append("✗ Your matrix is \(shapeText(userShape)); the step is \(shapeText(expectedShape)).")
        } else {
            let what = comparedWithTranspose ? " (compared with the step transposed, to fit your \(shapeText(userShape)))" : ""
            if wrongCells.isEmpty {
                out.append("✗ Every value fits the transpose, but the step is \(shapeText(expectedShape))\(what).")
            } else {
                out.append("✗ \(wrongCells.count) of \(cellCount) values are wrong\(what).")
                let shown = wrongCells.prefix(maxCells)
                let d = max(decimals, shown.map { decimalsWritten($0.userText) }.max() ?? 0)
                let rows: [[String]] =
                    [["row", "column", "yours", "correct"]]
                    + shown.map {
                        [$0.rowLabel, $0.colLabel, $0.userText, formatValue($0.correct, decimals: d)]
                    }
                let widths = (0..<4).map { c in rows.map { displayWidth($0[c]) }.max() ?? 0 }
                for r in rows {
                    out.append(
                        "  " + padRight(r[0], widths[0]) + "  " + padRight(r[1], widths[1]) + "  " + padLeft(r[2], widths[2]) + "  "
                            + padLeft(r[3], widths[3]))
                }
                if wrongCells.count > shown.count {
                    out.append("  … and \(wrongCells.count - shown.count) more (all are listed with --format json)")
                }
            }
        }
        if !diagnoses.isEmpty {
            out.append("")
            out.append("Diagnosis:")
            for d in diagnoses { out.append("  • " + d.message) }
        } else if !isCorrect {
            out.append("")
            out.append("No known mistake explains the differences; recompute the cells listed above.")
        }
        if !notes.isEmpty {
            out.append("")
            for n in notes { out.append("  note: " + n) }
        }
        return out.joined(separator: "\n") + "\n"
    }
}

private func decimalsWritten(_ literal: String) -> Int {
    guard let dot = literal.firstIndex(of: ".") else { return 0 }
    return literal[literal.index(after: dot)...].prefix { $0.isNumber }.count
}

/// Compares a hand-computed matrix with a step of a trace and explains the differences.
///
/// Each value is checked within `tolerance` when given; otherwise within half a unit in the last
/// decimal the user wrote, plus 1e-6 (a value written without decimals in a matrix whose other values
/// have them takes the most common number of decimals, so a `0` among 4-decimal values means 0.0000).
/// Values given at full precision (no decimals known) use `1e-5 + 1e-5·|x|`.
public func check(_ user: ParsedMatrix, against step: TraceStep, in doc: TraceDocument, tolerance: Float?) -> CheckReport {
    Checker(user: user, step: step, doc: doc, tolerance: tolerance).run()
}

private struct Checker {
    let user: ParsedMatrix
    let step: TraceStep
    let doc: TraceDocument
    let tolerance: Float?
    /// Per cell of the user's matrix.
    let tol: [Float]

    init(user: ParsedMatrix, step: TraceStep, doc: TraceDocument, tolerance: Float?) {
        self.user = user; self.step = step; self.doc = doc; self.tolerance = tolerance
        if let tolerance {
            tol = Array(repeating: tolerance, count: user.values.count)
        } else {
            let written = user.decimals.compactMap { $0 }.filter { $0 > 0 }
            var counts: [Int: Int] = [:]
            for d in written { counts[d, default: 0] += 1 }
            let common = counts.max { $0.value != $1.value ? $0.value < $1.value : $0.key < $1.key }?.key
            tol = zip(user.decimals, user.values).map { d, v in
                guard let d else { return 1e-5 + 1e-5 * abs(v.isFinite ? v : 0) }
                let places = d == 0 ? (common ?? 0) : d
                return Float(0.5 * pow(10, -Double(places))) + 1e-6
            }
        }
    }

    var toleranceText: String {
        if let tolerance { return "±\(describeNumber(tolerance)) per value" }
        if user.decimals.allSatisfy({ $0 == nil }) { return "1e-5 + 1e-5·|x| (full precision)" }
        return "half a unit in the last decimal you wrote, + 1e-6"
    }

    /// User value at flat index `i` against `target` with that cell's tolerance.
    func fits(_ i: Int, _ target: Float) -> Bool {
        let u = user.values[i]
        if u == target { return true }
        if u.isNaN || target.isNaN || !u.isFinite || !target.isFinite { return false }
        return abs(u - target) <= tol[i] + 4 * Float.ulpOfOne * abs(target)
    }

    /// How many of the user's values fit `t` (nil when the shapes differ).
    func matchCount(_ t: Tensor) -> Int? {
        guard t.shape == user.shape, t.count == user.values.count else { return nil }
        return t.data.indices.reduce(0) { $0 + (fits($1, t.data[$1]) ? 1 : 0) }
    }

    func tensor(_ ref: String) -> Tensor? { try? doc.replayTensor(ref) }
    func stepNamed(_ ref: String) -> TraceStep? { doc.step(ref) }

    func run() -> CheckReport {
        var report = CheckReport(
            stepID: step.id, stepTitle: step.title, op: step.op.rawValue, formula: step.formula, inputs: step.inputs,
            expectedShape: step.shape, userShape: user.shape, comparedWithTranspose: false, cellCount: 0, wrongCells: [],
            diagnoses: [], rowSums: nil, notes: [], tolerance: toleranceText, isCorrect: false)
        guard let correct = try? checkedTensor(shape: step.shape, values: step.values, what: "step \(step.id)").asMatrix else {
            report.notes.append("the trace's step \(step.id) is malformed (its shape does not fit its values); nothing to compare with")
            return report
        }
        if let problem = doc.localReplayProblem(step.id) {
            report.notes.append(
                "the trace's own step \(step.id) does not match its recomputation (\(problem)); the values called correct here may be wrong"
            )
        }
        let rl = step.rowLabels.count == correct.rows ? step.rowLabels : (0..<correct.rows).map { "\($0 + 1)" }
        let cl = step.colLabels.count == correct.cols ? step.colLabels : (0..<correct.cols).map { "\($0 + 1)" }
        var target = correct
        var rowLabels = rl, colLabels = cl
        let square = correct.rows == correct.cols
        if user.shape == correct.shape {
            // compared as is
        } else if user.rows == correct.cols && user.cols == correct.rows {
            target = transpose(correct)
            rowLabels = cl; colLabels = rl
            report.comparedWithTranspose = true
        } else {
            report.diagnoses.append(.init(code: "shape", message: shapeMessage(correct)))
            report.diagnoses += otherStepMatches(excluding: [])
            return report
        }
        report.cellCount = target.count
        for i in target.data.indices where !fits(i, target.data[i]) {
            let r = i / target.cols, c = i % target.cols
            report.wrongCells.append(
                .init(
                    row: r + 1, col: c + 1, rowLabel: rowLabels[r], colLabel: colLabels[c], user: user.values[i],
                    userText: user.literals.indices.contains(i) ? user.literals[i] : describeNumber(user.values[i]),
                    correct: target.data[i], tolerance: tol[i]))
        }
        report.isCorrect = !report.comparedWithTranspose && report.wrongCells.isEmpty
        if step.op == .softmax && !report.comparedWithTranspose {
            let (sums, diagnosis) = rowSumCheck(correct, labels: rl)
            report.rowSums = sums
            if let diagnosis { report.diagnoses.append(diagnosis) }
        }
        if report.comparedWithTranspose {
            let transposedMessage =
                step.op == .positionalEncoding
                ? """
                Transposed (rows should be positions, columns dimensions): your matrix is \(shapeText(user.shape)), the step is \
                \(shapeText(step.shape)).
                """
                : """
                Transposed: your matrix is \(shapeText(user.shape)), the step is \(shapeText(step.shape)) (rows \
                \(describeLabels(rl)), columns \(describeLabels(cl))).
                """
            report.diagnoses.append(
                .init(
                    code: "transposed",
                    message: transposedMessage
                        + (report.wrongCells.isEmpty
                            ? " Its values are right; turn it around."
                            : " Compared with the transpose, \(report.wrongCells.count) values still differ."),
                    partial: !report.wrongCells.isEmpty))
        }
        if report.isCorrect {
            report.notes += labelNotes()
            return report
        }
        report.diagnoses += propertyDiagnoses(correct)
        if !report.comparedWithTranspose {
            var specific: [CheckReport.Diagnosis] = []
            let correctMatches = matchCount(correct) ?? 0
            for alt in alternatives(correct) {
                guard let n = matchCount(alt.tensor) else { continue }
                // an alternative equal to the right answer explains nothing
                if alt.tensor.data.indices.allSatisfy({ fits($0, correct.data[$0]) || alt.tensor.data[$0] == correct.data[$0] }) {
                    continue
                }
                if n == user.values.count {
                    specific.append(.init(code: alt.code, message: alt.message))
                } else if Double(n) >= 0.75 * Double(user.values.count), n > correctMatches {
                    specific.append(
                        .init(
                            code: alt.code,
                            message: alt.message + " (\(n) of \(user.values.count) values fit this; the rest differ as well)", partial: true
                        ))
                }
            }
            if square, specific.isEmpty, let n = matchCount(transpose(correct)), n == user.values.count,
                (matchCount(correct) ?? 0) < user.values.count
            {
                specific.append(
                    .init(
                        code: "transposed",
                        message: step.op == .positionalEncoding
                            ? "Transposed (rows should be positions, columns dimensions)."
                            : "Transposed: your rows are the step's columns (rows should be \(describeLabels(rl)))."))
            }
            if square, specific.isEmpty, let n = matchCount(transpose(correct)), n < user.values.count,
                n >= correctMatches + max(2, user.values.count / 6)
            {
                specific.append(
                    .init(
                        code: "transposed",
                        message:
                            """
                            Possibly transposed: \(n) of \(user.values.count) values fit the step turned around, only \
                            \(correctMatches) fit it as is
                            """
                                + (step.op == .positionalEncoding
                                    ? " (rows should be positions, columns dimensions)." : " (rows should be \(describeLabels(rl)))."),
                        partial: true))
            }
            report.diagnoses += specific
            if !specific.contains(where: { !$0.partial }) {
                report.diagnoses += otherStepMatches(excluding: [step.id])
            }
        }
        report.notes += labelNotes()
        return report
    }

    // MARK: Shapes and labels

    func describeLabels(_ l: [String]) -> String {
        l.count <= 8 ? l.joined(separator: " ") : l.prefix(6).joined(separator: " ") + " … " + (l.last ?? "")
    }

    func shapeMessage(_ correct: Tensor) -> String {
        var m = "Shape: your matrix is \(shapeText(user.shape)); step \(step.id) is \(shapeText(step.shape))"
        if step.rowLabels.count == correct.rows && step.colLabels.count == correct.cols {
            m += " (rows \(describeLabels(step.rowLabels)); columns \(describeLabels(step.colLabels)))"
        }
        m += "."
        if user.matrixCount > 1 {
            m += " The text holds \(user.matrixCount) matrices and this is number \(user.index + 1); pick another with --index."
        }
        return m
    }

    func labelNotes() -> [String] {
        var out: [String] = []
        let rl = orderNote(user.rowLabels, expected: step.rowLabels, what: "rows")
        let cl = orderNote(user.colLabels, expected: step.colLabels, what: "columns")
        if let rl { out.append(rl) }
        if let cl { out.append(cl) }
        return out
    }

    func orderNote(_ written: [String]?, expected: [String], what: String) -> String? {
        guard let written, written.count == expected.count, written != expected else { return nil }
        if Set(written) == Set(expected) && Set(written).count == written.count {
            return
                "your \(what) are labelled in a different order (\(written.joined(separator: " "))) from the step (\(expected.joined(separator: " "))); values were compared by position"
        }
        return nil
    }

    // MARK: Properties

    func rowSumCheck(_ correct: Tensor, labels: [String]) -> ([Float], CheckReport.Diagnosis?) {
        var sums: [Float] = []
        var bad: [String] = []
        for r in 0..<user.rows {
            var s: Double = 0, slack: Double = 1e-6
            for c in 0..<user.cols {
                let i = r * user.cols + c
                if user.values[i].isFinite { s += Double(user.values[i]) }
                slack += Double(tol[i])
            }
            sums.append(Float(s))
            let want = correct.row(r).reduce(0.0) { $0 + Double($1) }
            if abs(s - want) > slack {
                bad.append("row \(labels[r]) sums to \(String(format: "%.4f", s))")
            }
        }
        guard !bad.isEmpty else { return (sums, nil) }
        return (
            sums,
            .init(
                code: "row_sums",
                message:
                    "Rows do not sum to 1: \(bad.joined(separator: ", ")). Every row of a softmax sums to 1 (each value is e^x divided by the sum of its row's e^x)."
            )
        )
    }

    func propertyDiagnoses(_ correct: Tensor) -> [CheckReport.Diagnosis] {
        guard user.shape == correct.shape else { return [] }
        var out: [CheckReport.Diagnosis] = []
        let rl = step.rowLabels.count == correct.rows ? step.rowLabels : (0..<correct.rows).map { "\($0 + 1)" }
        let cl = step.colLabels.count == correct.cols ? step.colLabels : (0..<correct.cols).map { "\($0 + 1)" }
        func place(_ i: Int) -> String { "row \(rl[i / correct.cols]), column \(cl[i % correct.cols])" }
        switch step.op {
        case .relu:
            if let i = user.values.indices.first(where: { user.values[$0] < -tol[$0] }) {
                out.append(
                    .init(
                        code: "relu_negative",
                        message:
                            """
                            ReLU outputs cannot be negative: max(0, x) turns every negative value into 0, but \(place(i)) is \
                            \(user.literals[i]).
                            """
                    ))
            }
        case .mask:
            let zeroed = correct.data.indices.filter { correct.data[$0] == -.infinity && user.values[$0] != -.infinity }
            if let i = zeroed.first {
                out.append(
                    .init(
                        code: "mask_not_infinite",
                        message:
                            """
                            Masked scores are −∞ (write -inf or -\\infty), not \(user.literals[i]) (\(place(i))): exp(−∞) = 0 \
                            gives them weight exactly 0 after the softmax.
                            """
                    ))
            }
        case .maskMatrix:
            if let i = user.values.indices.first(where: { user.values[$0] != 0 && user.values[$0] != 1 }) {
                out.append(.init(code: "mask_values", message: "A mask holds only 0 and 1; \(place(i)) is \(user.literals[i])."))
            }
        default: break
        }
        return out
    }

    // MARK: Alternatives

    struct Alternative { var code: String; var message: String; var tensor: Tensor }

    func alternatives(_ correct: Tensor) -> [Alternative] {
        var out: [Alternative] = []
        let dModel = doc.config.dModel
        switch step.op {
        case .matmul where step.attrs["transpose_b"] == 1 && step.inputs.count == 2:
            guard let q = tensor(step.inputs[0])?.asMatrix, let k = tensor(step.inputs[1])?.asMatrix else { break }
            if q.cols == k.rows {
                out.append(
                    .init(
                        code: "qk_no_transpose",
                        message:
                            """
                            QK instead of QKᵀ: you multiplied Q by K without transposing K. The scores are Q·Kᵀ: entry (i, j) is \
                            query i · key j.
                            """,
                        tensor: matmul(q, k)))
            }
            if k.cols == q.cols {
                out.append(
                    .init(
                        code: "transposed", message: "Transposed: you computed K·Qᵀ. Rows should be queries and columns keys (Q·Kᵀ).",
                        tensor: matmul(k, q, transposeB: true)))
            }
            if q.shape != k.shape || q != k {
                if q.rows == k.rows {
                    out.append(
                        .init(
                            code: "q_q", message: "You used Q in place of K (Q·Qᵀ): keys come from X·W_K, not from the queries.",
                            tensor: matmul(q, q, transposeB: true)))
                }
            }
        case .scale:
            guard let (scores, dk) = scoresInput(), let s = tensor(scores) else { break }
            out += scalingVariants(s, dk: dk, dModel: dModel).map { Alternative(code: $0.code, message: $0.message, tensor: $0.tensor) }
        case .softmax where step.inputs.count == 1:
            guard let inputStep = stepNamed(step.inputs[0]), let x = tensor(step.inputs[0])?.asMatrix else { break }
            var scaledRef = step.inputs[0]
            var mask: Tensor? = nil
            if inputStep.op == .mask, inputStep.inputs.count == 2, let m = tensor(inputStep.inputs[1]),
                let sc = tensor(inputStep.inputs[0]), sc.shape == m.shape
            {
                scaledRef = inputStep.inputs[0]
                mask = m
                if m.data.contains(0) {
                    var after = softmaxRows(sc.asMatrix)
                    for i in after.data.indices where m.data[i] == 0 { after.data[i] = 0 }
                    out.append(
                        .init(
                            code: "mask_after_softmax",
                            message:
                                """
                                Mask applied after the softmax: you zeroed the masked weights after normalising, so the rows no \
                                longer sum to 1. Set masked scores to −∞ before the softmax.
                                """,
                            tensor: after))
                    out.append(
                        .init(
                            code: "mask_not_applied",
                            message: "Mask not applied: masked positions must get weight 0 (scores set to −∞ before the softmax).",
                            tensor: softmaxRows(sc.asMatrix)))
                }
            }
            if let scaledStep = stepNamed(scaledRef), scaledStep.op == .scale, let (scores, dk) = scoresInput(of: scaledStep),
                let s = tensor(scores)
            {
                for v in scalingVariants(s, dk: dk, dModel: dModel) {
                    let masked = mask.flatMap { $0.shape == v.tensor.shape ? applyMask(v.tensor, $0) : nil } ?? v.tensor
                    out.append(.init(code: v.code + "_before_softmax", message: v.softmaxMessage, tensor: softmaxRows(masked.asMatrix)))
                }
            }
            out.append(
                .init(
                    code: "softmax_columns", message: "Softmax over columns: each row must be normalised (sum to 1), not each column.",
                    tensor: transpose(softmaxRows(transpose(x)))))
        case .positionalEncoding:
            let n = correct.rows, d = Int(step.attrs["d_model"] ?? Double(correct.cols)), start = Int(step.attrs["start"] ?? 0)
            let base = step.attrs["base"] ?? 10000
            guard d == correct.cols, d > 0 else { break }
            func table(start: Int, exponent: (Int) -> Double, swap: Bool = false) -> Tensor {
                var t = Tensor(zeros: [n, d])
                for p in 0..<n {
                    for j in 0..<d {
                        let angle = Double(start + p) / pow(base, exponent(j))
                        let even = (j % 2 == 0) != swap
                        t[p, j] = Float(even ? sin(angle) : cos(angle))
                    }
                }
                return t
            }
            out.append(
                .init(
                    code: "pe_element_index",
                    message:
                        """
                        Used the element index j in the exponent (10000^(j/d)) instead of the pair index: in 10000^(2i/d), i = \
                        j/2 rounded down, so columns 2i and 2i+1 share one frequency.
                        """,
                    tensor: table(start: start, exponent: { Double($0) / Double(d) })))
            out.append(
                .init(
                    code: "pe_2j",
                    message: "Used 10000^(2j/d) with j the column index; i in 10000^(2i/d) is the pair index (j/2 rounded down).",
                    tensor: table(start: start, exponent: { Double(2 * $0) / Double(d) })))
            out.append(
                .init(
                    code: "pe_start_1", message: "Positions start at 1 instead of 0: the first token is position 0 (its row is 0 1 0 1 …).",
                    tensor: table(start: start + 1, exponent: { positionalEncodingExponent(column: $0, dModel: d) })))
            out.append(
                .init(
                    code: "pe_sin_cos_swapped", message: "sin and cos swapped: even columns (2i) use sin, odd columns (2i+1) use cos.",
                    tensor: table(start: start, exponent: { positionalEncodingExponent(column: $0, dModel: d) }, swap: true)))
        case .layerNorm:
            guard let x = step.inputs.first.flatMap(tensor)?.asMatrix else { break }
            let gamma = step.inputs.count > 1 ? tensor(step.inputs[1]) : nil
            let beta = step.inputs.count > 2 ? tensor(step.inputs[2]) : nil
            guard gamma.map({ $0.count == x.cols }) ?? true, beta.map({ $0.count == x.cols }) ?? true else { break }
            let eps = Float(step.attrs["eps"] ?? 1e-5)
            if x.cols > 1 {
                var t = x
                for r in 0..<x.rows {
                    let row = x.row(r).map(Double.init)
                    let mu = row.reduce(0, +) / Double(x.cols)
                    let v = row.reduce(0) { $0 + ($1 - mu) * ($1 - mu) } / Double(x.cols - 1)
                    for j in 0..<x.cols {
                        var y = Float((row[j] - mu) / (v + Double(eps)).squareRoot())
                        if let gamma { y *= gamma.data[j] }
                        if let beta { y += beta.data[j] }
                        t[r, j] = y
                    }
                }
                out.append(
                    .init(
                        code: "ln_sample_std",
                        message:
                            "Used the sample standard deviation (dividing by N−1); layer norm uses the population form σ² = Σ(x − μ)²/N.",
                        tensor: t))
            }
            if gamma != nil || beta != nil {
                out.append(
                    .init(
                        code: "ln_no_gamma_beta", message: "γ and β not applied: after normalising, multiply by γ and add β.",
                        tensor: layerNorm(x, eps: eps).output))
            }
        default:
            break
        }
        return out
    }

    /// For a scale step fed by attention scores: the scores' id and d_k.
    func scoresInput(of s: TraceStep? = nil) -> (String, Int)? {
        let st = s ?? step
        guard st.op == .scale, st.inputs.count == 1, let scores = stepNamed(st.inputs[0]), scores.op == .matmul,
            scores.attrs["transpose_b"] == 1, scores.inputs.count == 2
        else { return nil }
        if let k = tensor(scores.inputs[1]) { return (scores.id, k.asMatrix.cols) }
        guard let f = st.attrs["factor"], f > 0 else { return nil }
        return (scores.id, Int((1 / (f * f)).rounded()))
    }

    struct ScalingVariant { var code: String; var message: String; var softmaxMessage: String; var tensor: Tensor }

    func scalingVariants(_ s: Tensor, dk: Int, dModel: Int) -> [ScalingVariant] {
        let rdk = Float(Double(dk).squareRoot()), rdm = Float(Double(dModel).squareRoot())
        let sq = "√d_k = √\(dk) = \(String(format: "%.4g", Double(rdk)))"
        var out: [ScalingVariant] = [
            .init(
                code: "missing_scale", message: "Missing 1/√d_k: these are the unscaled scores Q·Kᵀ; divide each by \(sq).",
                softmaxMessage: "Missing 1/√d_k before the softmax: the scores must be divided by \(sq) first.", tensor: s),
            .init(
                code: "divided_by_dk", message: "Divided by d_k = \(dk) instead of √d_k (\(sq)).",
                softmaxMessage: "The scores were divided by d_k = \(dk) before the softmax instead of by \(sq).",
                tensor: scale(s, 1 / Float(dk))),
            .init(
                code: "multiplied_by_sqrt_dk",
                message: "Multiplied by √d_k instead of dividing: the scaled scores are Q·Kᵀ / \(sq), smaller than the scores, not larger.",
                softmaxMessage: "The scores were multiplied by √d_k before the softmax instead of divided by \(sq).", tensor: scale(s, rdk))
        ]
        if dModel != dk {
            let sm = "√d_model = √\(dModel)"
            out.append(
                .init(
                    code: "used_d_model",
                    message: "Used d_model instead of d_k: you divided by \(sm); scale by the width of one head's keys, \(sq).",
                    softmaxMessage: "The scores were divided by \(sm) before the softmax; use d_k, the width of one head's keys (\(sq)).",
                    tensor: scale(s, 1 / rdm)))
            out.append(
                .init(
                    code: "multiplied_by_sqrt_d_model", message: "Multiplied by \(sm): divide instead, and by \(sq) (d_k, not d_model).",
                    softmaxMessage: "The scores were multiplied by \(sm) before the softmax; divide by \(sq) instead.",
                    tensor: scale(s, rdm)))
            out.append(
                .init(
                    code: "divided_by_d_model", message: "Divided by d_model = \(dModel) instead of \(sq).",
                    softmaxMessage: "The scores were divided by d_model = \(dModel) before the softmax instead of by \(sq).",
                    tensor: scale(s, 1 / Float(dModel))))
        }
        return out
    }

    /// The user's matrix equals another step's values: say which.
    func otherStepMatches(excluding: Set<String>) -> [CheckReport.Diagnosis] {
        var out: [CheckReport.Diagnosis] = []
        let correctData = step.values
        for other in doc.steps where !excluding.contains(other.id) && other.shape.reduce(1, *) == other.values.count {
            let t = Tensor(shape: other.shape, data: other.values).asMatrix
            guard t.shape == user.shape, t.data != correctData, matchCount(t) == user.values.count else { continue }
            let hint: String
            switch (step.op, other.op) {
            case (.relu, _) where step.inputs.first == other.id: hint = " — the ReLU was not applied (negative values become 0)"
            case (_, _) where step.inputs.contains(other.id): hint = " — this step's input, unchanged"
            default: hint = ""
            }
            out.append(
                .init(
                    code: "equals_step",
                    message: "Your matrix equals step \(other.id) (\(other.title))\(hint), not \(step.id) (\(step.title))."))
            if out.count >= 3 { break }
        }
        for p in doc.parameters where p.shape.reduce(1, *) == p.values.count && out.count < 3 {
            let t = Tensor(shape: p.shape, data: p.values).asMatrix
            guard t.shape == user.shape, t.data != correctData, matchCount(t) == user.values.count else { continue }
            let used = step.inputs.contains(p.name) ? ", one of this step's inputs" : ""
            out.append(
                .init(
                    code: "equals_parameter",
                    message: "Your matrix equals the parameter \(p.name)\(used), not the result of \(step.id) (\(step.formula))."))
        }
        return out
    }
}
