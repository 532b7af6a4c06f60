import Foundation
import ModelFiles

/// A model's own tokenizer, built from a GGUF file's `tokenizer.ggml.*` metadata: GPT-2-style
/// byte-level BPE (`tokenizer.ggml.model` = "gpt2": the file's tokens and merges) or SentencePiece
/// (`"llama"`: pieces with scores and byte fallback, as Gemma and Llama 2 use; `SentencePiece`).
///
/// Byte-level pre-tokenizer: the pattern `tokenizer.ggml.pre` names (`PreTokenizerPattern`): GPT-2's
/// by default and for "smollm" (SmolLM2's own tokenizer also splits digits one by one first; its
/// vocabulary has no token holding a digit beside anything else, so both give the same ids), Qwen2's
/// for "qwen2", Llama 3's for "llama-bpe". Other names are refused, naming them.
///
/// Special tokens (token type 3 "control": `<|im_start|>`, `<start_of_turn>`, …; type 4
/// "user-defined": Gemma's runs of spaces and newlines, …) are found in the text first and become
/// their own ids, as Hugging Face's tokenizers and llama.cpp do, so a rendered chat template encodes
/// to the ids the model was trained on.
public struct GGUFTokenizer: Sendable {
    /// The byte-level BPE over the file's tokens and merges (`tokenizer.ggml.model` "gpt2"), else nil.
    /// Its own `encode` treats special-token text as ordinary text; use `encode(_:parseSpecial:)`.
    public let bpe: ByteLevelBPE?
    /// The SentencePiece model (`tokenizer.ggml.model` "llama"), else nil.
    public let sentencePiece: SentencePiece?
    /// Token strings by id, as the file stores them (`Ġthe` for byte-level BPE, `▁the` for SentencePiece).
    public let tokens: [String]
    /// `tokenizer.ggml.bos_token_id` and `tokenizer.ggml.eos_token_id`, or `nil` when the file has no such key
    /// or gives -1 (llama.cpp's "no token").
    public let bosID: Int?, eosID: Int?
    /// Whether the model expects BOS before a prompt (`tokenizer.ggml.add_bos_token`).
    public let addBOS: Bool
    /// The Jinja source of the chat template: the file's `tokenizer.chat_template`, or for an
    /// architecture whose files come without one, this project's rendering of its format
    /// (`ChatTemplate.builtIn`); `nil` when there is neither.
    public let chatTemplate: String?
    /// Whether `chatTemplate` is this project's (the file has none).
    public let chatTemplateIsBuiltIn: Bool
    /// `chatTemplate` parsed once (or why it does not parse), nil when the file has none.
    private let parsedTemplate: Result<ChatTemplate, any Error>?
    /// Special token texts by first byte, each list longest first (a longer one wins where two
    /// start at the same place); `control` marks the ones `parseSpecial: false` leaves as text.
    private let specials: [[(bytes: [UInt8], id: Int, control: Bool)]]
    private let specialIDs: [[UInt8]: Int]

    /// Reads the tokenizer tables of a GGUF file. Without `tokenizer.ggml.token_type` every token is normal
    /// (none special); `addBOS` defaults to false.
    /// - Throws: `GGUFError` when the model is neither `"gpt2"` nor `"llama"`, when the tables are missing, of
    ///   the wrong type, or inconsistent (a BOS/EOS id past the last token, a token that is not byte-level
    ///   text, a bad merge, scores that do not match the tokens).
    public init(gguf f: GGUFFile) throws {
        let model = try f.string("tokenizer.ggml.model")
        guard model == "gpt2" || model == "llama" else {
            throw GGUFError(
                "\(f.path): tokenizer.ggml.model is \"\(model)\"; this project reads \"gpt2\" (byte-level BPE) and \"llama\" (SentencePiece)"
            )
        }
        let tokens = try f.strings("tokenizer.ggml.tokens")
        self.tokens = tokens
        let types =
            f.metadata["tokenizer.ggml.token_type"] != nil
            ? try f.ints("tokenizer.ggml.token_type") : [Int](repeating: 1, count: tokens.count)
        guard types.count == tokens.count else {
            throw GGUFError("\(f.path): tokenizer.ggml.token_type has \(types.count) entries for \(tokens.count) tokens")
        }
        func optionalID(_ key: String) throws -> Int? {
            guard f.metadata[key] != nil else { return nil }
            let id = try f.int(key)
            if id == -1 { return nil }  // llama.cpp's LLAMA_TOKEN_NULL: no such token
            guard id >= 0 && id < tokens.count else {
                throw GGUFError("\(f.path): \(key) is \(id), outside the \(tokens.count) tokens")
            }
            return id
        }
        bosID = try optionalID("tokenizer.ggml.bos_token_id")
        eosID = try optionalID("tokenizer.ggml.eos_token_id")
        addBOS = f.metadata["tokenizer.ggml.add_bos_token"]?.bool ?? false
        let own = f.metadata["tokenizer.chat_template"]?.string
        let architecture = f.metadata["general.architecture"]?.string
        chatTemplate = own ?? architecture.flatMap { ChatTemplate.builtIn[$0] }
        chatTemplateIsBuiltIn = own == nil && chatTemplate != nil
        parsedTemplate = chatTemplate.map { t in Result { try ChatTemplate(t) } }
        if model == "gpt2" {
            let merges = try f.strings("tokenizer.ggml.merges")
            let pre = f.metadata["tokenizer.ggml.pre"] != nil ? try f.string("tokenizer.ggml.pre") : nil
            guard let pattern = PreTokenizerPattern.fromGGUF(pre) else {
                throw GGUFError(
                    "\(f.path): tokenizer.ggml.pre is \"\(pre ?? "")\"; this project knows GPT-2's, Qwen2's and Llama 3's pre-tokenizers")
            }
            do {
                var b = try ByteLevelBPE(ggufTokens: tokens, merges: merges, special: types.map { $0 == 3 || $0 == 4 })
                b.pattern = pattern
                bpe = b
            } catch let e as TokenizerError {
                throw GGUFError("\(f.path): tokenizer tables: \(e.message)")
            }
            sentencePiece = nil
        } else {
            let scores = try f.floatArray("tokenizer.ggml.scores")
            do {
                sentencePiece = try SentencePiece(
                    pieces: tokens, scores: scores, types: types,
                    addSpacePrefix: f.metadata["tokenizer.ggml.add_space_prefix"]?.bool ?? true,
                    unknownID: try optionalID("tokenizer.ggml.unknown_token_id"))
            } catch let e as TokenizerError {
                throw GGUFError("\(f.path): tokenizer tables: \(e.message)")
            }
            bpe = nil
        }
        var byFirst = [[(bytes: [UInt8], id: Int, control: Bool)]](repeating: [], count: 256)
        var ids: [[UInt8]: Int] = [:]
        for (i, (t, type)) in zip(tokens, types).enumerated() where type == 3 || type == 4 {
            let b = Array(t.utf8)
            guard !b.isEmpty else { continue }
            byFirst[Int(b[0])].append((b, i, type == 3))
            if ids[b] == nil { ids[b] = i }
        }
        specials = byFirst.map { $0.sorted { $0.bytes.count > $1.bytes.count } }
        specialIDs = ids
    }

    /// The number of tokens in the file, special ones included (ids are `0..<vocabSize`).
    public var vocabSize: Int { tokens.count }

    /// Tokens that end a reply: EOS, and the end-of-turn tokens of the chat formats of the families
    /// this project runs (ChatML, Gemma, Llama 3), where the file's EOS is another token.
    public var stopTokens: Set<Int> {
        var s = Set<Int>()
        if let e = eosID { s.insert(e) }
        for t in ["<|im_end|>", "<|endoftext|>", "<end_of_turn>", "<|eot_id|>"] {
            if let e = id(forSpecial: t) { s.insert(e) }
        }
        return s
    }

    /// The id of a special (control or user-defined) token by its text, such as `<|im_end|>`, or nil.
    public func id(forSpecial text: String) -> Int? { specialIDs[Array(text.utf8)] }

    /// Text → ids. Special-token texts become their ids (control tokens only when `parseSpecial`); the
    /// rest goes through the byte-level BPE or SentencePiece. No BOS is added.
    ///
    /// Matching is on UTF-8 bytes, longest special first, left to right; the text between two specials is
    /// encoded on its own, so BPE never merges across a special token.
    /// - Parameters:
    ///   - text: Any text.
    ///   - parseSpecial: When false, control-token texts are encoded as ordinary text (so text that
    ///     merely contains `<|im_end|>` does not produce the id that ends a turn); user-defined
    ///     tokens are still found, as llama.cpp does.
    public func encode(_ text: String, parseSpecial: Bool = true) -> [Int] {
        let bytes = Array(text.utf8)
        var out: [Int] = [], start = 0, i = 0
        // SentencePiece's space prefix goes on text at the start or right after a special token.
        var afterSpecial = true
        func plain(_ end: Int) {
            guard start < end else { return }
            let s = String(decoding: bytes[start..<end], as: UTF8.self)
            if let bpe {
                out += bpe.encode(s)
            } else if let sp = sentencePiece {
                out += sp.encode(s, spacePrefix: sp.addSpacePrefix && afterSpecial)
            }
            afterSpecial = false
        }
        while i < bytes.count {
            if let s = specials[Int(bytes[i])].first(where: {
                (parseSpecial || !$0.control) && i + $0.bytes.count <= bytes.count
                    && bytes[i..<(i + $0.bytes.count)].elementsEqual($0.bytes)
            }) {
                plain(i)
                out.append(s.id)
                afterSpecial = true
                i += s.bytes.count; start = i
            } else {
                i += 1
            }
        }
        plain(bytes.count)
        return out
    }

    /// Ids → text. Special tokens give their text (`<|im_end|>`), ids outside `0..<vocabSize` are skipped,
    /// bytes that are not valid UTF-8 become U+FFFD. SentencePiece's space prefix (when the model adds
    /// one) is taken off the front.
    public func decode(_ ids: [Int]) -> String {
        var b = decodeBytes(ids)
        if let sp = sentencePiece, sp.addSpacePrefix, b.first == 0x20 { b.removeFirst() }
        return String(decoding: b, as: UTF8.self)
    }
    /// Ids → raw bytes, as `decode` but before UTF-8 decoding (and with any space prefix left on). One
    /// token can end mid-character, so to stream tokens one at a time, feed these bytes to a `UTF8Stream`.
    public func decodeBytes(_ ids: [Int]) -> [UInt8] {
        if let bpe { return bpe.decodeBytes(ids) }
        return sentencePiece?.decodeBytes(ids) ?? []
    }

    // MARK: - Chat template

    /// One turn of a chat, for `renderChat`.
    public struct Message: Sendable, Equatable {
        /// `"system"`, `"user"` or `"assistant"` (any string is written as is), and the turn's text.
        public var role: String, content: String
        /// A turn with the given role and text.
        public init(role: String, content: String) { self.role = role; self.content = content }
    }

    /// Renders messages with the chat template the file carries (`tokenizer.chat_template`, a Jinja
    /// template), as Hugging Face's `apply_chat_template` does: `messages` as a list of `{role, content}`,
    /// `add_generation_prompt`, and `bos_token` / `eos_token` as the file's BOS and EOS texts. Roles and
    /// contents are written as the template writes them, not escaped.
    /// - Parameters:
    ///   - messages: The conversation so far, oldest first.
    ///   - addGenerationPrompt: End with the template's opening of an assistant turn, for the model to
    ///     write the reply.
    /// - Throws: `GGUFError` when the file has no template; `ChatTemplateError` when the template uses
    ///   something this project's Jinja subset does not read, or refuses the messages.
    public func renderChat(_ messages: [Message], addGenerationPrompt: Bool = true) throws -> String {
        guard let parsed = parsedTemplate else { throw GGUFError("the model file has no tokenizer.chat_template") }
        let template = try parsed.get()
        func text(_ id: Int?) -> String { id.map { tokens[$0] } ?? "" }
        return try template.render(
            messages: messages.map { ["role": $0.role, "content": $0.content] }, addGenerationPrompt: addGenerationPrompt,
            bosToken: text(bosID), eosToken: text(eosID))
    }

}

extension ByteLevelBPE {
    /// Builds from GGUF's tables: token strings by id (byte-level text, or verbatim for special
    /// tokens), merges as `"left right"` strings in rank order, and which ids are special.
    /// `special` has one entry per token. A byte no token covers is dropped when encoding.
    /// - Throws: `TokenizerError` naming the first inconsistency: a non-special token that is not
    ///   byte-level text, a merge that is not two tokens whose concatenation is a token, a repeated token.
    public init(ggufTokens tokens: [String], merges: [String], special: [Bool]) throws {
        var idOf: [String: Int32] = [:]
        idOf.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() where idOf[t] == nil { idOf[t] = Int32(i) }
        var bytes: [[UInt8]] = []
        bytes.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() {
            if special[i] { bytes.append(Array(t.utf8)); continue }
            guard let b = Self.bytes(ofByteLevel: t) else {
                throw TokenizerError("token \(i) \"\(t)\" is neither byte-level text nor marked special")
            }
            bytes.append(b)
        }
        var table: [(Int32, Int32, Int32)] = []
        table.reserveCapacity(merges.count)
        for (rank, m) in merges.enumerated() {
            let parts = m.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, let a = idOf[String(parts[0])], let b = idOf[String(parts[1])],
                let c = idOf[String(parts[0]) + String(parts[1])]
            else {
                throw TokenizerError("merge \(rank) \"\(m)\" is not two tokens whose concatenation is a token")
            }
            table.append((a, b, c))
        }
        try self.init(tokenBytes: bytes, special: special, merges: table, allowMissingBytes: true)
    }
}

/// Holds back the bytes of a UTF-8 character split across tokens, so streamed text never shows
/// half a character: `append` returns the longest complete prefix of what it has so far.
public struct UTF8Stream: Sendable {
    private var pending: [UInt8] = []
    /// An empty stream.
    public init() {}

    /// Adds a token's bytes and returns the text now complete: everything but a trailing incomplete UTF-8
    /// sequence (up to 3 bytes), which is held for the next call. Invalid bytes become U+FFFD.
    public mutating func append(_ bytes: [UInt8]) -> String {
        pending += bytes
        // Find where a trailing incomplete sequence starts (at most 3 bytes back).
        var cut = pending.count
        var back = 0
        while back < min(3, pending.count) {
            let b = pending[pending.count - 1 - back]
            if b & 0xC0 == 0x80 { back += 1; continue }  // continuation byte
            if b >= 0xC0 {  // a lead byte: complete?
                let need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2
                if back + 1 < need { cut = pending.count - 1 - back }
            }
            break
        }
        let out = String(decoding: pending[..<cut], as: UTF8.self)
        pending.removeFirst(cut)
        return out
    }

    /// Whatever is left (invalid bytes become U+FFFD).
    public mutating func flush() -> String {
        defer { pending = [] }
        return String(decoding: pending, as: UTF8.self)
    }
}
