import Foundation
import Testing
import TensorKit
import TransformerKit
import Training
import Tokenizers

/// Inputs the `config-json` fuzz target (Fuzz/, `scripts/fuzz.sh config-json`) found crashing, replayed
/// through the same readers: every file `Fixtures/fuzz-regressions/config-json-*` goes through
/// TransformerConfig, a checkpoint's config.json / state.json / tokenizer.json, and Hugging Face GPT-2
/// and BERT configs. Refusal by a thrown error is the expected outcome; a crash fails the run.
@Suite struct ConfigFuzzRegressionTests {
    static func inputs() throws -> [(name: String, data: Data)] {
        let dir = try #require(Bundle.module.url(forResource: "fuzz-regressions", withExtension: nil, subdirectory: "Fixtures"))
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("config-json-") }.sorted()
        return try names.map { ($0, try Data(contentsOf: dir.appendingPathComponent($0))) }
    }

    static func replay(_ d: Data) {
        let decoder = JSONDecoder()
        if let c = try? decoder.decode(TransformerConfig.self, from: d), (try? c.validate()) != nil { _ = c.parameterShapes }
        if let c = try? decoder.decode(CheckpointConfig.self, from: d), (try? c.model.validate()) != nil { _ = c.model.parameterShapes }
        _ = try? decoder.decode(TrainState.self, from: d)
        _ = try? GPTCheckpoint.readConfig(data: d, path: "config.json")
        _ = try? BERTCheckpoint.readConfig(data: d, path: "config.json")
        if let codec = try? SentenceCodec.load(data: d, name: "tokenizer.json") { _ = codec.decode(codec.encode("hello world")) }
    }

    /// Passes unless a replay traps: each saved input once crashed a reader.
    @Test func savedConfigFuzzInputsNeverTrap() throws {
        let all = try Self.inputs()
        #expect(!all.isEmpty)
        for (_, d) in all { Self.replay(d) }
    }

    /// A tokenizer.json whose embedded vocab.json has a 53-digit id: the id parser overflowed Int.
    /// (The JSON scanner keeps numbers as text and refuses this file's repeated key first.)
    @Test func fuzzRegression_configTokenizerBPEVocabIdOverflow() throws {
        let dir = try #require(Bundle.module.url(forResource: "fuzz-regressions", withExtension: nil, subdirectory: "Fixtures"))
        let d = try Data(contentsOf: dir.appendingPathComponent("config-json-bpe-vocab-id-overflow.json"))
        do {
            _ = try SentenceCodec.load(data: d, name: "tokenizer.json")
            Issue.record("expected the tokenizer file to be refused")
        } catch {
            #expect(
                "\(error)".contains("vocab.json") && ("\(error)".contains("id too large") || "\(error)".contains("appears twice")),
                "\(error)")
        }
    }
}
