import Foundation
import Testing
import TensorKit
@testable import TransformerKit
@testable import ModelFiles

/// `Fixtures/gpt2-tiny/` is a randomly initialised `transformers.GPT2LMHeadModel` saved with
/// `save_pretrained`, and `expected.json` holds PyTorch's logits for a few sequences. Both are written
/// by `Fixtures/make_gpt2_fixture.py` (not run in CI; the outputs are committed).
@Suite struct GPT2CompatTests {
    struct Expected: Decodable {
        struct Case: Decodable { let ids: [Int32]; let logits: [[Float]] }
        let cases: [Case]
    }

    static func fixture() throws -> URL {
        let config = try #require(
            Bundle.module.url(forResource: "config", withExtension: "json", subdirectory: "Fixtures/gpt2-tiny"),
            "Fixtures/gpt2-tiny/config.json is missing from the test bundle")
        return config.deletingLastPathComponent()
    }

    static func expected() throws -> Expected {
        try JSONDecoder().decode(Expected.self, from: Data(contentsOf: fixture().appendingPathComponent("expected.json")))
    }

    static func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gpt2compat-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Logits at every position, `[t][vocab]`.
    static func logits(_ model: GPTModel, _ ids: [Int32]) -> [[Float]] {
        let v = model.config.vocabSize, t = ids.count
        let acts = GPTActivations(config: model.config, maxBatch: 1, maxLength: t)
        model.forward(ids: ids, targets: nil, b: 1, t: t, acts: acts)
        return (0..<t).map { Array(UnsafeBufferPointer(start: acts.logits.pointer + $0 * v, count: v)) }
    }

    static func errorText(_ body: () throws -> Void) -> String? {
        do { try body(); return nil } catch { return String(describing: error) }
    }

    @Test func configReadsAsGPT2Config() throws {
        let model = try GPTCheckpoint.loadHuggingFace(Self.fixture())
        let c = model.config
        #expect(c.vocabSize == 97 && c.contextLength == 32 && c.dModel == 48 && c.layers == 2 && c.heads == 4)
        #expect(c.explicitDFF == nil && c.dFF == 192 && c.layerNormEps == 1e-5 && c.activation == "gelu_new")
    }

    @Test func logitsMatchPyTorch() throws {
        let model = try GPTCheckpoint.loadHuggingFace(Self.fixture())
        let expected = try Self.expected()
        #expect(expected.cases.count >= 3)
        var worst: Float = 0, worstAt = "", maxAbs: Float = 0
        for (k, c) in expected.cases.enumerated() {
            let got = Self.logits(model, c.ids)
            try #require(got.count == c.logits.count)
            for (p, (row, want)) in zip(got, c.logits).enumerated() {
                try #require(row.count == want.count)
                for j in row.indices {
                    maxAbs = max(maxAbs, abs(want[j]))
                    let d = abs(row[j] - want[j])
                    if !(d <= worst) {
                        worst = d; worstAt = "case \(k) (length \(c.ids.count)), position \(p), token \(j): \(row[j]) vs PyTorch \(want[j])"
                    }
                }
            }
        }
        print("GPT-2 vs PyTorch: worst |Δlogit| \(worst) at \(worstAt); max |logit| \(maxAbs)")
        #expect(worst <= 1e-4, "worst |Δlogit| \(worst) at \(worstAt)")
    }

    @Test(arguments: [true, false]) func generatorMatchesFullForward(useCache: Bool) throws {
        let model = try GPTCheckpoint.loadHuggingFace(Self.fixture())
        let expected = try Self.expected()
        let ids = try #require(expected.cases.max { $0.ids.count < $1.ids.count }).ids
        #expect(ids.count == model.config.contextLength)  // the cache fills the whole context
        let full = Self.logits(model, ids)
        let gen = GPTGenerator(model: model, useCache: useCache)
        var worst: Float = 0, last: [Float] = []
        for (p, id) in ids.enumerated() {
            last = Array(gen.feed(Int(id)))
            for j in last.indices { worst = max(worst, abs(last[j] - full[p][j])) }
        }
        #expect(worst <= 1e-4, "cache \(useCache): worst |Δlogit| \(worst) against the full forward")
        // The last position, which generation samples from, against the full forward and PyTorch.
        let pytorch = try #require(expected.cases.first { $0.ids == ids }).logits.last!
        #expect(zip(last, full.last!).allSatisfy { abs($0 - $1) <= 1e-4 })
        #expect(zip(last, pytorch).allSatisfy { abs($0 - $1) <= 1e-4 })
        #expect(gen.length == model.config.contextLength)
    }

    @Test func saveThenLoadGivesIdenticalParameters() throws {
        let model = try GPTCheckpoint.loadHuggingFace(Self.fixture())
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try GPTCheckpoint.saveHuggingFace(model, to: dir)
        let again = try GPTCheckpoint.loadHuggingFace(dir)
        #expect(again.config == model.config)
        #expect(again.parameterSet() == model.parameterSet())
        let names = try Safetensors.open(dir.appendingPathComponent("model.safetensors")).names
        #expect(names.allSatisfy { $0.hasPrefix("transformer.") } && names.count == model.config.parameterShapes.count)
        let json = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("config.json"))) as? [String: Any])
        #expect(json["model_type"] as? String == "gpt2")
        #expect(json["architectures"] as? [String] == ["GPT2LMHeadModel"])
        #expect(json["n_ctx"] as? Int == 32 && json["n_embd"] as? Int == 48 && json["tie_word_embeddings"] as? Bool == true)
        // Saving over an existing folder replaces it.
        try GPTCheckpoint.saveHuggingFace(model, to: dir)
        #expect(try GPTCheckpoint.loadHuggingFace(dir).parameterSet() == model.parameterSet())
    }

    /// A Swift-initialised model with a non-default MLP width, epsilon and activation round-trips too.
    /// Set GPT2COMPAT_SAVE_DIR to keep the folder (e.g. to load it with `transformers` by hand).
    @Test func saveASwiftModel() throws {
        var config = GPTConfig(vocabSize: 50, contextLength: 16, dModel: 32, layers: 2, heads: 4, dFF: 100)
        config.layerNormEps = 1e-6
        config.activation = "gelu"
        let model = try GPTModel(config: config, seed: 5)
        let keep = ProcessInfo.processInfo.environment["GPT2COMPAT_SAVE_DIR"].map { URL(fileURLWithPath: $0, isDirectory: true) }
        let dir = try keep ?? Self.tempDir()
        defer { if keep == nil { try? FileManager.default.removeItem(at: dir) } }
        try GPTCheckpoint.saveHuggingFace(model, to: dir)
        let again = try GPTCheckpoint.loadHuggingFace(dir)
        #expect(again.config == config)
        #expect(again.parameterSet() == model.parameterSet())
        #expect(Self.logits(again, [1, 2, 3]) == Self.logits(model, [1, 2, 3]))
    }

    @Test func acceptsUnprefixedNamesTiedHeadAndMaskBuffers() throws {
        let model = try GPTCheckpoint.loadHuggingFace(Self.fixture())
        let ps = model.parameterSet()
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(
            at: Self.fixture().appendingPathComponent("config.json"), to: dir.appendingPathComponent("config.json"))
        var tensors = ps.names.map { ($0, ps[$0]!) }
        tensors.append(("lm_head.weight", ps["wte.weight"]!))
        tensors.append(("h.0.attn.bias", Tensor(repeating: 1, shape: [1, 1, 32, 32])))
        tensors.append(("h.1.attn.masked_bias", Tensor(shape: [], data: [-1e4])))
        try Safetensors.write(tensors, to: dir.appendingPathComponent("model.safetensors"))
        #expect(try GPTCheckpoint.loadHuggingFace(dir).parameterSet() == ps)

        // An untied lm_head is refused.
        var wte = ps["wte.weight"]!
        wte.data[0] += 1
        tensors[tensors.count - 3] = ("lm_head.weight", wte)
        try Safetensors.write(tensors, to: dir.appendingPathComponent("model.safetensors"))
        let message = try #require(Self.errorText { _ = try GPTCheckpoint.loadHuggingFace(dir) })
        #expect(message.contains("lm_head.weight") && message.contains("ties"), "\(message)")
    }

    @Test func configNotFittingTheTensorsNamesTensorAndShapes() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fixture = try Self.fixture()
        try FileManager.default.copyItem(
            at: fixture.appendingPathComponent("model.safetensors"), to: dir.appendingPathComponent("model.safetensors"))
        let config = try String(contentsOf: fixture.appendingPathComponent("config.json"), encoding: .utf8)
        try config.replacingOccurrences(of: "\"n_embd\": 48", with: "\"n_embd\": 32")
            .write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        let message = try #require(Self.errorText { _ = try GPTCheckpoint.loadHuggingFace(dir) })
        #expect(
            message.contains("transformer.wte.weight") && message.contains("[97, 48]") && message.contains("[97, 32]")
                && message.contains("model.safetensors") && message.contains("config.json"), "\(message)")
        #expect(!message.contains("\n"))

        // More layers than the file has: the first missing tensor is named.
        try config.replacingOccurrences(of: "\"n_layer\": 2", with: "\"n_layer\": 3")
            .write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        let missing = try #require(Self.errorText { _ = try GPTCheckpoint.loadHuggingFace(dir) })
        #expect(missing.contains("h.2.ln_1.weight"), "\(missing)")

        // Fewer: the left-over tensors are refused.
        try config.replacingOccurrences(of: "\"n_layer\": 2", with: "\"n_layer\": 1")
            .write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        let extra = try #require(Self.errorText { _ = try GPTCheckpoint.loadHuggingFace(dir) })
        #expect(extra.contains("transformer.h.1."), "\(extra)")
    }

    @Test func badConfigFieldsAreNamed() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("config.json")
        func message(_ json: String) throws -> String {
            try json.write(to: url, atomically: true, encoding: .utf8)
            return try #require(Self.errorText { _ = try GPTCheckpoint.readConfig(url) })
        }
        let base = #""vocab_size": 97, "n_positions": 32, "n_layer": 2, "n_head": 4"#
        let m1 = try message("{\(base)}")
        #expect(m1.contains("config.json") && m1.contains("\"n_embd\"") && m1.contains("missing"), "\(m1)")
        let m2 = try message("{\(base), \"n_embd\": \"48\"}")
        #expect(m2.contains("\"n_embd\"") && m2.contains("positive integer"), "\(m2)")
        let m3 = try message("{\(base), \"n_embd\": 48, \"n_inner\": 1.5}")
        #expect(m3.contains("\"n_inner\""), "\(m3)")
        let m4 = try message("{\(base), \"n_embd\": 48, \"activation_function\": \"relu\"}")
        #expect(m4.contains("relu"), "\(m4)")
        let m5 = try message("{\(base), \"n_embd\": 50}")
        #expect(m5.contains("divisible"), "\(m5)")
        let m6 = try message("[1, 2]")
        #expect(m6.contains("JSON object"), "\(m6)")
        let m7 = try message("{\(base), \"n_embd\": 48, \"scale_attn_by_inverse_layer_idx\": true}")
        #expect(m7.contains("scale_attn_by_inverse_layer_idx"), "\(m7)")
        try "{\(base), \"n_embd\": 48, \"n_inner\": null, \"layer_norm_epsilon\": 1e-6, \"unknown\": [1]}".write(
            to: url, atomically: true, encoding: .utf8)
        let c = try GPTCheckpoint.readConfig(url)
        #expect(c.explicitDFF == nil && c.layerNormEps == 1e-6 && c.activation == "gelu_new")
    }

    @Test func missingWeightsFile() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(
            at: Self.fixture().appendingPathComponent("config.json"), to: dir.appendingPathComponent("config.json"))
        let message = try #require(Self.errorText { _ = try GPTCheckpoint.loadHuggingFace(dir) })
        #expect(message.contains("model.safetensors") && message.contains("does not exist"), "\(message)")
        let noConfig = try #require(Self.errorText { _ = try GPTCheckpoint.loadHuggingFace(dir.appendingPathComponent("nowhere")) })
        #expect(noConfig.contains("config.json"), "\(noConfig)")
    }

    @Test func truncatedWeightsFileIsAnError() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fixture = try Self.fixture()
        try FileManager.default.copyItem(at: fixture.appendingPathComponent("config.json"), to: dir.appendingPathComponent("config.json"))
        let bytes = try Data(contentsOf: fixture.appendingPathComponent("model.safetensors"))
        for keep in [0, 5, 100, bytes.count / 2, bytes.count - 1] {
            try bytes.prefix(keep).write(to: dir.appendingPathComponent("model.safetensors"))
            #expect(throws: SafetensorsError.self, "truncated to \(keep) bytes") { _ = try GPTCheckpoint.loadHuggingFace(dir) }
        }
    }
}
