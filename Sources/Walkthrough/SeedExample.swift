import Foundation
import TensorKit
import TransformerKit
import Tokenizers

/// The worked example of seed 002 ("简述 Transformer 训练计算过程"): its corpus and sentence pair.
public enum SeedExample {
    public static let corpus = [
        "白日依山尽，黄河入海流。",
        "马无夜草不肥，人无横财不富。",
        "天行健，君子以自强不息，地势坤，君子以厚德载物。"
    ]
    public static let source = "马无夜草不肥"
    public static let target = "人无横财不富"

    /// Where the article goes wrong, and what this walkthrough does instead.
    public static let articleErrors = [
        """
        Vocabulary: the article counts 36 distinct characters, then says the size is 26. It is 36 (plus our 4 special tokens, \
        listed separately).
        """,
        "Its first listing of N has 我 where the corpus has 无 (人无横财不富).",
        """
        Positional encoding: the per-element table for 马 lists the embedding values (e1) beside the PE values, and the full PE \
        table is printed transposed (rows are dimensions) yet added as if rows were tokens. Positions start at 0; i in \
        10000^(2i/d) is the pair index.
        """,
        "Q, K and V are printed equal to the query weight matrix. They are X·W_Q, X·W_K, X·W_V, with three different weight matrices.",
        """
        'Query × Transpose(Key)' is printed as a sum of two unrelated matrices; the scores are Q·Kᵀ, one dot product per (query, \
        key) pair.
        """,
        """
        Scaling: the article's 'scaled' matrix is larger than before (it multiplied) and names d_model = 6; the scores are \
        divided by √d_k, the width of one head's keys.
        """,
        "Softmax: the printed rows do not sum to 1 (the first sums to 1.0456). Every softmax row sums to 1.",
        """
        The look-ahead mask is described in the encoder; the encoder uses only a padding mask. The causal mask belongs to the \
        decoder's self-attention.
        """,
        "The Value matrix used in softmax × V appears nowhere before; here V = X·W_V.",
        "Add & norm: the printed means and standard deviations do not match the printed matrix.",
        """
        Feed-forward: the article uses one linear layer and a ReLU, and its 'ReLU' output still has negative entries (-0.57). The \
        paper's FFN is Linear → ReLU → Linear: max(0, xW1 + b1)W2 + b2.
        """,
        """
        Cross-attention: the article says the encoder output supplies Q and K and the decoder supplies V. The decoder supplies Q; \
        the encoder output supplies K and V.
        """,
        """
        The decoder input is '<start> 人 无 横 财 不 富' (shifted right); <end> is the last *target*, not an input. In training all \
        positions are computed at once under the causal mask (teacher forcing), not one token at a time.
        """,
        """
        The final linear layer is applied to every position: [n, d_model] · [d_model, V] gives one row of logits per position. \
        Nothing is flattened into one long row.
        """
    ]
}

/// Everything a walkthrough needs, with the seed example as the default.
public struct WalkthroughSetup: Sendable {
    public enum TokenizerKind: String, Sendable, CaseIterable { case char, word }

    public var corpus: [String] = SeedExample.corpus
    public var source: String = SeedExample.source
    public var target: String = SeedExample.target
    public var tokenizer: TokenizerKind = .char
    public var config = TransformerConfig()
    public var seed: UInt64 = 42
    public var weightsFile: URL? = nil
    /// Append one training step (gradients and a weight update) after the forward pass.
    public var trainStep = false
    /// η of that step's gradient-descent update.
    public var learningRate: Float = 0.5
    /// Notes gathered while setting up (input mapped to <unk>, weights file applied, …).
    public private(set) var notes: [String] = []

    public init() {
        config.embeddings = .all  // the seed's source and target share one corpus, so one vocabulary
    }

    /// The corpus's non-empty lines, the tokenizer and the vocabulary of its tokens (both walkthroughs).
    static func corpusVocabulary(_ corpus: [String], _ kind: TokenizerKind) throws -> (
        lines: [String], tokenizer: Tokenizing, vocabulary: Vocabulary
    ) {
        let lines = corpus.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
        guard !lines.isEmpty else { throw WalkthroughError("the corpus is empty: give at least one non-empty line") }
        let tok: Tokenizing = kind == .char ? CharTokenizer(dropPunctuation: true) : WordTokenizer(dropPunctuation: true)
        let corpusTokens = lines.flatMap { tok.tokenize($0) }
        guard !corpusTokens.isEmpty else { throw WalkthroughError("the corpus has no tokens after dropping punctuation and spaces") }
        return (lines, tok, Vocabulary(corpusTokens: corpusTokens))
    }

    public var isSeedExample: Bool {
        corpus == SeedExample.corpus && source == SeedExample.source && target == SeedExample.target
    }

    /// Builds the vocabulary, the model and the trace.
    public func run() throws -> TraceDocument {
        var notes = self.notes
        var config = self.config
        var weights: WeightsFile? = nil
        if let url = weightsFile {
            let w = try WeightsFile.load(from: url)
            w.config?.apply(to: &config)
            weights = w
            notes.append("Weights from \(url.lastPathComponent)\(w.description.map { ": \($0)" } ?? "").")
        }
        let (lines, tok, vocab) = try Self.corpusVocabulary(corpus, tokenizer)
        let srcTokens = tok.tokenize(source), tgtTokens = tok.tokenize(target)
        guard !srcTokens.isEmpty else { throw WalkthroughError("the source sentence is empty") }
        guard !tgtTokens.isEmpty else { throw WalkthroughError("the target sentence is empty") }
        let (srcIDs, srcUnknown) = vocab.ids(for: srcTokens)
        let (tgtIDs, tgtUnknown) = vocab.ids(for: tgtTokens)
        for (what, unknown) in [("source", srcUnknown), ("target", tgtUnknown)] where !unknown.isEmpty {
            notes.append("Note: the \(what) has tokens not in the corpus vocabulary, mapped to <unk>: \(unknown.joined(separator: " "))")
        }
        config.sourceVocabSize = vocab.count
        config.targetVocabSize = vocab.count
        // Decoder input <start> y… and targets y… <end> must both fit the positional table.
        let longest = max(srcIDs.count, tgtIDs.count + 1)
        if longest > config.contextLength {
            throw WalkthroughError(
                "the sequence has \(longest) positions but the positional table has \(config.contextLength); raise --max-length")
        }
        do { try config.validate() } catch let e as ConfigError { throw WalkthroughError(e.message) }
        var model = try TracedEncoderDecoder(config: config, seed: seed)
        if let weights { try weights.apply(to: &model.parameters, vocabulary: vocab, file: weightsFile!.path) }
        let tracer = Tracer()
        let srcLabels = srcIDs.map { vocab.token($0) }
        let decIn = [vocab.startID] + tgtIDs
        let decOut = tgtIDs + [vocab.endID]
        _ = try model.forward(
            source: srcIDs, target: decIn, targets: decOut,
            sourceTokens: srcLabels, targetTokens: decIn.map { vocab.token($0) },
            vocabularyTokens: vocab.tokens, trace: tracer)
        if isSeedExample && weightsFile == nil || weights?.isArticle == true {
            notes.append(contentsOf: SeedExample.articleErrors.map { "Seed 002: " + $0 })
        }
        var doc = TraceDocument(
            title: "Transformer walkthrough: \(source) → \(target)", config: config, conventions: config.conventions,
            corpus: lines, vocabulary: vocab.tokens, corpusTokenCount: vocab.corpusTokenCount,
            source: source, target: target, notes: notes, steps: tracer.steps, parameters: tracer.parameters)
        if trainStep { try TrainingStepTrace.append(to: &doc, learningRate: learningRate) }
        return doc
    }
}
