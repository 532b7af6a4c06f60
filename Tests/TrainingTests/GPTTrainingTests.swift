import Foundation
import Testing
import TensorKit
import TransformerKit
import Training
import Tokenizers

@Suite struct GPTTrainingTests {
    static let text = String(repeating: "the cat sat on the mat. the dog sat on the log. ", count: 40)

    static func trainer(steps: Int) throws -> Trainer<GPTTask> {
        let tok = try TextTokenizer(characters: text)
        let ids = try tok.encode(text)
        let model = try GPTModel(
            config: GPTConfig(vocabSize: tok.vocabularySize, contextLength: 16, dModel: 32, layers: 2, heads: 4), seed: 1)
        let split = ids.count * 9 / 10
        let task = try GPTTask(
            model: model, tokenizer: tok, train: Array(ids[..<split]), validation: Array(ids[split...]),
            batchSize: 8, blockSize: 16, evalBatches: 4, seed: 3)
        var o = TrainOptions()
        o.batchSize = 8; o.maxSteps = steps; o.schedule = "constant"; o.learningRate = 3e-3; o.warmup = 0
        o.dropout = 0; o.labelSmoothing = 0; o.evalEvery = steps; o.logEvery = 1000
        return try Trainer(task: task, options: o)
    }

    @Test func learnsARepetitiveText() throws {
        let t = try Self.trainer(steps: 120)
        let before = try #require(t.evaluate()).loss
        try t.run(log: { _ in })
        let after = try #require(t.evaluate())
        #expect(before > 2.5)
        #expect(after.loss < 0.5, "validation loss \(after.loss)")
        let gen = GPTGenerator(model: t.task.model)
        let prompt = try t.task.tokenizer.encode("the dog sat on the l")
        let out = t.task.tokenizer.decode(gen.generate(prompt: prompt, maxNewTokens: 8, sampling: SamplingOptions(temperature: 0)))
        #expect(out == "og. the ", "\(out)")
    }

    @Test func resumedGPTRunContinuesTheSameCurve() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gpt-resume-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let full = try Self.trainer(steps: 12)
        try full.run(log: { _ in })
        let first = try Self.trainer(steps: 5)
        try first.run(log: { _ in })
        try first.saveCheckpoint(dir)
        let ck = try Checkpoint.resolve(dir.path)
        let model = try GPTCheckpoint.loadHuggingFace(ck)
        let tok = try TextTokenizer.load(ck.appendingPathComponent("tokenizer.json"))
        let ids = try tok.encode(Self.text)
        let split = ids.count * 9 / 10
        let task = try GPTTask(
            model: model, tokenizer: tok, train: Array(ids[..<split]), validation: Array(ids[split...]),
            batchSize: 8, blockSize: 16, evalBatches: 4, seed: 3)
        var o = first.options
        o.maxSteps = 12
        let second = try Trainer(task: task, options: o)
        let state = try JSONDecoder().decode(TrainState.self, from: Data(contentsOf: ck.appendingPathComponent("state.json")))
        try second.resume(from: ck, state: state)
        try second.run(log: { _ in })
        #expect(second.state.history.map(\.loss) == full.state.history.map(\.loss))
        #expect(model.parameterSet() == full.task.model.parameterSet())
    }
}

@Suite struct GPTTokenizerFolderTests {
    @Test func gpt2VocabAndMergesAreFoundInAFolder() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tokdir-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let bpe = ByteLevelBPE.train(texts: ["hello world, hello there"], vocabSize: 270, specialTokens: ["<|endoftext|>"])
        try bpe.save(to: dir)
        let tok = try TextTokenizer.load(directory: dir)
        #expect(tok.kind == .bpe)
        #expect(tok.decode(try tok.encode("hello there")) == "hello there")
        try FileManager.default.removeItem(at: dir.appendingPathComponent("merges.txt"))
        #expect(throws: TokenizerError.self) { try TextTokenizer.load(directory: dir) }
    }
}
