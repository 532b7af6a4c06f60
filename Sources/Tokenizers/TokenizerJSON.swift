import Foundation
import ModelFiles

/// The one reader and writer of `tokenizer.json`, in Hugging Face's schema (`model`, `added_tokens`,
/// `normalizer`, `pre_tokenizer`, `decoder`), so that `tokenizers.Tokenizer.from_file` opens what this
/// project saves and this project opens the byte-level BPE and WordPiece files Hugging Face saves.
///
/// What each tokenizer of this project is in that schema:
/// - byte-level BPE: `BPE` with the `ByteLevel` pre-tokenizer and decoder (GPT-2's layout);
/// - characters: `WordLevel` over the grapheme clusters (`Split` on `\X`, kept), decoded by `Fuse`;
///   a translation model's codec also drops line breaks (a `Replace` of `\R` by nothing);
/// - words: `WordLevel` over runs between whitespace (removed), punctuation and symbols, and CJK
///   characters (each kept as a token);
/// - BERT's WordPiece: `WordPiece` with `BertNormalizer` and `BertPreTokenizer`.
///
/// Hugging Face matches `added_tokens` (`<pad>`, `<|endoftext|>` …) in the text before splitting it;
/// this project encodes such text as ordinary characters, so ids agree for text that does not spell a
/// special token. The files of earlier versions (`{"kind": …, "bpe_vocab": …}`) are still read.
public enum TokenizerJSON {
    /// How a word-level vocabulary's text is split into tokens.
    public enum WordLevelSplit: String, Sendable, CaseIterable {
        /// Each grapheme cluster a token (a GPT's character vocabulary).
        case characters
        /// Each grapheme cluster a token, line breaks dropped (a translation model's character codec).
        case charactersWithoutLineBreaks
        /// `WordTokenizer`'s words, punctuation marks and CJK characters; whitespace dropped.
        case words
    }

    /// A tokenizer as the file describes it.
    public enum Model: Sendable {
        /// One id per token of a fixed split: tokens by id, and the token unknown ones become (nil: an
        /// unknown token is an error).
        case wordLevel(tokens: [String], split: WordLevelSplit, unknown: String?)
        /// GPT-2's byte-level BPE.
        case byteLevelBPE(ByteLevelBPE)
        /// BERT's WordPiece.
        case wordPiece(WordPieceTokenizer)
    }

    // MARK: Writing

    /// The file's bytes: pretty-printed, vocabulary entries in id order, one a line.
    public static func data(_ model: Model) -> Data {
        Data(document(model).rendered())
    }

    /// Writes the file atomically (a temporary file, then a rename).
    /// - Throws: `TokenizerError` naming the file when it cannot be written.
    public static func write(_ model: Model, to url: URL) throws {
        do { try ByteLevelBPE.writeAtomically(data(model), to: url) } catch let e as TokenizerError { throw e } catch {
            throw TokenizerError("\(url.path): cannot write the tokenizer (\(error.localizedDescription))")
        }
    }

    static func document(_ model: Model) -> JSONValueOut {
        let added: [(Int, String)]
        let normalizer: JSONValueOut, preTokenizer: JSONValueOut, decoder: JSONValueOut, body: JSONValueOut
        var postProcessor = JSONValueOut.null
        switch model {
        case .wordLevel(let tokens, let split, let unknown):
            let specials = Set(SpecialToken.allCases.map(\.rawValue) + (unknown.map { [$0] } ?? []))
            added = tokens.enumerated().filter { specials.contains($0.element) }.map { ($0.offset, $0.element) }
            normalizer = split == .charactersWithoutLineBreaks ? lineBreakRemover : .null
            preTokenizer = split == .words ? wordSplitter : graphemeSplitter
            decoder = split == .words ? .null : .object([("type", .string("Fuse"))])
            body = .object([
                ("type", .string("WordLevel")),
                ("vocab", vocabObject(tokens)),
                // Hugging Face needs a string here; one missing from the vocabulary makes an unknown token an error.
                ("unk_token", .string(unknown ?? SpecialToken.unk.rawValue))
            ])
        case .byteLevelBPE(let bpe):
            added = bpe.tokens.indices.filter { bpe.isSpecial($0) }.map { ($0, bpe.tokens[$0]) }
            normalizer = .null
            preTokenizer = byteLevel
            decoder = byteLevel
            body = .object([
                ("type", .string("BPE")),
                ("dropout", .null),
                ("unk_token", .null),
                ("continuing_subword_prefix", .null),
                ("end_of_word_suffix", .null),
                ("fuse_unk", .bool(false)),
                ("byte_fallback", .bool(false)),
                ("ignore_merges", .bool(false)),
                ("vocab", vocabObject(bpe.tokens)),
                ("merges", .array(bpe.merges.map { .array([.string($0.0), .string($0.1)]) }))
            ])
        case .wordPiece(let wp):
            added = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].compactMap { p in wp.id(p).map { ($0, p) } }.sorted { $0.0 < $1.0 }
            normalizer = .object([
                ("type", .string("BertNormalizer")), ("clean_text", .bool(true)), ("handle_chinese_chars", .bool(true)),
                ("strip_accents", .null), ("lowercase", .bool(wp.lowercase))
            ])
            preTokenizer = .object([("type", .string("BertPreTokenizer"))])
            postProcessor = .object([
                ("type", .string("BertProcessing")),
                ("sep", .array([.string("[SEP]"), .int(wp.sep)])),
                ("cls", .array([.string("[CLS]"), .int(wp.cls)]))
            ])
            decoder = .object([("type", .string("WordPiece")), ("prefix", .string("##")), ("cleanup", .bool(true))])
            body = .object([
                ("type", .string("WordPiece")),
                ("unk_token", .string("[UNK]")),
                ("continuing_subword_prefix", .string("##")),
                ("max_input_chars_per_word", .int(wp.maxInputCharsPerWord)),
                ("vocab", vocabObject(wp.pieces))
            ])
        }
        return .object([
            ("version", .string("1.0")),
            ("truncation", .null),
            ("padding", .null),
            ("added_tokens", .array(added.map(addedToken))),
            ("normalizer", normalizer),
            ("pre_tokenizer", preTokenizer),
            ("post_processor", postProcessor),
            ("decoder", decoder),
            ("model", body)
        ])
    }

    static func vocabObject(_ tokens: [String]) -> JSONValueOut {
        // A piece listed twice (BERT vocabularies have a few) keeps its last id, as Hugging Face reads it.
        // Keyed by exact UTF-8: "é" and "e\u{301}" are two tokens.
        var last: [[UInt8]: Int] = [:]
        for (i, t) in tokens.enumerated() { last[Array(t.utf8)] = i }
        return .object(tokens.enumerated().filter { last[Array($0.element.utf8)] == $0.offset }.map { ($0.element, .int($0.offset)) })
    }

    static func addedToken(_ entry: (Int, String)) -> JSONValueOut {
        .object([
            ("id", .int(entry.0)), ("content", .string(entry.1)), ("single_word", .bool(false)), ("lstrip", .bool(false)),
            ("rstrip", .bool(false)), ("normalized", .bool(false)), ("special", .bool(true))
        ])
    }

    static let byteLevel = JSONValueOut.object([
        ("type", .string("ByteLevel")), ("add_prefix_space", .bool(false)), ("trim_offsets", .bool(true)), ("use_regex", .bool(true))
    ])
    static let graphemeSplitter = JSONValueOut.object([
        ("type", .string("Split")), ("pattern", .object([("Regex", .string("\\X"))])), ("behavior", .string("Isolated")),
        ("invert", .bool(false))
    ])
    static let lineBreakRemover = JSONValueOut.object([
        ("type", .string("Replace")), ("pattern", .object([("Regex", .string("\\R"))])), ("content", .string(""))
    ])
    /// `Character.isPunctuationLike` and `isCJK` look at a grapheme's first scalar; the lookahead
    /// followed by `\X` does the same, so a flag or an emoji sequence stays one token.
    static let cjkClass =
        "\\x{4E00}-\\x{9FFF}\\x{3400}-\\x{4DBF}\\x{20000}-\\x{2A6DF}\\x{2A700}-\\x{2EBEF}\\x{F900}-\\x{FAFF}"
        + "\\x{3040}-\\x{30FF}\\x{AC00}-\\x{D7AF}"
    static let wordSplitter = JSONValueOut.object([
        ("type", .string("Sequence")),
        (
            "pretokenizers",
            .array([
                .object([
                    ("type", .string("Split")), ("pattern", .object([("Regex", .string("\\p{White_Space}+"))])),
                    ("behavior", .string("Removed")), ("invert", .bool(false))
                ]),
                .object([
                    ("type", .string("Split")),
                    ("pattern", .object([("Regex", .string("(?=[\\p{P}\\p{S}\(cjkClass)])\\X"))])),
                    ("behavior", .string("Isolated")), ("invert", .bool(false))
                ])
            ])
        )
    ])

    // MARK: Reading

    /// Reads a file written by `write(_:to:)`, by Hugging Face (byte-level BPE, WordPiece, or this
    /// project's word-level layouts), or by an earlier version of this project.
    /// - Throws: `TokenizerError` naming the file and the field when it cannot be read or describes a
    ///   tokenizer this project does not implement.
    public static func read(_ url: URL) throws -> Model {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw TokenizerError("\(url.path): cannot read the tokenizer file")
        }
        return try read(data: data, name: url.path)
    }

    /// Same as `read(_:)`, from the file's bytes; `name` names it in errors.
    public static func read(data: Data, name: String) throws -> Model {
        let root: JSONNode
        do { root = try JSONScanner().scan(data) } catch {
            throw TokenizerError("\(name): not a valid tokenizer file (\(error.description))")
        }
        guard root.members != nil else { throw TokenizerError("\(name): expected a JSON object, found \(root.kind)") }
        let reader = Reader(name: name)
        if root["model"] == nil, root["kind"] != nil { return try reader.legacy(root) }
        guard let model = root["model"] else { throw TokenizerError("\(name): no \"model\" (not a tokenizer.json)") }
        guard let type = model["type"]?.string else {
            throw TokenizerError("\(name): model.type must be a string, found \(model["type"]?.brief ?? "nothing")")
        }
        switch type {
        case "BPE": return try reader.bpe(root, model)
        case "WordLevel": return try reader.wordLevel(root, model)
        case "WordPiece": return try reader.wordPiece(root, model)
        default:
            throw TokenizerError("\(name): model.type \(quotedForMessage(type)) is not one this project runs (BPE, WordLevel, WordPiece)")
        }
    }

    struct Reader {
        let name: String

        func fail(_ field: String, _ what: String) -> TokenizerError { TokenizerError("\(name): \(field): \(what)") }

        /// Absent or null.
        func isNull(_ node: JSONNode?) -> Bool {
            guard let node else { return true }
            if case .null = node.value { return true }
            return false
        }

        func description(_ node: JSONNode?) -> String {
            guard let node else { return "nothing" }
            if let type = node["type"]?.string { return "type \(quotedForMessage(type))" }
            return node.brief
        }

        /// The added tokens as (id, content).
        func addedTokens(_ root: JSONNode) throws -> [(Int, [UInt8])] {
            guard let list = root["added_tokens"], !isNull(list) else { return [] }
            guard let items = list.array else { throw fail("added_tokens", "expected an array, found \(list.kind)") }
            return try items.enumerated().map { i, item in
                guard let id = item["id"]?.integer, id >= 0, id < 1_000_000_000, let content = item["content"]?.stringBytes else {
                    throw fail("added_tokens[\(i)]", "expected {\"id\": a non-negative integer, \"content\": a string}")
                }
                return (id, content)
            }
        }

        /// Token → id entries of `model.vocab`, with added tokens that are not in it appended.
        func entries(_ root: JSONNode, _ model: JSONNode) throws -> (entries: [([UInt8], Int)], added: [[UInt8]]) {
            guard let vocab = model["vocab"] else { throw fail("model.vocab", "missing") }
            var entries = try ByteLevelBPE.vocabEntries(vocab, name: "\(name): model.vocab")
            var byToken: [[UInt8]: Int] = [:], byID: [Int: [UInt8]] = [:]
            for (t, id) in entries {
                byToken[t] = id
                byID[id] = t
            }
            let added = try addedTokens(root)
            for (id, content) in added {
                if let known = byToken[content] {
                    guard known == id else {
                        throw fail(
                            "added_tokens",
                            "\(quotedForMessage(String(decoding: content, as: UTF8.self))) has id \(id) but model.vocab gives \(known)")
                    }
                } else {
                    guard byID[id] == nil else { throw fail("added_tokens", "id \(id) is already a token of model.vocab") }
                    entries.append((content, id))
                    byToken[content] = id
                    byID[id] = content
                }
            }
            return (entries, added.map(\.1))
        }

        func tokensByID(_ entries: [([UInt8], Int)]) throws -> [String] {
            var tokens = [String?](repeating: nil, count: entries.count)
            for (t, id) in entries {
                guard id >= 0 && id < entries.count else { throw fail("model.vocab", "ids must be 0..<\(entries.count), found \(id)") }
                guard tokens[id] == nil else { throw fail("model.vocab", "id \(id) appears twice") }
                tokens[id] = String(decoding: t, as: UTF8.self)
            }
            return tokens.map { $0! }
        }

        func bpe(_ root: JSONNode, _ model: JSONNode) throws -> Model {
            let pre = root["pre_tokenizer"]
            guard let pre, pre["type"]?.string == "ByteLevel" else {
                throw fail(
                    "pre_tokenizer", "this project runs byte-level BPE with GPT-2's ByteLevel pre-tokenizer, found \(description(pre))")
            }
            if pre["add_prefix_space"]?.bool == true { throw fail("pre_tokenizer.add_prefix_space", "true is not supported") }
            if pre["use_regex"]?.bool == false { throw fail("pre_tokenizer.use_regex", "false is not supported") }
            guard isNull(root["normalizer"]) else {
                throw fail("normalizer", "not supported with byte-level BPE, found \(description(root["normalizer"]))")
            }
            if model["byte_fallback"]?.bool == true { throw fail("model.byte_fallback", "true is not supported") }
            if !isNull(model["dropout"]) { throw fail("model.dropout", "BPE dropout is not supported") }
            for key in ["continuing_subword_prefix", "end_of_word_suffix"] where !isNull(model[key]) && model[key]?.string != "" {
                throw fail("model.\(key)", "not supported, found \(model[key]!.brief)")
            }
            let (entries, added) = try entries(root, model)
            guard let list = model["merges"]?.array else { throw fail("model.merges", "expected an array") }
            // Two spellings: "Ġ t" (tokenizers before 0.20) and ["Ġ", "t"].
            let pairs: [(left: [UInt8], right: [UInt8])] = try list.enumerated().map { i, m in
                if let pair = m.array, pair.count == 2, let l = pair[0].stringBytes, let r = pair[1].stringBytes { return (l, r) }
                if let s = m.stringBytes {
                    let parts = s.split(separator: 0x20)
                    if parts.count == 2 { return (Array(parts[0]), Array(parts[1])) }
                }
                throw fail("model.merges[\(i)]", "expected \"left right\" or [\"left\", \"right\"], found \(m.brief)")
            }
            do {
                let bpe = try ByteLevelBPE(
                    vocabulary: entries, merges: pairs, mergeName: { "model.merges[\($0)]" },
                    specialTokens: added.map { String(decoding: $0, as: UTF8.self) })
                return .byteLevelBPE(bpe)
            } catch let e as TokenizerError { throw TokenizerError("\(name): \(e.message)") }
        }

        func wordLevel(_ root: JSONNode, _ model: JSONNode) throws -> Model {
            let tokens = try tokensByID(try entries(root, model).entries)
            // An unknown token missing from the vocabulary: Hugging Face then refuses unknown text, as nil says.
            let unknown = model["unk_token"]?.string.flatMap { u in tokens.contains { $0.utf8.elementsEqual(u.utf8) } ? u : nil }
            let pre = root["pre_tokenizer"], norm = root["normalizer"]
            let split: WordLevelSplit
            if let pre, wordSplitter.matches(pre), isNull(norm) {
                split = .words
            } else if let pre, graphemeSplitter.matches(pre) {
                if isNull(norm) {
                    split = .characters
                } else if let norm, lineBreakRemover.matches(norm) {
                    split = .charactersWithoutLineBreaks
                } else {
                    throw fail("normalizer", "not one this project writes for a character vocabulary, found \(description(norm))")
                }
            } else {
                throw fail("pre_tokenizer", "a WordLevel model needs one of the splits this project writes, found \(description(pre))")
            }
            return .wordLevel(tokens: tokens, split: split, unknown: unknown)
        }

        func wordPiece(_ root: JSONNode, _ model: JSONNode) throws -> Model {
            let norm = root["normalizer"], pre = root["pre_tokenizer"]
            guard let norm, norm["type"]?.string == "BertNormalizer" else {
                throw fail("normalizer", "this project runs WordPiece with BertNormalizer, found \(description(norm))")
            }
            guard pre?["type"]?.string == "BertPreTokenizer" else {
                throw fail("pre_tokenizer", "this project runs WordPiece with BertPreTokenizer, found \(description(pre))")
            }
            let lowercase = norm["lowercase"]?.bool ?? true
            if let strip = norm["strip_accents"]?.bool, strip != lowercase {
                throw fail("normalizer.strip_accents", "\(strip) with lowercase \(lowercase) is not supported (accents go with case)")
            }
            for key in ["clean_text", "handle_chinese_chars"] where norm[key]?.bool == false {
                throw fail("normalizer.\(key)", "false is not supported")
            }
            if let unk = model["unk_token"]?.string, unk != "[UNK]" {
                throw fail("model.unk_token", "must be \"[UNK]\", found \(quotedForMessage(unk))")
            }
            if let prefix = model["continuing_subword_prefix"]?.string, prefix != "##" {
                throw fail("model.continuing_subword_prefix", "must be \"##\", found \(quotedForMessage(prefix))")
            }
            let pieces = try tokensByID(try entries(root, model).entries)
            var wp: WordPieceTokenizer
            do { wp = try WordPieceTokenizer(pieces: pieces, lowercase: lowercase) } catch let e as WordPieceError {
                throw fail("model.vocab", e.message)
            }
            if let m = model["max_input_chars_per_word"] {
                guard let n = m.integer, n > 0 else {
                    throw fail("model.max_input_chars_per_word", "expected a positive integer, found \(m.brief)")
                }
                wp.maxInputCharsPerWord = n
            }
            return .wordPiece(wp)
        }

        /// A token list with no token twice (exact bytes), as a `vocab` object can only be.
        func unique(_ tokens: [String], _ field: String) throws -> [String] {
            var seen = Set<[UInt8]>()
            for t in tokens where !seen.insert(Array(t.utf8)).inserted {
                throw fail(field, "the token \(quotedForMessage(t)) appears twice")
            }
            return tokens
        }

        /// `{"kind": "char" | "word" | "bpe", …}`: what `SentenceCodec` and `TextTokenizer` wrote before
        /// this reader existed.
        func legacy(_ root: JSONNode) throws -> Model {
            switch root["kind"]?.string {
            case "char" where root["chars"] != nil:
                guard let list = root["chars"]?.array, !list.isEmpty else {
                    throw fail("chars", "expected a non-empty array of characters")
                }
                let chars = try list.enumerated().map { i, c in
                    guard let s = c.string, s.count == 1 else { throw fail("chars[\(i)]", "expected a single character, found \(c.brief)") }
                    return s
                }
                return .wordLevel(tokens: try unique(chars, "chars"), split: .characters, unknown: nil)
            case "char", "word":
                let split: WordLevelSplit = root["kind"]?.string == "word" ? .words : .charactersWithoutLineBreaks
                guard let v = root["vocabulary"], let list = v["tokens"]?.array else {
                    throw fail("vocabulary.tokens", "a \(root["kind"]!.string!) tokenizer needs a vocabulary")
                }
                let tokens = try list.enumerated().map { i, t in
                    guard let s = t.string else { throw fail("vocabulary.tokens[\(i)]", "expected a string, found \(t.brief)") }
                    return s
                }
                return .wordLevel(tokens: try unique(tokens, "vocabulary.tokens"), split: split, unknown: SpecialToken.unk.rawValue)
            case "bpe":
                guard let vocab = root["bpe_vocab"]?.string, let merges = root["bpe_merges"]?.string else {
                    throw fail("bpe_vocab", "a bpe tokenizer needs bpe_vocab and bpe_merges (strings)")
                }
                do { return .byteLevelBPE(try ByteLevelBPE(vocabJSON: Data(vocab.utf8), merges: merges)) } catch let e as TokenizerError {
                    throw TokenizerError("\(name): the BPE tables do not load (\(e.message))")
                }
            default:
                throw fail("kind", "expected \"char\", \"word\" or \"bpe\", found \(root["kind"]!.brief)")
            }
        }
    }
}
