import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import TensorKit
@testable import Serving
@testable import TransformerKit
@testable import Tokenizers
@testable import ModelFiles

/// The OpenAI-compatible server on a tiny random Llama with a byte-level vocabulary and a ChatML
/// template: the slot engine against lone sessions, its queue and cancellation, and the HTTP
/// routes' answers and errors in OpenAI's shape. (The real `openai` client drives a real model in
/// `.ci/run`: scripts/openai_client_check.py.)
@Suite struct ServingTests {
    static let vocab = 258  // 256 bytes, <|im_start|>, <|im_end|>

    static func file(context: Int = 64) throws -> GGUFFile {
        var w = GGUFTests.tinyLlama(seed: 5, vocab: vocab, context: context)
        let bytes = (0..<256).map { ByteLevelBPE.byteLevelString([UInt8($0)]) }
        let template = """
            {% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}\
            {% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}
            """
        w.metadata += [
            ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.tokens", .strings(bytes + ["<|im_start|>", "<|im_end|>"])),
            ("tokenizer.ggml.merges", .strings([])), ("tokenizer.ggml.token_type", .i32s([Int32](repeating: 1, count: 256) + [3, 3])),
            ("tokenizer.ggml.eos_token_id", .i32(257)), ("tokenizer.chat_template", .string(template))
        ]
        return try GGUFFile(data: w.data(), path: "tiny.gguf")
    }

    static func engine(parallel: Int = 3, queue: Int = 4, context: Int = 64, start: Bool = true) throws -> SlotEngine {
        let f = try file(context: context)
        let e = SlotEngine(
            model: try LlamaModel(file: f), tokenizer: try GGUFTokenizer(gguf: f), parallel: parallel, maxQueue: queue,
            activations: .float32)
        if start { e.start() }
        return e
    }

    static func collect(_ h: GenerationHandle) async -> (text: String, done: GenerationEvent?) {
        var text = "", done: GenerationEvent?
        for await e in h.events {
            if case .text(let t) = e { text += t } else { done = e }
        }
        return (text, done)
    }

    /// Three jobs of different lengths decoded together (joining and leaving the batch at different
    /// steps) produce, greedily, exactly what a lone session produces for each.
    @Test func batchedJobsEqualLoneSessions() async throws {
        let e = try Self.engine()
        defer { e.stop() }
        let prompts = [[1, 2, 3], Array(40..<60), [200]], lengths = [30, 12, 25]
        var want: [String] = []
        for (p, n) in zip(prompts, lengths) {
            let s = LlamaSession(model: (e.model as! BatchedLlama).model, maxLength: 64, activations: .float32)
            var out = try s.generate(
                prompt: p, maxNewTokens: n, sampling: SamplingOptions(temperature: 0), stop: e.stopTokens)
            if let last = out.last, e.stopTokens.contains(last) { out.removeLast() }
            want.append(e.tokenizer.text(out))
        }
        let handles = try zip(prompts, lengths).map { p, n in
            try e.submit(GenerationJob(prompt: p, maxTokens: n, sampling: SamplingOptions(temperature: 0)))
        }
        for (i, h) in handles.enumerated() {
            let (text, done) = await Self.collect(h)
            #expect(text == want[i], "job \(i)")
            guard case .done(_, let p, _, _)? = done else { Issue.record("job \(i) ended with \(String(describing: done))"); continue }
            #expect(p == prompts[i].count)
        }
        // a slot keeps its cache: the same prompt again reuses all but its last token
        let again = try e.submit(GenerationJob(prompt: prompts[1], maxTokens: 4, sampling: SamplingOptions(temperature: 0)))
        let (_, done) = await Self.collect(again)
        guard case .done(_, _, _, let cached)? = done else { Issue.record("no done"); return }
        #expect(cached == prompts[1].count - 1)
    }

    /// Beyond the free slots and the queue a job is refused (busy); a prompt that leaves no room is
    /// refused before it waits; a cancelled job ends its stream and frees its slot.
    @Test func queueAndCancellation() async throws {
        let e = try Self.engine(parallel: 1, queue: 1, start: false)
        defer { e.stop() }
        let job = GenerationJob(prompt: [1, 2], maxTokens: 40, sampling: SamplingOptions(temperature: 0))
        let a = try e.submit(job), b = try e.submit(job)
        #expect(throws: SlotEngineRefusal.busy) { try e.submit(job) }
        #expect(throws: SlotEngineRefusal.contextExceeded(promptTokens: 64, context: 64)) {
            try e.submit(GenerationJob(prompt: Array(repeating: 5, count: 64), maxTokens: 1, sampling: SamplingOptions()))
        }
        a.cancel()
        e.start()
        let (_, doneA) = await Self.collect(a)
        #expect(doneA == nil)  // cancelled: the stream just ends
        let (_, doneB) = await Self.collect(b)
        guard case .done(let reason, _, let n, _)? = doneB else { Issue.record("b: \(String(describing: doneB))"); return }
        #expect(reason == "stop" || n == 40)
        for _ in 0..<100 where e.load.busy > 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(e.load.busy == 0 && e.load.waiting == 0)
    }

    /// Stop strings end the text before them, even when they arrive split over several tokens.
    @Test func stopStringsCutTheText() async throws {
        let e = try Self.engine()
        defer { e.stop() }
        let plain = await Self.collect(
            try e.submit(GenerationJob(prompt: [10, 20, 30], maxTokens: 30, sampling: SamplingOptions(temperature: 0))))
        let chars = Array(plain.text)
        try #require(chars.count >= 6, "the tiny model wrote \(plain.text.debugDescription)")
        let stop = String(chars[3..<5])
        let cut = await Self.collect(
            try e.submit(
                GenerationJob(
                    prompt: [10, 20, 30], maxTokens: 30, sampling: SamplingOptions(temperature: 0), stopStrings: [stop, "\u{1}never"])))
        #expect(cut.text == String(plain.text[..<plain.text.range(of: stop)!.lowerBound]))
        guard case .done(let reason, _, _, _)? = cut.done else { Issue.record("no done"); return }
        #expect(reason == "stop")
    }

    // MARK: A GPT checkpoint

    /// A character-level GPT (as `train --gpt` leaves) served over the API: completions equal a lone
    /// `GPTGenerator`'s greedy tokens, several at once; chat is refused (no template), and so is text
    /// with a character outside the vocabulary.
    @Test func gptCompletionsEqualGenerator() async throws {
        let tok = try TextTokenizer(characters: "abcdefgh .")
        let model = try GPTModel(
            config: GPTConfig(vocabSize: tok.vocabularySize, contextLength: 32, dModel: 16, layers: 2, heads: 2), seed: 3)
        let e = SlotEngine(model: SequentialGPT(model: model), tokenizer: GPTServedTokenizer(tok), parallel: 2, maxQueue: 4)
        e.start()
        defer { e.stop() }
        let prompts = ["abc", "hag. ", "e"]
        var want: [String] = []
        for p in prompts {
            let g = GPTGenerator(model: model)
            let out = g.generate(prompt: try tok.encode(p), maxNewTokens: 10, sampling: SamplingOptions(temperature: 0)) { _ in }
            want.append(tok.decode(out))
        }
        let handles = try prompts.map {
            try e.submit(GenerationJob(prompt: try tok.encode($0), maxTokens: 10, sampling: SamplingOptions(temperature: 0)))
        }
        for (i, h) in handles.enumerated() {
            let (text, done) = await Self.collect(h)
            #expect(text == want[i], "prompt \(i)")
            guard case .done("length", let p, 10, _)? = done, p == prompts[i].count else {
                Issue.record("prompt \(i): \(String(describing: done))")
                continue
            }
        }
        var o = OpenAIServerOptions()
        o.modelID = "chars"
        let first = want[0]
        try await Application(router: OpenAIServer.router(engine: e, embedder: nil, options: o)).test(.router) { client in
            let json: HTTPFields = [.contentType: "application/json"]
            try await client.execute(
                uri: "/v1/completions", method: .post, headers: json,
                body: ByteBuffer(string: #"{"prompt": "abc", "max_tokens": 10, "temperature": 0}"#)
            ) { r in
                #expect(r.status == .ok)
                let choice = try #require((try object(r)["choices"] as? [[String: Any]])?.first)
                #expect(choice["text"] as? String == first)
            }
            try await client.execute(
                uri: "/v1/chat/completions", method: .post, headers: json,
                body: ByteBuffer(string: #"{"messages": [{"role": "user", "content": "abc"}]}"#)
            ) { r in
                let param = try error(r).1
                #expect(r.status == .badRequest && param == "messages")
            }
            try await client.execute(uri: "/v1/completions", method: .post, headers: json, body: ByteBuffer(string: #"{"prompt": "xyz"}"#))
            { r in
                let param = try error(r).1
                #expect(r.status == .badRequest && param == "prompt")
            }
        }
    }

    // MARK: HTTP

    func app(_ e: SlotEngine, key: String? = "k") -> some ApplicationProtocol {
        var o = OpenAIServerOptions()
        o.modelID = "tiny"
        o.apiKey = key
        o.maxBodyBytes = 4096
        return Application(router: OpenAIServer.router(engine: e, embedder: nil, options: o))
    }

    func object(_ r: TestResponse) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(r.body.readableBytesView)) as? [String: Any])
    }

    /// The error body in OpenAI's shape: (type, param, code).
    func error(_ r: TestResponse) throws -> (String, String?, String?) {
        let e = try #require(try object(r)["error"] as? [String: Any])
        #expect(e["message"] is String)
        return (e["type"] as! String, e["param"] as? String, e["code"] as? String)
    }

    @Test func chatWholeAndStreamedAgree() async throws {
        let e = try Self.engine()
        defer { e.stop() }
        let auth: HTTPFields = [.authorization: "Bearer k", .contentType: "application/json"]
        let chat = #"{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 9, "temperature": 0"#
        try await app(e).test(.router) { client in
            var whole = ""
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: auth, body: ByteBuffer(string: chat + "}")) { r in
                #expect(r.status == .ok)
                let o = try object(r)
                #expect(o["object"] as? String == "chat.completion")
                let choice = try #require((o["choices"] as? [[String: Any]])?.first)
                whole = try #require((choice["message"] as? [String: Any])?["content"] as? String)
                let usage = try #require(o["usage"] as? [String: Any])
                #expect(usage["completion_tokens"] as? Int == 9 || choice["finish_reason"] as? String == "stop")
            }
            try await client.execute(
                uri: "/v1/chat/completions", method: .post, headers: auth, body: ByteBuffer(string: chat + #", "stream": true}"#)
            ) { r in
                #expect(r.headers[.contentType] == "text/event-stream")
                let lines = String(buffer: r.body).split(separator: "\n\n").map { String($0) }
                #expect(lines.last == "data: [DONE]")
                var text = "", finishes = 0
                for l in lines.dropLast() {
                    let o = try #require(try JSONSerialization.jsonObject(with: Data(l.dropFirst(6).utf8)) as? [String: Any])
                    let c = try #require((o["choices"] as? [[String: Any]])?.first)
                    text += (c["delta"] as? [String: Any])?["content"] as? String ?? ""
                    if c["finish_reason"] is String { finishes += 1 }
                }
                #expect(text == whole && finishes == 1)
            }
            try await client.execute(uri: "/health", method: .get) { r in #expect(r.status == .ok) }  // no key needed
        }
    }

    @Test func errorsHaveOpenAIsShape() async throws {
        let e = try Self.engine()
        defer { e.stop() }
        try await app(e).test(.router) { client in
            func post(_ uri: String, _ body: String, headers: HTTPFields? = nil) async throws -> TestResponse {
                try await client.execute(
                    uri: uri, method: .post, headers: headers ?? [.authorization: "Bearer k"], body: ByteBuffer(string: body))
            }
            var r = try await post("/v1/chat/completions", "{nope")
            #expect(r.status == .badRequest)
            #expect(try error(r).0 == "invalid_request_error")
            r = try await post("/v1/chat/completions", #"{"messages": [], "max_tokens": "x"}"#)
            #expect(r.status == .badRequest)
            #expect(try error(r).1 == "max_tokens")
            r = try await post("/v1/chat/completions", #"{"model": "gpt-9", "messages": [{"role": "user", "content": "a"}]}"#)
            #expect(r.status == .notFound)
            #expect(try error(r).2 == "model_not_found")
            let long = String(repeating: "z", count: 80)
            r = try await post("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "\#(long)"}]}"#)
            #expect(r.status == .badRequest)
            #expect(try error(r).2 == "context_length_exceeded")
            r = try await post("/v1/completions", #"{"prompt": "a"}"#, headers: [.authorization: "Bearer wrong"])
            #expect(r.status == .unauthorized)
            #expect(try error(r).0 == "authentication_error")
            r = try await post("/v1/completions", #"{"prompt": "a"}"#, headers: [:])
            #expect(r.status == .unauthorized)
            r = try await post("/v1/completions", "{\"prompt\": \"\(String(repeating: "a", count: 5000))\"}")
            #expect(r.status == .contentTooLarge)
            r = try await post("/v1/embeddings", #"{"input": "a"}"#)
            #expect(r.status == .notFound)  // no embedding model served
            r = try await post("/detokenize", #"{"tokens": [1, 999]}"#)
            #expect(r.status == .badRequest)
            #expect(try error(r).1 == "tokens")
            r = try await post("/tokenize", #"{"content": "ab"}"#)
            #expect((try object(r))["tokens"] as? [Int] == [97, 98])
        }
        #expect(BearerTokenMiddleware.equal(Array("abc".utf8), Array("abc".utf8)))
        #expect(!BearerTokenMiddleware.equal(Array("abc".utf8), Array("abd".utf8)))
        #expect(!BearerTokenMiddleware.equal(Array("ab".utf8), Array("abc".utf8)))
    }
}
