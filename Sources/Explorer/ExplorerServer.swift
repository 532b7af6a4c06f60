import Foundation
import Hummingbird
import Walkthrough

/// Limits on what one request may ask of the server.
public struct ExplorerLimits: Sendable {
    /// Longest accepted text, in characters (longer: 422).
    public var maxCharacters = 500
    /// Largest accepted request body, in bytes (larger: 413).
    public var maxBodyBytes = 16 * 1024
    /// Most tokens `/api/generate` may ask for.
    public var maxNewTokens = 200
    public init() {}
}

/// `transformer serve`: the live explorer page and a small JSON API over an `ExplorerModel`.
///
/// - `GET /`: the page; its script posts to `/api/trace`.
/// - `GET /api/info`: the model's kind, summary and the limits.
/// - `POST /api/trace` `{"text": …}`: the trace's page fragment (`html`), the prediction, the attention heads and the trace's steps.
/// - `POST /api/generate` `{"text": …, "max_tokens": n}` (GPT) or `POST /api/translate` `{"text": …}` (encoder–decoder): `{"output": …}`.
///
/// Every error is JSON `{"error": "…"}` with a 4xx status (5xx only for a failure of the server itself):
/// 400 bad JSON or a missing field, 404 an unknown route, 413 a body over the limit, 422 an empty or over-long text.
public enum ExplorerServer {
    /// The router with every route and the JSON-error middleware; `Application` serves it, tests call it in-process.
    public static func router(model: any ExplorerModel, limits: ExplorerLimits = ExplorerLimits()) -> Router<BasicRequestContext> {
        let gate = ModelGate(model)
        let kind = model.kind
        let loss = model.lossCurveSVG
        let page = ExplorerPage.live(model: model.summary, completion: kind.completion, maxCharacters: limits.maxCharacters,
                                     example: kind == .gpt ? "ROMEO:" : "", lossCurve: loss == nil ? nil : "/loss.svg")
        let router = Router()
        router.add(middleware: JSONErrorMiddleware())
        router.get("/") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: page)))
        }
        // Browsers ask for it unprompted; an empty answer keeps their consoles free of 404s.
        router.get("/favicon.ico") { _, _ in Response(status: .noContent) }
        if let loss {
            router.get("/loss.svg") { _, _ in
                Response(status: .ok, headers: [.contentType: "image/svg+xml"], body: .init(byteBuffer: ByteBuffer(string: loss)))
            }
        }
        router.get("/api/info") { _, _ in
            try json(Info(kind: kind.rawValue, model: model.summary, maxCharacters: limits.maxCharacters, maxTokens: model.maxInputTokens,
                          maxBodyBytes: limits.maxBodyBytes, completion: kind.completion.path))
        }
        router.post("/api/trace") { request, _ in
            let input = try await readInput(request, limits: limits, gate: gate, maxTokens: model.maxInputTokens)
            let doc = try await run { try await gate.trace(input.text) }
            var steps = doc
            steps.parameters = []  // the steps are the story; parameters can be millions of numbers
            return try json(TraceAnswer(title: doc.title, prediction: doc.nextToken,
                                        attention: doc.attentionMaps.map { .init(step: $0.step, block: $0.block, layer: $0.layer, kind: $0.kind, head: $0.head) },
                                        html: ExplorerPage.fragment(doc), trace: steps))
        }
        router.post(RouterPath(stringLiteral: kind.completion.path)) { request, _ in
            let input = try await readInput(request, limits: limits, gate: gate, maxTokens: model.maxInputTokens)
            let n = input.maxTokens ?? 50
            guard (1...limits.maxNewTokens).contains(n) else {
                throw HTTPError(.unprocessableContent, message: "max_tokens must be between 1 and \(limits.maxNewTokens) (got \(n))")
            }
            let output = try await run { try await gate.complete(input.text, maxTokens: n) }
            return try json(Completion(input: input.text, output: output))
        }
        let other = kind == .gpt ? ExplorerModelKind.seq2seq.completion.path : ExplorerModelKind.gpt.completion.path
        router.post(RouterPath(stringLiteral: other)) { _, _ -> Response in
            throw HTTPError(.notFound, message: "\(other) is not served for this model (a \(kind == .gpt ? "GPT" : "translation model")): use \(kind.completion.path)")
        }
        return router
    }

    /// Serves until SIGINT or SIGTERM. `onReady` gets the bound port (useful with port 0: any free port).
    public static func run(model: any ExplorerModel, host: String = "127.0.0.1", port: Int = 8080, limits: ExplorerLimits = ExplorerLimits(),
                           onReady: @escaping @Sendable (Int) -> Void) async throws {
        let app = Application(router: router(model: model, limits: limits),
                              configuration: .init(address: .hostname(host, port: port), serverName: "transformer-explorer"),
                              onServerRunning: { channel in onReady(channel.localAddress?.port ?? port) })
        try await app.runService()
    }

    // MARK: Requests

    struct Input: Decodable {
        var text: String
        var maxTokens: Int?
        enum CodingKeys: String, CodingKey { case text, maxTokens = "max_tokens" }
    }

    /// The body as JSON `{"text": …}`, checked against the limits before the model sees it.
    static func readInput(_ request: Request, limits: ExplorerLimits, gate: ModelGate, maxTokens: Int) async throws -> Input {
        var request = request
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: limits.maxBodyBytes) } catch {
            throw HTTPError(.contentTooLarge, message: "the request body is larger than \(limits.maxBodyBytes) bytes")
        }
        let input: Input
        do { input = try JSONDecoder().decode(Input.self, from: Data(body.readableBytesView)) } catch {
            throw HTTPError(.badRequest, message: "the body must be JSON like {\"text\": \"…\"}: \(describeDecodingError(error))")
        }
        let text = input.text
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw HTTPError(.unprocessableContent, message: "the text is empty")
        }
        guard text.count <= limits.maxCharacters else {
            throw HTTPError(.unprocessableContent, message: "the text has \(text.count) characters; the limit is \(limits.maxCharacters)")
        }
        let tokens = try await run { try await gate.tokenCount(text) }
        guard tokens <= maxTokens else {
            throw HTTPError(.unprocessableContent, message: "the text makes \(tokens) tokens; this model takes at most \(maxTokens)")
        }
        return input
    }

    /// Runs a model call; the model's own complaints about the input (no tokens, unknown characters) become 422.
    static func run<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let e as WalkthroughError {
            throw HTTPError(.unprocessableContent, message: e.message)
        }
    }

    // MARK: Answers

    struct Info: Encodable {
        var kind: String, model: String, maxCharacters: Int, maxTokens: Int, maxBodyBytes: Int, completion: String
        enum CodingKeys: String, CodingKey {
            case kind, model, completion
            case maxCharacters = "max_characters", maxTokens = "max_tokens", maxBodyBytes = "max_body_bytes"
        }
    }

    struct Head: Encodable { var step: String, block: String, layer: Int, kind: String, head: Int }

    struct TraceAnswer: Encodable {
        var title: String
        var prediction: NextToken?
        var attention: [Head]
        var html: String
        var trace: TraceDocument
    }

    struct Completion: Encodable { var input: String, output: String }

    /// JSON with the trace's conventions (`"-inf"` for masked scores), as UTF-8.
    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try TraceDocument.encoder(pretty: false).encode(value)
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Turns every error, including the router's own 404 and the body limit, into `{"error": "…"}`.
struct JSONErrorMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let e as HTTPError {
            let message = e.body ?? (e.status == .notFound ? "no such route: \(request.method) \(request.uri.path)" : e.status.reasonPhrase)
            return try Self.answer(e.status, message)
        } catch let e as HTTPResponseError {
            return try Self.answer(e.status, e.status.reasonPhrase)
        } catch {
            context.logger.error("\(request.method) \(request.uri.path): \(error)")
            return try Self.answer(.internalServerError, "internal error: \(error)")
        }
    }

    static func answer(_ status: HTTPResponse.Status, _ message: String) throws -> Response {
        try ExplorerServer.json(["error": message], status: status)
    }
}
