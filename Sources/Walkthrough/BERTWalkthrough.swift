import Foundation
import TensorKit
import TransformerKit

/// `transformer walkthrough --model bert --checkpoint DIR`: a real BERT-family model (all-MiniLM-L6-v2)
/// run on one sentence and recorded step by step into the same `TraceDocument` as the other
/// walkthroughs, so every renderer, `--steps` filter and the replay read it.
public enum BERTWalkthrough {
    /// Tokenizes `text` with the folder's WordPiece tokenizer, runs the traced model and wraps the steps.
    public static func document(encoder: SentenceEncoder, text: String, notes: [String]) throws -> TraceDocument {
        let ids = encoder.tokenize(text)
        let tokens = encoder.tokenizer.tokens(ids)
        let tracer = Tracer()
        do { _ = try TracedBERT(encoder.model).forward(ids: ids, tokens: tokens, trace: tracer) } catch let e as ConfigError {
            throw WalkthroughError(e.message)
        }
        let b = encoder.model.config
        return TraceDocument(
            title: "BERT walkthrough: \(text)", config: equivalentConfig(b), conventions: conventions(b),
            corpus: [], vocabulary: encoder.tokenizer.pieces, corpusTokenCount: encoder.tokenizer.vocabularySize, source: text, target: "",
            notes: notes, steps: tracer.steps, parameters: tracer.parameters)
    }

    /// BERT in the encoder–decoder's terms: the encoder only.
    static func equivalentConfig(_ b: BERTConfig) -> TransformerConfig {
        var c = TransformerConfig()
        c.dModel = b.dModel; c.heads = b.heads; c.dFF = b.dFF
        c.encoderLayers = b.layers; c.decoderLayers = 0
        c.sourceVocabSize = b.vocabSize; c.targetVocabSize = b.vocabSize; c.contextLength = b.contextLength
        c.norm = .post; c.activation = b.hiddenAct == "gelu" ? .gelu : .geluTanh
        c.positions = .learned; c.embeddings = .separate; c.attentionBias = true; c.layerNormEps = b.layerNormEps
        return c
    }

    static func conventions(_ b: BERTConfig) -> [String: String] {
        [
            "model": "BERT encoder (no decoder): word + position + token-type embeddings, embedding layer norm",
            "norm": "post-norm: LayerNorm(x + Sublayer(x)), as the paper (ε = \(b.layerNormEps))",
            "activation": b.hiddenAct == "gelu" ? "gelu (exact, x·Φ(x))" : "\(b.hiddenAct) (tanh form)",
            "positions": "learned table, \(b.contextLength) positions",
            "embeddings": "input only (no output layer): the sentence embedding is the mean of the last hidden state, L2-normalised",
            "mask": "none within one sentence (padding keys only, in a batch)",
            "attention_bias": "yes",
            "d_k": "\(b.dModel / b.heads) = d_model / h",
            "weights": "x · W with W stored [in, out] (Hugging Face stores [out, in]; transposed on loading)"
        ]
    }
}
