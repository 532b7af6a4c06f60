import Foundation
import TensorKit

/// A BERT-family encoder (BERT, MiniLM, all-MiniLM-L6-v2): word + position + token-type embeddings,
/// an embedding layer norm, then `layers` post-norm encoder layers (self-attention with a padding
/// mask, add & norm, FFN with exact GELU, add & norm).
///
/// Field names follow Hugging Face's `BertConfig` (`config.json`).
public struct BERTConfig: Sendable, Equatable {
    public var vocabSize: Int
    /// The model width (`hidden_size`).
    public var dModel: Int
    public var layers: Int
    public var heads: Int
    /// The feed-forward width (`intermediate_size`).
    public var dFF: Int
    /// Rows of the position table (`max_position_embeddings`): the longest input.
    public var contextLength: Int
    public var typeVocabSize: Int = 2
    public var layerNormEps: Float = 1e-12
    /// `hidden_act`: "gelu" (exact, BERT's) or "gelu_new" / "gelu_pytorch_tanh" (tanh form).
    public var hiddenAct: String = "gelu"

    public init(vocabSize: Int, dModel: Int, layers: Int, heads: Int, dFF: Int, contextLength: Int) {
        self.vocabSize = vocabSize; self.dModel = dModel; self.layers = layers; self.heads = heads
        self.dFF = dFF; self.contextLength = contextLength
    }

    public func validate() throws {
        func fail(_ s: String) throws -> Never { throw ConfigError(message: s) }
        if vocabSize < 1 || dModel < 1 || layers < 1 || heads < 1 || dFF < 1 || contextLength < 2 || typeVocabSize < 1 {
            try fail(
                """
                BERT config: vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size and \
                type_vocab_size must be positive, max_position_embeddings at least 2
                """
            )
        }
        if dModel % heads != 0 { try fail("BERT config: hidden_size \(dModel) is not divisible by num_attention_heads \(heads)") }
        guard Self.activations[hiddenAct] != nil else {
            try fail(
                "BERT config: hidden_act \"\(hiddenAct)\" is not supported (\(Self.activations.keys.sorted().joined(separator: ", ")))")
        }
        if !(layerNormEps > 0) { try fail("BERT config: layer_norm_eps must be positive") }
    }

    static let activations: [String: Activation] = ["gelu": .gelu, "gelu_new": .geluTanh, "gelu_pytorch_tanh": .geluTanh, "relu": .relu]

    /// The encoder layers in the Transformer's own terms: post-norm, biases on every projection,
    /// d_k = hidden / heads. (No decoder: only `encoderLayerForward` runs.)
    var encoder: TransformerConfig {
        var c = TransformerConfig()
        c.dModel = dModel; c.heads = heads; c.dFF = dFF
        c.encoderLayers = layers; c.decoderLayers = 0
        c.sourceVocabSize = vocabSize; c.targetVocabSize = vocabSize; c.contextLength = contextLength
        c.norm = .post; c.activation = Self.activations[hiddenAct] ?? .gelu; c.positions = .learned
        c.attentionBias = true; c.layerNormEps = layerNormEps
        return c
    }

    /// This model's parameter names and shapes: the embeddings under Hugging Face's names, the layers
    /// under the Transformer's (`encoder.layers.N.self_attn.w_q`, `[in, out]`), which is what the
    /// shared encoder layer reads. `BERTCheckpoint` maps Hugging Face's layer names onto these.
    public var parameterShapes: [(String, [Int])] {
        let d = dModel, f = dFF
        var out: [(String, [Int])] = [
            ("embeddings.word_embeddings.weight", [vocabSize, d]), ("embeddings.position_embeddings.weight", [contextLength, d]),
            ("embeddings.token_type_embeddings.weight", [typeVocabSize, d]),
            ("embeddings.LayerNorm.weight", [d]), ("embeddings.LayerNorm.bias", [d])
        ]
        for l in 0..<layers {
            let p = "encoder.layers.\(l)"
            for w in ["q", "k", "v", "o"] { out += [("\(p).self_attn.w_\(w)", [d, d]), ("\(p).self_attn.b_\(w)", [d])] }
            out += [
                ("\(p).norm1.gamma", [d]), ("\(p).norm1.beta", [d]),
                ("\(p).ffn.w1", [d, f]), ("\(p).ffn.b1", [f]), ("\(p).ffn.w2", [f, d]), ("\(p).ffn.b2", [d]),
                ("\(p).norm2.gamma", [d]), ("\(p).norm2.beta", [d])
            ]
        }
        return out
    }
}

/// Activations of a BERT forward pass for up to `maxBatch` sequences of up to `maxLength` tokens.
public final class BERTActivations: @unchecked Sendable {
    public let maxBatch, maxLength: Int
    let embed, embedNorm, mean, rstd: FlatBuffer
    /// One layer's buffers, reused by every layer in turn: inference keeps nothing for a backward pass.
    let layer: Seq2SeqActivations.EncoderLayer
    let ids: UnsafeMutablePointer<Int32>
    let padding: UnsafeMutablePointer<Bool>

    public init(config c: BERTConfig, maxBatch b: Int, maxLength t: Int) {
        maxBatch = b; maxLength = t
        let n = b * t, d = c.dModel
        embed = FlatBuffer(count: n * d); embedNorm = FlatBuffer(count: n * d); mean = FlatBuffer(count: n); rstd = FlatBuffer(count: n)
        layer = Seq2SeqActivations.EncoderLayer(n: n, b: b, s: t, c: c.encoder)
        ids = .allocate(capacity: max(n, 1)); ids.initialize(repeating: 0, count: max(n, 1))
        padding = .allocate(capacity: max(n, 1)); padding.initialize(repeating: false, count: max(n, 1))
    }
    deinit { ids.deallocate(); padding.deallocate() }
}

/// A BERT encoder whose parameters live in one flat buffer; inference only.
public final class BERTModel: @unchecked Sendable, TransformerLayerHost {
    public let config: BERTConfig
    let layerConfig: TransformerConfig
    public let layout: BufferLayout
    public let params: FlatBuffer

    public init(config: BERTConfig, parameters: ParameterSet) throws {
        try config.validate()
        self.config = config
        layerConfig = config.encoder
        layout = BufferLayout(config.parameterShapes)
        params = try FlatBuffer(layout: layout, parameters: parameters)
    }

    @inline(__always) func p(_ name: String) -> FloatPtr { params.pointer + layout.offset(name) }
    func pOpt(_ name: String) -> FloatPtr? { layout.entry(name).map { params.pointer + $0.offset } }

    /// The last hidden state `[b·t, hidden]` for `b` token sequences padded to the longest (`t`);
    /// padded positions are masked out as keys (their own rows hold values nobody should read).
    /// Token types are all 0 (one segment). The pointer is valid until the next forward on `acts`.
    public func forward(_ sequences: [[Int]], acts: BERTActivations) -> (hidden: UnsafePointer<Float>, t: Int) {
        let b = sequences.count, t = sequences.map(\.count).max() ?? 0
        precondition(
            b >= 1 && t >= 1 && b <= acts.maxBatch && t <= acts.maxLength && t <= config.contextLength,
            "batch \(b)×\(t) exceeds the activations (\(acts.maxBatch)×\(acts.maxLength)) or the position table (\(config.contextLength))")
        let n = b * t, d = config.dModel
        for (bi, s) in sequences.enumerated() {
            for i in 0..<t {
                precondition(i >= s.count || (s[i] >= 0 && s[i] < config.vocabSize), "token id \(s[i]) outside the vocabulary")
                acts.ids[bi * t + i] = Int32(i < s.count ? s[i] : 0)
                acts.padding[bi * t + i] = i >= s.count
            }
        }
        // word + position (+ type 0), then the embedding layer norm.
        Kernels.embeddingForward(
            out: acts.embed.pointer, ids: acts.ids, table: p("embeddings.word_embeddings.weight"), scale: 1,
            positions: p("embeddings.position_embeddings.weight"), batch: n, length: t, width: d)
        let type0 = p("embeddings.token_type_embeddings.weight")
        for i in 0..<n { let o = acts.embed.pointer + i * d; for j in 0..<d { o[j] += type0[j] } }
        Kernels.layerNormForward(
            out: acts.embedNorm.pointer, mean: acts.mean.pointer, rstd: acts.rstd.pointer, input: acts.embed.pointer,
            gamma: p("embeddings.LayerNorm.weight"), beta: p("embeddings.LayerNorm.bias"), rows: n, width: d, eps: config.layerNormEps)
        var x = UnsafePointer(acts.embedNorm.pointer)
        var rng = SeededRNG(seed: 0)  // no dropout at inference
        for l in 0..<config.layers {
            // The layer copies its input before overwriting the buffers the previous layer's output is in.
            x = encoderLayerForward(
                acts.layer, x, prefix: "encoder.layers.\(l)", keyPadding: UnsafePointer(acts.padding), b: b, s: t, dropout: 0, rng: &rng)
        }
        return (x, t)
    }

    /// Sentence embeddings as sentence-transformers makes them: the mean of the last hidden state over
    /// each sequence's real tokens (not padding), then, when `normalize`, divided by its L2 norm
    /// (`max(‖x‖, 1e-12)`, as `torch.nn.functional.normalize`).
    public func embed(_ sequences: [[Int]], acts: BERTActivations, normalize: Bool = true) -> [[Float]] {
        let (h, t) = forward(sequences, acts: acts)
        let d = config.dModel
        return sequences.enumerated().map { bi, s in
            var sum = [Double](repeating: 0, count: d)
            for i in 0..<s.count {
                let row = h + (bi * t + i) * d
                for j in 0..<d { sum[j] += Double(row[j]) }
            }
            let count = Double(max(s.count, 1))
            var v = sum.map { Float($0 / count) }
            if normalize {
                let norm = max(v.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot(), 1e-12)
                v = v.map { Float(Double($0) / norm) }
            }
            return v
        }
    }
}
