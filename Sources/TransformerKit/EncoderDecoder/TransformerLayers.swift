import Foundation
import TensorKit

/// What the Transformer's layer functions need from a model: its conventions and its parameters by
/// name (`encoder.layers.N.self_attn.w_q`, …). The encoder–decoder and the BERT encoder both conform,
/// so BERT runs the very same encoder layer.
protocol TransformerLayerHost {
    var layerConfig: TransformerConfig { get }
    func p(_ name: String) -> FloatPtr
    func pOpt(_ name: String) -> FloatPtr?
}

extension Seq2SeqModel: TransformerLayerHost {
    var layerConfig: TransformerConfig { config }
}

// MARK: - Layers (forward)

extension TransformerLayerHost {
    /// One encoder layer: self-attention over the `b` sequences of `s` positions (padding keys
    /// masked), then the feed-forward network, each as a residual sublayer. Keeps its input in
    /// `L.input` for the backward pass; returns the new stream.
    func encoderLayerForward(_ L: Seq2SeqActivations.EncoderLayer, _ x0: UnsafePointer<Float>, prefix pre: String,
                             keyPadding: UnsafePointer<Bool>?, b: Int, s: Int, dropout: Float, rng: inout SeededRNG) -> UnsafePointer<Float> {
        let n = b * s
        L.input.pointer.update(from: x0, count: n * layerConfig.dModel)
        var x = UnsafePointer(L.input.pointer)
        x = sublayerForward(x, L.sub1, norm: "\(pre).norm1", n: n, dropout: dropout, keep: L.attn.keep, out: L.attn.out, rng: &rng) { h in
            attentionForward(L.attn, q: h, kv: h, param: "\(pre).self_attn", keyPadding: keyPadding, causal: false, b: b, tq: s, tk: s)
        }
        return sublayerForward(x, L.sub2, norm: "\(pre).norm2", n: n, dropout: dropout, keep: L.ffn.keep, out: L.ffn.out, rng: &rng) { h in
            ffnForward(L.ffn, h, param: "\(pre).ffn", n: n)
        }
    }

    /// One residual sublayer forward. `f` computes the sublayer into `out` from its input; returns the new stream.
    func sublayerForward(_ x: UnsafePointer<Float>, _ sub: Seq2SeqActivations.Sub, norm: String, n: Int, dropout: Float,
                         keep: FlatBuffer, out: FlatBuffer, rng: inout SeededRNG, _ f: (UnsafePointer<Float>) -> Void) -> UnsafePointer<Float> {
        let d = layerConfig.dModel
        switch layerConfig.norm {
        case .post:
            f(x)
            if dropout > 0 { Kernels.dropoutForward(out.pointer, keep: keep.pointer, count: n * d, p: dropout, rng: &rng) }
            for i in 0..<(n * d) { sub.residual.pointer[i] = x[i] + out.pointer[i] }
            Kernels.layerNormForward(sub.normOut.pointer, sub.mean.pointer, sub.rstd.pointer, sub.residual.pointer,
                                     p("\(norm).gamma"), p("\(norm).beta"), n: n, c: d, eps: layerConfig.layerNormEps)
            return UnsafePointer(sub.normOut.pointer)
        case .pre:
            Kernels.layerNormForward(sub.normOut.pointer, sub.mean.pointer, sub.rstd.pointer, x,
                                     p("\(norm).gamma"), p("\(norm).beta"), n: n, c: d, eps: layerConfig.layerNormEps)
            f(UnsafePointer(sub.normOut.pointer))
            if dropout > 0 { Kernels.dropoutForward(out.pointer, keep: keep.pointer, count: n * d, p: dropout, rng: &rng) }
            for i in 0..<(n * d) { sub.residual.pointer[i] = x[i] + out.pointer[i] }
            return UnsafePointer(sub.residual.pointer)
        }
    }

    func attentionForward(_ A: Seq2SeqActivations.Attention, q xq: UnsafePointer<Float>, kv xkv: UnsafePointer<Float>, param p0: String,
                          keyPadding: UnsafePointer<Bool>?, causal: Bool, b: Int, tq: Int, tk: Int) {
        let d = layerConfig.dModel, a = layerConfig.attentionWidth
        Kernels.linearForward(A.q.pointer, xq, p("\(p0).w_q"), pOpt("\(p0).b_q"), n: b * tq, c: d, oc: a)
        Kernels.linearForward(A.k.pointer, xkv, p("\(p0).w_k"), pOpt("\(p0).b_k"), n: b * tk, c: d, oc: a)
        Kernels.linearForward(A.v.pointer, xkv, p("\(p0).w_v"), pOpt("\(p0).b_v"), n: b * tk, c: d, oc: a)
        Kernels.attentionForward(A.ctx.pointer, A.att.pointer, A.q.pointer, A.k.pointer, A.v.pointer, keyPadding: keyPadding, causal: causal,
                                 b: b, tq: tq, tk: tk, heads: layerConfig.heads, dk: layerConfig.dK, qStride: a, kvStride: a)
        Kernels.linearForward(A.out.pointer, A.ctx.pointer, p("\(p0).w_o"), pOpt("\(p0).b_o"), n: b * tq, c: a, oc: d)
    }

    func ffnForward(_ F: Seq2SeqActivations.FFN, _ x: UnsafePointer<Float>, param p0: String, n: Int) {
        let d = layerConfig.dModel, ff = layerConfig.dFF
        Kernels.linearForward(F.h.pointer, x, p("\(p0).w1"), p("\(p0).b1"), n: n, c: d, oc: ff)
        switch layerConfig.activation {
        case .relu: Kernels.reluForward(F.a.pointer, F.h.pointer, count: n * ff)
        case .gelu: Kernels.geluForward(F.a.pointer, F.h.pointer, count: n * ff, form: .erf)
        case .geluTanh: Kernels.geluForward(F.a.pointer, F.h.pointer, count: n * ff, form: .tanh)
        }
        Kernels.linearForward(F.out.pointer, F.a.pointer, p("\(p0).w2"), p("\(p0).b2"), n: n, c: ff, oc: d)
    }

}
