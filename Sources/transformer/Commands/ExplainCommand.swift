import ArgumentParser
import Foundation
import Walkthrough

struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Every step of a checkpoint's forward pass on a text, as the explorer page (or any walkthrough format).",
        discussion: """
            Works for a GPT (`transformer train --model gpt`, or a Hugging Face GPT-2 folder) and for an
            encoder–decoder (`transformer train`); for the latter the decoder is fed the model's own greedy translation.
            Examples:
              transformer explain --checkpoint runs/shakespeare --text "ROMEO:" --output romeo.html
              transformer explain --checkpoint runs/toy --text "马无夜草不肥" --attention-svg figures/
            """
    )

    @Option(help: "A run folder (its latest checkpoint) or a checkpoint folder.") var checkpoint: String
    @Option(help: "The text to run through the model.") var text: String
    @Option(help: "Output format: html (the explorer page), text, markdown, latex, csv, json.") var format: String = "html"
    @Option(help: "Write to this file (a folder for csv) instead of standard output.") var output: String?
    @Option(help: "Also write one SVG heatmap per attention layer and head into this folder.") var attentionSvg: String?
    @Option(help: "Decimal places.") var decimals: Int = 4
    @Option(help: "Widest matrix shown whole (0: no limit).") var maxColumns: Int = 100

    func run() throws {
        do {
            guard let fmt = TraceFormat(rawValue: format) else {
                throw WalkthroughError(
                    "--format must be one of \(TraceFormat.allCases.map(\.rawValue).joined(separator: ", ")) (got \(format))")
            }
            guard (0...10).contains(decimals), maxColumns >= 0 else {
                throw WalkthroughError("--decimals must be 0…10 and --max-columns 0 or more")
            }
            let doc = try CheckpointExplorer(path: checkpoint).trace(text)
            var opts = RenderOptions()
            opts.decimals = decimals
            opts.maxColumns = maxColumns
            if let attentionSvg { try writeAttentionSVG(doc, attentionSvg) }
            try emit(doc, format: fmt, options: opts, output: output)
        } catch let e as WalkthroughError {
            fail(e.message)
        }
    }
}

/// `--attention-svg DIR`: one heatmap file per layer and head, and a line on standard error saying so.
func writeAttentionSVG(_ doc: TraceDocument, _ dir: String) throws {
    let names = try MatrixSVG.writeAttention(doc, to: URL(fileURLWithPath: dir))
    FileHandle.standardError.write(Data("wrote \(names.count) attention maps to \(dir)/ (\(names.first ?? "none")…)\n".utf8))
}
