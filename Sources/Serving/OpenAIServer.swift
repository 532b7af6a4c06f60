import Explorer
import Foundation
import Hummingbird
import HummingbirdCore
import NIOCore
import Tokenizers
import TransformerKit

/// Settings of `transformer serve --model X.gguf`.
public struct OpenAIServerOptions: Sendable {
    /// The name `/v1/models` lists and requests' `model` must match (when they give one).
    public var modelID = "model"
    /// Largest request body, in bytes (larger: 413).
    public var maxBodyBytes = 1 << 20
    /// A Bearer token every `/v1` route, `/tokenize` and `/detokenize` require (nil: none).
    public var apiKey: String?
    public var idleTimeout: Duration = .seconds(300)
    public var readTimeout: Duration = .seconds(30)
    public var maxConnections = 512
    public init() {}
}

/// An OpenAI-compatible API over a `SlotEngine` (chat and completions) and an `Embedder`:
///
/// - `GET /v1/models`, `GET /v1/models/{id}`
/// - `POST /v1/chat/completions`: `messages` rendered by the model's chat template; `max_tokens`
///   (or `max_completion_tokens`), `temperature`, `top_p`, `top_k`, `seed`, `stop`, `stream` (server-sent
///   events ending in `data: [DONE]`, with `stream_options.include_usage`).
/// - `POST /v1/completions`: the same on a plain `prompt`.
/// - `POST /v1/embeddings`: `input` a string or a list; `encoding_format` `float` or `base64`.
/// - `POST /tokenize` `{"content"}` → `{"tokens"}`, `POST /detokenize` `{"tokens"}` → `{"content"}` (llama.cpp's).
/// - `GET /health`: `{"status": "ok", "slots_busy", "slots", "waiting"}`.
///
/// Errors are OpenAI's `{"error": {"message", "type", "param", "code"}}`: 400 for bad JSON, a field of
/// the wrong type or a prompt over the context (`context_length_exceeded`), 401 for a missing or wrong
/// API key, 404 for an unknown model or route, 413 for a body over the limit, 503 with `Retry-After`
/// when every slot and queue place is taken.
public enum OpenAIServer {
    public static func router(engine: SlotEngine?, embedder: Embedder?, options: OpenAIServerOptions) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: OpenAIErrorMiddleware())
        if let key = options.apiKey { router.add(middleware: BearerTokenMiddleware(key: key)) }
        let created = Int(Date().timeIntervalSince1970)
        let ids = [engine.map { _ in options.modelID }, embedder.map(\.id)].compactMap { $0 }
        router.get("/health") { _, _ in
            let load = engine?.load ?? (busy: 0, waiting: 0)
            return try json(["status": "ok", "slots_busy": load.busy, "slots": engine?.parallel ?? 0, "waiting": load.waiting])
        }
        router.get("/v1/models") { _, _ in
            try json(["object": "list", "data": ids.map { ["id": $0, "object": "model", "created": created, "owned_by": "transformer"] }])
        }
        router.get("/v1/models/{id}") { _, context in
            let id = context.parameters.get("id") ?? ""
            guard ids.contains(id) else { throw unknownModel(id, ids) }
            return try json(["id": id, "object": "model", "created": created, "owned_by": "transformer"])
        }
        if let engine {
            let chat = ChatRoutes(engine: engine, options: options)
            // text the tokenizer cannot read (a character-level model meets a character it never saw): a 400
            @Sendable func tokens(_ text: String, special: Bool, param: String) throws -> [Int] {
                do { return try engine.tokenizer.tokens(text, special: special) } catch {
                    throw APIError(.badRequest, "\(param): \(error)", param: param)
                }
            }
            router.post("/v1/chat/completions") { request, _ in
                let r = try await decode(ChatRequest.self, request, options)
                let messages = r.messages.map { GGUFMessage(role: $0.role, content: $0.content?.text ?? "") }
                guard !messages.isEmpty else { throw APIError(.badRequest, "messages must not be empty", param: "messages") }
                let prompt: String
                do { prompt = try engine.tokenizer.chatPrompt(messages) } catch {
                    throw APIError(.badRequest, "the chat template could not render these messages: \(error)", param: "messages")
                }
                return try await chat.run(r.sampling, prompt: tokens(prompt, special: true, param: "messages"), kind: .chat)
            }
            router.post("/v1/completions") { request, _ in
                let r = try await decode(CompletionRequest.self, request, options)
                guard r.prompt.values.count == 1 else {
                    throw APIError(.badRequest, "prompt: one prompt per request (got \(r.prompt.values.count))", param: "prompt")
                }
                var ids = try tokens(r.prompt.values[0], special: false, param: "prompt")
                if let first = engine.tokenizer.leadingToken { ids.insert(first, at: 0) }
                guard !ids.isEmpty else { throw APIError(.badRequest, "prompt: the prompt is empty", param: "prompt") }
                return try await chat.run(r.sampling, prompt: ids, kind: .completion)
            }
            router.post("/tokenize") { request, _ in
                let r = try await decode(TokenizeRequest.self, request, options)
                var ids = try tokens(r.content, special: r.addSpecial ?? false, param: "content")
                if r.addSpecial == true, let first = engine.tokenizer.leadingToken { ids.insert(first, at: 0) }
                return try json(["tokens": ids])
            }
            router.post("/detokenize") { request, _ in
                let r = try await decode(DetokenizeRequest.self, request, options)
                if let bad = r.tokens.firstIndex(where: { $0 < 0 || $0 >= engine.tokenizer.vocabSize }) {
                    throw APIError(
                        .badRequest, "tokens[\(bad)] is \(r.tokens[bad]), outside the vocabulary (0..<\(engine.tokenizer.vocabSize))",
                        param: "tokens")
                }
                return try json(["content": engine.tokenizer.text(r.tokens)])
            }
        }
        if let embedder {
            router.post("/v1/embeddings") { request, _ in
                let r = try await decode(EmbeddingRequest.self, request, options)
                if let m = r.model, m != embedder.id { throw unknownModel(m, [embedder.id]) }
                let format = r.encodingFormat ?? "float"
                guard format == "float" || format == "base64" else {
                    throw APIError(.badRequest, "encoding_format is \"float\" or \"base64\", not \"\(format)\"", param: "encoding_format")
                }
                guard !r.input.values.isEmpty else { throw APIError(.badRequest, "input must not be empty", param: "input") }
                guard let (vectors, tokens) = await embedder.embed(r.input.values) else { throw busy() }
                let data = vectors.enumerated().map { i, v -> [String: Any] in
                    // base64: the Float32 values' little-endian bytes (what the openai client asks for by default)
                    let e: Any = format == "float" ? v.map(Double.init) : v.withUnsafeBytes { Data($0).base64EncodedString() }
                    return ["object": "embedding", "index": i, "embedding": e]
                }
                return try json([
                    "object": "list", "data": data, "model": embedder.id, "usage": ["prompt_tokens": tokens, "total_tokens": tokens]
                ])
            }
        }
        return router
    }

    /// The server with connection limits (as the explorer's).
    public static func application(
        engine: SlotEngine?, embedder: Embedder?, host: String, port: Int, options: OpenAIServerOptions,
        onReady: @escaping @Sendable (Int) -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let http1 = HTTP1Channel.Configuration(
            additionalChannelHandlers: [RequestReadDeadline(TimeAmount(options.readTimeout))],
            idleTimeout: TimeAmount(options.idleTimeout))
        return Application(
            router: router(engine: engine, embedder: embedder, options: options), server: .http1(configuration: http1),
            configuration: .init(
                address: .hostname(host, port: port), serverName: "transformer",
                availableConnectionsDelegate: MaximumAvailableConnections(options.maxConnections)),
            onServerRunning: { channel in onReady(channel.localAddress?.port ?? port) })
    }

    static func unknownModel(_ id: String, _ ids: [String]) -> APIError {
        APIError(
            .notFound, "the model \"\(id)\" does not exist; this server has \(ids.map { "\"\($0)\"" }.joined(separator: ", "))",
            param: "model", code: "model_not_found")
    }

    static func busy() -> APIError {
        var e = APIError(.serviceUnavailable, "every slot is busy and the queue is full; retry shortly", code: "server_busy")
        e.headers[.retryAfter] = "1"
        return e
    }

    /// The body as `T`, within the size limit; malformed JSON and wrong types name the field.
    static func decode<T: Decodable>(_: T.Type, _ request: Request, _ options: OpenAIServerOptions) async throws -> T {
        var request = request
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: options.maxBodyBytes) } catch {
            throw APIError(.contentTooLarge, "the request body is larger than \(options.maxBodyBytes) bytes", code: "request_too_large")
        }
        do { return try JSONDecoder().decode(T.self, from: Data(body.readableBytesView)) } catch { throw APIError.decoding(error) }
    }

    static func json(_ value: Any, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try JSONSerialization.data(withJSONObject: value, options: [.withoutEscapingSlashes])
        return Response(
            status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

typealias GGUFMessage = Tokenizers.GGUFTokenizer.Message

/// Turns every error into OpenAI's shape.
struct OpenAIErrorMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let e as APIError {
            return try Self.answer(e)
        } catch let e as HTTPError {
            let message = e.body ?? (e.status == .notFound ? "no such route: \(request.method) \(request.uri.path)" : e.status.reasonPhrase)
            var a = APIError(e.status, message)
            a.headers = e.headers
            return try Self.answer(a)
        } catch let e as HTTPResponseError {
            return try Self.answer(APIError(e.status, e.status.reasonPhrase))
        } catch {
            context.logger.error("\(request.method) \(request.uri.path): \(error)")
            return try Self.answer(APIError(.internalServerError, "internal error: \(error)"))
        }
    }

    static func answer(_ e: APIError) throws -> Response {
        let data = try JSONEncoder().encode(e.body)
        var headers: HTTPFields = [.contentType: "application/json"]
        headers.append(contentsOf: e.headers)
        return Response(status: e.status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Requires `Authorization: Bearer KEY` on every route but `/health`, compared in constant time.
struct BearerTokenMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let key: [UInt8]
    init(key: String) { self.key = Array(key.utf8) }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.path == "/health" { return try await next(request, context) }
        let header = request.headers[.authorization] ?? ""
        let given = header.hasPrefix("Bearer ") ? Array(header.utf8.dropFirst(7)) : []
        guard Self.equal(given, key) else {
            throw APIError(
                .unauthorized, header.isEmpty ? "an API key is required: Authorization: Bearer KEY" : "incorrect API key provided",
                code: "invalid_api_key")
        }
        return try await next(request, context)
    }

    /// Equal, in a time that depends on the lengths only (not on where the first difference is).
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<max(a.count, b.count) { diff |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0) }
        return diff == 0
    }
}
