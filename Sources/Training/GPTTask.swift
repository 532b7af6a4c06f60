import DataParallel
import Foundation
import TensorKit
import TransformerKit

/// Text ↔ ids for a GPT: characters (nanoGPT's `shakespeare_char`: the sorted distinct characters
/// of the text) or byte-level BPE (which takes any bytes). Saved as `tokenizer.json`.
public struct TextTokenizer: Sendable {
    public enum Kind: String, Codable, Sendable { case char, bpe }
    public let kind: Kind
    public let chars: [Character]
    public let bpe: ByteLevelBPE?
    private let index: [Character: Int]

    public init(characters text: String) throws {
        let set = Set(text)
        guard !set.isEmpty else { throw TrainingError("the text is empty: a character tokenizer needs at least one character") }
        // Sorted by Unicode scalars, as Python's sorted(set(text)) orders them.
        chars = set.sorted { $0.unicodeScalars.map(\.value).lexicographicallyPrecedes($1.unicodeScalars.map(\.value)) }
        index = Dictionary(uniqueKeysWithValues: chars.enumerated().map { ($1, $0) })
        kind = .char; bpe = nil
    }

    public init(bpe: ByteLevelBPE) {
        kind = .bpe; self.bpe = bpe; chars = []; index = [:]
    }

    public var vocabularySize: Int { kind == .char ? chars.count : bpe!.vocabSize }

    /// Characters missing from a char vocabulary are reported, not dropped silently.
    public func encode(_ text: String) throws -> [Int] {
        if let bpe { return bpe.encode(text) }
        var out: [Int] = []
        out.reserveCapacity(text.count)
        for ch in text {
            guard let i = index[ch] else { throw TrainingError("the character \(ch.debugDescription) is not in this model's vocabulary of \(chars.count) characters") }
            out.append(i)
        }
        return out
    }

    public func decode(_ ids: [Int]) -> String {
        if let bpe { return bpe.decode(ids) }
        return String(ids.map { $0 >= 0 && $0 < chars.count ? chars[$0] : "\u{FFFD}" })
    }

    struct Stored: Codable {
        var kind: Kind
        var chars: [String]?
        var bpeVocab: String?
        var bpeMerges: String?
        enum CodingKeys: String, CodingKey { case kind, chars, bpeVocab = "bpe_vocab", bpeMerges = "bpe_merges" }
    }

    public func jsonData() throws -> Data {
        var s = Stored(kind: kind)
        if let bpe { s.bpeVocab = String(decoding: bpe.vocabJSON(), as: UTF8.self); s.bpeMerges = bpe.mergesText() } else { s.chars = chars.map(String.init) }
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return try e.encode(s)
    }

    /// The tokenizer of a checkpoint folder: this project's `tokenizer.json`, or GPT-2's
    /// `vocab.json` + `merges.txt` as Hugging Face saves them.
    public static func load(directory dir: URL) throws -> TextTokenizer {
        let fm = FileManager.default
        let own = dir.appendingPathComponent("tokenizer.json")
        if fm.fileExists(atPath: own.path) {
            // Hugging Face also writes a tokenizer.json (its own format); ours has a "kind" field.
            if let t = try? load(own) { return t }
        }
        let vocab = dir.appendingPathComponent("vocab.json"), merges = dir.appendingPathComponent("merges.txt")
        if fm.fileExists(atPath: vocab.path) && fm.fileExists(atPath: merges.path) {
            do { return TextTokenizer(bpe: try ByteLevelBPE(vocabURL: vocab, mergesURL: merges)) } catch {
                throw TrainingError("\(dir.path): vocab.json/merges.txt do not load (\(error))")
            }
        }
        if fm.fileExists(atPath: own.path) { return try load(own) }  // report why ours failed
        throw TrainingError("\(dir.path): no tokenizer (tokenizer.json, or vocab.json and merges.txt); `transformer logits --ids` works without one")
    }

    public static func load(_ url: URL) throws -> TextTokenizer {
        guard let data = FileManager.default.contents(atPath: url.path) else { throw TrainingError("\(url.path): cannot read the tokenizer file") }
        let s: Stored
        do { s = try JSONDecoder().decode(Stored.self, from: data) } catch { throw TrainingError("\(url.path): not a valid tokenizer file (\(error))") }
        switch s.kind {
        case .char:
            guard let c = s.chars, !c.isEmpty, c.allSatisfy({ $0.count == 1 }) else { throw TrainingError("\(url.path): a char tokenizer needs a list of single characters") }
            return try TextTokenizer(characters: c.joined())
        case .bpe:
            guard let v = s.bpeVocab, let m = s.bpeMerges else { throw TrainingError("\(url.path): a bpe tokenizer needs bpe_vocab and bpe_merges") }
            do { return TextTokenizer(bpe: try ByteLevelBPE(vocabJSON: Data(v.utf8), merges: m)) } catch {
                throw TrainingError("\(url.path): the BPE tables do not load (\(error))")
            }
        }
    }
}

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

    public init(model: GPTModel, tokenizer: TextTokenizer, train: [Int], validation: [Int], batchSize: Int, blockSize: Int,
                evalBatches: Int = 20, seed: UInt64) throws {
        guard blockSize >= 1, blockSize <= model.config.contextLength else {
            throw TrainingError("the block size \(blockSize) must be between 1 and the context length \(model.config.contextLength)")
        }
        guard train.count > blockSize + 1 else { throw TrainingError("the training text has \(train.count) tokens; it needs more than the block size \(blockSize) + 1") }
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
