import DataParallel
import Foundation
import TensorKit
import TransformerKit
import Tokenizers

/// Next-token prediction on one stream of text for a `GPTModel`: each batch is `batchSize` windows
/// of `blockSize + 1` tokens at random offsets (as nanoGPT samples them); the offsets depend only on
/// the seed, the epoch and the batch index, so a resumed run sees the same batches.
public final class GPTTask: TrainingTask {
    public let model: GPTModel
    public let tokenizer: TextTokenizer
    let train: [Int32], validation: [Int32]
    let batchSize: Int, blockSize: Int
    let evalBatches: Int
    let seed: UInt64
    let acts: GPTActivations

    public init(
        model: GPTModel, tokenizer: TextTokenizer, train: [Int], validation: [Int], batchSize: Int, blockSize: Int,
        evalBatches: Int = 20, seed: UInt64
    ) throws {
        guard blockSize >= 1, blockSize <= model.config.contextLength else {
            throw TrainingError("the block size \(blockSize) must be between 1 and the context length \(model.config.contextLength)")
        }
        guard train.count > blockSize + 1 else {
            throw TrainingError("the training text has \(train.count) tokens; it needs more than the block size \(blockSize) + 1")
        }
        self.model = model; self.tokenizer = tokenizer
        self.train = train.map(Int32.init); self.validation = validation.map(Int32.init)
        self.batchSize = batchSize; self.blockSize = blockSize; self.evalBatches = evalBatches; self.seed = seed
        acts = GPTActivations(config: model.config, maxBatch: batchSize, maxLength: blockSize)
    }

    public var params: FlatBuffer { model.params }
    public var grads: FlatBuffer { model.grads }
    public var layout: BufferLayout { model.layout }
    public var dModel: Int { model.config.dModel }
    public var batchesPerEpoch: Int { max(1, train.count / (batchSize * blockSize)) }

    /// Draws `batchSize` random windows of `data` and writes those of `rows` (all by default) into
    /// the activations' id and target buffers, from row 0. Every rank draws all the offsets, so its
    /// windows are the ones a single process would take at those rows.
    func window(_ data: [Int32], rows: Range<Int>? = nil, rng: inout SeededRNG) {
        let ids = acts.ids, targets = acts.targets
        let rows = rows ?? 0..<batchSize
        data.withUnsafeBufferPointer { d in
            for r in 0..<batchSize {
                let off = rng.nextInt(below: d.count - blockSize)
                guard rows.contains(r) else { continue }
                let i = r - rows.lowerBound
                (ids + i * blockSize).update(from: d.baseAddress! + off, count: blockSize)
                (targets + i * blockSize).update(from: d.baseAddress! + off + 1, count: blockSize)
            }
        }
    }

    /// The shard's run of the batch's windows.
    public func trainStep(epoch: Int, index: Int, shard: Shard, options: TrainOptions, rng: inout SeededRNG) -> (loss: Float, tokens: Int) {
        var r = SeededRNG(seed: seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(index) &* 0xBF58_476D_1CE4_E5B9)
        let rows = shard.rows(of: batchSize)
        guard !rows.isEmpty else { return (0, 0) }
        window(train, rows: rows, rng: &r)
        let loss = model.forward(b: rows.count, t: blockSize, acts: acts, withTargets: true)
        model.backward(b: rows.count, t: blockSize, acts: acts)
        return (loss, rows.count * blockSize)
    }

    public var dataFingerprint: UInt64 {
        var f = Fingerprint()
        f.add([train.count, validation.count, batchSize, blockSize])
        f.add(train); f.add(validation)
        return f.value
    }

    /// The same `evalBatches` windows of the validation text every time.
    public func evaluate() -> (loss: Float, accuracy: Float)? {
        guard validation.count > blockSize + 1 else { return nil }
        var rng = SeededRNG(seed: 0xE7A1)
        var total = 0.0, correct = 0, count = 0
        let v = model.config.vocabSize
        for _ in 0..<evalBatches {
            window(validation, rng: &rng)
            let loss = model.forward(b: batchSize, t: blockSize, acts: acts, withTargets: true, computeGradient: false)
            total += Double(loss)
            let n = batchSize * blockSize
            for i in 0..<n {
                let row = acts.logits.pointer + i * v
                var best = 0
                for j in 1..<v where row[j] > row[best] { best = j }
                if best == Int(acts.targets[i]) { correct += 1 }
            }
            count += n
        }
        return (Float(total / Double(evalBatches)), Float(correct) / Float(max(count, 1)))
    }

    public func writeModelFiles(to dir: URL, options: TrainOptions, step: Int) throws {
        try GPTCheckpoint.saveHuggingFace(model, to: dir)
        try tokenizer.jsonData().write(to: dir.appendingPathComponent("tokenizer.json"), options: .atomic)
    }
}
