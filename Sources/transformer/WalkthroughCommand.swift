import ArgumentParser
import Foundation
import TransformerKit
import Walkthrough

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
        """
    )

    @OptionGroup var input: WalkthroughOptions
    @Option(help: "Output format: text, markdown, latex, html, csv, json.")
    var format: String = "text"
    @Option(help: "Steps to show: comma-separated ids, id prefixes (enc0, dec0.cross_attn) or globs (*.weights).")
    var steps: String?
    @Option(help: "Decimal places.")
    var decimals: Int = 4
    @Option(help: "Write to this file (a folder for csv) instead of standard output; written atomically.")
    var output: String?
    @Flag(help: "List the step ids and titles, then stop.")
    var listSteps = false
    @Option(help: "A .gguf model (Llama architecture): walk through it on TEXT, one summary line per block.")
    var model: String?
    @Argument(help: "With --model: the text to run the model on.")
    var text: String?

    func run() throws {
        if let model {
            do {
                guard let text else { throw GGUFError("--model needs the text to walk through: transformer walkthrough --model \(model) \"The capital of France is\"") }
                guard format == "text" else { throw GGUFError("--model walkthroughs are text only (got --format \(format))") }
                try GGUFWalkthrough.run(model: model, text: text, dequantize: false)
            } catch let e as GGUFError { fail(e.description) } catch let e as LlamaError { fail(e.description) }
            return
        }
        if text != nil { fail("a text argument goes with --model FILE.gguf; for the seed example use --source and --target") }
        do {
            guard let fmt = TraceFormat(rawValue: format) else {
                throw WalkthroughError("--format must be one of \(TraceFormat.allCases.map(\.rawValue).joined(separator: ", ")) (got \(format))")
            }
            guard (0...10).contains(decimals) else { throw WalkthroughError("--decimals must be between 0 and 10 (got \(decimals))") }
            let doc = try input.setup().run()
            var opts = RenderOptions()
            opts.decimals = decimals
            opts.steps = steps.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } } ?? []
            if !opts.steps.isEmpty && opts.visibleSteps(doc).isEmpty {
                throw WalkthroughError("no step matches --steps \(steps!); run with --list-steps to see the ids")
            }
            if listSteps {
                for s in opts.visibleSteps(doc) { print("\(padded(s.id, 32)) \(s.shape.map(String.init).joined(separator: "×"))\t\(s.title)") }
                return
            }
            try emit(doc, format: fmt, options: opts, output: output)
        } catch let e as WalkthroughError {
            fail(e.message)
        }
    }
}

func padded(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }

/// Writes a rendered trace to standard output, a file (atomically) or, for CSV, a folder.
func emit(_ doc: TraceDocument, format: TraceFormat, options: RenderOptions, output: String?) throws {
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
