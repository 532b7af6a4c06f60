import Foundation
import TensorKit
import TransformerKit
import ModelFiles

/// `transformer walkthrough --model FILE.gguf "text"`: the steps of a real model on a text, with one
/// summary line per block so the page stays readable (30 blocks × 576 numbers would not).
enum GGUFWalkthrough {
    static func run(model path: String, text: String, dequantize: Bool) throws {
        let r = try GGUFRunner(path: path, dequantize: dequantize, context: nil)
        let c = r.model.config, tok = r.tokenizer
        // BOS first when the model expects it (Gemma, Llama), as `generate` does.
        let ids = (tok.addBOS ? tok.bosID.map { [$0] } ?? [] : []) + tok.encode(text)
        guard ids.count > (tok.addBOS && tok.bosID != nil ? 1 : 0) else {
            throw GGUFError("the text is empty: give the words to walk through")
        }
        guard ids.count <= min(c.contextLength, 512) else {
            throw GGUFError("the text has \(ids.count) tokens; a walkthrough shows at most 512")
        }
        func show(_ id: Int) -> String { tok.tokens[id] }
        func norm(_ v: [Float]) -> Float { v.reduce(0) { $0 + $1 * $1 }.squareRoot() }
        func top(_ logits: [Float], _ k: Int) -> [(Int, Float)] {
            let m = logits.max()!, z = logits.reduce(0) { $0 + Foundation.exp($1 - m) }
            return logits.indices.sorted { logits[$0] > logits[$1] }.prefix(k).map { ($0, Foundation.exp(logits[$0] - m) / z) }
        }
        var out = ""
        let name = (path as NSString).lastPathComponent
        out += "Walkthrough of \(name) on \(text.debugDescription)\n"
        out +=
            "\(c.architecture.name): \(c.layers) blocks, d_model \(c.dModel), \(c.heads) query heads / \(c.kvHeads) key-value heads of \(c.headSize), feed-forward \(c.dFF), vocabulary \(c.vocabSize); weights \(r.model.dequantized ? "de-quantised to Float32" : "as stored")\n\n"

        let scheme =
            tok.sentencePiece != nil
            ? "SentencePiece from tokenizer.ggml.* (▁ is a space)" : "byte-level BPE from tokenizer.ggml.* (Ġ is a space, Ċ a newline)"
        out += "1 · Tokens — \(scheme): \(ids.count) tokens\(tok.addBOS ? ", BOS first (the model expects it)" : "")\n"
        var line1 = "   ", line2 = "   "
        for id in ids {
            let t = show(id), w = max(t.count, String(id).count) + 2
            line1 += t.padding(toLength: w, withPad: " ", startingAt: 0)
            line2 += String(id).padding(toLength: w, withPad: " ", startingAt: 0)
        }
        out += line1 + "\n" + line2 + "\n\n"

        var emb = [Float](repeating: 0, count: c.dModel)
        let e = try r.model.file.matrix("token_embd.weight", rows: c.vocabSize, cols: c.dModel)
        Quantized.dequantize(e.type, e.row(ids.last!), &emb, count: c.dModel)
        let arch = c.architecture
        if arch.scalesEmbedding { emb = emb.map { $0 * Float(c.dModel).squareRoot() } }
        out +=
            """
            2 · Embedding — x = token_embd[id]\(arch.scalesEmbedding ? " · √\(c.dModel)" : "") (\(e.type.name) rows de-quantised): \
            \(ids.count)×\(c.dModel); no position vector is added, positions enter as rotations of q and k\n
            """
        out += String(
            format: "   the last token %@: ‖x‖ = %.3f, first values %@\n\n", show(ids.last!), norm(emb),
            emb.prefix(6).map { String(format: "%+.4f", $0) }.joined(separator: " "))

        // The block as this architecture computes it (LlamaArchitecture's switches).
        let b = arch.attentionBias ? " + b" : ""
        let (q, k) = arch.normalizesQK ? ("RMSNorm(W_q h\(b))", "RMSNorm(W_k h\(b))") : ("W_q h\(b)", "W_k h\(b)")
        let attn = "W_o·Attn(RoPE(\(q)), RoPE(\(k)), W_v h\(b))"
        let ffn = "W_down·(\(arch.gate == .silu ? "silu" : "gelu")(W_gate h) ⊙ W_up h)"
        let post = arch.normalizesSublayerOutputs
        out +=
            """
            3 · Blocks, for the last token \(show(ids.last!)) — h = RMSNorm(x)·g; x += \(post ? "RMSNorm(\(attn))" : attn); \
            h = RMSNorm(x)·g'; x += \(post ? "RMSNorm(\(ffn))" : ffn)\n
            """
        var window = ""
        if let w = c.slidingWindow {
            let global = (0..<c.layers).filter { !c.isSlidingWindow(layer: $0) }.map(String.init).joined(separator: ", ")
            window = "; blocks other than \(global) see only the last \(w) positions (RoPE base \(Int(arch.localRoPEBase)))"
        }
        out +=
            """
               Attn: softmax(q·kᵀ/√\(c.headSize)) over positions 0…\(ids.count - 1), causal\(window); query heads share key/value \
            heads in groups of \(c.heads / c.kvHeads)\n
            """
        out += "   block  ‖attn out‖  ‖ffn out‖    ‖x‖   heads' most-attended token (×heads)          logit lens: next token (p)\n"
        let session = r.session
        var rows: [String] = []
        session.observe = { s in
            var counts: [Int: Int] = [:]
            for head in s.attention { counts[head.indices.max { head[$0] < head[$1] }!, default: 0] += 1 }
            let heads = counts.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }
                .map { "\(show(ids[$0.key]))×\($0.value)" }.joined(separator: " ")
            let lens = top(session.logits(ofResidual: s.residual), 1)[0]
            rows.append(
                String(
                    format: "   %5d  %10.3f  %9.3f  %6.2f   ", s.layer, norm(s.attentionOutput), norm(s.feedForwardOutput), norm(s.residual)
                )
                    + heads.padding(toLength: 45, withPad: " ", startingAt: 0)
                    + String(format: "%@ (%.2f)", show(lens.0).debugDescription, lens.1))
        }
        let logits = Array(try session.feed(ids))
        session.observe = nil
        out += rows.joined(separator: "\n") + "\n\n"

        out +=
            "4 · Output — logits = W_out · RMSNorm(x) (W_out = \(r.model.file.tensor("output.weight") == nil ? "token_embd, tied" : "output.weight")), softmax over \(c.vocabSize) tokens\n"
        for (id, p) in top(logits, 5) {
            out +=
                "   " + show(id).debugDescription.padding(toLength: 14, withPad: " ", startingAt: 0)
                + String(format: " id %5d  logit %7.3f  p %.3f\n", id, logits[id], p)
        }
        out += "   greedy next token: \(tok.decode([top(logits, 1)[0].0]).debugDescription)\n"
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}
