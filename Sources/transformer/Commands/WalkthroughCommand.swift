import ArgumentParser
import Foundation
import TransformerKit
import Walkthrough
import ModelFiles

struct WalkthroughCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "walkthrough",
        abstract: "Show every step of the Transformer's computation, labelled, with its formula and shape.",
        discussion: """
            With no arguments it computes the worked example of seed 002 (马无夜草不肥 → 人无横财不富, d_model 6) correctly.
            Examples:
              transformer walkthrough --steps enc0.self_attn
              transformer walkthrough --weights article          # the article's own numbers, computed correctly
              transformer walkthrough --format json > trace.json
              transformer walkthrough --format csv --output steps/
              transformer walkthrough --model gpt                 # a tiny GPT, step by step: causal mask, heads, the next token
              transformer walkthrough --model gpt --checkpoint runs/shakespeare --prompt "ROMEO:"
            """
    )

    @OptionGroup var input: WalkthroughOptions
    @Option(help: "Output format: text, markdown, latex, html, csv, json.")
    var format: String = "text"
    @Option(help: "Steps to show: comma-separated ids, id prefixes (enc0, dec0.cross_attn) or globs (*.weights).")
    var steps: String?
    @Option(help: "Decimal places.")
    var decimals: Int = 4
    @Option(help: "Widest matrix shown whole in text, markdown, latex and html; wider ones show their first columns (0: no limit).")
    var maxColumns: Int = 100
    @Option(help: "Write to this file (a folder for csv) instead of standard output; written atomically.")
    var output: String?
    @Option(help: "Also write one SVG heatmap per attention layer and head into this folder.")
    var attentionSvg: String?
    @Flag(help: "List the step ids and titles, then stop.")
    var listSteps = false
    @Argument(help: "With --model FILE.gguf: the text to run the model on (or give it with --prompt).")
    var text: String?

    func run() throws {
        // A GGUF model (`--model FILE.gguf`, or `--model llama --checkpoint FILE.gguf`): a text page with
        // one summary line per block, not a trace (30 blocks of 576-wide steps would not be readable).
        let ggufPath = input.model.lowercased().hasSuffix(".gguf") ? input.model : input.model == "llama" ? input.checkpoint : nil
        if input.model == "llama" || ggufPath != nil {
            do {
                guard let path = ggufPath else {
                    throw GGUFError("--model llama needs the .gguf file: --checkpoint FILE.gguf (or give the file as --model)")
                }
                guard let prompt = text ?? input.prompt else {
                    throw GGUFError(
                        "a GGUF walkthrough needs the text: transformer walkthrough --model \(path) \"The capital of France is\"")
                }
                guard format == "text" else { throw GGUFError("GGUF walkthroughs are text only (got --format \(format))") }
                try GGUFWalkthrough.run(model: path, text: prompt, dequantize: false)
            } catch let e as GGUFError { fail(e.description) } catch let e as LlamaError { fail(e.description) }
            return
        }
        if text != nil {
            fail("a text argument goes with --model FILE.gguf; for the other models use --prompt (gpt), --text (bert) or --source/--target")
        }
        do {
            guard let fmt = TraceFormat(rawValue: format) else {
                throw WalkthroughError(
                    "--format must be one of \(TraceFormat.allCases.map(\.rawValue).joined(separator: ", ")) (got \(format))")
            }
            guard (0...10).contains(decimals) else { throw WalkthroughError("--decimals must be between 0 and 10 (got \(decimals))") }
            let doc = try input.document()
            var opts = RenderOptions()
            opts.decimals = decimals
            guard maxColumns >= 0 else { throw WalkthroughError("--max-columns must be 0 (no limit) or more (got \(maxColumns))") }
            opts.maxColumns = maxColumns
            opts.steps = steps.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } } ?? []
            if !opts.steps.isEmpty && opts.visibleSteps(doc).isEmpty {
                throw WalkthroughError("no step matches --steps \(steps!); run with --list-steps to see the ids")
            }
            if listSteps {
                for s in opts.visibleSteps(doc) {
                    print("\(padded(s.id, 32)) \(s.shape.map(String.init).joined(separator: "×"))\t\(s.title)")
                }
                return
            }
            if let attentionSvg { try writeAttentionSVG(doc, attentionSvg) }
            try emit(doc, format: fmt, options: opts, output: output)
        } catch let e as WalkthroughError {
            fail(e.message)
        }
    }
}

/// The largest model a JSON trace is written for (GPT-2 small has 124 M parameters).
let maxJSONParameterValues = 50_000_000

func padded(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }

/// Writes a rendered trace to standard output, a file (atomically) or, for CSV, a folder.
func emit(_ doc: TraceDocument, format: TraceFormat, options: RenderOptions, output: String?) throws {
    // A JSON trace carries every parameter the steps read, as decimal text: GPT-2 small's 124 M would be
    // gigabytes, built in memory. The rendered formats and CSV hold only the steps.
    let parameterValues = doc.parameters.reduce(0) { $0 + $1.values.count }
    if format == .json && parameterValues > maxJSONParameterValues {
        throw WalkthroughError(
            "a JSON trace of this model would carry its \(parameterValues) parameter values (several GB of text); "
                + """
                use --format text, markdown, latex, html or csv (the steps only), or a checkpoint under \
                \(maxJSONParameterValues / 1_000_000) M parameters
                """
        )
    }
    if format == .csv {
        guard let output else { throw WalkthroughError("--format csv writes one file per step: give a folder with --output") }
        let n = try CSVExport.write(doc, options: options, to: URL(fileURLWithPath: output))
        print("wrote \(n) CSV files to \(output)")
        return
    }
    let text = try doc.render(format, options: options)
    if let output {
        do { try Data(text.utf8).write(to: URL(fileURLWithPath: output), options: .atomic) } catch {
            throw WalkthroughError("\(output): cannot write (\(error.localizedDescription))")
        }
    } else {
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}
