import Foundation
import TensorKit
import TransformerKit
import Tokenizers

/// One training step shown by hand after the forward pass (`transformer walkthrough --train`):
/// the gradient at the logits, the gradients of the output layer and of the first encoder
/// self-attention block, and the update of W_Q.
public enum TrainingStepTrace {
    /// Every parameter's gradient for the trace's sentence pair, by the batched model's backward pass
    /// (no dropout, no label smoothing: the loss the trace shows).
    public static func gradients(of doc: TraceDocument) throws -> [String: Tensor] {
        var ps = ParameterSet()
        for (name, shape) in doc.config.parameterShapes {
            guard let p = doc.parameter(name) else { throw WalkthroughError("the trace lacks parameter \(name)") }
            guard p.shape == shape else { throw WalkthroughError("parameter \(name) has shape \(p.shape), the config needs \(shape)") }
            ps.add(name, p.tensor)
        }
        guard let src = doc.step("src.ids"), let tin = doc.step("tgt.ids"), let tout = doc.step("out.targets") else {
            throw WalkthroughError("the trace lacks src.ids, tgt.ids or out.targets")
        }
        let model = try Seq2SeqModel(config: doc.config, parameters: ps)
        let vocab = doc.vocabulary
        guard let pad = vocab.firstIndex(of: SpecialToken.pad.rawValue), let start = vocab.firstIndex(of: SpecialToken.start.rawValue),
            let end = vocab.firstIndex(of: SpecialToken.end.rawValue)
        else { throw WalkthroughError("the vocabulary lacks the special tokens") }
        let target = tin.values.dropFirst().map { Int($0) }
        guard tin.values.first.map({ Int($0) }) == start, tout.values.map({ Int($0) }) == target + [end] else {
            throw WalkthroughError("the decoder input must be <start> y… and the targets y… <end>")
        }
        let batch = Seq2SeqBatch(pairs: [(src.values.map { Int($0) }, target)], pad: pad, start: start, end: end)
        let acts = Seq2SeqActivations(config: doc.config, maxBatch: 1, maxSource: batch.sourceLength, maxTarget: batch.targetLength)
        var rng = SeededRNG(seed: 0)
        model.grads.zero()
        model.forward(batch, acts: acts, rng: &rng)
        model.backward(batch, acts: acts)
        return model.gradientSet().tensors
    }

    /// Appends the training step to a forward trace.
    public static func append(to doc: inout TraceDocument, learningRate lr: Float) throws {
        guard let logits = doc.step("out.logits"), let targets = doc.step("out.targets"), let loss = doc.step("out.loss") else {
            throw WalkthroughError("the trace has no output layer to train from")
        }
        let grads = try gradients(of: doc)
        let tracer = Tracer()
        let vocab = doc.vocabulary
        let rows = logits.rowLabels
        let ids = targets.values.map { Int($0) }
        tracer.section = "training step · output layer"
        let dz = crossEntropyGradient(logits: logits.tensor, targets: ids)
        tracer.record(
            "train.dlogits", "Gradient at the logits ∂L/∂z", op: .softmaxCrossEntropyGrad, inputs: [logits.id, targets.id], dz,
            rows: rows, cols: vocab, formula: "∂L/∂z = (softmax(z) − onehot(target)) / n",
            latex: "\\frac{\\partial L}{\\partial z} = \\frac{\\mathrm{softmax}(z) - \\mathrm{onehot}(y)}{n}",
            notes: [
                """
                Each row is the predicted distribution minus the one-hot target, divided by the n = \(rows.count) positions the \
                loss averages over: negative only at the target token, which the step will push up.
                """
            ])
        // The output layer's weight gradient, as a matmul of two things already on the page.
        let decOut = logits.inputs[0]
        if doc.config.embeddings == .separate {
            let g = matmul(try tensor(doc, decOut), dz, transposeA: true)
            tracer.record(
                "train.grad.out_proj", "∂L/∂W_out = Xᵀ · ∂L/∂z", op: .matmul, inputs: [decOut, "train.dlogits"], g,
                rows: indexLabels("d", g.rows), cols: vocab, formula: "∂L/∂W_out = Xᵀ · ∂L/∂z",
                latex: "\\frac{\\partial L}{\\partial W_{out}} = X^\\top \\frac{\\partial L}{\\partial z}",
                attrs: ["transpose_a": 1, "transpose_b": 0])
        } else {
            let g = matmul(dz, try tensor(doc, decOut), transposeA: true)
            tracer.record(
                "train.grad.out_proj", "Output-layer part of ∂L/∂E = (∂L/∂z)ᵀ · X", op: .matmul, inputs: ["train.dlogits", decOut], g,
                rows: vocab, cols: indexLabels("d", g.cols), formula: "∂L/∂E (output use) = (∂L/∂z)ᵀ · X",
                latex: "\\frac{\\partial L}{\\partial E}\\Big|_{out} = \\left(\\frac{\\partial L}{\\partial z}\\right)^\\top X",
                attrs: ["transpose_a": 1, "transpose_b": 0],
                notes: [
                    """
                    The output layer is tied to the embedding table, so the full ∂L/∂E also collects the gradients of the \
                    embedding lookups (the next step).
                    """
                ])
        }
        let table = doc.config.embeddings == .separate ? "out_proj" : (doc.config.embeddings == .all ? "src_embed" : "tgt_embed")
        try recordGradient(
            tracer, grads, table, loss: loss.id, rows: doc.config.embeddings == .separate ? indexLabels("d", doc.config.dModel) : vocab,
            title: "Full gradient of \(table) (back-propagation)")
        tracer.section = "training step · encoder layer 1 self-attention"
        let p = "encoder.layers.0.self_attn"
        for (w, name) in [("w_q", "W_Q"), ("w_k", "W_K"), ("w_v", "W_V"), ("w_o", "W_O")] {
            try recordGradient(tracer, grads, "\(p).\(w)", loss: loss.id, rows: nil, title: "∂L/∂\(name)")
        }
        tracer.section = "training step · update"
        guard let wq = doc.parameter("\(p).w_q") else { throw WalkthroughError("the trace lacks \(p).w_q") }
        tracer.parameter(wq.name, wq.tensor)
        let updated = TensorKit.add(wq.tensor, TensorKit.scale(grads["\(p).w_q"]!, -lr))
        tracer.record(
            "train.update.w_q", "W_Q after one step (before → after)", op: .sgdUpdate, inputs: [wq.name, "train.grad.\(p).w_q"], updated,
            rows: indexLabels("d", updated.rows), cols: indexLabels("d", updated.cols),
            formula: "W_Q ← W_Q − η · ∂L/∂W_Q  (η = \(lr))", latex: "W^Q \\leftarrow W^Q - \\eta \\frac{\\partial L}{\\partial W^Q}",
            attrs: ["lr": Double(lr)],
            notes: [
                "Before: " + wq.values.prefix(4).map { String(format: "%.4f", $0) }.joined(separator: ", ") + " … (first row)",
                """
                Plain gradient descent, to be followed by hand. The trainer uses AdamW, whose first step moves each weight by \
                about η·sign(g).
                """
            ])
        // The loss after updating every weight the same way, so the reader sees it fall.
        let after = try lossAfterUpdate(doc, grads: grads, lr: lr)
        tracer.annotate(
            "train.update.w_q", String(format: "Updating every weight this way changes the loss from %.4f to %.4f.", loss.values[0], after))
        doc.steps += tracer.steps
        for p in tracer.parameters where doc.parameter(p.name) == nil { doc.parameters.append(p) }
    }

    static func tensor(_ doc: TraceDocument, _ id: String) throws -> Tensor {
        guard let t = doc.tensor(id) else { throw WalkthroughError("the trace has no step \(id)") }
        return t.asMatrix
    }

    static func recordGradient(_ tracer: Tracer, _ grads: [String: Tensor], _ name: String, loss: String, rows: [String]?, title: String)
        throws
    {
        guard let g0 = grads[name] else { throw WalkthroughError("no gradient for \(name)") }
        let g = g0.shape.count == 1 ? Tensor(shape: [1, g0.count], data: g0.data) : g0
        tracer.record(
            "train.grad.\(name)", title, op: .gradient, inputs: [loss, name], g,
            rows: rows ?? indexLabels("d", g.rows), cols: indexLabels("d", g.cols),
            formula: "∂L/∂\(name), by back-propagation through every layer",
            latex: "\\frac{\\partial L}{\\partial \\mathrm{\(name.replacingOccurrences(of: "_", with: "\\_"))}}",
            notes: [
                """
                The chain rule applied backwards from the loss through each layer's backward kernel (checked against finite \
                differences and PyTorch in the tests).
                """
            ])
    }

    static func lossAfterUpdate(_ doc: TraceDocument, grads: [String: Tensor], lr: Float) throws -> Float {
        var ps = ParameterSet()
        for (name, _) in doc.config.parameterShapes {
            ps.add(name, TensorKit.add(doc.parameter(name)!.tensor, TensorKit.scale(grads[name]!, -lr)))
        }
        let model = try TracedEncoderDecoder(config: doc.config, parameters: ps)
        let src = doc.step("src.ids")!, tin = doc.step("tgt.ids")!, tout = doc.step("out.targets")!
        let out = try model.forward(
            source: src.values.map { Int($0) }, target: tin.values.map { Int($0) }, targets: tout.values.map { Int($0) },
            sourceTokens: src.rowLabels, targetTokens: tin.rowLabels, vocabularyTokens: doc.vocabulary)
        return out.loss ?? .nan
    }
}
