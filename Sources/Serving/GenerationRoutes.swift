import Foundation
import Hummingbird
import NIOCore
import TransformerKit

/// `/v1/chat/completions` and `/v1/completions` after their prompts are tokens: sampling options
/// checked, the job submitted, and the answer sent whole or as server-sent events.
struct ChatRoutes: Sendable {
    let engine: SlotEngine
    let options: OpenAIServerOptions

    enum Kind { case chat, completion }

    func run(_ r: SamplingFields, prompt: [Int], kind: Kind) async throws -> Response {
        if let m = r.model, m != options.modelID { throw OpenAIServer.unknownModel(m, [options.modelID]) }
        if let n = r.n, n != 1 { throw APIError(.badRequest, "n must be 1 (one choice per request)", param: "n") }
        let temperature = r.temperature ?? 1, topP = r.topP ?? 1, topK = r.topK ?? 0
        guard (0...2).contains(temperature) else {
            throw APIError(.badRequest, "temperature must be between 0 and 2", param: "temperature")
        }
        guard topP > 0 && topP <= 1 else { throw APIError(.badRequest, "top_p must be in (0, 1]", param: "top_p") }
        guard topK >= 0 else { throw APIError(.badRequest, "top_k must be 0 or more", param: "top_k") }
        let room = engine.context - prompt.count
        guard room >= 1 else {
            throw APIError(
                .badRequest,
                "this model's context is \(engine.context) tokens, but the prompt has \(prompt.count); shorten the messages",
                param: "messages", code: "context_length_exceeded")
        }
        let limit = r.maxCompletionTokens ?? r.maxTokens
        if let limit, limit < 1 { throw APIError(.badRequest, "max_tokens must be at least 1", param: "max_tokens") }
        let stops = r.stop?.values ?? []
        guard stops.count <= 4, stops.allSatisfy({ !$0.isEmpty }) else {
            throw APIError(.badRequest, "stop: at most 4 non-empty strings", param: "stop")
        }
        let seed = r.seed.map { UInt64(bitPattern: $0) } ?? UInt64.random(in: 1...UInt64.max)
        let job = GenerationJob(
            prompt: prompt, maxTokens: min(limit ?? room, room),
            sampling: SamplingOptions(temperature: Float(temperature), topK: topK, topP: Float(topP), seed: seed), stopStrings: stops)
        let handle: GenerationHandle
        do { handle = try engine.submit(job) } catch SlotEngineRefusal.busy { throw OpenAIServer.busy() } catch let
            SlotEngineRefusal
            .contextExceeded(n, context)
        {
            throw APIError(
                .badRequest, "this model's context is \(context) tokens, but the prompt has \(n)", param: "messages",
                code: "context_length_exceeded")
        }
        let id = (kind == .chat ? "chatcmpl-" : "cmpl-") + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let created = Int(Date().timeIntervalSince1970)
        let object = kind == .chat ? "chat.completion" : "text_completion"
        let model = options.modelID
        if r.stream == true {
            let usage = r.streamOptions?.includeUsage == true
            return Response(
                status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                body: ResponseBody { writer in
                    defer { handle.cancel() }  // a client that went away frees its slot
                    func send(_ choice: [String: Any]?, usage u: Usage? = nil) async throws {
                        var chunk: [String: Any] = [
                            "id": id, "object": kind == .chat ? "chat.completion.chunk" : "text_completion", "created": created,
                            "model": model, "choices": choice.map { [$0] } ?? []
                        ]
                        if let u { chunk["usage"] = Self.usage(u) }
                        let data = try JSONSerialization.data(withJSONObject: chunk, options: [.withoutEscapingSlashes])
                        var buf = ByteBuffer(string: "data: ")
                        buf.writeBytes(data)
                        buf.writeString("\n\n")
                        try await writer.write(buf)
                    }
                    func choice(_ text: String?, role: Bool = false, finish: String? = nil) -> [String: Any] {
                        if kind == .completion {
                            return ["index": 0, "text": text ?? "", "logprobs": NSNull(), "finish_reason": finish ?? NSNull()]
                        }
                        var delta: [String: Any] = [:]
                        if role { delta["role"] = "assistant" }
                        if let text { delta["content"] = text }
                        return ["index": 0, "delta": delta, "logprobs": NSNull(), "finish_reason": finish ?? NSNull()]
                    }
                    if kind == .chat { try await send(choice("", role: true)) }
                    for await event in handle.events {
                        switch event {
                        case .text(let t): try await send(choice(t))
                        case .done(let reason, let p, let c, let cached):
                            try await send(choice(kind == .chat ? nil : "", finish: reason))
                            if usage { try await send(nil, usage: Usage(promptTokens: p, completionTokens: c, cachedTokens: cached)) }
                        case .failed(let message):
                            let e = APIError(.internalServerError, message)
                            let data = try JSONEncoder().encode(e.body)
                            var buf = ByteBuffer(string: "data: ")
                            buf.writeBytes(data)
                            buf.writeString("\n\n")
                            try await writer.write(buf)
                        }
                    }
                    try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                    try await writer.finish(nil)
                })
        }
        defer { handle.cancel() }
        var text = "", finish = "stop", usage = Usage(promptTokens: prompt.count, completionTokens: 0, cachedTokens: 0)
        for await event in handle.events {
            switch event {
            case .text(let t): text += t
            case .done(let reason, let p, let c, let cached):
                finish = reason
                usage = Usage(promptTokens: p, completionTokens: c, cachedTokens: cached)
            case .failed(let message): throw APIError(.internalServerError, message)
            }
        }
        let choice: [String: Any] =
            kind == .chat
            ? ["index": 0, "message": ["role": "assistant", "content": text], "logprobs": NSNull(), "finish_reason": finish]
            : ["index": 0, "text": text, "logprobs": NSNull(), "finish_reason": finish]
        return try OpenAIServer.json([
            "id": id, "object": object, "created": created, "model": model, "choices": [choice], "usage": Self.usage(usage)
        ])
    }

    static func usage(_ u: Usage) -> [String: Any] {
        [
            "prompt_tokens": u.promptTokens, "completion_tokens": u.completionTokens, "total_tokens": u.totalTokens,
            "prompt_tokens_details": ["cached_tokens": u.cachedTokens]
        ]
    }
}
