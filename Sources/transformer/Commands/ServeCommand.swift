import ArgumentParser
import Explorer
import Foundation
import Walkthrough

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract:
            "Explore a checkpoint in a local web page, or serve a GGUF model (and a sentence-transformers model) over an OpenAI-compatible API.",
        discussion: """
            With --model X.gguf (and/or --embeddings DIR), or --api --model GPT_RUN_OR_GPT2_DIR: an OpenAI-compatible API on http://HOST:PORT/v1 — \
            /v1/chat/completions (streaming with "stream": true), /v1/completions, /v1/embeddings, /v1/models, and \
            /tokenize, /detokenize, /health. --parallel slots decode together in one batched step; up to --queue more \
            requests wait, beyond that 503 with Retry-After. --api-key (or $TRANSFORMER_API_KEY) requires \
            "Authorization: Bearer KEY". A GPT checkpoint has no chat template: it answers /v1/completions, and \
            /v1/chat/completions says so (400). Errors are OpenAI's {"error": {"message", "type", "param", "code"}}. \
            See the README, "An OpenAI-compatible server".

            With a run or checkpoint folder: the explorer page. \
            Serves http://HOST:PORT/ (the page) and a JSON API: POST /api/trace {"text": …} (add "include": ["html"] or \
            ["trace"] for only the page fragment or only the steps), and POST /api/generate \
            {"text": …, "max_tokens": n} for a GPT or POST /api/translate {"text": …} for an encoder–decoder. \
            Bound to 127.0.0.1 unless --host says otherwise. Port 0 picks a free port (printed on the first line).

            Limits (every refusal is JSON {"error": …}): a body over --max-body bytes gets 413 (chunked or not), a text \
            over --max-characters or the model's context 422, malformed JSON 400. The model computes for one request at a \
            time with at most --queue more waiting; beyond that 503 "busy, retry" with Retry-After: 1, and a request \
            not answered within --timeout seconds gets 503 "timed out". A connection silent for --idle-timeout seconds \
            (including a request head trickled in) is closed, and so is one whose body has not arrived --read-timeout \
            seconds after its head. At most --max-connections are open at once; more wait in the accept backlog. A trace \
            answer over --max-answer bytes gets 422.
            """
    )

    @Option(
        help:
            "A GGUF file (the API server), or a run folder / checkpoint folder (GPT or encoder–decoder: the explorer; with --api, a GPT over the API)."
    )
    var model: String?
    @Option(help: "API server: a sentence-transformers folder served at /v1/embeddings (e.g. all-MiniLM-L6-v2).") var embeddings: String?
    @Flag(help: "Serve a GPT run or Hugging Face GPT-2 folder over the OpenAI-compatible API (completions) instead of the explorer.")
    var api = false
    @Option(help: "API server: conversations decoded at once, each with its own KV cache.") var parallel: Int = 4
    @Option(help: "API server: require this Bearer token (default: $TRANSFORMER_API_KEY, else none).") var apiKey: String?
    @Option(help: "API server: the model's name in /v1/models and requests (default: the file name without .gguf).") var alias: String?
    @OptionGroup var gguf: GGUFOptions
    @Option(help: "Port (0: any free port).") var port: Int = 8080
    @Option(help: "Address to bind; 0.0.0.0 exposes the server to the network.") var host: String = "127.0.0.1"
    @Option(help: "Longest text accepted, in characters.") var maxCharacters: Int = 500
    @Option(help: "Largest request body accepted, in bytes (default 16 KiB for the explorer, 1 MiB for the API).") var maxBody: Int?
    @Option(help: "Most tokens one /api/generate may ask for.") var maxNewTokens: Int = 200
    @Option(help: "Requests that may wait for the model while it computes (more: 503 busy).") var queue: Int = 16
    @Option(help: "Seconds a request may wait for and use the model (longer: 503 timed out).") var timeout: Double = 10
    @Option(help: "Seconds a request body may take to arrive after its head (longer: connection closed).") var readTimeout: Double = 10
    @Option(help: "Seconds a connection may stay silent before it is closed.") var idleTimeout: Double = 15
    @Option(help: "Most connections open at once.") var maxConnections: Int = 256
    @Option(help: "Largest trace answer, in bytes (larger: 422).") var maxAnswer: Int = 32 * 1024 * 1024

    func run() async throws {
        guard (0...65535).contains(port) else { fail("--port must be 0…65535 (got \(port))") }
        if api || embeddings != nil || model?.lowercased().hasSuffix(".gguf") == true { return try await runAPI() }
        guard let model else { fail("give --model (a GGUF file, a run or checkpoint folder) or --embeddings DIR") }
        let maxBody = self.maxBody ?? 16 * 1024
        guard maxCharacters > 0, maxBody > 0, maxNewTokens > 0, maxConnections > 0, maxAnswer > 0 else {
            fail("--max-characters, --max-body, --max-new-tokens, --max-connections and --max-answer must be positive")
        }
        guard queue >= 0 else { fail("--queue must be 0 or more (got \(queue))") }
        guard timeout > 0, readTimeout > 0, idleTimeout > 0 else { fail("--timeout, --read-timeout and --idle-timeout must be positive") }
        let explorer: CheckpointExplorer
        do { explorer = try CheckpointExplorer(path: model) } catch let e as WalkthroughError { fail(e.message) }
        var limits = ExplorerLimits()
        limits.maxCharacters = maxCharacters
        limits.maxBodyBytes = maxBody
        limits.maxNewTokens = maxNewTokens
        limits.maxQueue = queue
        limits.computeTimeout = .milliseconds(Int((timeout * 1000).rounded()))
        limits.readTimeout = .milliseconds(Int((readTimeout * 1000).rounded()))
        limits.idleTimeout = .milliseconds(Int((idleTimeout * 1000).rounded()))
        limits.maxConnections = maxConnections
        limits.maxAnswerBytes = maxAnswer
        let host = self.host
        if !["127.0.0.1", "localhost", "::1"].contains(host) {
            FileHandle.standardError.write(
                Data("warning: --host \(host) may expose the server beyond this machine; it has no authentication\n".utf8))
        }
        try await ExplorerServer.run(model: explorer, host: host, port: port, limits: limits) { bound in
            // Written straight to the file handle (not buffered): scripts wait for this line.
            FileHandle.standardOutput.write(Data("serving \(explorer.summary)\nopen http://\(host):\(bound)/  (Ctrl-C stops)\n".utf8))
        }
    }
}
