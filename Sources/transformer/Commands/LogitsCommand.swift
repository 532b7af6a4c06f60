import ArgumentParser
import Foundation
import TensorKit
import TransformerKit
import Tokenizers
import ModelFiles

struct LogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logits",
        abstract: "Print a GPT's next-token logits at every position of a token sequence.",
        discussion: """
            For checking this implementation against any other: give the same token ids to both and \
            compare. --model is a Hugging Face GPT-2 folder (config.json + model.safetensors, as \
            save_pretrained writes it). Text output lists the top-k next tokens per position; JSON \
            output has every logit: {"ids": [...], "logits": [[vocab_size floats] per position]}.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

    @Option(help: "A Hugging Face GPT-2 folder (config.json + model.safetensors).") var model: String
    @Option(help: "Token ids, comma-separated (e.g. 5,17,300).") var ids: String
    @Option(help: "Output format: text or json.") var format: Format = .text
    @Option(help: "Text format: how many of the largest logits to show per position.") var top: Int = 5

    func run() throws {
        do {
            guard top >= 1 else { throw GPTCheckpointError("--top must be at least 1") }
            let tokens = try parseIDs(ids)
            let dir = URL(fileURLWithPath: model, isDirectory: true)
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
                throw GPTCheckpointError(
                    "\(model) is not a folder (expected a Hugging Face GPT-2 folder with config.json and model.safetensors)")
            }
            let gpt = try GPTCheckpoint.loadHuggingFace(dir)
            let c = gpt.config
            if let bad = tokens.firstIndex(where: { $0 < 0 || $0 >= c.vocabSize }) {
                throw GPTCheckpointError(
                    "--ids: token \(tokens[bad]) (position \(bad)) is out of range; the vocabulary is 0..<\(c.vocabSize)")
            }
            guard tokens.count <= c.contextLength else {
                throw GPTCheckpointError("--ids: \(tokens.count) tokens exceed the model's context of \(c.contextLength) (n_positions)")
            }
            let t = tokens.count, v = c.vocabSize
            let acts = GPTActivations(config: c, maxBatch: 1, maxLength: t)
            gpt.forward(ids: tokens.map { Int32($0) }, targets: nil, b: 1, t: t, acts: acts)
            let rows = (0..<t).map { Array(UnsafeBufferPointer(start: acts.logits.pointer + $0 * v, count: v)) }
            switch format {
            case .json: printJSON(tokens, rows)
            case .text: printText(tokens, rows, k: min(top, v))
            }
        } catch let e as GPTCheckpointError { fail(e.message) } catch let e as SafetensorsError { fail(e.description) } catch let e
            as ConfigError
        { fail(e.message) } catch let e as TokenizerError { fail(e.message) }
    }

    func parseIDs(_ s: String) throws -> [Int] {
        let parts = s.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard !(parts.count == 1 && parts[0].isEmpty) else { throw GPTCheckpointError("--ids is empty; give token ids like 5,17,300") }
        return try parts.map { p in
            guard let i = Int(p) else { throw GPTCheckpointError("--ids: \"\(p)\" is not an integer token id") }
            return i
        }
    }

    func printJSON(_ tokens: [Int], _ rows: [[Float]]) {
        func number(_ x: Float) -> String { x.isFinite ? "\(x)" : "null" }
        var out = "{\"ids\": [" + tokens.map(String.init).joined(separator: ", ") + "], \"logits\": ["
        out += rows.map { "[" + $0.map(number).joined(separator: ", ") + "]" }.joined(separator: ",\n  ")
        out += "]}"
        print(out)
    }

    func printText(_ tokens: [Int], _ rows: [[Float]], k: Int) {
        let w = max(3, String(tokens.count - 1).count), wid = max(2, String(tokens.max() ?? 0).count)
        let vw = String((rows.first?.count ?? 1) - 1).count
        func pad(_ s: String, _ n: Int) -> String { String(repeating: " ", count: max(0, n - s.count)) + s }
        print("\(pad("pos", w))  \(pad("id", wid))  top \(k) next tokens (id: logit)")
        for (p, row) in rows.enumerated() {
            let best = row.indices.sorted { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }.prefix(k)
            let cells = best.map { "\(pad(String($0), vw)): \(pad(String(format: "%.4f", row[$0]), 8))" }
            print("\(pad(String(p), w))  \(pad(String(tokens[p]), wid))  " + cells.joined(separator: "   "))
        }
    }
}
