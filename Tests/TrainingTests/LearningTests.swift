import Foundation
import Testing
import TensorKit
import TransformerKit
import Training
import Tokenizers

#if DEBUG
    let isReleaseBuild = false
#else
    let isReleaseBuild = true
#endif

/// Training that must reach a result, or fail. The heavy ones run in release builds only
/// (`swift test -c release --filter Learning`, which .ci/run does); debug builds skip them.
@Suite struct LearningTests {
    static func toyTrainer(steps: Int) throws -> Seq2SeqTrainer {
        let codec = try SentenceCodec.build(kind: .char, texts: ToyCorpus.pairs.flatMap { [$0.source, $0.target] })
        var c = TransformerConfig()
        c.dModel = 32; c.heads = 4; c.dFF = 64; c.encoderLayers = 2; c.decoderLayers = 2; c.contextLength = 16
        c.sourceVocabSize = codec.vocabularySize; c.targetVocabSize = codec.vocabularySize; c.embeddings = .all; c.scaleEmbeddings = true
        let model = try Seq2SeqModel(config: c, seed: 1)
        var o = TrainOptions()
        o.batchSize = 4; o.maxSteps = steps; o.schedule = "constant"; o.learningRate = 3e-3; o.warmup = 20
        o.labelSmoothing = 0; o.dropout = 0; o.logEvery = 1000
        let pairs = ToyCorpus.pairs.map { (codec.encode($0.source), codec.encode($0.target)) }
        return try Seq2SeqTrainer(model: model, codec: codec, train: pairs, validation: pairs, options: o)
    }

    @Test func toyCorpusIsMemorised() throws {
        let trainer = try Self.toyTrainer(steps: 150)
        try trainer.run(log: { _ in })
        let (loss, acc) = try #require(trainer.evaluate())
        #expect(loss < 0.05, "validation loss \(loss)")
        #expect(acc == 1)
        let t = Translator(model: trainer.model, codec: trainer.codec)
        for p in ToyCorpus.pairs { #expect(t.translate(p.source) == p.target) }
        #expect(t.translate("马无夜草不肥", beam: 3) == "人无横财不富")
    }

    @Test func sameSeedSameLossCurve() throws {
        let a = try Self.toyTrainer(steps: 12), b = try Self.toyTrainer(steps: 12)
        try a.run(log: { _ in }); try b.run(log: { _ in })
        #expect(a.state.history.map(\.loss) == b.state.history.map(\.loss))
    }

    @Test func resumeContinuesTheSameCurve() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("resume-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let full = try Self.toyTrainer(steps: 20)
        try full.run(log: { _ in })
        // Train 8 steps, checkpoint, load into a fresh trainer, finish.
        let first = try Self.toyTrainer(steps: 8)
        try first.run(log: { _ in })
        try first.saveCheckpoint(dir)
        let loaded = try Checkpoint.load(dir.path)
        let pairs = ToyCorpus.pairs.map { (loaded.codec.encode($0.source), loaded.codec.encode($0.target)) }
        var o = first.options
        o.maxSteps = 20
        let second = try Seq2SeqTrainer(model: loaded.model, codec: loaded.codec, train: pairs, validation: pairs, options: o)
        try second.resume(from: loaded.directory, state: try #require(loaded.state))
        try second.run(log: { _ in })
        #expect(second.state.history.map(\.loss) == full.state.history.map(\.loss))
        #expect(second.model.parameterSet() == full.model.parameterSet())
    }

    /// Reverse a sequence of 10 symbols; held-out sequences must come out exactly reversed.
    @Test(.enabled(if: isReleaseBuild || ProcessInfo.processInfo.environment["TRANSFORMER_LEARNING"] == "1"))
    func reverseTaskGeneralises() throws {
        let symbols = (0..<10).map { String(UnicodeScalar(UInt8(97 + $0))) }  // a…j
        let codec = try SentenceCodec.build(kind: .word, texts: [symbols.joined(separator: " ")])
        var rng = SeededRNG(seed: 5)
        func sample() -> [String] { (0..<10).map { _ in symbols[rng.nextInt(below: 10)] } }
        var seen = Set<String>()
        var train: [IDPair] = [], test: [[String]] = []
        while train.count < 6000 {
            let s = sample(); let key = s.joined()
            if seen.insert(key).inserted {
                train.append((codec.encode(s.joined(separator: " ")), codec.encode(s.reversed().joined(separator: " "))))
            }
        }
        while test.count < 200 { let s = sample(); if seen.insert(s.joined()).inserted { test.append(s) } }
        var c = TransformerConfig()
        c.dModel = 64; c.heads = 4; c.dFF = 128; c.encoderLayers = 2; c.decoderLayers = 2; c.contextLength = 16
        c.sourceVocabSize = codec.vocabularySize; c.targetVocabSize = codec.vocabularySize; c.embeddings = .all; c.scaleEmbeddings = true
        let model = try Seq2SeqModel(config: c, seed: 2)
        var o = TrainOptions()
        o.batchSize = 64; o.maxSteps = 1500; o.schedule = "cosine"; o.learningRate = 2e-3; o.warmup = 100; o.minLearningRate = 1e-4
        o.labelSmoothing = 0; o.dropout = 0; o.logEvery = 250
        let trainer = try Seq2SeqTrainer(model: model, codec: codec, train: train, validation: [], options: o)
        try trainer.run(log: { print($0) })
        let t = Translator(model: model, codec: codec)
        var exact = 0
        for s in test where t.translate(s.joined(separator: " ")) == s.reversed().joined(separator: " ") { exact += 1 }
        print("reverse task: \(exact)/\(test.count) held-out sequences exact")
        #expect(Double(exact) / Double(test.count) >= 0.99)
    }
}
