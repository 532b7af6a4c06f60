/// Where layer norm sits relative to each residual connection.
public enum NormPlacement: String, Codable, Sendable, CaseIterable {
    /// The paper: `x = LayerNorm(x + Sublayer(x))`.
    case post
    /// GPT-2 and most modern models: `x = x + Sublayer(LayerNorm(x))`, with a final layer norm.
    case pre
}

public enum Activation: String, Codable, Sendable, CaseIterable {
    case relu
    /// Exact GELU, `x·Φ(x)`.
    case gelu
    /// GELU, tanh approximation (GPT-2).
    case geluTanh = "gelu_tanh"
}

public enum PositionKind: String, Codable, Sendable, CaseIterable {
    /// The paper's fixed sin/cos table.
    case sinusoidal
    /// A trained table `[maxLength, dModel]` (BERT, GPT-2).
    case learned
}

public enum EmbeddingSharing: String, Codable, Sendable, CaseIterable {
    /// Source embedding, target embedding and output projection are three matrices.
    case separate
    /// The output projection is the transpose of the target embedding (the paper, GPT-2).
    case tiedOutput = "tied_output"
    /// One embedding for source and target (a joint vocabulary), tied to the output too (the paper).
    case all
}

/// The shape and conventions of an encoder–decoder Transformer. Every convention on which
/// tutorials differ is a named field, and the trace prints them, so a reader can match an article.
public struct TransformerConfig: Codable, Sendable, Equatable {
    public var dModel: Int = 6
    public var heads: Int = 2
    /// Width of one head's queries, keys and values. `nil` means `dModel / heads`, as in the paper.
    public var explicitHeadSize: Int? = nil
    public var dFF: Int = 12
    public var encoderLayers: Int = 1
    public var decoderLayers: Int = 1
    public var sourceVocabSize: Int = 0
    public var targetVocabSize: Int = 0
    /// Longest sequence the positional table covers.
    public var contextLength: Int = 64
    public var norm: NormPlacement = .post
    public var activation: Activation = .relu
    public var positions: PositionKind = .sinusoidal
    public var embeddings: EmbeddingSharing = .separate
    /// Multiply embeddings by √d_model before adding positions (the paper does; most by-hand articles do not).
    public var scaleEmbeddings: Bool = false
    /// Biases on the Q, K, V and output projections (PyTorch's default; the paper's formulas have none).
    public var attentionBias: Bool = false
    public var layerNormEps: Float = 1e-5

    public init() {}

    enum CodingKeys: String, CodingKey {
        case dModel = "d_model", heads, explicitHeadSize = "d_k", dFF = "d_ff", encoderLayers = "encoder_layers"
        case decoderLayers = "decoder_layers", sourceVocabSize = "source_vocab_size", targetVocabSize = "target_vocab_size"
        case contextLength = "max_length", norm, activation, positions, embeddings, scaleEmbeddings = "scale_embeddings"
        case attentionBias = "attention_bias", layerNormEps = "layer_norm_eps"
    }

    /// The width of one head's queries, keys and values (the paper's d_k).
    public var headSize: Int { explicitHeadSize ?? (heads > 0 ? dModel / heads : 0) }
    /// Width of the concatenated heads (`h · d_k`), the input width of the output projection W_O.
    public var attentionWidth: Int { heads * headSize }

    /// Checks the sizes fit together; throws a message a user can act on.
    public func validate() throws {
        func fail(_ s: String) throws -> Never { throw ConfigError(message: s) }
        if dModel < 1 { try fail("d_model must be at least 1 (got \(dModel))") }
        if heads < 1 { try fail("heads must be at least 1 (got \(heads))") }
        if let h = explicitHeadSize {
            if h < 1 { try fail("d_k must be at least 1 (got \(h))") }
        } else if dModel % heads != 0 {
            try fail(
                "d_model \(dModel) is not divisible by heads \(heads): d_k = d_model / h must be a whole number (or give d_k explicitly)")
        }
        if dFF < 1 { try fail("d_ff must be at least 1 (got \(dFF))") }
        if encoderLayers < 0 || decoderLayers < 1 {
            try fail("need at least 0 encoder layers and 1 decoder layer (got \(encoderLayers), \(decoderLayers))")
        }
        if sourceVocabSize < 1 || targetVocabSize < 1 {
            try fail("vocabulary sizes must be positive (got \(sourceVocabSize), \(targetVocabSize))")
        }
        if embeddings == .all && sourceVocabSize != targetVocabSize {
            try fail("shared source/target embeddings need one vocabulary (got sizes \(sourceVocabSize) and \(targetVocabSize))")
        }
        if contextLength < 1 { try fail("max length must be at least 1 (got \(contextLength))") }
        if !(layerNormEps > 0) { try fail("layer-norm epsilon must be positive") }
    }

    /// One line per convention, printed at the top of every trace.
    public var conventions: [String: String] {
        [
            "norm": norm == .post
                ? "post-norm: LayerNorm(x + Sublayer(x)) (the paper)" : "pre-norm: x + Sublayer(LayerNorm(x)), final LayerNorm",
            "activation": activation.rawValue,
            "positions": positions == .sinusoidal ? "sinusoidal (fixed)" : "learned table",
            "embeddings": embeddings.rawValue,
            "embedding_scale": scaleEmbeddings ? "×√d_model" : "none",
            "attention_bias": attentionBias ? "yes" : "no",
            "d_k": "\(headSize)" + (explicitHeadSize == nil ? " = d_model / h" : " (set explicitly)"),
            "weights": "x · W with W stored [in, out] (PyTorch stores [out, in])"
        ]
    }
}
