import ArgumentParser
import Foundation
import TransformerKit
import Walkthrough

/// The options that define a walkthrough's input; shared by `walkthrough` and `check` so that
/// `check` compares against exactly the computation the learner saw.
struct WalkthroughOptions: ParsableArguments {
    @Option(
        help:
            """
            Which model: seq2seq (the encoder–decoder of seed 002), gpt (decoder only, GPT-2 layout), bert (a BERT / \
            sentence-transformers folder given with --checkpoint, e.g. all-MiniLM-L6-v2), or a .gguf file (Llama architecture, \
            e.g. SmolLM2; text output, one line per block).
            """
    )
    var model: String = "seq2seq"
    @Option(
        help:
            """
            GPT: a checkpoint to walk through (a run of `transformer train --model gpt`, a checkpoint folder, or a Hugging Face \
            GPT-2 folder). BERT: the model folder (required).
            """
    )
    var checkpoint: String?
    @Option(
        help:
            """
            GPT: the text to run through the model (default: 马无夜草不肥, or the first corpus line). BERT: the sentence (default: A \
            man is playing a guitar.).
            """
    )
    var prompt: String?
    @Option(help: "GPT with --checkpoint: token ids instead of --prompt (comma-separated), e.g. for a folder without a tokenizer.")
    var ids: String?
    @Option(help: "Corpus file, one sentence per line (default: the seed 002 corpus).")
    var corpus: String?
    @Option(help: "Corpus given inline; lines separated by '\\n' or '|'.")
    var text: String?
    @Option(help: "Source sentence (default: 马无夜草不肥).")
    var source: String?
    @Option(help: "Target sentence (default: 人无横财不富).")
    var target: String?
    @Option(help: "Tokenizer: char (one token per character, punctuation dropped) or word.")
    var tokenizer: String = "char"
    @Option(name: .customLong("d-model"), help: "Model width d_model.")
    var dModel: Int?
    @Option(help: "Attention heads h.")
    var heads: Int?
    @Option(name: .customLong("d-k"), help: "Width of one head (default d_model / heads).")
    var dK: Int?
    @Option(name: .customLong("d-ff"), help: "Feed-forward hidden width.")
    var dFF: Int?
    @Option(help: "Encoder and decoder layers.")
    var layers: Int?
    @Option(help: "Layer-norm placement: post (the paper) or pre.")
    var norm: String?
    @Option(help: "Activation: relu, gelu or gelu_tanh.")
    var activation: String?
    @Option(help: "Positions: sinusoidal or learned.")
    var positions: String?
    @Option(help: "Embedding sharing: all (one joint table, tied output), tied_output, separate.")
    var embeddings: String?
    @Flag(help: "Multiply embeddings by √d_model (as the paper does).")
    var scaleEmbeddings = false
    @Option(name: .customLong("max-length"), help: "Positions in the positional table.")
    var maxLength: Int?
    @Option(help: "Seed for the weights.")
    var seed: UInt64 = 42
    @Option(help: "JSON weights file to use over the seeded weights; 'article' for the bundled seed 002 numbers.")
    var weights: String?

    @Flag(
        help:
            """
            After the forward pass, show one training step: the gradient at the logits, the output layer's and an attention \
            block's gradients, and W_Q before → after.
            """
    )
    var train = false
    @Option(help: "Learning rate η of that step.")
    var learningRate: Float = 0.5

    /// The trace these options describe: the encoder–decoder walkthrough or, with `--model gpt`, the GPT one.
    func document() throws -> TraceDocument {
        switch model {
        case "seq2seq":
            for (flag, given) in [("--checkpoint", checkpoint != nil), ("--prompt", prompt != nil), ("--ids", ids != nil)] where given {
                throw WalkthroughError("\(flag) is for --model gpt")
            }
            return try setup().run()
        case "gpt": return try gptDocument()
        case "bert": return try bertDocument()
        default: throw WalkthroughError("--model must be seq2seq, gpt, bert or a .gguf file (got \(model))")
        }
    }

    func setup() throws -> WalkthroughSetup {
        var s = WalkthroughSetup()
        s.trainStep = train
        s.learningRate = learningRate
        if let corpus {
            let url = URL(fileURLWithPath: corpus)
            guard let data = FileManager.default.contents(atPath: corpus) else {
                throw WalkthroughError("\(corpus): cannot read the corpus file")
            }
            guard let str = String(data: data, encoding: .utf8) else { throw WalkthroughError("\(url.path): the corpus is not UTF-8 text") }
            s.corpus = str.components(separatedBy: .newlines)
        }
        if let text {
            s.corpus = text.replacingOccurrences(of: "\\n", with: "\n").components(separatedBy: CharacterSet(charactersIn: "\n|"))
        }
        if let source { s.source = source }
        if let target { s.target = target }
        guard let tk = WalkthroughSetup.TokenizerKind(rawValue: tokenizer) else {
            throw WalkthroughError("--tokenizer must be char or word (got \(tokenizer))")
        }
        s.tokenizer = tk
        if corpus != nil || text != nil, source == nil, target == nil {
            // A user corpus: translate its first line's halves, or the first two lines.
            let lines = s.corpus.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if lines.count >= 2 { s.source = lines[0]; s.target = lines[1] } else if let l = lines.first { s.source = l; s.target = l }
        }
        if let weights {
            s.weightsFile = weights == "article" ? try bundledArticleWeights() : URL(fileURLWithPath: weights)
        }
        func parse<T: RawRepresentable>(_ v: String?, _ name: String) throws -> T? where T.RawValue == String, T: CaseIterable {
            guard let v else { return nil }
            guard let t = T(rawValue: v) else {
                throw WalkthroughError("--\(name) must be one of \(T.allCases.map(\.rawValue).joined(separator: ", ")) (got \(v))")
            }
            return t
        }
        var c = s.config
        if let dModel { c.dModel = dModel }
        if let heads { c.heads = heads }
        if let dK { c.explicitHeadSize = dK }
        if let dFF { c.dFF = dFF }
        if let layers { c.encoderLayers = layers; c.decoderLayers = layers }
        if let n: NormPlacement = try parse(norm, "norm") { c.norm = n }
        if let a: Activation = try parse(activation, "activation") { c.activation = a }
        if let p: PositionKind = try parse(positions, "positions") { c.positions = p }
        if let e: EmbeddingSharing = try parse(embeddings, "embeddings") { c.embeddings = e }
        if scaleEmbeddings { c.scaleEmbeddings = true }
        if let maxLength { c.contextLength = maxLength }
        s.config = c
        s.seed = seed
        return s
    }
}

/// The bundled weights file with the numbers seed 002 prints.
func bundledArticleWeights() throws -> URL {
    guard let url = WalkthroughResources.articleWeightsURL else {
        throw WalkthroughError("the bundled article weights file is missing from this build")
    }
    return url
}
