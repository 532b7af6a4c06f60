import Foundation

/// Text ↔ ids for a translation model, saved beside its weights as `tokenizer.json`.
/// One joint vocabulary serves source and target (so embeddings can be shared, as in the paper).
public struct SentenceCodec: Sendable {
    /// Characters, words, or byte-level BPE.
    public enum Kind: String, Codable, Sendable, CaseIterable { case char, word, bpe }
    /// Which of the three this is.
    public let kind: Kind
    /// Ids for char and word codecs.
    public let vocabulary: Vocabulary?
    /// The byte-level BPE for `bpe` codecs; its special tokens are `<pad> <start> <end> <unk>`.
    public let bpe: ByteLevelBPE?

    /// `<pad> <start> <end> <unk>`: the special tokens every codec has.
    public static let specials = SpecialToken.allCases.map(\.rawValue)

    /// Builds a codec from training text.
    public static func build(
        kind: Kind, texts: [String], vocabularySize: Int = 8000,
        progress: ((Int, Int) -> Void)? = nil
    ) throws -> SentenceCodec {
        switch kind {
        case .char, .word:
            let tok = tokenizer(kind)
            let v = Vocabulary(corpusTokens: texts.flatMap { tok.tokenize($0) })
            guard v.corpusTokenCount > 0 else { throw TokenizerError("the corpus has no tokens") }
            return SentenceCodec(kind: kind, vocabulary: v, bpe: nil)
        case .bpe:
            let b = ByteLevelBPE.train(texts: texts, vocabSize: vocabularySize, specialTokens: specials, progress: progress)
            return SentenceCodec(kind: kind, vocabulary: nil, bpe: b)
        }
    }

    static func tokenizer(_ kind: Kind) -> Tokenizing {
        kind == .word ? WordTokenizer(dropPunctuation: false) : CharTokenizer(dropPunctuation: false, dropWhitespace: false)
    }

    /// The number of ids, special tokens included.
    public var vocabularySize: Int { vocabulary?.count ?? bpe!.vocabSize }
    /// The id of `<pad>` (ignored by the loss).
    public var padID: Int { special(.pad) }
    /// The id of `<start>`, which begins every decoder input.
    public var startID: Int { special(.start) }
    /// The id of `<end>`, which ends every target.
    public var endID: Int { special(.end) }
    /// The id of `<unk>` (char and word codecs map unseen tokens to it).
    public var unkID: Int { special(.unk) }

    func special(_ s: SpecialToken) -> Int {
        if let vocabulary { return vocabulary.id(s) }
        return bpe!.id(forSpecial: s.rawValue)!
    }

    /// Text → ids, without `<start>` or `<end>`; unseen characters or words become `<unk>`.
    public func encode(_ text: String) -> [Int] {
        if let vocabulary { return Self.tokenizer(kind).encode(text, vocabulary: vocabulary) }
        return bpe!.encode(text)
    }

    /// Ids → text; stops at `<end>` and drops the other specials.
    public func decode(_ ids: [Int]) -> String {
        var kept: [Int] = []
        for id in ids {
            if id == endID { break }
            if id == padID || id == startID { continue }
            kept.append(id)
        }
        if let vocabulary { return Self.tokenizer(kind).decode(kept, vocabulary: vocabulary) }
        return bpe!.decode(kept)
    }

    /// A display string per id (the labels of a trace).
    public func tokenLabel(_ id: Int) -> String {
        if let vocabulary { return vocabulary.token(id) }
        return bpe!.decode([id])
    }

    // MARK: Saving

    /// The codec as `tokenizer.json` describes it (Hugging Face's schema: `TokenizerJSON`).
    public var tokenizerModel: TokenizerJSON.Model {
        if let bpe { return .byteLevelBPE(bpe) }
        let split: TokenizerJSON.WordLevelSplit = kind == .word ? .words : .charactersWithoutLineBreaks
        return .wordLevel(tokens: vocabulary!.tokens, split: split, unknown: SpecialToken.unk.rawValue)
    }

    /// The `tokenizer.json` the trainer saves beside a translation model.
    public func jsonData() -> Data { TokenizerJSON.data(tokenizerModel) }

    /// Reads a `tokenizer.json` written by `jsonData()` (or by an earlier version of this project).
    /// - Throws: `TokenizerError` naming the file when it cannot be read or is not such a file.
    public static func load(_ url: URL) throws -> SentenceCodec {
        try codec(TokenizerJSON.read(url), name: url.path)
    }

    /// Same as `load(_:)`, from the file's bytes; `name` names it in errors.
    public static func load(data: Data, name: String) throws -> SentenceCodec {
        try codec(TokenizerJSON.read(data: data, name: name), name: name)
    }

    static func codec(_ model: TokenizerJSON.Model, name: String) throws -> SentenceCodec {
        switch model {
        case .wordLevel(let tokens, let split, _) where split != .characters:
            let v: Vocabulary
            do { v = try Vocabulary(tokens: tokens) } catch let e as TokenizerError { throw TokenizerError("\(name): \(e.message)") }
            return SentenceCodec(kind: split == .words ? .word : .char, vocabulary: v, bpe: nil)
        case .byteLevelBPE(let b):
            for s in specials where b.id(forSpecial: s) == nil {
                throw TokenizerError("\(name): a translation model's BPE needs the special token \(s)")
            }
            return SentenceCodec(kind: .bpe, vocabulary: nil, bpe: b)
        case .wordLevel:
            throw TokenizerError("\(name): a GPT's character vocabulary (no <pad> <start> <end> <unk>), not a translation model's")
        case .wordPiece:
            throw TokenizerError("\(name): a WordPiece (BERT) tokenizer, not a translation model's")
        }
    }
}
