/// The special tokens every vocabulary carries.
public enum SpecialToken: String, CaseIterable, Sendable {
    case pad = "<pad>", start = "<start>", end = "<end>", unk = "<unk>"
}

/// A token ↔ id table. Corpus tokens come first, in order of first appearance, then the specials:
/// so in the seed's example 白 is 0 … 物 is 35 (the article numbers them from 1), and the
/// vocabulary size it talks about (36) is the count of corpus tokens.
public struct Vocabulary: Codable, Sendable, Equatable {
    public private(set) var tokens: [String]
    public private(set) var corpusTokenCount: Int
    private var index: [String: Int]

    public init(corpusTokens: [String]) {
        var seen = Set<String>(), ordered: [String] = []
        for t in corpusTokens where !seen.contains(t) && SpecialToken(rawValue: t) == nil {
            seen.insert(t); ordered.append(t)
        }
        corpusTokenCount = ordered.count
        tokens = ordered + SpecialToken.allCases.map(\.rawValue)
        index = Dictionary(uniqueKeysWithValues: tokens.enumerated().map { ($1, $0) })
    }

    enum CodingKeys: String, CodingKey { case tokens, corpusTokenCount = "corpus_token_count" }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        tokens = try c.decode([String].self, forKey: .tokens)
        corpusTokenCount = try c.decode(Int.self, forKey: .corpusTokenCount)
        index = [:]
        for (i, t) in tokens.enumerated() {
            if index[t] != nil { throw TokenizerError("vocabulary: token \"\(t)\" appears twice") }
            index[t] = i
        }
        for s in SpecialToken.allCases where index[s.rawValue] == nil {
            throw TokenizerError("vocabulary: special token \(s.rawValue) is missing")
        }
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(tokens, forKey: .tokens)
        try c.encode(corpusTokenCount, forKey: .corpusTokenCount)
    }

    public var count: Int { tokens.count }
    public func id(_ token: String) -> Int? { index[token] }
    public func id(_ special: SpecialToken) -> Int { index[special.rawValue]! }
    public func token(_ id: Int) -> String { id >= 0 && id < tokens.count ? tokens[id] : SpecialToken.unk.rawValue }
    public var padID: Int { id(.pad) }
    public var startID: Int { id(.start) }
    public var endID: Int { id(.end) }
    public var unkID: Int { id(.unk) }

    /// Ids for tokens; unknown ones become `<unk>` and are reported.
    public func ids(for tokens: [String]) -> (ids: [Int], unknown: [String]) {
        var unknown: [String] = []
        let ids = tokens.map { t -> Int in
            if let i = index[t] { return i }
            unknown.append(t)
            return unkID
        }
        return (ids, unknown)
    }
}

/// Splits text into tokens.
public protocol Tokenizing: Sendable {
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
    /// ASCII and Unicode punctuation, including the full-width marks of Chinese text (，。！？).
    public var isPunctuationLike: Bool {
        isPunctuation || isSymbol && !isLetter && !isNumber
    }
}

/// One token per character (every CJK character one token, as in seed 002).
public struct CharTokenizer: Tokenizing {
    public var dropPunctuation: Bool
    public var dropWhitespace: Bool
    public init(dropPunctuation: Bool = true, dropWhitespace: Bool = true) {
        self.dropPunctuation = dropPunctuation
        self.dropWhitespace = dropWhitespace
    }
    public func tokenize(_ text: String) -> [String] {
        text.compactMap { ch in
            if ch.isNewline || (dropWhitespace && ch.isWhitespace) { return nil }
            if dropPunctuation && ch.isPunctuationLike { return nil }
            return String(ch)
        }
    }
    public func detokenize(_ tokens: [String]) -> String { tokens.joined() }
}

/// Words split on whitespace, with punctuation marks as tokens of their own and each CJK
/// character a word (CJK text has no spaces to split on).
public struct WordTokenizer: Tokenizing {
    public var dropPunctuation: Bool
    public var lowercase: Bool
    public init(dropPunctuation: Bool = false, lowercase: Bool = false) {
        self.dropPunctuation = dropPunctuation
        self.lowercase = lowercase
    }
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
    /// Text → ids; tokens missing from the vocabulary become `<unk>`.
    public func encode(_ text: String, vocabulary: Vocabulary) -> [Int] {
        vocabulary.ids(for: tokenize(text)).ids
    }

    /// Ids → text, leaving out `<pad>`, `<start>` and `<end>` and stopping at the first `<end>`.
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
