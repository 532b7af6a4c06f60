import Foundation
import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTPTypes
import Walkthrough

/// Limits on what one request, one connection and the whole server may ask for; `transformer serve` sets them.
public struct ExplorerLimits: Sendable {
    /// Longest accepted text, in characters (longer: 422).
    public var maxCharacters = 500
    /// Largest accepted request body, in bytes, with or without Content-Length (chunked too) (larger: 413).
    public var maxBodyBytes = 16 * 1024
    /// Most tokens `/api/generate` may ask for.
    public var maxNewTokens = 200
    /// Requests that may wait for the model while it computes for another (one at a time); beyond: 503 "busy, retry".
    public var maxQueue = 16
    /// Longest a request may wait for and use the model (beyond: 503 "timed out").
    public var computeTimeout: Duration = .seconds(10)
    /// Longest a request's body may take to arrive after its head; then the connection is closed (a slow body).
    public var readTimeout: Duration = .seconds(10)
    /// A connection that sends nothing for this long is closed: idle keep-alive, and a request head that
    /// trickles in (Hummingbird counts from the last complete head or body part).
    public var idleTimeout: Duration = .seconds(15)
    /// Most connections open at once; further ones wait in the kernel's accept backlog.
    public var maxConnections = 256
    /// Largest trace answer, in bytes (larger: 422; the size grows with the model and the text).
    public var maxAnswerBytes = 32 * 1024 * 1024
    public init() {}
}

/// `transformer serve`: the live explorer page and a small JSON API over an `ExplorerModel`.
///
/// - `GET /`: the page; its script posts to `/api/trace`.
/// - `GET /api/info`: the model's kind, summary and the limits.
/// - `POST /api/trace` `{"text": …, "include": ["html", "trace"]}`: the prediction, the attention heads, and what `include`
///   asks for (default both): the trace's page fragment (`html`) and the trace's steps (`trace`). The page asks for the
///   fragment only; the steps are the larger part (the JSON of every number, for scripts).
/// - `POST /api/generate` `{"text": …, "max_tokens": n}` (GPT) or `POST /api/translate` `{"text": …}` (encoder–decoder): `{"output": …}`.
///
/// Every error is JSON `{"error": "…"}`: 400 bad JSON, a missing field or a body that is not UTF-8, 404 an unknown
/// route, 413 a body over the limit, 422 an empty or over-long text, 503 with `Retry-After` when the model's queue is
/// full ("busy, retry") or the request's work ran past `computeTimeout`; any other 5xx is a failure of the server itself.
public enum ExplorerServer {
    /// The router with every route and the JSON-error middleware; `Application` serves it, tests call it in-process.
    public static func router(model: any ExplorerModel, limits: ExplorerLimits = ExplorerLimits()) -> Router<BasicRequestContext> {
        let gate = ModelGate(model, maxQueue: limits.maxQueue)
        let kind = model.kind
        let loss = model.lossCurveSVG
        let page = ExplorerPage.live(
            model: model.summary, completion: kind.completion, maxCharacters: limits.maxCharacters,
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
            try json(
                Info(
                    kind: kind.rawValue, model: model.summary, maxCharacters: limits.maxCharacters, maxTokens: model.maxInputTokens,
                    maxBodyBytes: limits.maxBodyBytes, completion: kind.completion.path))
        }
        router.post("/api/trace") { request, _ in
            let input = try await readInput(request, limits: limits)
            // The answer is built and encoded in the gated work too: it is the larger part of the work (the trace of
            // "ROMEO:" on a d_model 32 GPT is about 1.3 MB of JSON), so one is built at a time, under the deadline.
            let parts = try input.traceParts()
            let data = try await compute(gate, limits, input.text) { model in
                let doc = try model.trace(input.text)
                var steps = doc
                steps.parameters = []  // the steps are the story; parameters can be millions of numbers
                let answer = TraceAnswer(
                    title: doc.title, prediction: doc.nextToken,
                    attention: doc.attentionMaps.map {
                        .init(step: $0.step, block: $0.block, layer: $0.layer, kind: $0.kind, head: $0.head)
                    },
                    html: parts.contains(.html) ? ExplorerPage.fragment(doc) : nil,
                    trace: parts.contains(.trace) ? steps : nil)
                let data = try TraceDocument.encoder(pretty: false).encode(answer)
                guard data.count <= limits.maxAnswerBytes else {
                    throw HTTPError(
                        .unprocessableContent,
                        message:
                            """
                            the trace of this text is \(data.count) bytes, over the server's limit of \(limits.maxAnswerBytes); \
                            try a shorter text
                            """
                    )
                }
                return data
            }
            return jsonResponse(data)
        }
        router.post(RouterPath(stringLiteral: kind.completion.path)) { request, _ in
            let input = try await readInput(request, limits: limits)
            let n = input.maxTokens ?? 50
            guard (1...limits.maxNewTokens).contains(n) else {
                throw HTTPError(.unprocessableContent, message: "max_tokens must be between 1 and \(limits.maxNewTokens) (got \(n))")
            }
            let output = try await compute(gate, limits, input.text) { try $0.complete(input.text, maxTokens: n) }
            return try json(Completion(input: input.text, output: output))
        }
        let other = kind == .gpt ? ExplorerModelKind.seq2seq.completion.path : ExplorerModelKind.gpt.completion.path
        router.post(RouterPath(stringLiteral: other)) { _, _ -> Response in
            throw HTTPError(
                .notFound,
                message:
                    "\(other) is not served for this model (a \(kind == .gpt ? "GPT" : "translation model")): use \(kind.completion.path)")
        }
        return router
    }

    /// The server: the router, plus the connection limits (idle timeout, request-read deadline, most connections).
    public static func application(
        model: any ExplorerModel, host: String = "127.0.0.1", port: Int = 8080,
        limits: ExplorerLimits = ExplorerLimits(),
        onReady: @escaping @Sendable (Int) -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let readTimeout = TimeAmount(limits.readTimeout)
        let http1 = HTTP1Channel.Configuration(
            additionalChannelHandlers: [RequestReadDeadline(readTimeout)],
            idleTimeout: TimeAmount(limits.idleTimeout))
        return Application(
            router: router(model: model, limits: limits), server: .http1(configuration: http1),
            configuration: .init(
                address: .hostname(host, port: port), serverName: "transformer-explorer",
                availableConnectionsDelegate: MaximumAvailableConnections(limits.maxConnections)),
            onServerRunning: { channel in onReady(channel.localAddress?.port ?? port) })
    }

    /// Serves until SIGINT or SIGTERM. `onReady` gets the bound port (useful with port 0: any free port).
    public static func run(
        model: any ExplorerModel, host: String = "127.0.0.1", port: Int = 8080, limits: ExplorerLimits = ExplorerLimits(),
        onReady: @escaping @Sendable (Int) -> Void
    ) async throws {
        try await application(model: model, host: host, port: port, limits: limits, onReady: onReady).runService()
    }

    // MARK: Requests

    struct Input: Decodable {
        var text: String
        var maxTokens: Int?
        /// `/api/trace`: which large parts to send (`html`, `trace`); absent means both.
        var include: [String]?
        enum CodingKeys: String, CodingKey { case text, maxTokens = "max_tokens", include }

        enum TracePart: String, CaseIterable { case html, trace }

        func traceParts() throws -> Set<TracePart> {
            guard let include else { return Set(TracePart.allCases) }
            return Set(
                try include.map { name in
                    guard let part = TracePart(rawValue: name) else {
                        throw HTTPError(
                            .badRequest,
                            message:
                                "include: unknown part \"\(name)\"; the parts are \(TracePart.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: " and "))"
                        )
                    }
                    return part
                })
        }
    }

    /// The body as JSON `{"text": …}`, checked against the limits before the model sees it. The size limit counts the
    /// bytes as they arrive, so it holds for chunked bodies and bodies without Content-Length too.
    static func readInput(_ request: Request, limits: ExplorerLimits) async throws -> Input {
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
        return input
    }

    /// `work` on the model through the gate, after checking `text` against the model's context. The model's own complaints
    /// about the input (no tokens, unknown characters) become 422; a full queue or the deadline, 503.
    static func compute<T: Sendable>(
        _ gate: ModelGate, _ limits: ExplorerLimits, _ text: String,
        _ work: @escaping @Sendable (any ExplorerModel) throws -> T
    ) async throws -> T {
        do {
            return try await gate.run(timeout: limits.computeTimeout) { model in
                let tokens = try model.tokenCount(text)
                guard tokens <= model.maxInputTokens else {
                    throw HTTPError(
                        .unprocessableContent, message: "the text makes \(tokens) tokens; this model takes at most \(model.maxInputTokens)")
                }
                return try work(model)
            }
        } catch let e as WalkthroughError {
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
        var html: String?
        var trace: TraceDocument?
    }

    struct Completion: Encodable { var input: String, output: String }

    /// JSON with the trace's conventions (`"-inf"` for masked scores), as UTF-8.
    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        jsonResponse(try TraceDocument.encoder(pretty: false).encode(value), status: status)
    }

    static func jsonResponse(_ data: Data, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
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
            var response = try Self.answer(e.status, message)
            response.headers.append(contentsOf: e.headers)  // Retry-After on 503
            return response
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

/// Closes a connection whose request has not fully arrived `timeout` after its head: a body trickled in byte by byte
/// would otherwise hold the connection (each byte restarts Hummingbird's idle timer). Also covers a body that keeps
/// arriving after an early answer (413), which Hummingbird reads to its end before the next request.
public final class RequestReadDeadline: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart
    let timeout: TimeAmount
    private var deadline: Scheduled<Void>?

    public init(_ timeout: TimeAmount) { self.timeout = timeout }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            deadline?.cancel()
            deadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
                context.close(promise: nil)
            }
        case .body:
            break
        case .end:
            deadline?.cancel()
            deadline = nil
        }
        context.fireChannelRead(data)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    public func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        context.fireChannelInactive()
    }
}
