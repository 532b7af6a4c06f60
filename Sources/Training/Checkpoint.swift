import Foundation
import TensorKit
import TransformerKit

/// What a checkpoint's config.json holds.
public struct CheckpointConfig: Codable, Sendable {
    public var format = "transformer-seq2seq/1"
    public var model: TransformerConfig
    public var options: TrainOptions?
}

/// Progress saved with each checkpoint, so `--resume` continues exactly where the run stopped.
public struct TrainState: Codable, Sendable {
    public var step: Int
    public var epoch: Int
    /// Batches of the current epoch already taken.
    public var batchInEpoch: Int
    public var history: [LossRecord]
    public var elapsedSeconds: Double
    /// The run's hyperparameters (what `--resume` continues with).
    public var options: TrainOptions? = nil
}

public struct LossRecord: Codable, Sendable, Equatable {
    public var step: Int
    public var loss: Float
    public var lr: Float
    public var validationLoss: Float?
    public var validationAccuracy: Float?
}

/// A checkpoint directory: `model.safetensors` (the weights, Hugging Face's format), `config.json`,
/// `tokenizer.json`, `optimizer.safetensors` (AdamW's moments) and `state.json`.
///
/// A run's output folder keeps checkpoints under `checkpoints/step-NNNNNNN/` and names the newest
/// complete one in the file `latest`. Each checkpoint is written into a temporary folder and renamed
/// into place, and `latest` is replaced atomically afterwards, so a run killed at any moment leaves
/// the previous checkpoint intact and `latest` pointing at a complete one.
public enum Checkpoint {
    public static func save<T: TrainingTask>(to runDir: URL, task: T, optimizer: AdamW?, state: TrainState,
                                             options: TrainOptions?, keep: Int = 3) throws {
        let fm = FileManager.default
        let ckDir = runDir.appendingPathComponent("checkpoints")
        try fm.createDirectory(at: ckDir, withIntermediateDirectories: true)
        let name = String(format: "step-%07d", state.step)
        let tmp = ckDir.appendingPathComponent(".tmp-\(name)-\(ProcessInfo.processInfo.processIdentifier)")
        try? fm.removeItem(at: tmp)
        try fm.createDirectory(at: tmp, withIntermediateDirectories: true)
        try task.writeModelFiles(to: tmp, options: options ?? TrainOptions(), step: state.step)
        if let optimizer {
            let moments = tensors(optimizer.m, task.layout, prefix: "m.") + tensors(optimizer.v, task.layout, prefix: "v.")
            try Safetensors.write(moments, metadata: ["adam_step": "\(optimizer.step)"], to: tmp.appendingPathComponent("optimizer.safetensors"))
        }
        var saved = state
        saved.options = options
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(saved).write(to: tmp.appendingPathComponent("state.json"), options: .atomic)
        let final = ckDir.appendingPathComponent(name)
        try? fm.removeItem(at: final)
        try fm.moveItem(at: tmp, to: final)
        try Data("checkpoints/\(name)\n".utf8).write(to: runDir.appendingPathComponent("latest"), options: .atomic)
        // Keep the newest `keep` checkpoints.
        let all = (try? fm.contentsOfDirectory(atPath: ckDir.path))?.filter { $0.hasPrefix("step-") }.sorted() ?? []
        for old in all.dropLast(keep) where old != name { try? fm.removeItem(at: ckDir.appendingPathComponent(old)) }
    }

    static func tensors(_ buffer: FlatBuffer, _ layout: BufferLayout, prefix: String = "") -> [(String, Tensor)] {
        layout.entries.map { e in
            (prefix + e.name, Tensor(shape: e.shape, data: Array(UnsafeBufferPointer(start: buffer.pointer + e.offset, count: e.count))))
        }
    }

    /// The checkpoint folder for a path: a run folder (follows `latest`) or a checkpoint folder itself.
    public static func resolve(_ path: String) throws -> URL {
        let url = URL(fileURLWithPath: path)
        let fm = FileManager.default
        if fm.fileExists(atPath: url.appendingPathComponent("model.safetensors").path) { return url }
        let latest = url.appendingPathComponent("latest")
        if let data = fm.contents(atPath: latest.path), let rel = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines) {
            let dir = url.appendingPathComponent(rel)
            guard fm.fileExists(atPath: dir.appendingPathComponent("model.safetensors").path) else {
                throw TrainingError("\(latest.path) names \(rel), which has no model.safetensors")
            }
            return dir
        }
        throw TrainingError("\(path): no checkpoint here (expected model.safetensors, or a run folder with a `latest` file)")
    }

    public struct Loaded {
        public var model: Seq2SeqModel
        public var codec: SentenceCodec
        public var config: CheckpointConfig
        public var state: TrainState?
        public var directory: URL
    }

    /// Loads weights, config and tokenizer, checking that they fit together.
    public static func load(_ path: String) throws -> Loaded {
        let dir = try resolve(path)
        let cfgURL = dir.appendingPathComponent("config.json")
        guard let cfgData = FileManager.default.contents(atPath: cfgURL.path) else { throw TrainingError("\(cfgURL.path): missing") }
        let cfg: CheckpointConfig
        do { cfg = try JSONDecoder().decode(CheckpointConfig.self, from: cfgData) } catch {
            throw TrainingError("\(cfgURL.path): not a valid checkpoint config (\(error))")
        }
        let codec = try SentenceCodec.load(dir.appendingPathComponent("tokenizer.json"))
        guard codec.vocabularySize == cfg.model.targetVocabSize && codec.vocabularySize == cfg.model.sourceVocabSize else {
            throw TrainingError("\(dir.path): the tokenizer has \(codec.vocabularySize) tokens but the model's vocabulary is \(cfg.model.sourceVocabSize)/\(cfg.model.targetVocabSize): they do not belong together")
        }
        let weightsURL = dir.appendingPathComponent("model.safetensors")
        let file = try Safetensors.read(weightsURL)
        var ps = ParameterSet()
        for (name, shape) in cfg.model.parameterShapes {
            guard file.names.contains(name) else { throw TrainingError("\(weightsURL.path): tensor \(name) is missing (is this checkpoint from another config?)") }
            let t = try file.tensor(name)
            guard t.shape == shape else { throw TrainingError("\(weightsURL.path): tensor \(name) has shape \(t.shape), config.json needs \(shape)") }
            ps.add(name, t)
        }
        let model = try Seq2SeqModel(config: cfg.model, parameters: ps)
        var state: TrainState? = nil
        if let data = FileManager.default.contents(atPath: dir.appendingPathComponent("state.json").path) {
            state = try? JSONDecoder().decode(TrainState.self, from: data)
        }
        return Loaded(model: model, codec: codec, config: cfg, state: state, directory: dir)
    }

    /// Restores AdamW's moments and step from `optimizer.safetensors`.
    public static func loadOptimizer(_ dir: URL, into opt: AdamW, layout: BufferLayout) throws {
        let url = dir.appendingPathComponent("optimizer.safetensors")
        let file = try Safetensors.read(url)
        for e in layout.entries {
            for (prefix, buf) in [("m.", opt.m), ("v.", opt.v)] {
                let t = try file.tensor(prefix + e.name)
                guard t.count == e.count else { throw TrainingError("\(url.path): \(prefix)\(e.name) has \(t.count) values, expected \(e.count)") }
                for i in 0..<e.count { buf[e.offset + i] = t.data[i] }
            }
        }
        opt.step = Int(file.metadata["adam_step"] ?? "") ?? 0
    }
}
