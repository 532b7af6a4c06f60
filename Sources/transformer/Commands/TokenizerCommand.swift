import ArgumentParser
import Foundation
import TensorKit
import Training
import TransformerKit
import Tokenizers

struct TokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer", abstract: "Byte-level BPE tokenizers.", subcommands: [TokenizerTrain.self])
}

struct TokenizerTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Train a byte-level BPE on a text and write GPT-2's vocab.json and merges.txt.")
    @Option(help: "UTF-8 text to learn from.") var input: String
    @Option(help: "Vocabulary size (256 bytes + merges + specials).") var vocabSize: Int = 8000
    @Option(help: "Special tokens, comma-separated.") var special: String = "<|endoftext|>"
    @Option(help: "Output folder.") var output: String

    func run() throws {
        do {
            guard vocabSize > 256 else { throw TrainingError("--vocab-size must be above 256 (the byte tokens)") }
            let lines = try ParallelCorpus.readLines(input)
            let start = Date()
            let bpe = ByteLevelBPE.train(texts: lines, vocabSize: vocabSize, specialTokens: special.split(separator: ",").map(String.init))
            try bpe.save(to: URL(fileURLWithPath: output))
            print(
                String(
                    format: "%@: %d tokens (%d merges) learnt in %.2f s; wrote %@/vocab.json and merges.txt", input, bpe.vocabSize,
                    bpe.merges.count, Date().timeIntervalSince(start), output))
        } catch let e as TrainingError { fail(e.message) } catch let e as TokenizerError { fail(e.message) }
    }
}
