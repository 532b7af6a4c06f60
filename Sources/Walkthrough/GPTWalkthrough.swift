import Foundation
import TensorKit
import TransformerKit

/// `transformer walkthrough --model gpt`: a GPT forward pass recorded step by step into the same
/// `TraceDocument` as the encoder–decoder walkthrough, so every renderer, replay and `check` read it.
///
/// By default a tiny seeded GPT on the seed corpus (char or word tokens); `document(model:…)` takes
/// any loaded model (a checkpoint from `transformer train --model gpt` or a Hugging Face GPT-2 folder).
public struct GPTWalkthroughSetup: Sendable {
    public var corpus: [String] = SeedExample.corpus
    /// The text fed to the model; nil means the seed's 马无夜草不肥, or the first line of another corpus.
    public var prompt: String? = nil
    public var tokenizer: WalkthroughSetup.TokenizerKind = .char
    /// Sizes; `vocabSize` is set from the corpus.
    public var config = GPTConfig(vocabSize: 1, contextLength: 16, dModel: 8, layers: 1, heads: 2)
    public var seed: UInt64 = 42

    public init() {}

    public func run() throws -> TraceDocument {
        let (lines, tok, vocab) = try WalkthroughSetup.corpusVocabulary(corpus, tokenizer)
        let text = prompt ?? (corpus == SeedExample.corpus ? SeedExample.source : lines[0])
        let tokens = tok.tokenize(text)
        guard !tokens.isEmpty else { throw WalkthroughError("the text to run (--prompt) has no tokens") }
        var notes: [String] = []
        let (ids, unknown) = vocab.ids(for: tokens)
        if !unknown.isEmpty {
            notes.append("Note: the text has tokens not in the corpus vocabulary, mapped to <unk>: \(unknown.joined(separator: " "))")
        }
        var c = config
        c.vocabSize = vocab.count
        guard ids.count <= c.contextLength else {
            throw WalkthroughError(
                "the text has \(ids.count) tokens but the context is \(c.contextLength) positions; raise --max-length or shorten --prompt")
        }
        do { try c.validate() } catch let e as ConfigError { throw WalkthroughError(e.message) }
        // GPT-2's N(0, 0.02) is meant for d_model 768; at d_model 8 it would make every number on the
        // page tiny and every attention row uniform. Same draws, scaled to N(0, 1/√d_model).
        var ps = ParameterSet()
        let initial = c.initialParameters(seed: seed)
        let factor = Float(1 / Double(c.dModel).squareRoot()) / 0.02
        for name in initial.names {
            let t = initial[name]!
            ps.add(name, t.shape.count == 2 ? TensorKit.scale(t, factor) : t)
        }
        notes.append(
            """
            A tiny GPT with seeded random weights: GPT-2's initialisation, scaled from N(0, 0.02) to N(0, 1/√d_model) so that the \
            numbers are visible at this size (biases 0, layer-norm gains 1). For learnt weights train one (transformer train \
            --model gpt) and pass --checkpoint.
            """
        )
        let model = try TracedGPT(config: c, parameters: ps)
        return try GPTWalkthrough.document(
            model: model, ids: ids, tokens: ids.map { vocab.token($0) }, vocabulary: vocab.tokens,
            corpusTokenCount: vocab.corpusTokenCount, corpus: lines, text: text, notes: notes)
    }
}

public enum GPTWalkthrough {
    /// Runs `ids` through `model` with a tracer and wraps the steps in a document. `tokens` label the
    /// rows, `vocabulary` every id (columns of the logits). `corpus` may be empty (a checkpoint's text).
    public static func document(
        model: TracedGPT, ids: [Int], tokens: [String], vocabulary: [String], corpusTokenCount: Int,
        corpus: [String], text: String, notes: [String]
    ) throws -> TraceDocument {
        let tracer = Tracer()
        do {
            _ = try model.forward(ids: ids, tokens: tokens, vocabularyTokens: vocabulary, trace: tracer)
        } catch let e as ConfigError {
            throw WalkthroughError(e.message)
        }
        let g = model.config
        return TraceDocument(
            title: "GPT walkthrough: \(text)", config: equivalentConfig(g), conventions: conventions(g),
            corpus: corpus, vocabulary: vocabulary, corpusTokenCount: corpusTokenCount, source: text, target: "",
            notes: notes, steps: tracer.steps, parameters: tracer.parameters, gpt: g)
    }

    /// GPT in the encoder–decoder's terms: no encoder, decoder blocks without cross-attention.
    static func equivalentConfig(_ g: GPTConfig) -> TransformerConfig {
        var c = TransformerConfig()
        c.dModel = g.dModel; c.heads = g.heads; c.dFF = g.dFF
        c.encoderLayers = 0; c.decoderLayers = g.layers
        c.sourceVocabSize = g.vocabSize; c.targetVocabSize = g.vocabSize; c.contextLength = g.contextLength
        c.norm = .pre; c.activation = g.activation == "gelu" ? .gelu : .geluTanh
        c.positions = .learned; c.embeddings = .tiedOutput; c.attentionBias = true; c.layerNormEps = g.layerNormEps
        return c
    }

    static func conventions(_ g: GPTConfig) -> [String: String] {
        [
            "model": "GPT (decoder only, GPT-2 layout): no encoder, no cross-attention",
            "norm": "pre-norm: x + Sublayer(LayerNorm(x)), final LayerNorm (ln_f)",
            "activation": g.activation == "gelu" ? "gelu (exact)" : "gelu_tanh (GPT-2's \(g.activation))",
            "positions": "learned table (wpe), \(g.contextLength) positions",
            "embeddings": "output tied to the token embedding (logits = X · W_teᵀ)",
            "mask": "causal only: position i sees 0…i",
            "attention_bias": "yes (Q, K, V from one fused projection c_attn)",
            "d_k": "\(g.headSize) = d_model / h",
            "weights": "x · W with W stored [in, out] (GPT-2's Conv1D layout)"
        ]
    }
}
