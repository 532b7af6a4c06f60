import Foundation
import Testing
import TensorKit
@testable import TransformerKit
@testable import Tokenizers

/// `Fixtures/bert-tiny/` is a randomly initialised `transformers.BertModel` (2 layers, 32 wide, exact
/// GELU, eps 1e-12) saved with `save_pretrained`, a 441-piece subset of MiniLM's vocabulary, and
/// `expected.json`: Hugging Face's token ids, last hidden states and mean-pooled, L2-normalised
/// embeddings for a dozen sentences, run as one padded batch. Written by
/// `Fixtures/make_minilm_fixture.py` (not run in CI). This checks the tokenizer, the model and the
/// pooling without the 90 MB download; `MiniLMTests` checks the real model when it is present.
@Suite struct BERTTests {
    struct Expected: Decodable {
        let sentences: [String]
        let max_length: Int
        let ids: [[Int]]
        let hidden: [[[Float]]]
        let embeddings: [[Float]]
    }

    static func fixture() throws -> URL {
        let config = try #require(
            Bundle.module.url(forResource: "config", withExtension: "json", subdirectory: "Fixtures/bert-tiny"),
            "Fixtures/bert-tiny/config.json is missing from the test bundle")
        return config.deletingLastPathComponent()
    }

    static func expected() throws -> Expected {
        try JSONDecoder().decode(Expected.self, from: Data(contentsOf: fixture().appendingPathComponent("expected.json")))
    }

    @Test func configReadsAsBertConfig() throws {
        let c = try BERTCheckpoint.readConfig(Self.fixture().appendingPathComponent("config.json"))
        #expect(c.vocabSize == 441 && c.dModel == 32 && c.layers == 2 && c.heads == 4 && c.dFF == 64)
        #expect(c.contextLength == 64 && c.typeVocabSize == 2 && c.layerNormEps == 1e-12 && c.hiddenAct == "gelu")
        #expect(c.encoder.activation == .gelu && c.encoder.norm == .post && c.encoder.attentionBias)
    }

    @Test func tokenIDsMatchHuggingFace() throws {
        let e = try Self.expected()
        let tok = try WordPieceTokenizer(vocabFile: Self.fixture().appendingPathComponent("vocab.txt"))
        #expect(e.sentences.count == 12)
        for (s, want) in zip(e.sentences, e.ids) {
            let got = tok.encode(s, maxLength: e.max_length)
            #expect(got == want, "\(s.debugDescription): \(tok.tokens(got)) vs \(tok.tokens(want))")
        }
        // The fixture covers [UNK] (a word with a letter no piece covers) and truncation at 64.
        #expect(e.ids.contains { $0.dropFirst().dropLast().contains(tok.unk) })
        #expect(e.ids.contains { $0.count == 64 })
    }

    @Test func lastHiddenStateMatchesTransformers() throws {
        let e = try Self.expected()
        let model = try BERTCheckpoint.load(Self.fixture())
        let acts = BERTActivations(config: model.config, maxBatch: 1, maxLength: 64)
        var worst: Float = 0, at = ""
        for (k, ids) in e.ids.enumerated() {
            let (h, t) = model.forward([ids], acts: acts)
            #expect(t == ids.count)
            for i in 0..<t {
                for j in 0..<32 {
                    let d = abs(h[i * 32 + j] - e.hidden[k][i][j])
                    if !(d <= worst) { worst = d; at = "sentence \(k), token \(i), column \(j)" }
                }
            }
        }
        print("tiny BERT vs transformers: worst |Δhidden| \(worst) at \(at)")
        #expect(worst <= 1e-4, "worst |Δhidden| \(worst) at \(at)")
    }

    /// Padding in a batch must not change any sentence's embedding: batches of 1, 5 and 12 agree with
    /// each other and with Hugging Face's (which ran all 12 as one padded batch).
    @Test(arguments: [1, 5, 12]) func embeddingsMatchInAnyBatchSize(batchSize: Int) throws {
        let e = try Self.expected()
        let enc = try SentenceEncoder(directory: Self.fixture())
        #expect(enc.maxLength == 64 && enc.normalize)
        let got = enc.encode(e.sentences, batchSize: batchSize)
        let single = enc.encode(e.sentences, batchSize: 1)
        for (k, (v, want)) in zip(got, e.embeddings).enumerated() {
            let diff = zip(v, want).map { abs($0 - $1) }.max() ?? .infinity
            let cosine = zip(v, want).reduce(0) { $0 + $1.0 * $1.1 }
            #expect(diff <= 1e-5 && cosine >= 0.99999, "sentence \(k): max |Δ| \(diff), cosine \(cosine)")
            let vsSingle = zip(v, single[k]).map { abs($0 - $1) }.max() ?? .infinity
            #expect(vsSingle <= 1e-6, "sentence \(k): batch \(batchSize) vs one at a time differ by \(vsSingle)")
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            #expect(abs(norm - 1) < 1e-5)
        }
    }

    // MARK: - Tokenizer behaviour

    static func tinyTokenizer() throws -> WordPieceTokenizer {
        try WordPieceTokenizer(pieces: [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "aff", "!", "a", "##b", "é", "我", "σ", "-"
        ])
    }

    @Test func greedyLongestMatchWithContinuationPieces() throws {
        let t = try Self.tinyTokenizer()
        #expect(t.tokens(t.encode("unaffable!")) == ["[CLS]", "un", "##aff", "##able", "!", "[SEP]"])
        #expect(t.tokens(t.encode("UNAFFABLE")) == ["[CLS]", "un", "##aff", "##able", "[SEP]"])
        // "abc": no piece covers "##c", so the whole word is [UNK], not "a ##b [UNK]".
        #expect(t.tokens(t.encode("abc ab")) == ["[CLS]", "[UNK]", "a", "##b", "[SEP]"])
        // Accents stripped (é → e, which is not in this vocabulary: [UNK]); punctuation splits words.
        #expect(t.tokens(t.encode("é a-b")) == ["[CLS]", "[UNK]", "a", "-", "[UNK]", "[SEP]"])
        // CJK ideographs are words of their own even without spaces; a final capital sigma lowers to σ.
        #expect(t.tokens(t.encode("我我 Σ")) == ["[CLS]", "我", "我", "σ", "[SEP]"])
    }

    @Test func emptyAndControlCharacters() throws {
        let t = try Self.tinyTokenizer()
        // An empty sentence, or one of only control characters, zero-width spaces and whitespace, is
        // [CLS] [SEP] — what sentence-transformers embeds for it (MiniLMTests checks the real one).
        #expect(t.encode("") == [t.cls, t.sep])
        #expect(t.encode("\u{7}\u{0}\u{200B}\u{FFFD} \t\r\n\u{3000}") == [t.cls, t.sep])
        // A control character inside a word joins its halves ("a\u{7}b" is the word "ab").
        #expect(t.tokens(t.encode("a\u{7}b")) == ["[CLS]", "a", "##b", "[SEP]"])
        // Words longer than 100 characters are [UNK] without trying.
        #expect(t.encode(String(repeating: "a", count: 101)) == [t.cls, t.unk, t.sep])
    }

    @Test func truncationKeepsClsAndSep() throws {
        let t = try Self.tinyTokenizer()
        let ids = t.encode(String(repeating: "a ", count: 300), maxLength: 256)
        #expect(ids.count == 256 && ids.first == t.cls && ids.last == t.sep)
        #expect(t.encode(String(repeating: "a ", count: 300), maxLength: 5) == [t.cls, 9, 9, 9, t.sep])
    }

    @Test func vocabularyNeedsSpecialTokens() {
        #expect(throws: WordPieceError.self) { try WordPieceTokenizer(pieces: ["a", "b"]) }
    }
}

/// Broken folders: every one is a clear error naming the file, never a crash.
@Suite struct BERTBadInputTests {
    /// A copy of the tiny fixture in a temporary folder, with `edit` applied.
    static func brokenCopy(_ edit: (URL) throws -> Void) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bert-bad-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.copyItem(at: BERTTests.fixture(), to: dir)
        try edit(dir)
        return dir
    }

    static func message(_ dir: URL) -> String? {
        defer { try? FileManager.default.removeItem(at: dir) }
        do { _ = try SentenceEncoder(directory: dir); return nil } catch { return String(describing: error) }
    }

    static func editConfig(_ dir: URL, _ edit: (inout [String: Any]) -> Void) throws {
        let url = dir.appendingPathComponent("config.json")
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        edit(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: url)
    }

    @Test func missingFolderAndFiles() throws {
        let nowhere = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-model-\(UUID().uuidString)")
        #expect(Self.message(nowhere)?.contains("does not exist") == true)
        for file in ["config.json", "model.safetensors", "vocab.txt"] {
            let m = Self.message(try Self.brokenCopy { try FileManager.default.removeItem(at: $0.appendingPathComponent(file)) })
            #expect(m?.contains(file) == true, "without \(file): \(m ?? "no error")")
        }
    }

    @Test func configThatDoesNotFitTheWeights() throws {
        let m = Self.message(try Self.brokenCopy { try Self.editConfig($0) { $0["intermediate_size"] = 48 } })
        #expect(
            m?.contains("encoder.layer.0.intermediate.dense.weight") == true && m?.contains("[64, 32]") == true
                && m?.contains("[48, 32]") == true, "\(m ?? "no error")")
        let layers = Self.message(try Self.brokenCopy { try Self.editConfig($0) { $0["num_hidden_layers"] = 1 } })
        #expect(layers?.contains("encoder.layer.1.") == true && layers?.contains("not part of") == true, "\(layers ?? "no error")")
        let three = Self.message(try Self.brokenCopy { try Self.editConfig($0) { $0["num_hidden_layers"] = 3 } })
        #expect(three?.contains("has no tensor \"encoder.layer.2.") == true, "\(three ?? "no error")")
    }

    @Test func wrongConfigFields() throws {
        let cases: [(String, (inout [String: Any]) -> Void, String)] = [
            ("missing hidden_size", { $0["hidden_size"] = nil }, "\"hidden_size\" is missing"),
            ("heads", { $0["num_attention_heads"] = 5 }, "not divisible"),
            ("activation", { $0["hidden_act"] = "swish" }, "hidden_act \"swish\" is not supported"),
            ("model type", { $0["model_type"] = "roberta" }, "model_type"),
            ("relative positions", { $0["position_embedding_type"] = "relative_key" }, "position_embedding_type"),
            ("negative size", { $0["vocab_size"] = -3 }, "\"vocab_size\" must be a positive integer")
        ]
        for (what, edit, want) in cases {
            let m = Self.message(try Self.brokenCopy { try Self.editConfig($0, edit) })
            #expect(m?.contains(want) == true, "\(what): \(m ?? "no error")")
        }
        let notJSON = Self.message(try Self.brokenCopy { try Data("{".utf8).write(to: $0.appendingPathComponent("config.json")) })
        #expect(notJSON?.contains("is not valid JSON") == true)
    }

    @Test func vocabularyLargerThanTheEmbedding() throws {
        let m = Self.message(
            try Self.brokenCopy { dir in
                let url = dir.appendingPathComponent("vocab.txt")
                try (String(contentsOf: url, encoding: .utf8) + "extra1\nextra2\n").write(to: url, atomically: true, encoding: .utf8)
            })
        #expect(m?.contains("443 pieces") == true && m?.contains("441 rows") == true, "\(m ?? "no error")")
    }

    @Test func unsupportedPooling() throws {
        let m = Self.message(
            try Self.brokenCopy { dir in
                try Data(
                    #"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},{"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"}]"#
                        .utf8
                )
                .write(to: dir.appendingPathComponent("modules.json"))
                try FileManager.default.createDirectory(at: dir.appendingPathComponent("1_Pooling"), withIntermediateDirectories: true)
                try Data(#"{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#.utf8)
                    .write(to: dir.appendingPathComponent("1_Pooling/config.json"))
            })
        #expect(m?.contains("only mean pooling") == true, "\(m ?? "no error")")
    }

    @Test func malformedSentenceTransformersFiles() throws {
        func broken(_ name: String, _ text: String) throws -> String? {
            Self.message(
                try Self.brokenCopy { dir in
                    if name.contains("/") {
                        try FileManager.default.createDirectory(
                            at: dir.appendingPathComponent(name).deletingLastPathComponent(), withIntermediateDirectories: true)
                    }
                    try Data(text.utf8).write(to: dir.appendingPathComponent(name))
                })
        }
        let module0 = try broken("modules.json", #"[{"path": ""}]"#)
        #expect(module0?.contains("modules.json: module 0 needs \"type\" and \"path\" strings") == true, "\(module0 ?? "no error")")
        let notList = try broken("modules.json", #"{"a": 1}"#)
        #expect(notList?.contains("modules.json is not a JSON list") == true, "\(notList ?? "no error")")
        let escape = try broken("modules.json", #"[{"type": "sentence_transformers.models.Pooling", "path": "../x"}]"#)
        #expect(escape?.contains("leaves the folder") == true, "\(escape ?? "no error")")
        let length = try broken("sentence_bert_config.json", #"{"max_seq_length": 1}"#)
        #expect(
            length?.contains(#"sentence_bert_config.json: field "max_seq_length" must be an integer ≥ 2, found 1"#) == true,
            "\(length ?? "no error")")
        let lower = try broken("tokenizer_config.json", #"{"do_lower_case": "yes"}"#)
        #expect(lower?.contains(#"field "do_lower_case" must be true or false, found "yes""#) == true, "\(lower ?? "no error")")
    }

    /// A folder with Hugging Face's `tokenizer.json` in place of `vocab.txt` gives the same embeddings.
    @Test func tokenizerJSONInPlaceOfVocabTxt() throws {
        let reference = try SentenceEncoder(directory: BERTTests.fixture())
        let dir = try Self.brokenCopy { dir in
            try FileManager.default.removeItem(at: dir.appendingPathComponent("vocab.txt"))
            let hf = try #require(Bundle.module.url(forResource: "Fixtures/tokenizer-json/hf_wordpiece", withExtension: "json"))
            try FileManager.default.copyItem(at: hf, to: dir.appendingPathComponent("tokenizer.json"))
        }
        defer { try? FileManager.default.removeItem(at: dir) }
        let fromJSON = try SentenceEncoder(directory: dir)
        let sentences = ["A man is eating food.", "Crème brûlée, 東京!"]
        #expect(fromJSON.tokenizer.pieces == reference.tokenizer.pieces)
        #expect(sentences.map(fromJSON.tokenize) == sentences.map(reference.tokenize))
        #expect(fromJSON.encode(sentences) == reference.encode(sentences))
    }

    @Test func truncatedWeights() throws {
        let m = Self.message(
            try Self.brokenCopy { dir in
                let url = dir.appendingPathComponent("model.safetensors")
                let data = try Data(contentsOf: url)
                try data.prefix(data.count / 2).write(to: url)
            })
        #expect(m?.contains("model.safetensors") == true, "\(m ?? "no error")")
    }
}

/// The step-by-step BERT (what the walkthrough records) against the fast one and Hugging Face's.
@Suite struct TracedBERTTests {
    @Test func tracedForwardMatchesFastModelAndTransformers() throws {
        let e = try BERTTests.expected()
        let encoder = try SentenceEncoder(directory: BERTTests.fixture())
        let traced = TracedBERT(encoder.model)
        let embeddings = encoder.encode(e.sentences, batchSize: 4)
        for k in [0, 3, 5, 9] {
            let out = try traced.forward(ids: e.ids[k])
            let want = e.hidden[k].flatMap { $0 }
            #expect(zip(out.hidden.data, want).allSatisfy { abs($0 - $1) <= 1e-4 }, "sentence \(k): hidden state")
            #expect(zip(out.embedding, embeddings[k]).allSatisfy { abs($0 - $1) <= 1e-5 }, "sentence \(k): embedding")
        }
        #expect(throws: ConfigError.self) { try traced.forward(ids: [2, 9999, 3]) }
        #expect(throws: ConfigError.self) { try traced.forward(ids: [Int](repeating: 5, count: 65)) }
    }
}
