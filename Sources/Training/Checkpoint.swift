import Foundation
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import TensorKit
import TransformerKit
import Tokenizers
import ModelFiles

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
    /// Steps skipped for a non-finite loss or gradient (`--on-non-finite skip`); they have no `history` record.
    public var skippedSteps: [Int]? = nil
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
/// complete one in the file `latest`. A run killed at any instant (SIGKILL, or power loss) leaves the
/// previous checkpoint intact and `latest` naming a complete one:
///
/// 1. every file is written into `checkpoints/.tmp-step-N-PID/` and flushed (fsync), then the folder;
/// 2. the folder is renamed to `step-N` (one atomic rename; the parent folder is flushed), so a
///    `step-*` folder is always complete;
/// 3. `latest` is replaced atomically (temporary file, fsync, rename, fsync of the run folder);
/// 4. only then are old checkpoints removed (and any of later steps, left by an earlier run in the same
///    folder), each renamed to `.tmp-…` first, so no half-deleted `step-*` folder is ever visible.
///
/// Leftover `.tmp-*` folders of a killed run are removed by the next save. Weights or moments with a
/// NaN or an infinity are refused: a checkpoint never holds a diverged state.
public enum Checkpoint {
    public static func save<T: TrainingTask>(
        to runDir: URL, task: T, optimizer: AdamW?, state: TrainState,
        options: TrainOptions?, keep: Int = 3
    ) throws {
        try NonFinite.check(task.params, layout: task.layout, what: "refusing to save the checkpoint of step \(state.step): the weights")
        if let optimizer {
            try NonFinite.check(
                optimizer.m, layout: task.layout, what: "refusing to save the checkpoint of step \(state.step): AdamW's first moment")
            try NonFinite.check(
                optimizer.v, layout: task.layout, what: "refusing to save the checkpoint of step \(state.step): AdamW's second moment")
        }
        let fm = FileManager.default
        let ckDir = runDir.appendingPathComponent("checkpoints")
        try fm.createDirectory(at: ckDir, withIntermediateDirectories: true)
        removeLeftovers(runDir)
        let name = String(format: "step-%07d", state.step)
        let phase = { (p: String) in FaultInjection.checkpointPhase(name, p) }
        let tmp = ckDir.appendingPathComponent(".tmp-\(name)-\(ProcessInfo.processInfo.processIdentifier)")
        try? fm.removeItem(at: tmp)
        try fm.createDirectory(at: tmp, withIntermediateDirectories: true)
        phase("begin")
        try task.writeModelFiles(to: tmp, options: options ?? TrainOptions(), step: state.step)
        phase("model files written")
        if let optimizer {
            let moments = tensors(optimizer.m, task.layout, prefix: "m.") + tensors(optimizer.v, task.layout, prefix: "v.")
            try Safetensors.write(
                moments, metadata: ["adam_step": "\(optimizer.step)"], to: tmp.appendingPathComponent("optimizer.safetensors"))
            phase("optimizer written")
        }
        var saved = state
        saved.options = options
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(saved).write(to: tmp.appendingPathComponent("state.json"), options: .atomic)
        phase("state written")
        // Flush every file and the folder itself before the rename publishes it.
        for file in (try? fm.contentsOfDirectory(atPath: tmp.path)) ?? [] { try Durable.sync(tmp.appendingPathComponent(file)) }
        try Durable.sync(tmp)
        phase("flushed")
        let final = ckDir.appendingPathComponent(name)
        if fm.fileExists(atPath: final.path) { try discard(final) }  // a stale one from a killed run: recomputed identically
        try fm.moveItem(at: tmp, to: final)
        try Durable.sync(ckDir)
        phase("renamed")
        try Durable.write(Data("checkpoints/\(name)\n".utf8), to: runDir.appendingPathComponent("latest"))
        phase("committed")
        // Checkpoints of later steps than this one are from an earlier run in the same folder (a resumed
        // run starts from the newest): remove them, so that `resolve` cannot prefer them to `latest`.
        // Then keep the newest `keep` checkpoints.
        let all = (try? fm.contentsOfDirectory(atPath: ckDir.path))?.filter { $0.hasPrefix("step-") }.sorted() ?? []
        let isLater = { (n: String) in (Int(n.dropFirst("step-".count)) ?? -1) > state.step }
        for stale in all where isLater(stale) { try? discard(ckDir.appendingPathComponent(stale)) }
        for old in all.filter({ !isLater($0) }).dropLast(keep) where old != name { try? discard(ckDir.appendingPathComponent(old)) }
        phase("done")
    }

    /// Removes a folder without ever leaving a half-deleted one under its name: renamed first, then deleted.
    static func discard(_ dir: URL) throws {
        let trash = dir.deletingLastPathComponent().appendingPathComponent(
            ".tmp-delete-\(dir.lastPathComponent)-\(ProcessInfo.processInfo.processIdentifier)")
        try? FileManager.default.removeItem(at: trash)
        try FileManager.default.moveItem(at: dir, to: trash)
        try? FileManager.default.removeItem(at: trash)
    }

    /// Deletes the `.tmp-*` folders a killed run left in `runDir/checkpoints` (a half-written checkpoint
    /// or a half-deleted old one; nothing reads them). Returns how many there were.
    @discardableResult
    public static func removeLeftovers(_ runDir: URL) -> Int {
        let ckDir = runDir.appendingPathComponent("checkpoints")
        let fm = FileManager.default
        let mine = "-\(ProcessInfo.processInfo.processIdentifier)"
        var n = 0
        for e in (try? fm.contentsOfDirectory(atPath: ckDir.path)) ?? [] where e.hasPrefix(".tmp-") && !e.hasSuffix(mine) {
            if (try? fm.removeItem(at: ckDir.appendingPathComponent(e))) != nil { n += 1 }
        }
        return n
    }

    static func tensors(_ buffer: FlatBuffer, _ layout: BufferLayout, prefix: String = "") -> [(String, Tensor)] {
        layout.entries.map { e in
            (prefix + e.name, Tensor(shape: e.shape, data: Array(UnsafeBufferPointer(start: buffer.pointer + e.offset, count: e.count))))
        }
    }

    /// The checkpoint folder for a path: a checkpoint folder itself, or a run folder, where it is the
    /// newest complete checkpoint: the one `latest` names, or a newer `checkpoints/step-N` folder if a
    /// run was killed after renaming it into place but before replacing `latest` (every `step-N` folder
    /// is complete: it appears only by renaming a fully written and flushed temporary folder).
    public static func resolve(_ path: String) throws -> URL {
        let url = URL(fileURLWithPath: path)
        let fm = FileManager.default
        if fm.fileExists(atPath: url.appendingPathComponent("model.safetensors").path) { return url }
        func complete(_ dir: URL) -> Bool {
            ["model.safetensors", "config.json", "state.json"].allSatisfy { fm.fileExists(atPath: dir.appendingPathComponent($0).path) }
        }
        func stepNumber(_ dir: URL) -> Int { Int(dir.lastPathComponent.dropFirst("step-".count)) ?? -1 }
        let ckDir = url.appendingPathComponent("checkpoints")
        let newest = ((try? fm.contentsOfDirectory(atPath: ckDir.path)) ?? [])
            .filter { $0.hasPrefix("step-") }.map { ckDir.appendingPathComponent($0) }
            .filter(complete).max { stepNumber($0) < stepNumber($1) }
        let latest = url.appendingPathComponent("latest")
        if let data = fm.contents(atPath: latest.path),
            let rel = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines)
        {
            let dir = url.appendingPathComponent(rel)
            if fm.fileExists(atPath: dir.appendingPathComponent("model.safetensors").path) {
                if let newest, stepNumber(newest) > stepNumber(dir), dir.deletingLastPathComponent().standardized == ckDir.standardized {
                    return newest
                }
                return dir
            }
            guard let newest else { throw TrainingError("\(latest.path) names \(rel), which has no model.safetensors") }
            return newest
        }
        if let newest { return newest }
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
            throw TrainingError(
                """
                \(dir.path): the tokenizer has \(codec.vocabularySize) tokens but the model's vocabulary is \
                \(cfg.model.sourceVocabSize)/\(cfg.model.targetVocabSize): they do not belong together
                """
            )
        }
        let weightsURL = dir.appendingPathComponent("model.safetensors")
        let file = try Safetensors.read(weightsURL)
        var ps = ParameterSet()
        for (name, shape) in cfg.model.parameterShapes {
            guard file.names.contains(name) else {
                throw TrainingError("\(weightsURL.path): tensor \(name) is missing (is this checkpoint from another config?)")
            }
            let t = try file.tensor(name)
            guard t.shape == shape else {
                throw TrainingError("\(weightsURL.path): tensor \(name) has shape \(t.shape), config.json needs \(shape)")
            }
            ps.add(name, t)
        }
        let model = try Seq2SeqModel(config: cfg.model, parameters: ps)
        try NonFinite.check(model.params, layout: model.layout, what: weightsURL.path)
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
                guard t.count == e.count else {
                    throw TrainingError("\(url.path): \(prefix)\(e.name) has \(t.count) values, expected \(e.count)")
                }
                for i in 0..<e.count { buf[e.offset + i] = t.data[i] }
            }
        }
        opt.step = Int(file.metadata["adam_step"] ?? "") ?? 0
    }
}

/// Files and folders flushed to disk (fsync), so that a rename published after them survives a power loss.
enum Durable {
    /// fsync of a file or a folder (opened read-only; Linux and macOS accept that for both).
    static func sync(_ url: URL) throws {
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else { throw TrainingError("cannot open \(url.path) to flush it: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw TrainingError("cannot flush \(url.path): \(String(cString: strerror(errno)))") }
    }

    /// Replaces `url` atomically and durably: a temporary file, flushed, renamed over it, the folder flushed.
    static func write(_ data: Data, to url: URL) throws {
        let tmp = url.deletingLastPathComponent().appendingPathComponent(
            ".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp")
        try data.write(to: tmp)
        try sync(tmp)
        guard rename(tmp.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: tmp)
            throw TrainingError("cannot rename \(tmp.path) over \(url.path): \(reason)")
        }
        try sync(url.deletingLastPathComponent())
    }
}
