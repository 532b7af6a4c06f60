import Foundation
import ModelFiles

/// Text ↔ ids for a GPT: characters (nanoGPT's `shakespeare_char`: the sorted distinct characters
/// of the text) or byte-level BPE (which takes any bytes). Saved as `tokenizer.json`.
public struct TextTokenizer: Sendable {
    /// Characters (`char`) or byte-level BPE (`bpe`).
    public enum Kind: String, Codable, Sendable { case char, bpe }
    /// Which of the two this is.
    public let kind: Kind
    /// A char tokenizer's vocabulary: id i is `chars[i]` (empty for BPE).
    public let chars: [Character]
    /// A BPE tokenizer's tables (nil for char).
    public let bpe: ByteLevelBPE?
    /// Keyed by exact UTF-8, so that "é" and "e\u{301}" are two characters, as in Hugging Face.
    private let index: [[UInt8]: Int]

    /// A char tokenizer over the distinct characters of `text`, sorted by their Unicode scalars
    /// (as Python's `sorted(set(text))`, so ids match nanoGPT's).
    /// - Throws: `TokenizerError` when `text` is empty.
    public init(characters text: String) throws {
        var seen = Set<[UInt8]>(), distinct: [Character] = []
        for ch in text where seen.insert(Array(String(ch).utf8)).inserted { distinct.append(ch) }
        guard !distinct.isEmpty else { throw TokenizerError("the text is empty: a character tokenizer needs at least one character") }
        // Sorted by Unicode scalars, as Python's sorted(set(text)) orders them.
        chars = distinct.sorted { $0.unicodeScalars.map(\.value).lexicographicallyPrecedes($1.unicodeScalars.map(\.value)) }
        index = Dictionary(uniqueKeysWithValues: chars.enumerated().map { (Array(String($1).utf8), $0) })
        kind = .char; bpe = nil
    }

    /// A BPE tokenizer with `bpe`'s tables.
    public init(bpe: ByteLevelBPE) {
        kind = .bpe; self.bpe = bpe; chars = []; index = [:]
    }

    /// The number of ids (the model's vocabulary size).
    public var vocabularySize: Int { kind == .char ? chars.count : bpe!.vocabSize }

    /// Characters missing from a char vocabulary are reported, not dropped silently.
    public func encode(_ text: String) throws -> [Int] {
        if let bpe { return bpe.encode(text) }
        var out: [Int] = []
        out.reserveCapacity(text.count)
        for ch in text {
            guard let i = index[Array(String(ch).utf8)] else {
                throw TokenizerError("the character \(ch.debugDescription) is not in this model's vocabulary of \(chars.count) characters")
            }
            out.append(i)
        }
        return out
    }

    /// Ids → text; with a char vocabulary an id out of range becomes U+FFFD.
    public func decode(_ ids: [Int]) -> String {
        if let bpe { return bpe.decode(ids) }
        return String(ids.map { $0 >= 0 && $0 < chars.count ? chars[$0] : "\u{FFFD}" })
    }

    /// A char tokenizer with ids in the given order (as a saved file lists them).
    /// - Throws: `TokenizerError` when an entry is not one character or appears twice.
    public init(orderedCharacters: [String]) throws {
        var index: [[UInt8]: Int] = [:]
        for (i, s) in orderedCharacters.enumerated() {
            guard s.count == 1 else {
                throw TokenizerError("character \(i) of the vocabulary is \(quotedForMessage(s)), not one character")
            }
            guard index.updateValue(i, forKey: Array(s.utf8)) == nil else {
                throw TokenizerError("the character \(quotedForMessage(s)) appears twice")
            }
        }
        guard !index.isEmpty else { throw TokenizerError("the character vocabulary is empty") }
        chars = orderedCharacters.map { $0.first! }
        self.index = index
        kind = .char; bpe = nil
    }

    /// The tokenizer as `tokenizer.json` describes it (Hugging Face's schema: `TokenizerJSON`).
    public var tokenizerModel: TokenizerJSON.Model {
        if let bpe { return .byteLevelBPE(bpe) }
        return .wordLevel(tokens: chars.map(String.init), split: .characters, unknown: nil)
    }

    /// The `tokenizer.json` the trainer saves beside a GPT.
    public func jsonData() -> Data { TokenizerJSON.data(tokenizerModel) }

    /// The tokenizer of a checkpoint folder: this project's `tokenizer.json`, or GPT-2's
    /// `vocab.json` + `merges.txt` as Hugging Face saves them.
    public static func load(directory dir: URL) throws -> TextTokenizer {
        // The first that loads wins; if none does, the first one's error says why.
        var firstError: Error?
        let folder = try? ModelFolder(dir, kind: "a GPT folder", expected: "a tokenizer")
        for files in folder?.tokenizerFiles ?? [] {
            do {
                switch files {
                case .tokenizerJSON(let url): return try load(url)
                case .vocabAndMerges(let vocab, let merges):
                    do { return TextTokenizer(bpe: try ByteLevelBPE(vocabURL: vocab, mergesURL: merges)) } catch {
                        throw TokenizerError("\(dir.path): vocab.json/merges.txt do not load (\(error))")
                    }
                case .wordPieceVocab: continue
                }
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        if let firstError { throw firstError }
        throw TokenizerError(
            "\(dir.path): no tokenizer (tokenizer.json, or vocab.json and merges.txt); `transformer logits --ids` works without one")
    }

    /// Reads a `tokenizer.json`: one written by `jsonData()` (or an earlier version), or Hugging Face's
    /// byte-level BPE (GPT-2's).
    /// - Throws: `TokenizerError` naming the file when it cannot be read or is not such a file.
    public static func load(_ url: URL) throws -> TextTokenizer {
        try tokenizer(TokenizerJSON.read(url), name: url.path)
    }

    /// Same as `load(_:)`, from the file's bytes; `name` names it in errors.
    public static func load(data: Data, name: String) throws -> TextTokenizer {
        try tokenizer(TokenizerJSON.read(data: data, name: name), name: name)
    }

    static func tokenizer(_ model: TokenizerJSON.Model, name: String) throws -> TextTokenizer {
        switch model {
        case .wordLevel(let tokens, .characters, nil):
            do { return try TextTokenizer(orderedCharacters: tokens) } catch let e as TokenizerError {
                throw TokenizerError("\(name): \(e.message)")
            }
        case .byteLevelBPE(let b):
            return TextTokenizer(bpe: b)
        case .wordLevel:
            throw TokenizerError("\(name): a translation model's vocabulary, not a GPT's (characters or byte-level BPE)")
        case .wordPiece:
            throw TokenizerError("\(name): a WordPiece (BERT) tokenizer, not a GPT's (characters or byte-level BPE)")
        }
    }
}
