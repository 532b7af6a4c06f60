import Foundation
import Testing
import TensorKit
@testable import TransformerKit

/// The real all-MiniLM-L6-v2 against sentence-transformers: `Fixtures/minilm_expected.json` holds the
/// token ids, embeddings and some last hidden states that `Fixtures/make_minilm_fixture.py` got from
/// sentence-transformers 6.2 / transformers 5.23 for a dozen sentences (English, punctuation, accents,
/// CJK, Greek and Cyrillic, unknown symbols, control characters, empty, one longer than 256 pieces).
///
/// The weights (90 MB) are not in the repository. The tests look for the model folder in `MINILM_DIR`,
/// then in `.build/models/all-MiniLM-L6-v2` (where `scripts/fetch-minilm.sh` puts it by default), and
/// are skipped — reported as such — when neither has it.
@Suite struct MiniLMTests {
    static let directory: URL? = {
        let fm = FileManager.default
        var candidates: [URL] = []
        if let env = ProcessInfo.processInfo.environment["MINILM_DIR"], !env.isEmpty { candidates.append(URL(fileURLWithPath: env)) }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(root.appendingPathComponent(".build/models/all-MiniLM-L6-v2"))
        return candidates.first { fm.fileExists(atPath: $0.appendingPathComponent("model.safetensors").path) }
    }()

    static let skipNote: Comment = "all-MiniLM-L6-v2 not found: run scripts/fetch-minilm.sh (or set MINILM_DIR) to check the real model"

    struct Expected: Decodable {
        struct Hidden: Decodable { let sentence: Int; let values: [[Float]] }
        let sentences: [String]
        let ids: [[Int]]
        let embeddings: [[Float]]
        let hidden: [Hidden]
        let max_seq_length: Int
        let batch_size: Int
    }

    static func expected() throws -> Expected {
        let url = try #require(Bundle.module.url(forResource: "minilm_expected", withExtension: "json", subdirectory: "Fixtures"))
        return try JSONDecoder().decode(Expected.self, from: Data(contentsOf: url))
    }

    static func encoder() throws -> SentenceEncoder { try SentenceEncoder(directory: #require(directory)) }

    @Test(.enabled(if: directory != nil, skipNote)) func configAndFiles() throws {
        let enc = try Self.encoder()
        let c = enc.model.config
        #expect(c.vocabSize == 30522 && c.dModel == 384 && c.layers == 6 && c.heads == 12 && c.dFF == 1536)
        #expect(c.contextLength == 512 && c.hiddenAct == "gelu" && c.layerNormEps == 1e-12)
        #expect(enc.maxLength == 256 && enc.normalize && enc.tokenizer.lowercase && enc.tokenizer.vocabularySize == 30522)
    }

    @Test(.enabled(if: directory != nil, skipNote)) func tokenIDsMatchSentenceTransformers() throws {
        let e = try Self.expected()
        let enc = try Self.encoder()
        #expect(e.sentences.count == 12 && e.ids.contains { $0.count == 256 })
        for (s, want) in zip(e.sentences, e.ids) {
            let got = enc.tokenize(s)
            #expect(
                got == want,
                "\(s.prefix(60).debugDescription): \(enc.tokenizer.tokens(got).prefix(40)) vs \(enc.tokenizer.tokens(want).prefix(40))")
        }
    }

    @Test(.enabled(if: directory != nil, skipNote)) func embeddingsMatchSentenceTransformers() throws {
        let e = try Self.expected()
        let enc = try Self.encoder()
        let got = enc.encode(e.sentences, batchSize: e.batch_size)
        var worst: Float = 0, worstCosine: Float = 1
        for (k, (v, want)) in zip(got, e.embeddings).enumerated() {
            let diff = zip(v, want).map { abs($0 - $1) }.max() ?? .infinity
            let cosine = zip(v, want).reduce(0) { $0 + $1.0 * $1.1 }
            worst = max(worst, diff); worstCosine = min(worstCosine, cosine)
            #expect(
                diff <= 1e-4 && cosine >= 0.99999,
                "sentence \(k) \(e.sentences[k].prefix(40).debugDescription): max |Δ| \(diff), cosine \(cosine)")
        }
        print("all-MiniLM-L6-v2 vs sentence-transformers: worst |Δembedding| \(worst), lowest cosine \(worstCosine)")
    }

    @Test(.enabled(if: directory != nil, skipNote)) func lastHiddenStateMatchesTransformers() throws {
        let e = try Self.expected()
        let enc = try Self.encoder()
        #expect(!e.hidden.isEmpty)
        let acts = BERTActivations(config: enc.model.config, maxBatch: 1, maxLength: 16)
        var worst: Float = 0, scale: Float = 0
        for h in e.hidden {
            let ids = e.ids[h.sentence]
            let (out, t) = enc.model.forward([ids], acts: acts)
            for i in 0..<t {
                for j in 0..<384 {
                    worst = max(worst, abs(out[i * 384 + j] - h.values[i][j])); scale = max(scale, abs(h.values[i][j]))
                }
            }
        }
        print("all-MiniLM-L6-v2 vs transformers: worst |Δhidden| \(worst) (largest |value| \(scale))")
        #expect(worst <= 1e-4 * max(1, scale), "worst |Δhidden| \(worst)")
    }
}
