import ArgumentParser
import Foundation
import Training
import TransformerKit
import Tokenizers
import ModelFiles

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Loss, token accuracy and corpus BLEU (sacreBLEU's default: 13a, 4-gram, brevity penalty) on a test set.")

    @Option(help: "A run folder or checkpoint folder.") var model: String
    @Option(help: "Test source file.") var sourceFile: String
    @Option(help: "Test target (reference) file.") var targetFile: String
    @Option(help: "Beam size for the BLEU translations.") var beam: Int = 1
    @Option(help: "Length penalty α.") var lengthPenalty: Float = 0.6
    @Option(help: "Evaluate only the first N pairs (0: all).") var limit: Int = 0
    @Option(help: "Write the translations here, one per line.") var hypotheses: String?

    func run() throws {
        do {
            let loaded = try Checkpoint.load(model)
            var corpus = try ParallelCorpus.load(source: sourceFile, target: targetFile)
            if limit > 0 { corpus.pairs = Array(corpus.pairs.prefix(limit)) }
            let codec = loaded.codec, m = loaded.model
            // Teacher-forced loss and accuracy.
            let ids: [IDPair] = corpus.pairs.compactMap { p in
                let s = codec.encode(p.source), t = codec.encode(p.target)
                return s.isEmpty || s.count > m.config.contextLength || t.count + 1 > m.config.contextLength ? nil : (s, t)
            }
            var opts = loaded.config.options ?? TrainOptions()
            opts.dropout = 0
            let trainer = try Seq2SeqTrainer(model: m, codec: codec, train: ids, validation: ids, options: opts)
            let (loss, acc) = trainer.evaluate() ?? (.nan, .nan)
            let t = Translator(model: m, codec: codec, maxBeam: beam)
            var hyps: [String] = []
            let start = Date()
            for (i, p) in corpus.pairs.enumerated() {
                hyps.append(t.translate(p.source, beam: beam, lengthPenalty: lengthPenalty))
                if (i + 1) % 100 == 0 {
                    log(
                        "translated \(i + 1)/\(corpus.pairs.count) (\(String(format: "%.1f", Double(i + 1) / Date().timeIntervalSince(start))) sentences/s)"
                    )
                }
            }
            if let hypotheses {
                try Data((hyps.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: hypotheses), options: .atomic)
            }
            let bleu = BLEU.corpusScore(hypotheses: hyps, references: corpus.pairs.map(\.target))
            print(
                String(
                    format: "pairs %d · loss %.4f · perplexity %.2f · token accuracy %.2f%% · BLEU %.2f", corpus.pairs.count, loss,
                    exp(Double(loss)), acc * 100, bleu.score))
            print("  " + bleu.description)
        } catch let e as TrainingError { fail(e.message) } catch let e as TokenizerError { fail(e.message) } catch let e as SafetensorsError
        { fail(e.description) }
    }
}
