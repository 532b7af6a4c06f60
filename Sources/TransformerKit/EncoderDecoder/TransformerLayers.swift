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
    func encoderLayerForward(
        _ L: Seq2SeqActivations.EncoderLayer, _ x0: UnsafePointer<Float>, prefix pre: String,
        keyPadding: UnsafePointer<Bool>?, b: Int, s: Int, dropout: Float, rng: inout SeededRNG
    ) -> UnsafePointer<Float> {
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
    func sublayerForward(
        _ x: UnsafePointer<Float>, _ sub: Seq2SeqActivations.Sub, norm: String, n: Int, dropout: Float,
        keep: FlatBuffer, out: FlatBuffer, rng: inout SeededRNG, _ f: (UnsafePointer<Float>) -> Void
    ) -> UnsafePointer<Float> {
        let d = layerConfig.dModel
        switch layerConfig.norm {
        case .post:
            f(x)
            if dropout > 0 { Kernels.dropoutForward(out.pointer, keep: keep.pointer, count: n * d, p: dropout, rng: &rng) }
            for i in 0..<(n * d) { sub.residual.pointer[i] = x[i] + out.pointer[i] }
            Kernels.layerNormForward(
                out: sub.normOut.pointer, mean: sub.mean.pointer, rstd: sub.rstd.pointer, input: sub.residual.pointer,
                gamma: p("\(norm).gamma"), beta: p("\(norm).beta"), rows: n, width: d, eps: layerConfig.layerNormEps)
            return UnsafePointer(sub.normOut.pointer)
        case .pre:
            Kernels.layerNormForward(
                out: sub.normOut.pointer, mean: sub.mean.pointer, rstd: sub.rstd.pointer, input: x,
                gamma: p("\(norm).gamma"), beta: p("\(norm).beta"), rows: n, width: d, eps: layerConfig.layerNormEps)
            f(UnsafePointer(sub.normOut.pointer))
            if dropout > 0 { Kernels.dropoutForward(out.pointer, keep: keep.pointer, count: n * d, p: dropout, rng: &rng) }
            for i in 0..<(n * d) { sub.residual.pointer[i] = x[i] + out.pointer[i] }
            return UnsafePointer(sub.residual.pointer)
        }
    }

    func attentionForward(
        _ A: Seq2SeqActivations.Attention, q xq: UnsafePointer<Float>, kv xkv: UnsafePointer<Float>, param p0: String,
        keyPadding: UnsafePointer<Bool>?, causal: Bool, b: Int, tq: Int, tk: Int
    ) {
        let d = layerConfig.dModel, a = layerConfig.attentionWidth
        Kernels.linearForward(
            out: A.q.pointer, input: xq, weight: p("\(p0).w_q"), bias: pOpt("\(p0).b_q"), rows: b * tq, width: d, outWidth: a)
        Kernels.linearForward(
            out: A.k.pointer, input: xkv, weight: p("\(p0).w_k"), bias: pOpt("\(p0).b_k"), rows: b * tk, width: d, outWidth: a)
        Kernels.linearForward(
            out: A.v.pointer, input: xkv, weight: p("\(p0).w_v"), bias: pOpt("\(p0).b_v"), rows: b * tk, width: d, outWidth: a)
        Kernels.attentionForward(
            out: A.ctx.pointer, weights: A.att.pointer, q: A.q.pointer, k: A.k.pointer, v: A.v.pointer, keyPadding: keyPadding,
            causal: causal,
            batch: b, queries: tq, keys: tk, heads: layerConfig.heads, headSize: layerConfig.headSize, qStride: a, kvStride: a)
        Kernels.linearForward(
            out: A.out.pointer, input: A.ctx.pointer, weight: p("\(p0).w_o"), bias: pOpt("\(p0).b_o"), rows: b * tq, width: a, outWidth: d)
    }

    func ffnForward(_ F: Seq2SeqActivations.FFN, _ x: UnsafePointer<Float>, param p0: String, n: Int) {
        let d = layerConfig.dModel, ff = layerConfig.dFF
        Kernels.linearForward(out: F.h.pointer, input: x, weight: p("\(p0).w1"), bias: p("\(p0).b1"), rows: n, width: d, outWidth: ff)
        switch layerConfig.activation {
        case .relu: Kernels.reluForward(out: F.a.pointer, input: F.h.pointer, count: n * ff)
        case .gelu: Kernels.geluForward(out: F.a.pointer, input: F.h.pointer, count: n * ff, form: .erf)
        case .geluTanh: Kernels.geluForward(out: F.a.pointer, input: F.h.pointer, count: n * ff, form: .tanh)
        }
        Kernels.linearForward(
            out: F.out.pointer, input: F.a.pointer, weight: p("\(p0).w2"), bias: p("\(p0).b2"), rows: n, width: ff, outWidth: d)
    }

}
