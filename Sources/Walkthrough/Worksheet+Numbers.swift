import Foundation
import TensorKit
import TransformerKit

/// The numbers on a worksheet: drawn from the seed, and on an integer worksheet redrawn until
/// every exact answer has at most 2 decimals, the ReLU zeroes something and no softmax is flat
/// or saturated.
extension Worksheet {
    static let words = ["the", "cat", "sat", "on", "mats"]

    static func section(
        _ topics: [ExerciseTopic], prefix: String, title: String, integers: Bool, rng: inout SeededRNG, tracer: Tracer, yeh: Bool = false
    ) throws -> WorksheetSection {
        for _ in 0..<20_000 {
            let inputs = draw(topics, integers: integers, yeh: yeh, rng: &rng)
            let trial = Tracer()
            ExerciseTrace.record(topics, prefix: prefix, inputs, into: trial)
            guard acceptable(trial.steps, integers: integers) else { continue }
            ExerciseTrace.record(topics, prefix: prefix, inputs, into: tracer)
            return WorksheetSection(
                title: title, intro: topics.map(intro).joined(separator: "\n\n"), givens: trial.parameters.map(\.name),
                steps: trial.steps.filter { $0.op != .round }.map(\.id))
        }
        throw WalkthroughError("found no numbers for \"\(title)\" that keep the answers short; try another --seed")
    }

    static func acceptable(_ steps: [TraceStep], integers: Bool) -> Bool {
        let byID = Dictionary(steps.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        for s in steps {
            if integers && !roundedOps.contains(s.op) && s.op != .round {
                for v in s.values where v.isFinite {
                    let c = Double(v) * 100
                    if abs(c - c.rounded()) > 1e-3 || abs(v) > 99 { return false }
                }
            }
            if s.op == .relu, let input = s.inputs.first.flatMap({ byID[$0] }) {
                // ReLU must really zero something, and leave something
                guard input.values.contains(where: { $0 < 0 }), s.values.contains(where: { $0 > 0 }) else { return false }
            }
            if s.op == .softmax, let input = s.inputs.first.flatMap({ byID[$0] }) {
                let cols = s.shape.last ?? 1
                var spread: [Float] = []
                for r in 0..<(s.values.count / max(cols, 1)) {
                    let row = input.values[(r * cols)..<((r + 1) * cols)].filter(\.isFinite)
                    spread.append((row.max() ?? 0) - (row.min() ?? 0))
                }
                // not saturated (no weight rounds to 1.00), and not every row uniform
                guard spread.allSatisfy({ $0 <= 4 }), spread.contains(where: { $0 >= 1 }) else { return false }
            }
        }
        return true
    }

    static func draw(_ topics: [ExerciseTopic], integers: Bool, yeh: Bool, rng: inout SeededRNG) -> ExerciseInputs {
        func val(_ shape: [Int], _ lo: Int, _ hi: Int) -> Tensor {
            let n = shape.reduce(1, *)
            if integers { return Tensor(shape: shape, data: (0..<n).map { _ in Float(lo + rng.nextInt(below: hi - lo + 1)) }) }
            return Tensor(shape: shape, data: (0..<n).map { _ in Float(rng.nextInt(below: 21) - 10) / 10 })
        }
        var inp = ExerciseInputs(tokens: [], tensors: [:])
        inp.roundTo = integers ? 2 : 4
        inp.eps = integers ? 0 : 1e-5
        let first = topics[0]
        switch first {
        case .attentionWeighting, .ffn:
            let n = yeh ? 5 : 4
            inp.tokens = yeh ? (1...5).map { "x\($0)" } : Array(words.prefix(n))
            inp.tensors["X"] = val([n, 3], -2, 3)
        case .attention, .decoderMask:
            inp.tokens = Array(words.prefix(3))
            inp.tensors["X"] = val([3, 3], -2, 2)
        case .multiHead:
            inp.tokens = Array(words.prefix(3))
            inp.tensors["X"] = val([3, 2], -2, 2)
        case .crossAttention:
            inp.tokens = ["<s>", "die"]
            inp.memoryTokens = Array(words.prefix(3))
            inp.tensors["Y"] = val([2, 3], -2, 2)
            inp.tensors["M"] = val([3, 3], -2, 2)
        case .layerNorm:
            inp.tokens = Array(words.prefix(3))
        case .positionalEncoding:
            inp.tokens = (0..<4).map { "pos \($0)" }
            inp.tensors["E"] = val([4, 4], -2, 2)
        case .softmax:
            inp.tokens = Array(words.prefix(3))
            inp.tensors["S"] = val([3, 4], -2, 2)
        case .backpropOutput:
            inp.tokens = ["cat"]
            inp.vocabulary = Array(words.prefix(4))
            inp.tensors["H"] = val([1, 3], -2, 2)
            inp.tensors["W"] = val([3, 4], -1, 1)
            inp.targets = [rng.nextInt(below: 4)]
        }
        for t in topics {
            switch t {
            case .attentionWeighting:
                let n = inp.tokens.count
                var a = Tensor(zeros: [n, n])
                for i in 0..<n {
                    a[i, i] = 1
                    if yeh {
                        if i + 1 < n { a[i, i + 1] = 1 }
                    } else {
                        a[i, (i + 1 + rng.nextInt(below: n - 1)) % n] = 1
                    }
                }
                inp.tensors["A"] = a
            case .ffn:
                inp.tensors["W1"] = val([3, 4], -2, 2)
                inp.tensors["b1"] = val([4], -2, 2)
                inp.tensors["W2"] = val([4, 3], -2, 2)
                inp.tensors["b2"] = val([3], -2, 2)
            case .attention, .decoderMask, .crossAttention:
                // d_k = 4, so 1/√d_k = 1/2 keeps the scaled scores short
                for w in ["W_Q", "W_K", "W_V"] { inp.tensors[w] = val([3, 4], -1, 1) }
            case .multiHead:
                for w in ["W_Q", "W_K", "W_V"] { inp.tensors[w] = val([2, 8], -1, 1) }
                inp.tensors["W_O"] = val([8, 2], -1, 1)
                inp.heads = 2
            case .layerNorm:
                // The residual sum's rows are built to have an exact σ (ε = 0); X is drawn, F = sum − X.
                var sum = Tensor(zeros: [3, 4])
                for r in 0..<3 {
                    if integers {
                        let e = Self.exactRows[rng.nextInt(below: Self.exactRows.count)]
                        let mu = Float(rng.nextInt(below: 5) - 2)
                        for j in 0..<4 { sum[r, j] = mu + e[j] }
                    } else {
                        for j in 0..<4 { sum[r, j] = Float(rng.nextInt(below: 41) - 20) / 10 }
                    }
                }
                let x = val([3, 4], -3, 3)
                inp.tensors["X"] = x
                inp.tensors["F"] = TensorKit.add(sum, TensorKit.scale(x, -1))
                inp.tensors["gamma"] =
                    integers ? Tensor(shape: [4], data: (0..<4).map { _ in Float([1, 2, -1][rng.nextInt(below: 3)]) }) : val([4], 0, 0)
                inp.tensors["beta"] = val([4], -2, 2)
            default:
                break
            }
        }
        return inp
    }

    /// Deviations from the mean, e in [−8, 8]⁴ summing to 0, whose population σ is a whole number and
    /// whose e/σ have at most 2 decimals: (7, 1, −1, −7) has σ = 5 and normalises to (1.4, 0.2, −0.2, −1.4).
    static let exactRows: [[Float]] = {
        var out: [[Float]] = []
        let r = -8...8
        for a in r {
            for b in r {
                for c in r {
                    let d = -(a + b + c)
                    guard r.contains(d) else { continue }
                    let ss = a * a + b * b + c * c + d * d
                    guard ss > 0, ss % 4 == 0 else { continue }
                    let v = ss / 4
                    let sigma = Int(Double(v).squareRoot().rounded())
                    guard sigma * sigma == v else { continue }
                    guard [a, b, c, d].allSatisfy({ ($0 * 100) % sigma == 0 }) else { continue }
                    // not all equal in size: (±σ only) teaches less
                    guard Set([a, b, c, d].map(abs)).count > 1 else { continue }
                    out.append([a, b, c, d].map(Float.init))
                }
            }
        }
        return out
    }()

    static func intro(_ t: ExerciseTopic) -> String {
        switch t {
        case .attentionWeighting:
            "Attention decides how much each position takes from the others. Here the weights A are given: row i of Z = A · X is the sum of the rows of X that row i of A picks (a 1 on the diagonal and one beside it gives Z_i = X_i + X_(i+1))."
        case .ffn:
            "The feed-forward network works on each position alone, with the same weights for all: a linear layer widens each row from 3 to 4 features, ReLU sets the negative values to 0, and a second linear layer brings the row back to 3 features."
        case .attention:
            "One attention head: each row of X is projected into a query, a key and a value. The score of query i against key j is their dot product; dividing by √d_k keeps the scores from growing with the width; a softmax turns each row into weights that sum to 1; the output is the weighted sum of the values."
        case .decoderMask:
            "The decoder's self-attention may not look ahead: position i sees positions 1 … i only. Blocked scores are set to −∞ before the softmax, so their weights come out exactly 0 and each row still sums to 1."
        case .crossAttention:
            "In encoder–decoder attention the queries come from the decoder (the words produced so far) and the keys and values from the encoder's output (the source sentence): each target position asks which source words matter now."
        case .multiHead:
            "Several heads attend in parallel, each on its own slice of Q, K and V (here 2 heads of width d_k = 4). Their outputs are put side by side and a last projection W_O mixes them back to the model's width."
        case .layerNorm:
            "Add & norm: the sublayer's output F is added to its input X (the residual connection), then each row is normalised to mean 0 and standard deviation 1 (σ² = Σ(x − μ)²/N, over the row's N values) and scaled by γ and shifted by β."
        case .positionalEncoding:
            "Attention by itself does not know word order, so each position's row gets a fixed pattern of sines and cosines added: PE(pos, 2i) = sin(pos / 10000^(2i/d)) and PE(pos, 2i+1) = cos(pos / 10000^(2i/d)). Use a calculator for sin and cos (radians)."
        case .softmax:
            "Softmax turns a row of scores into weights: e to the power of each score, divided by the sum of those powers over the row. Every row of the result sums to 1."
        case .backpropOutput:
            "Training: the output layer turns the last hidden state into one score (logit) per word; softmax makes them probabilities; the loss is −log of the target word's probability. Its gradient at the logits is P minus the one-hot target, and one step of gradient descent moves W against the gradient Hᵀ · ∂L/∂z."
        }
    }
}
