import ArgumentParser
import Foundation
import TransformerKit
import Training
import Walkthrough
import Tokenizers

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Train the seed article's toy corpus end to end, then translate 马无夜草不肥.",
        discussion: "The model is saved in --output; `transformer walkthrough` shows every step of one forward pass by hand.")

    @Option(help: "Run folder for the trained model.") var output: String = "runs/demo"
    @Option(help: "Training steps.") var steps: Int = 150
    @Option(help: "Seed.") var seed: UInt64 = 1

    func run() throws {
        do {
            print("Seed 002's corpus, as translation pairs (each line's first clause → its second):")
            for p in ToyCorpus.pairs { print("  \(p.source) → \(p.target)") }
            let codec = try SentenceCodec.build(kind: .char, texts: ToyCorpus.pairs.flatMap { [$0.source, $0.target] })
            var c = TransformerConfig()
            c.dModel = 32; c.heads = 4; c.dFF = 64; c.encoderLayers = 2; c.decoderLayers = 2; c.contextLength = 16
            c.sourceVocabSize = codec.vocabularySize; c.targetVocabSize = codec.vocabularySize
            c.embeddings = .all; c.scaleEmbeddings = true
            let model = try Seq2SeqModel(config: c, seed: seed)
            var o = TrainOptions()
            o.batchSize = 4; o.maxSteps = steps; o.schedule = "constant"; o.learningRate = 3e-3; o.warmup = 20
            o.labelSmoothing = 0; o.dropout = 0; o.logEvery = 25; o.evalEvery = 25; o.checkpointEvery = steps; o.seed = seed
            let pairs = ToyCorpus.pairs.map { (codec.encode($0.source), codec.encode($0.target)) }
            print("\nBefore training, 马无夜草不肥 → \(Translator(model: model, codec: codec).translate("马无夜草不肥"))")
            print(
                """
                Training: vocabulary \(codec.vocabularySize) (\(codec.vocabularySize - 4) characters + 4 specials), d_model 32, 4 \
                heads, 2+2 layers, \(model.layout.total) parameters, AdamW
                """
            )
            let trainer = try Seq2SeqTrainer(model: model, codec: codec, train: pairs, validation: pairs, options: o)
            trainer.output = URL(fileURLWithPath: output)
            let start = Date()
            try trainer.run(log: { print("  " + $0) })
            let t = Translator(model: model, codec: codec)
            print(String(format: "\nTrained in %.1f s. Translations (greedy):", Date().timeIntervalSince(start)))
            var allRight = true
            for p in ToyCorpus.pairs {
                let out = t.translate(p.source)
                allRight = allRight && out == p.target
                print("  \(p.source) → \(out)  \(out == p.target ? "✓" : "✗ (expected \(p.target))")")
            }
            print("\nSaved to \(output) (loss curve: \(output)/loss.svg). Try:")
            print("  transformer translate --model \(output) 马无夜草不肥")
            print("  transformer walkthrough            # every step of the forward pass, by hand")
            print("  transformer walkthrough --train    # and one training step")
            if !allRight { throw TrainingError("the demo did not learn the toy corpus") }
        } catch let e as TrainingError {
            fail(e.message)
        }
    }
}
