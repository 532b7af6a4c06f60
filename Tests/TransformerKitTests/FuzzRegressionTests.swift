import Foundation
import Testing
import TensorKit
@testable import TransformerKit
@testable import Tokenizers
@testable import ModelFiles

/// Inputs the fuzz targets (Fuzz/, `scripts/fuzz.sh`) found crashing, replayed through the same entry
/// points. Each file in `Fixtures/fuzz-regressions/` is named `<target>-<what>.bin`; the target
/// prefix picks the replay, so a new crash needs only its file dropped in (and, for the record, a
/// test named after it). Refusal by a thrown error is the expected outcome; a crash fails the run.
@Suite struct FuzzRegressionTests {
    static func inputs(_ target: String) throws -> [(name: String, data: Data)] {
        let dir = try #require(Bundle.module.url(forResource: "fuzz-regressions", withExtension: nil, subdirectory: "Fixtures"))
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(target + "-") }.sorted()
        return try names.map { ($0, try Data(contentsOf: dir.appendingPathComponent($0))) }
    }

    static func input(_ name: String) throws -> Data {
        let dir = try #require(Bundle.module.url(forResource: "fuzz-regressions", withExtension: nil, subdirectory: "Fixtures"))
        return try Data(contentsOf: dir.appendingPathComponent(name))
    }

    static func errorText(_ body: () throws -> Void) -> String? {
        do { try body(); return nil } catch { return "\(error)" }
    }

    // MARK: Replays (what each fuzz target does with its input, without the property checks)

    static func replaySafetensors(_ d: Data) {
        if let a = try? Safetensors.open(data: d, name: "fuzz") { _ = try? a.load() }
    }

    static func replayGGUF(_ d: Data) {
        guard let f = try? GGUFFile(data: d) else { return }
        for t in f.tensors where t.count <= 4096 { _ = try? f.floats(t.name, dims: t.dims) }
        if let tok = try? GGUFTokenizer(gguf: f) { _ = tok.decode(tok.encode("Hello, world!")) }
    }

    /// First byte 0–159: text; 160–223: vocab.json NUL merges.txt; 224–255: training text.
    static func replayBPE(_ d: Data) {
        guard let mode = d.first else { return }
        let rest = d.dropFirst()
        switch mode {
        case 0..<160: break  // text through the fixture tokenizer: covered by BPETests
        case 160..<224:
            let parts = rest.split(separator: 0, maxSplits: 1, omittingEmptySubsequences: false)
            let merges = parts.count > 1 ? String(decoding: parts[1], as: UTF8.self) : ""
            if let b = try? ByteLevelBPE(vocabJSON: Data(parts[0]), merges: merges) { _ = b.decode(b.encode("Hello, world!")) }
        default:
            let text = String(decoding: rest.prefix(2048), as: UTF8.self)
            let b = ByteLevelBPE.train(texts: [text], vocabSize: 300, specialTokens: ByteLevelBPE.modelSpecialTokens)
            #expect(b.decode(b.encode(text)) == text)
        }
    }

    /// Odd first byte: the rest is a vocab.txt; even: text (covered by the tokenizer tests).
    static func replayWordPiece(_ d: Data) {
        guard let mode = d.first, mode % 2 == 1 else { return }
        if let t = try? WordPieceTokenizer(vocabData: d.dropFirst(), name: "vocab.txt") { _ = t.encode("Hello, world!") }
    }

    /// Passes unless a replay traps: each saved input once crashed a reader.
    @Test func savedFuzzInputsNeverTrap() throws {
        var count = 0
        for (_, d) in try Self.inputs("safetensors") { Self.replaySafetensors(d); count += 1 }
        for (_, d) in try Self.inputs("gguf") { Self.replayGGUF(d); count += 1 }
        for (_, d) in try Self.inputs("tokenizer-bpe") { Self.replayBPE(d); count += 1 }
        for (_, d) in try Self.inputs("tokenizer-wordpiece") { Self.replayWordPiece(d); count += 1 }
        #expect(count > 0)
    }

    // MARK: One test per crash found

    /// vocab.json with an id of 53 digits: the digit loop overflowed Int (a trap) before the range check.
    @Test func fuzzRegression_bpeVocabIdOverflow() throws {
        let d = try Self.input("tokenizer-bpe-vocab-id-overflow.bin")
        let parts = d.dropFirst().split(separator: 0, maxSplits: 1, omittingEmptySubsequences: false)
        let e = Self.errorText { _ = try ByteLevelBPE(vocabJSON: Data(parts[0]), merges: String(decoding: parts[1], as: UTF8.self)) }
        #expect(
            e?.contains("vocab.json") == true && (e?.contains("id too large") == true || e?.contains("appears twice") == true),
            "\(e ?? "no error")")
        // The same id alone, in a file without the repeated key: refused as too large.
        let alone = Self.errorText {
            _ = try ByteLevelBPE(vocabJSON: Data(#"{"a": 12345678901234567890123456789012345678901234567890123}"#.utf8), merges: "")
        }
        #expect(alone?.contains("id too large") == true, "\(alone ?? "no error")")
    }
}
