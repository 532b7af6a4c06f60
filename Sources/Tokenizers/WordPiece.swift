import Foundation

/// Why a WordPiece vocabulary could not be read.
public struct WordPieceError: Error, CustomStringConvertible, Sendable {
    /// One line, for the user: the file (when there is one) and what is wrong.
    public var message: String
    /// Makes an error with a one-line message.
    public init(_ message: String) { self.message = message }
    /// The message, as is.
    public var description: String { message }
}

/// BERT's tokenizer, as Hugging Face's `BertTokenizer` runs it for uncased models
/// (`tokenizers`' `BertNormalizer` + `BertPreTokenizer` + `WordPiece` + the `[CLS] … [SEP]` template).
///
/// 1. Clean: drop NUL, U+FFFD and every "other" character (categories Cc, Cf, Cs, Co, Cn — control
///    characters, zero-width spaces, soft hyphens) except tab, CR and LF; every whitespace becomes a space.
/// 2. Put spaces around CJK ideographs, so each is a word of its own.
/// 3. Uncased: decompose (NFD), drop non-spacing marks (accents: "crème" → "creme"), lower-case each
///    character (per character, as Rust's `char::to_lowercase`: a final Σ becomes σ, not ς).
/// 4. Split on whitespace, and make every punctuation character (ASCII punctuation or a Unicode P*
///    category) a word of its own.
/// 5. Each word: greedy longest-match against the vocabulary, continuation pieces prefixed `##`;
///    a word with a character no piece covers, or longer than `maxInputCharsPerWord`, is `[UNK]`.
/// 6. Truncate to `maxLength − 2` pieces and wrap in `[CLS]` … `[SEP]`.
public struct WordPieceTokenizer: Sendable {
    /// Piece of each id (the lines of `vocab.txt`).
    public let pieces: [String]
    let ids: [String: Int]
    /// The ids of `[CLS]`, `[SEP]`, `[UNK]` and `[PAD]`. `encode` never adds `[PAD]`: it is for callers that
    /// pad a batch to one length.
    public let cls: Int, sep: Int, unk: Int, pad: Int
    /// Lower-case and strip accents (`do_lower_case`, uncased models).
    public var lowercase: Bool
    /// Longer words become `[UNK]` without trying (Hugging Face's default, 100).
    public var maxInputCharsPerWord = 100

    /// A vocabulary of pieces, id = position. Needs `[CLS]`, `[SEP]`, `[UNK]` and `[PAD]`.
    /// A piece listed twice maps to its last id, as in Hugging Face (both ids still decode to it).
    /// - Throws: `WordPieceError` when one of the four special pieces is missing.
    public init(pieces: [String], lowercase: Bool = true) throws {
        self.pieces = pieces
        var ids: [String: Int] = [:]
        for (i, p) in pieces.enumerated() { ids[p] = i }  // a repeated line: the last wins, as in Hugging Face
        self.ids = ids
        func special(_ s: String) throws -> Int {
            guard let i = ids[s] else { throw WordPieceError("the vocabulary has no \(s) token") }
            return i
        }
        cls = try special("[CLS]"); sep = try special("[SEP]"); unk = try special("[UNK]"); pad = try special("[PAD]")
        self.lowercase = lowercase
    }

    /// Reads a `vocab.txt`: one piece per line, the line number (from 0) is its id.
    /// - Throws: `WordPieceError` naming the file when it cannot be read, or as `init(vocabData:name:lowercase:)`.
    public init(vocabFile url: URL, lowercase: Bool = true) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw WordPieceError(
                "\(url.path): cannot read the vocabulary (\(FileManager.default.fileExists(atPath: url.path) ? error.localizedDescription : "no such file"))"
            )
        }
        try self.init(vocabData: data, name: url.path, lowercase: lowercase)
    }

    /// Same as `init(vocabFile:)`, from the file's bytes; `name` names it in errors. Lines may end in LF or
    /// CRLF; a final line break does not add an empty piece.
    /// - Throws: `WordPieceError` when the bytes are not UTF-8, hold no line, or lack a special piece.
    public init(vocabData data: Data, name: String, lowercase: Bool = true) throws {
        guard let text = String(data: data, encoding: .utf8) else { throw WordPieceError("\(name) is not valid UTF-8") }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.hasSuffix("\r") ? String(line.dropLast()) : String(line)
        }
        if lines.last == "" { lines.removeLast() }
        guard !lines.isEmpty else { throw WordPieceError("\(name) is empty") }
        do { try self.init(pieces: lines, lowercase: lowercase) } catch let e as WordPieceError {
            throw WordPieceError("\(name): \(e.message)")
        }
    }

    /// The number of pieces (lines of `vocab.txt`); ids are `0..<vocabularySize`.
    public var vocabularySize: Int { pieces.count }

    /// The id of a piece (continuation pieces with their `##`), or `nil` when the vocabulary lacks it.
    public func id(_ piece: String) -> Int? { ids[piece] }

    /// `[CLS]`, the word pieces of `text` (at most `maxLength − 2`), `[SEP]`.
    /// - Parameters:
    ///   - text: A sentence (lower-cased first when `lowercase` is set).
    ///   - maxLength: The most ids returned, `[CLS]` and `[SEP]` included; must be at least 2 (traps
    ///     otherwise). Pieces past it are cut, even in the middle of a word.
    /// - Returns: Between 2 and `maxLength` ids; no `[PAD]`.
    public func encode(_ text: String, maxLength: Int = 256) -> [Int] {
        precondition(maxLength >= 2, "maxLength must leave room for [CLS] and [SEP]")
        var out = [cls]
        for word in words(text) {
            for piece in wordPieces(word) {
                if out.count == maxLength - 1 { return out + [sep] }
                out.append(piece)
            }
        }
        return out + [sep]
    }

    /// The pieces of ids, for display; an id outside the vocabulary shows as `"<id>"`.
    public func tokens(_ ids: [Int]) -> [String] { ids.map { $0 >= 0 && $0 < pieces.count ? pieces[$0] : "<\($0)>" } }

    // MARK: Steps

    /// Steps 1–4: the normalised words of `text`.
    public func words(_ text: String) -> [[Unicode.Scalar]] {
        var cleaned = String.UnicodeScalarView()
        for u in text.unicodeScalars {
            if u.value == 0 || u.value == 0xFFFD || Self.isOther(u) { continue }
            if Self.isWhitespace(u) { cleaned.append(" "); continue }
            if Self.isCJK(u) { cleaned.append(" "); cleaned.append(u); cleaned.append(" "); continue }
            cleaned.append(u)
        }
        var scalars = Array(cleaned)
        if lowercase {
            var lowered: [Unicode.Scalar] = []
            lowered.reserveCapacity(scalars.count)
            // NFD only where it can change something: ASCII is its own decomposition.
            let decomposed =
                scalars.allSatisfy(\.isASCII)
                ? scalars : Array(String(String.UnicodeScalarView(scalars)).decomposedStringWithCanonicalMapping.unicodeScalars)
            for u in decomposed where u.properties.generalCategory != .nonspacingMark {
                if u.isASCII { lowered.append(Unicode.Scalar(UInt8(ascii: u) | (u.properties.isUppercase ? 0x20 : 0))); continue }
                lowered.append(contentsOf: u.properties.lowercaseMapping.unicodeScalars)
            }
            scalars = lowered
        }
        var words: [[Unicode.Scalar]] = [], word: [Unicode.Scalar] = []
        for u in scalars {
            if u.properties.isWhitespace {
                if !word.isEmpty { words.append(word); word = [] }
            } else if Self.isPunctuation(u) {
                if !word.isEmpty { words.append(word); word = [] }
                words.append([u])
            } else {
                word.append(u)
            }
        }
        if !word.isEmpty { words.append(word) }
        return words
    }

    /// Step 5: greedy longest-match pieces of one word. If any part of the word matches no piece, or it has
    /// more than `maxInputCharsPerWord` scalars, the whole word is a single `[UNK]`.
    public func wordPieces(_ word: [Unicode.Scalar]) -> [Int] {
        if word.count > maxInputCharsPerWord { return [unk] }
        var out: [Int] = []
        var start = 0
        while start < word.count {
            var end = word.count, found: Int?
            while start < end {
                var s = start > 0 ? "##" : ""
                s.unicodeScalars.append(contentsOf: word[start..<end])
                if let i = ids[s] { found = i; break }
                end -= 1
            }
            guard let piece = found else { return [unk] }
            out.append(piece)
            start = end
        }
        return out
    }

    // MARK: Character classes (as `tokenizers`' BERT normaliser and pre-tokeniser define them)

    /// Tab, LF and CR count as whitespace, not as control characters.
    static func isWhitespace(_ u: Unicode.Scalar) -> Bool {
        u == "\t" || u == "\n" || u == "\r" || u.properties.isWhitespace
    }

    /// Unicode "other" (C*), except tab, LF and CR.
    static func isOther(_ u: Unicode.Scalar) -> Bool {
        if u == "\t" || u == "\n" || u == "\r" { return false }
        switch u.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned: return true
        default: return false
        }
    }

    static func isPunctuation(_ u: Unicode.Scalar) -> Bool {
        let v = u.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        switch u.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
            .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default: return false
        }
    }

    /// The CJK Unified Ideographs blocks BERT treats as single-character words (not Hiragana,
    /// Katakana or Hangul, which are split like any other letters).
    static func isCJK(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
            0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default: return false
        }
    }
}
