import ArgumentParser
import Explorer
import Foundation
import Walkthrough

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "A local web page to explore a checkpoint: type a text, see every step, the attention and the prediction.",
        discussion: """
        Serves http://HOST:PORT/ (the page) and a JSON API: POST /api/trace {"text": …}, and POST /api/generate
        {"text": …, "max_tokens": n} for a GPT or POST /api/translate {"text": …} for an encoder–decoder.
        Bound to 127.0.0.1 unless --host says otherwise. Port 0 picks a free port (printed on the first line).
        """
    )

    @Option(help: "A run folder (its latest checkpoint) or a checkpoint folder (GPT or encoder–decoder).") var model: String
    @Option(help: "Port (0: any free port).") var port: Int = 8080
    @Option(help: "Address to bind; 0.0.0.0 exposes the server to the network.") var host: String = "127.0.0.1"
    @Option(help: "Longest text accepted, in characters.") var maxCharacters: Int = 500
    @Option(help: "Largest request body accepted, in bytes.") var maxBody: Int = 16 * 1024

    func run() async throws {
        guard (0...65535).contains(port) else { fail("--port must be 0…65535 (got \(port))") }
        guard maxCharacters > 0, maxBody > 0 else { fail("--max-characters and --max-body must be positive") }
        let explorer: CheckpointExplorer
        do { explorer = try CheckpointExplorer(path: model) } catch let e as WalkthroughError { fail(e.message) }
        var limits = ExplorerLimits()
        limits.maxCharacters = maxCharacters
        limits.maxBodyBytes = maxBody
        let host = self.host
        if !["127.0.0.1", "localhost", "::1"].contains(host) {
            FileHandle.standardError.write(Data("warning: --host \(host) may expose the server beyond this machine; it has no authentication\n".utf8))
        }
        try await ExplorerServer.run(model: explorer, host: host, port: port, limits: limits) { bound in
            // Written straight to the file handle (not buffered): scripts wait for this line.
            FileHandle.standardOutput.write(Data("serving \(explorer.summary)\nopen http://\(host):\(bound)/  (Ctrl-C stops)\n".utf8))
        }
    }
}
