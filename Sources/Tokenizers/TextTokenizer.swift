import Foundation

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
    private let index: [Character: Int]

    /// A char tokenizer over the distinct characters of `text`, sorted by their Unicode scalars
    /// (as Python's `sorted(set(text))`, so ids match nanoGPT's).
    /// - Throws: `TokenizerError` when `text` is empty.
    public init(characters text: String) throws {
        let set = Set(text)
        guard !set.isEmpty else { throw TokenizerError("the text is empty: a character tokenizer needs at least one character") }
        // Sorted by Unicode scalars, as Python's sorted(set(text)) orders them.
        chars = set.sorted { $0.unicodeScalars.map(\.value).lexicographicallyPrecedes($1.unicodeScalars.map(\.value)) }
        index = Dictionary(uniqueKeysWithValues: chars.enumerated().map { ($1, $0) })
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
            guard let i = index[ch] else {
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

    struct Stored: Codable {
        var kind: Kind
        var chars: [String]?
        var bpeVocab: String?
        var bpeMerges: String?
        enum CodingKeys: String, CodingKey { case kind, chars, bpeVocab = "bpe_vocab", bpeMerges = "bpe_merges" }
    }

    /// The `tokenizer.json` the trainer saves beside a GPT (kind, and the characters or the BPE tables).
    public func jsonData() throws -> Data {
        var s = Stored(kind: kind)
        if let bpe {
            s.bpeVocab = String(decoding: bpe.vocabJSON(), as: UTF8.self); s.bpeMerges = bpe.mergesText()
        } else {
            s.chars = chars.map(String.init)
        }
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return try e.encode(s)
    }

    /// The tokenizer of a checkpoint folder: this project's `tokenizer.json`, or GPT-2's
    /// `vocab.json` + `merges.txt` as Hugging Face saves them.
    public static func load(directory dir: URL) throws -> TextTokenizer {
        let fm = FileManager.default
        let own = dir.appendingPathComponent("tokenizer.json")
        if fm.fileExists(atPath: own.path) {
            // Hugging Face also writes a tokenizer.json (its own format); ours has a "kind" field.
            if let t = try? load(own) { return t }
        }
        let vocab = dir.appendingPathComponent("vocab.json"), merges = dir.appendingPathComponent("merges.txt")
        if fm.fileExists(atPath: vocab.path) && fm.fileExists(atPath: merges.path) {
            do { return TextTokenizer(bpe: try ByteLevelBPE(vocabURL: vocab, mergesURL: merges)) } catch {
                throw TokenizerError("\(dir.path): vocab.json/merges.txt do not load (\(error))")
            }
        }
        if fm.fileExists(atPath: own.path) { return try load(own) }  // report why ours failed
        throw TokenizerError(
            "\(dir.path): no tokenizer (tokenizer.json, or vocab.json and merges.txt); `transformer logits --ids` works without one")
    }

    /// Reads a `tokenizer.json` written by `jsonData()`.
    /// - Throws: `TokenizerError` naming the file when it cannot be read or is not such a file.
    public static func load(_ url: URL) throws -> TextTokenizer {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw TokenizerError("\(url.path): cannot read the tokenizer file")
        }
        let s: Stored
        do { s = try JSONDecoder().decode(Stored.self, from: data) } catch {
            throw TokenizerError("\(url.path): not a valid tokenizer file (\(error))")
        }
        switch s.kind {
        case .char:
            guard let c = s.chars, !c.isEmpty, c.allSatisfy({ $0.count == 1 }) else {
                throw TokenizerError("\(url.path): a char tokenizer needs a list of single characters")
            }
            return try TextTokenizer(characters: c.joined())
        case .bpe:
            guard let v = s.bpeVocab, let m = s.bpeMerges else {
                throw TokenizerError("\(url.path): a bpe tokenizer needs bpe_vocab and bpe_merges")
            }
            do { return TextTokenizer(bpe: try ByteLevelBPE(vocabJSON: Data(v.utf8), merges: m)) } catch {
                throw TokenizerError("\(url.path): the BPE tables do not load (\(error))")
            }
        }
    }
}
