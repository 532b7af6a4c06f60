import ArgumentParser
import Foundation
import TransformerKit
import Walkthrough

/// `transformer exercise`: a worksheet to compute by hand, with its answer key; graded by
/// `transformer check --worksheet`.
struct ExerciseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exercise",
        abstract: "Write a worksheet to compute by hand (blanks to fill, answer key at the end); grade it with check --worksheet.",
        discussion: """
            Topics: \(ExerciseTopic.allCases.map(\.rawValue).joined(separator: ", ")), or all; several separated by commas.
            Presets: yeh-ffn (5 positions, attention weighting then a 3→4→3 feed-forward network, as in the "by hand" posts) and \
            article (seed 002's corpus and sentence pair, through the walkthrough's own numbers).
            With --integers the numbers are small integers chosen so that every exact answer has at most 2 decimals and the ReLU \
            zeroes something; softmax, sines and the loss are asked to 2 decimals, and later steps use them rounded.
            Fill the Markdown or LaTeX by replacing each ?, or the JSON's "answers" (null = not filled), then run \
            `transformer check --worksheet FILE`.
            Examples:
              transformer exercise --topic ffn --integers --seed 7 -o ffn.md
              transformer exercise --preset yeh-ffn --integers --format html -o yeh.html
              transformer exercise --topic attention,decoder-mask --integers --blanks 3
              transformer exercise --topic all --integers --format latex -o all.tex
            """)

    @Option(help: "What to practise: a topic, several separated by commas, or all.") var topic: String?
    @Option(help: "A setup from the seeds: yeh-ffn or article.") var preset: String?
    @Flag(help: "Small integers, so that every answer can be worked out on paper.") var integers = false
    @Option(help: "Seed for the numbers (the same seed gives the same worksheet).") var seed: UInt64 = 1
    @Option(help: "Which steps to leave blank: all, a count, or step ids separated by commas.") var blanks: String = "all"
    @Option(help: "markdown, latex, html or json (default: from --output's extension, else markdown).") var format: String?
    @Option(name: [.short, .long], help: "Write to this file instead of standard output; written atomically.") var output: String?
    @Flag(help: "Leave out the answer key.") var noKey = false

    func run() throws {
        do {
            let topics = topic.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } ?? []
            if topic == nil && preset == nil {
                throw WalkthroughError("give --topic (e.g. ffn, attention, all) or --preset (yeh-ffn, article)")
            }
            let spec = WorksheetSpec(topics: topics, preset: preset, seed: seed, integers: integers, blanks: blanks)
            let sheet = try Worksheet.generate(spec, article: articleTrace)
            let fmt = format ?? output.map { URL(fileURLWithPath: $0).pathExtension.lowercased() }.flatMap(Self.byExtension) ?? "markdown"
            let data: Data
            switch fmt {
            case "markdown", "md": data = Data(sheet.markdown(key: !noKey).utf8)
            case "latex", "tex": data = Data(sheet.latex(key: !noKey).utf8)
            case "html": data = Data(sheet.html(key: !noKey).utf8)
            case "json":
                var d = try sheet.json()
                d.append(UInt8(ascii: "\n"))
                data = d
            default: throw WalkthroughError("--format must be markdown, latex, html or json (got \(fmt))")
            }
            if let output {
                do { try data.write(to: URL(fileURLWithPath: output), options: .atomic) } catch {
                    throw WalkthroughError("\(output): cannot write (\(error.localizedDescription))")
                }
                FileHandle.standardError.write(Data("wrote \(output): \(sheet.blanks.count) blanks\n".utf8))
            } else {
                FileHandle.standardOutput.write(data)
            }
        } catch let e as WalkthroughError { usageError(e.message) }
    }

    static func byExtension(_ ext: String) -> String? {
        ["md": "markdown", "markdown": "markdown", "tex": "latex", "html": "html", "htm": "html", "json": "json"][ext]
    }
}

/// Seed 002's walkthrough trace, for the article preset.
func articleTrace() throws -> TraceDocument {
    try WalkthroughOptions.parse(["--weights", "article"]).document()
}
