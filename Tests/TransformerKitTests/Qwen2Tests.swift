import Foundation
import Testing
import TensorKit
@testable import TransformerKit
@testable import Tokenizers
@testable import ModelFiles

/// Qwen2.5-Coder-0.5B-Instruct (Q4_K_M: Q4_K, Q5_0, Q6_K, Q8_0 tensors) against Hugging Face
/// transformers, which de-quantises it to float32: `Fixtures/qwen2_expected.json`, written by
/// `Fixtures/make_qwen2_fixture.py`.
///
/// The model file is not in the repository (491 MB): `scripts/fetch-qwen2.sh DIR` fetches it with
/// pip. The tests look at `$QWEN2_GGUF`, then `.build/models/…`; the model tests run in release
/// builds (or when `QWEN2_GGUF` asks for them), the tokenizer test whenever the file is there.
@Suite(.serialized) struct Qwen2Tests {
    struct Expected: Decodable {
        struct TokCase: Decodable { let text: String; let ids: [Int] }
        struct Chat: Decodable { let messages: [[String: String]]; let rendered: String }
        struct Position: Decodable { let top: [[Double]]; let probe: [[Double]]; let min: Double; let max: Double }
        struct Case: Decodable {
            let text: String; let ids: [Int]; let top: [[Double]]; let probe: [[Double]]
            let stats: [String: Double]; let positions: [Position]; let greedy: [Int]; let greedy_gaps: [Double]
        }
        let tokenizer: [TokCase]; let chats: [Chat]; let cases: [Case]
    }

    static let fileFound = Qwen2FileTensorTests.modelURL() != nil
    static let available: Bool = {
        guard fileFound else { return false }
        #if DEBUG
            if ProcessInfo.processInfo.environment["QWEN2_GGUF"] == nil {
                print("Qwen2Tests: model tests skipped in a debug build (set QWEN2_GGUF, or run them with -c release)")
                return false
            }
        #endif
        return true
    }()
    static let file: GGUFFile? = Qwen2FileTensorTests.modelURL().flatMap { try? GGUFFile(url: $0) }

    static func expected() throws -> Expected {
        let url = try #require(Bundle.module.url(forResource: "qwen2_expected", withExtension: "json", subdirectory: "Fixtures"))
        return try JSONDecoder().decode(Expected.self, from: Data(contentsOf: url))
    }

    @Test(.enabled(if: fileFound, "the Qwen2 GGUF file was not found"))
    func tokenizerMatchesTransformers() throws {
        let tok = try GGUFTokenizer(gguf: #require(Self.file))
        #expect(tok.bpe?.pattern == .qwen2)
        let e = try Self.expected()
        for c in e.tokenizer { #expect(tok.encode(c.text) == c.ids, "\(c.text.debugDescription)") }
        for c in e.tokenizer { #expect(tok.decode(c.ids) == c.text) }
        for c in e.cases { #expect(tok.encode(c.text) == c.ids) }
        #expect(tok.bosID == 151643 && tok.eosID == 151645 && !tok.addBOS)
        // the file's own Jinja template, default system message included
        for chat in e.chats {
            let messages = chat.messages.map { GGUFTokenizer.Message(role: $0["role"]!, content: $0["content"]!) }
            #expect(try tok.renderChat(messages) == chat.rendered)
        }
    }

    /// Two turns: the second reuses the cached prefix and answers exactly as a fresh session that reads
    /// the whole re-rendered conversation; a context too small for the history drops the oldest turns.
    @Test(.enabled(if: available, "the Qwen2 GGUF file was not found, or a debug build without QWEN2_GGUF"))
    func conversationKeepsItsCacheCorrect() throws {
        let f = try #require(Self.file)
        let model = try LlamaModel(file: f), tok = try GGUFTokenizer(gguf: f)
        let stop: Set<Int> = [151643, 151645]
        let greedy = SamplingOptions(temperature: 0)
        let conv = try ChatConversation(
            session: LlamaSession(model: model, maxLength: 512, activations: .float32), tokenizer: tok, system: "Be terse.")
        let first = try conv.reply(to: "Name a prime number.", maxTokens: 12, sampling: greedy, stop: stop)
        #expect(first.reusedTokens == 0 && !first.text.isEmpty)
        let second = try conv.reply(to: "Another one?", maxTokens: 12, sampling: greedy, stop: stop)
        #expect(second.reusedTokens > 20, "reused \(second.reusedTokens)")
        let prompt = tok.encode(try tok.renderChat(Array(conv.messages.dropLast())))
        let fresh = try LlamaSession(model: model, maxLength: 512, activations: .float32).generate(
            prompt: prompt, maxNewTokens: 12, sampling: greedy, stop: stop)
        #expect(fresh == second.tokens)
        #expect(second.readTokens + second.reusedTokens == prompt.count)

        let small = try ChatConversation(
            session: LlamaSession(model: model, maxLength: 64, activations: .float32), tokenizer: tok, system: "Be terse.")
        var dropped = 0
        for q in ["Name a prime.", "Name a colour.", "Name a city.", "Name a fruit.", "Name a river.", "Name a tree."] {
            dropped += try small.reply(to: q, maxTokens: 8, sampling: greedy, stop: stop).droppedMessages
        }
        #expect(dropped > 0 && small.messages.first?.role == "system")
        #expect(throws: LlamaError.self) {
            try small.reply(to: String(repeating: "word ", count: 200), maxTokens: 4, sampling: greedy, stop: stop)
        }
    }

    @Test(.enabled(if: available, "the Qwen2 GGUF file was not found, or a debug build without QWEN2_GGUF"))
    func modelMatchesTransformers() throws {
        let model = try LlamaModel(file: try #require(Self.file))
        #expect(model.config.architecture == .qwen2)
        let c = model.config
        let sizes: [Int] = [c.vocabSize, c.dModel, c.dFF, c.layers, c.heads, c.kvHeads]
        #expect(sizes == [151936, 896, 4864, 24, 14, 2])
        // Every position's top logits and probes within 1e-3 of the logit range: the prompt fed one token at
        // a time (the matrix–vector path); the last position also fed at once (the GEMM path).
        var worst: Double = 0, positions = 0
        let cases = try Self.expected().cases
        #expect(cases.count == 4)
        for c in cases {
            #expect(c.positions.count == c.ids.count)
            let s = LlamaSession(model: model, maxLength: 512, activations: .float32)
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
        print(
            "Qwen2Tests: quantised kernels, worst logit difference from transformers \(worst) of the logit range, over \(positions) positions"
        )
    }

    @Test(.enabled(if: available && ActivationPrecision.int8Available, "the Qwen2 GGUF file was not found, or a debug build"))
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
        try Int8Check.runAll(model, cases, name: "Qwen2Tests")
    }
}
