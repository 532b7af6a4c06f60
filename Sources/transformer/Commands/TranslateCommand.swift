import ArgumentParser
import Foundation
import Training
import TransformerKit
import Tokenizers
import ModelFiles

struct TranslateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "translate",
        abstract: "Translate text with a trained checkpoint (arguments, or one sentence per line on standard input).")

    @Option(help: "A run folder (its latest checkpoint) or a checkpoint folder.") var model: String
    @Option(help: "Beam size (1: greedy).") var beam: Int = 1
    @Option(help: "Length penalty α for beam search (score / length^α).") var lengthPenalty: Float = 0.6
    @Option(help: "Longest output, in tokens.") var maxLength: Int?
    @Argument(help: "Sentences to translate.") var text: [String] = []

    func run() throws {
        do {
            guard beam >= 1 else { throw TrainingError("--beam must be at least 1") }
            let loaded = try Checkpoint.load(model)
            let t = Translator(model: loaded.model, codec: loaded.codec, maxBeam: beam, maxLength: maxLength)
            let lines = text.isEmpty ? Array(AnyIterator { readLine() }) : text
            for line in lines {
                let src = line.trimmingCharacters(in: .whitespaces)
                print(src.isEmpty ? "" : t.translate(src, beam: beam, lengthPenalty: lengthPenalty))
            }
        } catch let e as TrainingError { fail(e.message) } catch let e as TokenizerError { fail(e.message) } catch let e as SafetensorsError
        { fail(e.description) }
    }
}
