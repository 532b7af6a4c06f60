import Foundation
import Testing
@testable import ModelFiles
@testable import Tokenizers

/// `tokenizer.json` in Hugging Face's schema, checked against `tokenizers` itself.
///
/// `ours_*.json` are what this project writes for the tokenizers it builds from `corpus.txt` (the first
/// test keeps them byte-identical; `UPDATE_TOKENIZER_JSON_FIXTURES=1 swift test --filter TokenizerJSON`
/// rewrites them). `make_tokenizer_json_fixture.py` opens each with `tokenizers.Tokenizer.from_file`,
/// writes `hf_bpe.json` and `hf_wordpiece.json` with Hugging Face's own writer, and records in
/// `expected.json` the ids Hugging Face gives a set of texts with each file.
@Suite struct TokenizerJSONTests {
    static func url(_ name: String) throws -> URL {
        try #require(Bundle.module.url(forResource: "Fixtures/tokenizer-json/\(name)", withExtension: nil))
    }

    static func corpus() throws -> [String] {
        try String(contentsOf: url("corpus.txt"), encoding: .utf8).split(separator: "\n").map(String.init)
    }

    /// The four tokenizers this project writes, built from the corpus.
    static func ours() throws -> [(String, TokenizerJSON.Model)] {
        let lines = try corpus()
        return [
            ("ours_char.json", try SentenceCodec.build(kind: .char, texts: lines).tokenizerModel),
            ("ours_word.json", try SentenceCodec.build(kind: .word, texts: lines).tokenizerModel),
            ("ours_bpe.json", try SentenceCodec.build(kind: .bpe, texts: lines, vocabularySize: 400).tokenizerModel),
            ("ours_gpt_char.json", try TextTokenizer(characters: lines.joined(separator: "\n")).tokenizerModel)
        ]
    }

    @Test func writerOutputIsTheCommittedFixture() throws {
        for (name, model) in try Self.ours() {
            let data = TokenizerJSON.data(model)
            if ProcessInfo.processInfo.environment["UPDATE_TOKENIZER_JSON_FIXTURES"] == "1" {
                let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/tokenizer-json")
                try data.write(to: dir.appendingPathComponent(name))
                continue  // the test bundle holds the old copy until the next build
            }
            #expect(data == (try Data(contentsOf: Self.url(name))), "\(name) differs from what the writer gives now")
        }
    }

    struct Expected: Decodable {
        struct Case: Decodable {
            var text: String
            var ids: [Int]?
            var decoded: String?
        }
        var files: [String: [Case]]
    }

    func encode(_ model: TokenizerJSON.Model, _ text: String) throws -> [Int] {
        switch model {
        case .wordLevel(_, .characters, _):
            return try TextTokenizer.load(data: TokenizerJSON.data(model), name: "t").encode(text)
        case .wordLevel:
            return try SentenceCodec.load(data: TokenizerJSON.data(model), name: "t").encode(text)
        case .byteLevelBPE(let b): return b.encode(text)
        case .wordPiece(let w): return w.encode(text, maxLength: 100_000)
        }
    }

    /// Every file gives Hugging Face's ids for every text (and refuses the texts Hugging Face refuses:
    /// a character outside a GPT's character vocabulary).
    @Test func idsMatchHuggingFaceTokenizers() throws {
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: Self.url("expected.json")))
        #expect(expected.files.count == 6)
        for (name, cases) in expected.files.sorted(by: { $0.key < $1.key }) {
            let model = try TokenizerJSON.read(Self.url(name))
            #expect(!cases.isEmpty)
            for c in cases {
                if let ids = c.ids {
                    #expect(try encode(model, c.text) == ids, "\(name): \(c.text.debugDescription)")
                } else {
                    #expect(throws: TokenizerError.self, "\(name): \(c.text.debugDescription)") { try encode(model, c.text) }
                }
            }
        }
    }

    /// Characters and byte-level BPE decode back to Hugging Face's text (its `Fuse` and `ByteLevel` decoders).
    @Test func decodingMatchesHuggingFace() throws {
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: Self.url("expected.json")))
        var checked = 0
        for (name, cases) in expected.files {
            let model = try TokenizerJSON.read(Self.url(name))
            for c in cases {
                guard let ids = c.ids, let decoded = c.decoded else { continue }
                switch model {
                case .byteLevelBPE(let b): #expect(b.decode(ids) == decoded, "\(name)"); checked += 1
                case .wordLevel(let tokens, .characters, _): #expect(ids.map { tokens[$0] }.joined() == decoded); checked += 1
                default: continue
                }
            }
        }
        #expect(checked > 20)
    }

    @Test func huggingFaceFilesReadAsTheirModels() throws {
        guard case .byteLevelBPE(let b) = try TokenizerJSON.read(Self.url("hf_bpe.json")) else {
            Issue.record("hf_bpe.json is not read as byte-level BPE"); return
        }
        #expect(b.vocabSize == 400)
        #expect(b.specialTokens == ["<pad>", "<start>", "<end>", "<unk>"])
        guard case .wordPiece(let w) = try TokenizerJSON.read(Self.url("hf_wordpiece.json")) else {
            Issue.record("hf_wordpiece.json is not read as WordPiece"); return
        }
        let vocabTxt = try WordPieceTokenizer(vocabFile: Bundle.module.url(forResource: "Fixtures/bert-tiny/vocab", withExtension: "txt")!)
        #expect(w.pieces.count == vocabTxt.pieces.count)
        #expect(w.lowercase)
    }

    /// Writing what was read gives the same tokenizer back (the same file, byte for byte).
    @Test func roundTrips() throws {
        for name in ["ours_char.json", "ours_word.json", "ours_bpe.json", "ours_gpt_char.json", "hf_bpe.json"] {
            let model = try TokenizerJSON.read(Self.url(name))
            let again = TokenizerJSON.data(model)
            #expect(TokenizerJSON.data(try TokenizerJSON.read(data: again, name: name)) == again, "\(name)")
            if name.hasPrefix("ours") { #expect(again == (try Data(contentsOf: Self.url(name)))) }
        }
        let codec = try SentenceCodec.load(Self.url("ours_word.json"))
        #expect(codec.kind == .word)
        #expect(codec.vocabulary?.corpusTokenCount == codec.vocabularySize - 4)
    }

    /// Files from before this reader (`{"kind": …}`) still load, with the same ids.
    @Test func legacyFilesStillLoad() throws {
        let lines = try Self.corpus()
        let bpe = try SentenceCodec.build(kind: .bpe, texts: lines, vocabularySize: 300).bpe!
        let legacyBPE =
            #"{"kind":"bpe","bpe_vocab":"# + String(decoding: bpe.vocabJSON(), as: UTF8.self).jsonEscapedForTest
            + #","bpe_merges":"# + bpe.mergesText().jsonEscapedForTest + "}"
        let codec = try SentenceCodec.load(data: Data(legacyBPE.utf8), name: "old.json")
        #expect(codec.encode("ROMEO: what light") == bpe.encode("ROMEO: what light"))
        let gpt = try TextTokenizer.load(directory: try Self.writeTemp(legacyBPE))
        #expect(try gpt.encode("First Citizen") == bpe.encode("First Citizen"))

        let word = try SentenceCodec.build(kind: .word, texts: lines)
        let legacyWord = Data(#"{"kind":"word"}"#.utf8)  // no vocabulary: refused
        #expect(throws: TokenizerError.self) { try SentenceCodec.load(data: legacyWord, name: "old.json") }
        struct OldWord: Encodable {
            var kind = "word"
            var vocabulary: Vocabulary
        }
        let oldWord = try SentenceCodec.load(data: JSONEncoder().encode(OldWord(vocabulary: word.vocabulary!)), name: "old.json")
        #expect(oldWord.encode("Before we proceed any further") == word.encode("Before we proceed any further"))
        #expect(oldWord.vocabulary == word.vocabulary)

        let chars = #"{"kind":"char","chars":["a","b","\n"]}"#
        let t = try TextTokenizer.load(directory: try Self.writeTemp(chars))
        #expect(try t.encode("ba\n") == [1, 0, 2])
    }

    static func writeTemp(_ text: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tokjson-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: dir.appendingPathComponent("tokenizer.json"))
        return dir
    }

    /// Files this project cannot run are refused with the file and the field named.
    @Test func unsupportedFilesAreRefusedNamingTheField() throws {
        func message(_ json: String) -> String {
            do { _ = try TokenizerJSON.read(data: Data(json.utf8), name: "x/tokenizer.json"); return "" } catch { return "\(error)" }
        }
        #expect(message(#"{"model": {"type": "Unigram", "vocab": []}}"#).contains(#"model.type "Unigram" is not one"#))
        #expect(
            message(#"{"model": {"type": "BPE", "vocab": {}, "merges": []}, "pre_tokenizer": {"type": "Metaspace"}}"#)
                .contains(#"pre_tokenizer: this project runs byte-level BPE with GPT-2's ByteLevel pre-tokenizer, found type "Metaspace""#))
        #expect(
            message(#"{"model": {"type": "WordLevel", "vocab": {"a": 0}, "unk_token": null}, "pre_tokenizer": {"type": "Whitespace"}}"#)
                .contains("x/tokenizer.json: pre_tokenizer:"))
        #expect(message(#"{"model": {"type": "WordLevel", "vocab": {"a": 0}, "unk_token": "<unk>"}}"#).contains("pre_tokenizer"))
        #expect(message(#"{"model": {"type": "WordLevel", "vocab": {"a": 0, "b": 0}}}"#).contains("id 0 appears twice"))
        #expect(message(#"{"kind": "sentencepiece"}"#).contains(#"kind: expected "char", "word" or "bpe""#))
        // found by the config-json fuzz target: a repeated token in an old file did not round-trip
        #expect(
            message(#"{"kind":"word","vocabulary":{"corpus_token_count":1,"tokens":["a","a","<pad>","<start>","<end>","<unk>"]}}"#)
                .contains(#"vocabulary.tokens: the token "a" appears twice"#))
        #expect(message(#"{"kind":"char","chars":["a","b","a"]}"#).contains(#"chars: the token "a" appears twice"#))
        #expect(message(#"{"model": 1, "model": 2}"#).contains("appears twice"))
        #expect(message("[]").contains("expected a JSON object"))
        #expect(
            message(
                #"{"model": {"type": "WordPiece", "vocab": {"a": 0}}, "normalizer": {"type": "BertNormalizer"}, "pre_tokenizer": {"type": "BertPreTokenizer"}}"#
            ).contains("[CLS]"))
        // A translation model cannot use a GPT's character vocabulary, which has no <pad> <start> <end> <unk>.
        let gpt = try TextTokenizer(characters: "abc").jsonData()
        #expect(throws: TokenizerError.self) { try SentenceCodec.load(data: gpt, name: "t") }
    }
}

extension String {
    /// This string as a JSON string literal (the old files embedded vocab.json and merges.txt as strings).
    fileprivate var jsonEscapedForTest: String { jsonString(self) }
}
