import ModelFiles

/// The special tokens every vocabulary carries.
public enum SpecialToken: String, CaseIterable, Sendable {
    /// `<pad>` fills a batch's short sequences, `<start>` and `<end>` open and close a sequence, `<unk>`
    /// stands for a token the vocabulary lacks. The raw value is the token's text; `allCases` is their id
    /// order in a vocabulary built from a corpus.
    case pad = "<pad>", start = "<start>", end = "<end>", unk = "<unk>"
}

/// A token ↔ id table. Corpus tokens come first, in order of first appearance, then the specials:
/// so in the seed's example 白 is 0 … 物 is 35 (the article numbers them from 1), and the
/// vocabulary size it talks about (36) is the count of corpus tokens. Putting the specials last is what
/// keeps each corpus token's id equal to the article's number less one.
public struct Vocabulary: Codable, Sendable, Equatable {
    /// The token of each id (`tokens[id]`), specials included.
    public private(set) var tokens: [String]
    /// How many of `tokens` come from the corpus, the specials not counted. When decoded, it is read from the
    /// file as is, not checked against `tokens`.
    public private(set) var corpusTokenCount: Int
    /// Keyed by exact UTF-8: Swift's `==` would make "é" and "e\u{301}" one token, where Hugging Face
    /// (and a `tokenizer.json`) keeps two.
    private var index: [[UInt8]: Int]

    /// Numbers a corpus's distinct tokens in order of first appearance, then appends the specials.
    /// A corpus token spelled like a special (`"<unk>"`) is dropped, so it does not get a second id.
    /// - Parameter corpusTokens: The tokenized corpus; repeats are expected and ignored.
    public init(corpusTokens: [String]) {
        var seen = Set<[UInt8]>(), ordered: [String] = []
        for t in corpusTokens where SpecialToken(rawValue: t) == nil && seen.insert(Array(t.utf8)).inserted {
            ordered.append(t)
        }
        corpusTokenCount = ordered.count
        tokens = ordered + SpecialToken.allCases.map(\.rawValue)
        index = Dictionary(uniqueKeysWithValues: tokens.enumerated().map { (Array($1.utf8), $0) })
    }

    enum CodingKeys: String, CodingKey { case tokens, corpusTokenCount = "corpus_token_count" }
    /// Reads the `{"tokens": […], "corpus_token_count": n}` form `encode(to:)` writes. The specials may sit
    /// anywhere in `tokens`; ids are positions.
    /// - Throws: `TokenizerError` when a token appears twice or a special token is missing; `DecodingError`
    ///   when a key is missing or of the wrong type.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(tokens: try c.decode([String].self, forKey: .tokens))
        corpusTokenCount = try c.decode(Int.self, forKey: .corpusTokenCount)
    }

    /// Tokens by id, as a `tokenizer.json` lists them; the corpus tokens are those that are not special.
    /// - Throws: `TokenizerError` when a token appears twice or a special token is missing.
    public init(tokens: [String]) throws {
        self.tokens = tokens
        index = [:]
        for (i, t) in tokens.enumerated() {
            if index.updateValue(i, forKey: Array(t.utf8)) != nil {
                throw TokenizerError("vocabulary: token \(quotedForMessage(t)) appears twice")
            }
        }
        for s in SpecialToken.allCases where index[Array(s.rawValue.utf8)] == nil {
            throw TokenizerError("vocabulary: special token \(s.rawValue) is missing")
        }
        corpusTokenCount = tokens.count - SpecialToken.allCases.count
    }
    /// Writes `tokens` and `corpus_token_count` (the token → id index is rebuilt on reading).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(tokens, forKey: .tokens)
        try c.encode(corpusTokenCount, forKey: .corpusTokenCount)
    }

    /// The number of ids (`0..<count`), specials included: `corpusTokenCount + 4` when built from a corpus.
    public var count: Int { tokens.count }
    /// The id of `token`, or `nil` when the vocabulary lacks it (no `<unk>` fallback: see `ids(for:)`).
    public func id(_ token: String) -> Int? { index[Array(token.utf8)] }
    /// The id of a special token. Never fails: both initialisers make sure all four are present.
    public func id(_ special: SpecialToken) -> Int { index[Array(special.rawValue.utf8)]! }
    /// The token of `id`; an id outside `0..<count` gives `"<unk>"` rather than trapping.
    public func token(_ id: Int) -> String { id >= 0 && id < tokens.count ? tokens[id] : SpecialToken.unk.rawValue }
    /// The id of `<pad>`.
    public var padID: Int { id(.pad) }
    /// The id of `<start>`.
    public var startID: Int { id(.start) }
    /// The id of `<end>`.
    public var endID: Int { id(.end) }
    /// The id of `<unk>`.
    public var unkID: Int { id(.unk) }

    /// Ids for tokens; unknown ones become `<unk>` and are reported.
    /// - Returns: One id per token, and the unknown tokens in order (with repeats), so a caller can warn.
    public func ids(for tokens: [String]) -> (ids: [Int], unknown: [String]) {
        var unknown: [String] = []
        let ids = tokens.map { t -> Int in
            if let i = index[Array(t.utf8)] { return i }
            unknown.append(t)
            return unkID
        }
        return (ids, unknown)
    }
}

/// Splits text into tokens.
public protocol Tokenizing: Sendable {
    /// The tokens of `text`, in order; which characters are dropped is up to the tokenizer.
    func tokenize(_ text: String) -> [String]
    /// Joins tokens back into text.
    func detokenize(_ tokens: [String]) -> String
}

extension Character {
    /// CJK ideographs and kana/hangul: scripts written without spaces, where one character is one token.
    public var isCJK: Bool {
        guard let s = unicodeScalars.first else { return false }
        switch s.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2EBEF, 0xF900...0xFAFF,
            0x3040...0x30FF, 0xAC00...0xD7AF:
            return true
        default:
            return false
        }
    }
    /// ASCII and Unicode punctuation, including the full-width marks of Chinese text (，。！？), and symbols that
    /// are not letters or numbers (`+`, `$`, `^`, `©`, emoji): Swift's `isPunctuation` or `isSymbol`.
    public var isPunctuationLike: Bool {
        isPunctuation || isSymbol && !isLetter && !isNumber
    }
}

/// One token per character (every CJK character one token, as in seed 002).
public struct CharTokenizer: Tokenizing {
    /// Leave out punctuation and symbols (`Character.isPunctuationLike`).
    public var dropPunctuation: Bool
    /// Leave out spaces, tabs and other whitespace. Newlines are left out whether or not this is set.
    public var dropWhitespace: Bool
    /// By default drops both, so only characters that are neither (letters, digits, CJK, …) become tokens.
    public init(dropPunctuation: Bool = true, dropWhitespace: Bool = true) {
        self.dropPunctuation = dropPunctuation
        self.dropWhitespace = dropWhitespace
    }
    /// Each kept `Character` of `text` as a string: a grapheme cluster (é as e + ◌́, a flag) is one token.
    public func tokenize(_ text: String) -> [String] {
        text.compactMap { ch in
            if ch.isNewline || (dropWhitespace && ch.isWhitespace) { return nil }
            if dropPunctuation && ch.isPunctuationLike { return nil }
            return String(ch)
        }
    }
    /// Concatenates the tokens with nothing between them; dropped whitespace and punctuation do not come back.
    public func detokenize(_ tokens: [String]) -> String { tokens.joined() }
}

/// Words split on whitespace, with punctuation marks as tokens of their own and each CJK
/// character a word (CJK text has no spaces to split on).
public struct WordTokenizer: Tokenizing {
    /// Leave out punctuation and symbols (`Character.isPunctuationLike`) instead of making each a token.
    public var dropPunctuation: Bool
    /// Lower-case the whole text (`String.lowercased()`) before splitting it.
    public var lowercase: Bool
    /// By default keeps punctuation marks as tokens and keeps case.
    public init(dropPunctuation: Bool = false, lowercase: Bool = false) {
        self.dropPunctuation = dropPunctuation
        self.lowercase = lowercase
    }
    /// Runs of characters between whitespace, punctuation and CJK characters, plus each punctuation mark
    /// (unless dropped) and each CJK character as a token: `"Hi, 你好!"` → `["Hi", ",", "你", "好", "!"]`.
    public func tokenize(_ text: String) -> [String] {
        var out: [String] = [], word = ""
        func flush() { if !word.isEmpty { out.append(word); word = "" } }
        for ch in lowercase ? text.lowercased() : text {
            if ch.isWhitespace {
                flush()
            } else if ch.isPunctuationLike {
                flush(); if !dropPunctuation { out.append(String(ch)) }
            } else if ch.isCJK {
                flush(); out.append(String(ch))
            } else {
                word.append(ch)
            }
        }
        flush()
        return out
    }
    /// Joins tokens with a space, except before a one-character punctuation token and before or after a
    /// CJK character. Lossy: `["(", "a", ")"]` comes back as `"( a)"`, and whitespace other than one space is lost.
    public func detokenize(_ tokens: [String]) -> String {
        var s = ""
        for t in tokens {
            let isPunct = t.count == 1 && t.first!.isPunctuationLike
            let cjk = t.first?.isCJK ?? false
            if !s.isEmpty && !isPunct && !cjk && !(s.last?.isCJK ?? false) { s += " " }
            s += t
        }
        return s
    }
}

extension Tokenizing {
    /// Text → ids; tokens missing from the vocabulary become `<unk>`. No `<start>` or `<end>` is added.
    public func encode(_ text: String, vocabulary: Vocabulary) -> [Int] {
        vocabulary.ids(for: tokenize(text)).ids
    }

    /// Ids → text, leaving out `<pad>`, `<start>` and `<end>` and stopping at the first `<end>`.
    /// `<unk>` stays in the text as `"<unk>"`, and so does any id outside the vocabulary.
    public func decode(_ ids: [Int], vocabulary: Vocabulary) -> String {
        var tokens: [String] = []
        for id in ids {
            if id == vocabulary.endID { break }
            if id == vocabulary.padID || id == vocabulary.startID { continue }
            tokens.append(vocabulary.token(id))
        }
        return detokenize(tokens)
    }
}
