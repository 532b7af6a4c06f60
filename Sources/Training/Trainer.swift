import DataParallel
import Foundation
import TensorKit
import TransformerKit
import Tokenizers
import ModelFiles

/// Hyperparameters of a training run (saved with every checkpoint).
public struct TrainOptions: Codable, Sendable, Equatable {
    public var batchSize = 32
    /// Upper bound on padded tokens per batch (0: no bound).
    public var maxTokens = 0
    public var epochs = 10
    /// Stop after this many steps (0: run the epochs).
    public var maxSteps = 0
    /// `noam` (the paper), `constant` or `cosine`.
    public var schedule = "noam"
    /// Peak rate for constant/cosine; the factor for noam.
    public var learningRate: Float = 1
    public var warmup = 400
    public var minLearningRate: Float = 0
    public var labelSmoothing: Float = 0.1
    public var dropout: Float = 0.1
    public var clip: Float = 1
    public var weightDecay: Float = 0
    /// AdamW's β1, β2 and ε (the paper: 0.9, 0.98, 1e-9).
    public var beta1: Float = 0.9
    public var beta2: Float = 0.98
    public var adamEps: Float = 1e-9
    public var seed: UInt64 = 1
    /// Validate (and log a point of the curve) every this many steps; 0 = once per epoch.
    public var evalEvery = 0
    /// Save a checkpoint every this many steps; 0 = once per epoch (and at the end).
    public var checkpointEvery = 0
    /// Print a progress line every this many steps.
    public var logEvery = 10
    /// A NaN or infinite loss or gradient: `stop` (exit with an error, save nothing) or `skip` (leave the
    /// weights and moments alone for that step). See `NonFinitePolicy`.
    public var onNonFinite = NonFinitePolicy.stop.rawValue
    /// GPT: tokens per training window (0: the context length).
    public var blockSize = 0
    /// Share of the data held out for validation when no validation files are given (saved so a
    /// resumed run holds out the same pairs or tokens).
    public var validationFraction = 0.05

    public init() {}

    enum CodingKeys: String, CodingKey {
        case batchSize = "batch_size", maxTokens = "max_tokens", epochs, maxSteps = "max_steps", schedule
        case learningRate = "learning_rate", warmup, minLearningRate = "min_learning_rate", labelSmoothing = "label_smoothing"
        case dropout, clip, weightDecay = "weight_decay", beta1, beta2, adamEps = "adam_eps", seed, evalEvery = "eval_every",
            checkpointEvery = "checkpoint_every", logEvery = "log_every"
        case onNonFinite = "on_non_finite", blockSize = "block_size", validationFraction = "validation_fraction"
    }

    /// Every field is optional in JSON (missing ones take their defaults), so checkpoints written
    /// before an option existed still load.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func get<T: Decodable>(_ k: CodingKeys, _ d: T) throws -> T { try c.decodeIfPresent(T.self, forKey: k) ?? d }
        batchSize = try get(.batchSize, batchSize); maxTokens = try get(.maxTokens, maxTokens); epochs = try get(.epochs, epochs)
        maxSteps = try get(.maxSteps, maxSteps); schedule = try get(.schedule, schedule);
        learningRate = try get(.learningRate, learningRate)
        warmup = try get(.warmup, warmup); minLearningRate = try get(.minLearningRate, minLearningRate)
        labelSmoothing = try get(.labelSmoothing, labelSmoothing); dropout = try get(.dropout, dropout); clip = try get(.clip, clip)
        weightDecay = try get(.weightDecay, weightDecay); beta1 = try get(.beta1, beta1); beta2 = try get(.beta2, beta2)
        adamEps = try get(.adamEps, adamEps); seed = try get(.seed, seed); evalEvery = try get(.evalEvery, evalEvery)
        checkpointEvery = try get(.checkpointEvery, checkpointEvery); logEvery = try get(.logEvery, logEvery)
        onNonFinite = try get(.onNonFinite, onNonFinite); blockSize = try get(.blockSize, blockSize)
        validationFraction = try get(.validationFraction, validationFraction)
    }

    public func schedule(dModel: Int, totalSteps: Int) throws -> LearningRateSchedule {
        switch schedule {
        case "noam": return .noam(dModel: dModel, warmup: warmup, factor: learningRate)
        case "constant": return .constant(lr: learningRate, warmup: warmup)
        case "cosine": return .cosine(lr: learningRate, minLR: minLearningRate, warmup: warmup, total: totalSteps)
        default: throw TrainingError("unknown schedule \"\(schedule)\": use noam, constant or cosine")
        }
    }
}

/// One sentence pair as ids (no `<start>`/`<end>`; the batch adds them).
public typealias IDPair = (source: [Int], target: [Int])

/// What the trainer needs from a model and its data: the flat parameter and gradient buffers,
/// a forward + backward pass for step `k` of an epoch, an evaluation, and the files that describe
/// the model in a checkpoint. The encoder–decoder and the GPT are two tasks of one trainer.
public protocol TrainingTask: AnyObject {
    var params: FlatBuffer { get }
    var grads: FlatBuffer { get }
    var layout: BufferLayout { get }
    /// d_model, for the paper's schedule.
    var dModel: Int { get }
    var batchesPerEpoch: Int { get }
    /// Forward and backward on `shard`'s part of the `index`-th batch of `epoch` (grads are zeroed
    /// before). Returns the mean loss over the shard's target tokens and their number (0 and 0 for an
    /// empty shard, leaving the gradients at zero). Must depend only on (epoch, index, shard, rng) for
    /// exact resume.
    func trainStep(epoch: Int, index: Int, shard: Shard, options: TrainOptions, rng: inout SeededRNG) -> (loss: Float, tokens: Int)
    /// A checksum of the training and validation data, the same in every process that read the same
    /// data (data-parallel ranks compare it before training).
    var dataFingerprint: UInt64 { get }
    /// Mean cross-entropy (no smoothing, no dropout) and next-token accuracy on held-out data.
    func evaluate() -> (loss: Float, accuracy: Float)?
    /// Writes `model.safetensors`, `config.json` and the tokenizer into a checkpoint folder.
    func writeModelFiles(to dir: URL, options: TrainOptions, step: Int) throws
}

extension TrainingTask {
    /// The whole batch (one process).
    public func trainStep(epoch: Int, index: Int, options: TrainOptions, rng: inout SeededRNG) -> (loss: Float, tokens: Int) {
        trainStep(epoch: epoch, index: index, shard: .whole, options: options, rng: &rng)
    }
}

/// Trains any `TrainingTask`: global-norm clipping, AdamW with a schedule, validation, checkpoints,
/// the loss curve and a progress line. The same seed gives the same curve on every run, and a resumed
/// run continues the curve exactly (batch order and dropout masks depend only on the seed, the epoch
/// and the step).
public final class Trainer<Task: TrainingTask> {
    public let task: Task
    public let options: TrainOptions
    public let optimizer: AdamW
    public internal(set) var state = TrainState(step: 0, epoch: 0, batchInEpoch: 0, history: [], elapsedSeconds: 0)
    public let totalSteps: Int
    let schedule: LearningRateSchedule
    /// Where checkpoints and the loss curve go (nil: keep nothing on disk).
    public var output: URL?
    /// Stop (after a checkpoint) once this moment has passed.
    public var deadline: Date?
    /// The processes training this model together (data parallel; see `Trainer+DataParallel.swift`).
    /// Rank 0 alone logs, validates and writes checkpoints.
    public var group: any ProcessGroup = SingleProcess()
    /// Whether the ranks have checked each other's configs and taken rank 0's weights.
    var synchronized = false
    /// Seconds spent in training steps, and in the gradient all-reduce within them, since the start.
    /// (`waitSeconds`: in the small all-reduce before it, which absorbs the ranks' differences in speed.)
    public internal(set) var stepSeconds = 0.0, allReduceSeconds = 0.0, waitSeconds = 0.0
    /// Target tokens of the global batches trained since the start.
    public internal(set) var tokensTrained = 0
    /// What to do with a non-finite loss or gradient (from `options.onNonFinite`).
    public let nonFinitePolicy: NonFinitePolicy
    /// Skipped steps in a row (`skip` gives up after `NonFinite.maxConsecutiveSkips`).
    var consecutiveSkips = 0
    /// Tests: poison a gradient at a step (by default from the `TRANSFORMER_FAULT_*` environment variables).
    public var faultInjection: FaultInjection? = FaultInjection.fromEnvironment()
    /// Stop (after a checkpoint, like the time limit) once this step is done; for tests of resuming.
    public var stopAtStep: Int?

    public init(task: Task, options: TrainOptions) throws {
        guard task.batchesPerEpoch > 0 else { throw TrainingError("no training batches") }
        self.task = task
        self.options = options
        optimizer = AdamW(count: task.layout.total, decayMask: AdamW.decayMask(for: task.layout))
        optimizer.weightDecay = options.weightDecay
        optimizer.beta1 = options.beta1; optimizer.beta2 = options.beta2; optimizer.eps = options.adamEps
        totalSteps = options.maxSteps > 0 ? options.maxSteps : options.epochs * task.batchesPerEpoch
        schedule = try options.schedule(dModel: task.dModel, totalSteps: totalSteps)
        guard let policy = NonFinitePolicy(rawValue: options.onNonFinite) else {
            throw TrainingError("unknown non-finite policy \"\(options.onNonFinite)\": use stop or skip")
        }
        nonFinitePolicy = policy
    }

    public var batchesPerEpoch: Int { task.batchesPerEpoch }

    /// Continues from a checkpoint's state (weights are already in the model).
    /// Refuses a checkpoint whose weights or moments hold a NaN or an infinity, naming the tensor.
    public func resume(from dir: URL, state: TrainState) throws {
        try NonFinite.check(task.params, layout: task.layout, what: "\(dir.path)/model.safetensors")
        try Checkpoint.loadOptimizer(dir, into: optimizer, layout: task.layout)
        try NonFinite.check(optimizer.m, layout: task.layout, what: "\(dir.path)/optimizer.safetensors (first moment)")
        try NonFinite.check(optimizer.v, layout: task.layout, what: "\(dir.path)/optimizer.safetensors (second moment)")
        self.state = state
    }

    /// Clipping, learning rate and the AdamW update, after the gradients are in.
    func update() -> (norm: Float, lr: Float) {
        let norm = gradientNorm(task.grads)
        return (norm, update(norm: norm))
    }

    /// Clipping to `options.clip` (given the gradients' norm), the learning rate and the AdamW update.
    func update(norm: Float) -> Float {
        clipGradients(task.grads, norm: norm, maxNorm: options.clip)
        let lr = schedule.rate(at: state.step + 1)
        optimizer.update(params: task.params, grads: task.grads, lr: lr)
        state.step += 1
        return lr
    }

    /// The step's dropout stream; each rank gets its own (rank 0's is the single-process one), so the
    /// ranks' shards do not share dropout masks.
    func stepRNG() -> SeededRNG {
        SeededRNG(seed: options.seed &* 0x2545_F491_4F6C_DD1D &+ UInt64(state.step + 1) &+ UInt64(group.rank) &* 0xD1B5_4A32_D192_ED03)
    }

    public func evaluate() -> (loss: Float, accuracy: Float)? { task.evaluate() }

    /// One optimisation step: this rank's shard of the next batch, forward and backward, the
    /// gradients combined over the ranks, clipping and AdamW. Returns the global batch's mean loss
    /// and token count, the gradient norm, the learning rate, and whether any rank asked to stop.
    ///
    /// A NaN or infinite loss or gradient norm is caught here, before the update, with the combined
    /// gradients (the same on every rank, so every rank decides alike): with `stop` this throws a
    /// `TrainingError` naming the step and the first tensor with a non-finite gradient; with `skip` the
    /// weights and AdamW moments stay as they were, the batch counts as taken, and `skipped` holds the report.
    func trainStep(stopRequested: Bool = false) throws -> (loss: Float, tokens: Int, norm: Float, lr: Float, stop: Bool, skipped: String?) {
        let start = Date()
        var rng = stepRNG()
        task.grads.zero()
        let shard = Shard(rank: group.rank, count: group.size)
        let local = task.trainStep(epoch: state.epoch, index: state.batchInEpoch, shard: shard, options: options, rng: &rng)
        if let f = faultInjection, f.poisonStep == state.step + 1, group.rank == 0 { f.apply(to: task.grads, layout: task.layout) }
        var global = (loss: local.loss, tokens: local.tokens, stop: stopRequested)
        if group.size > 1 { global = try combineGradients(local, stopRequested: stopRequested) }
        let norm = gradientNorm(task.grads)
        var skipped: String? = nil
        let lr: Float
        if global.loss.isFinite && norm.isFinite {
            lr = update(norm: norm)
        } else {
            let report = NonFinite.report(step: state.step + 1, loss: global.loss, norm: norm, grads: task.grads, layout: task.layout)
            if nonFinitePolicy == .stop {
                throw TrainingError(
                    report
                        + """
                        ; stopped (--on-non-finite stop) before the update: nothing of this step was applied or saved, and the \
                        last checkpoint is the newest good state (--on-non-finite skip steps over such batches)
                        """
                )
            }
            skipped = report
            state.step += 1
            lr = schedule.rate(at: state.step)
        }
        state.batchInEpoch += 1
        stepSeconds += Date().timeIntervalSince(start)
        tokensTrained += global.tokens
        return (global.loss, global.tokens, norm, lr, global.stop, skipped)
    }

    /// One optimisation step on the next batch, without logging, evaluation or checkpoints
    /// (benchmarks). Returns the loss and the number of target tokens of the global batch.
    @discardableResult
    public func stepOnce() throws -> (loss: Float, tokens: Int) {
        if !synchronized { try synchronize() }
        let r = try trainStep()
        if state.batchInEpoch >= batchesPerEpoch { state.epoch += 1; state.batchInEpoch = 0 }
        return (r.loss, r.tokens)
    }

    /// Runs to the end (or `maxSteps`, or the deadline), calling `log` with progress lines.
    public func run(log printLine: (String) -> Void) throws {
        if !synchronized { try synchronize() }
        let lead = group.rank == 0
        func log(_ line: String) { if lead { printLine(line) } }
        let start = Date()
        let startStep = state.step
        let elapsedBefore = state.elapsedSeconds
        var tokensSinceLog = 0, lossSinceLog = 0.0, stepsSinceLog = 0
        var lastLog = Date()
        let evalEvery = options.evalEvery > 0 ? options.evalEvery : batchesPerEpoch
        let ckEvery = options.checkpointEvery > 0 ? options.checkpointEvery : batchesPerEpoch
        var lastVal: Float? = state.history.last(where: { $0.validationLoss != nil })?.validationLoss
        while state.step < totalSteps {
            while state.batchInEpoch < batchesPerEpoch && state.step < totalSteps {
                // The time limit is decided with the step's gradients, so that every rank stops at the same step.
                let r = try trainStep(stopRequested: deadline.map { Date() >= $0 } ?? false)
                let lr = r.lr
                var record = LossRecord(step: state.step, loss: r.loss, lr: lr)
                if let report = r.skipped {
                    state.skippedSteps = (state.skippedSteps ?? []) + [state.step]
                    consecutiveSkips += 1
                    log(
                        """
                        \(report); skipped (--on-non-finite skip): weights and moments unchanged · \(state.skippedSteps!.count) \
                        step(s) skipped so far
                        """
                    )
                    if consecutiveSkips >= NonFinite.maxConsecutiveSkips {
                        throw TrainingError(
                            """
                            \(consecutiveSkips) consecutive steps (to step \(state.step)) had a non-finite loss or gradient: the \
                            run diverged; stopping (lower the learning rate or resume from an earlier checkpoint)
                            """
                        )
                    }
                } else {
                    consecutiveSkips = 0
                    tokensSinceLog += r.tokens; lossSinceLog += Double(r.loss); stepsSinceLog += 1
                    if lead, state.step % evalEvery == 0 || state.step == totalSteps, let (vl, va) = evaluate() {
                        record.validationLoss = vl; record.validationAccuracy = va; lastVal = vl
                    }
                    state.history.append(record)
                }
                state.elapsedSeconds = elapsedBefore + Date().timeIntervalSince(start)
                if state.step % max(options.logEvery, 1) == 0 || state.step == totalSteps {
                    let now = Date()
                    let dt = max(now.timeIntervalSince(lastLog), 1e-9)
                    let rate = Double(state.step - startStep) / max(now.timeIntervalSince(start), 1e-9)
                    var eta = rate > 0 ? Double(totalSteps - state.step) / rate : 0
                    if let deadline { eta = min(eta, max(0, deadline.timeIntervalSinceNow)) }
                    var line = String(format: "step %d/%d · epoch %d · ", state.step, totalSteps, state.epoch + 1)
                    line += stepsSinceLog > 0 ? String(format: "loss %.4f", lossSinceLog / Double(stepsSinceLog)) : "loss –"
                    if let lastVal { line += String(format: " · val %.4f", lastVal) }
                    if let a = record.validationAccuracy { line += String(format: " (acc %.1f%%)", a * 100) }
                    if let skipped = state.skippedSteps, !skipped.isEmpty { line += " · \(skipped.count) skipped" }
                    line += String(format: " · lr %.2e · %.0f tok/s · ETA %@", lr, Double(tokensSinceLog) / dt, formatDuration(eta))
                    log(line)
                    tokensSinceLog = 0; lossSinceLog = 0; stepsSinceLog = 0; lastLog = now
                }
                let outOfTime = r.stop || stopAtStep == state.step
                if output != nil, state.step % ckEvery == 0 || state.step == totalSteps || outOfTime {
                    if group.size > 1 { try checkWeightsInSync(log: log) }
                    if lead, let output { try saveCheckpoint(output) }
                }
                if outOfTime {
                    if lead, r.skipped == nil, record.validationLoss == nil, let (vl, va) = evaluate() {
                        state.history[state.history.count - 1].validationLoss = vl
                        state.history[state.history.count - 1].validationAccuracy = va
                        if let output { try writeLossCurve(output) }
                        log(String(format: "time limit reached at step %d · val %.4f (acc %.1f%%)", state.step, vl, va * 100))
                    } else {
                        log("time limit reached at step \(state.step)")
                    }
                    return
                }
            }
            if state.batchInEpoch >= batchesPerEpoch { state.epoch += 1; state.batchInEpoch = 0 }
        }
        if !(group is SingleProcess) { log(dataParallelSummary(steps: state.step - startStep)) }
        if let skipped = state.skippedSteps, !skipped.isEmpty {
            log(
                "skipped \(skipped.count) step(s) with a non-finite loss or gradient: \(skipped.prefix(20).map(String.init).joined(separator: ", "))\(skipped.count > 20 ? ", …" : "")"
            )
        }
    }

    public func saveCheckpoint(_ dir: URL) throws {
        try Checkpoint.save(to: dir, task: task, optimizer: optimizer, state: state, options: options)
        try writeLossCurve(dir)
    }

    /// `loss.csv` and `loss.svg` in the run folder.
    public func writeLossCurve(_ dir: URL) throws {
        var csv = "step,train_loss,validation_loss,validation_accuracy,learning_rate\n"
        for r in state.history {
            csv += "\(r.step),\(r.loss),\(r.validationLoss.map { "\($0)" } ?? ""),\(r.validationAccuracy.map { "\($0)" } ?? ""),\(r.lr)\n"
        }
        try Data(csv.utf8).write(to: dir.appendingPathComponent("loss.csv"), options: .atomic)
        // Smooth the training loss over a window so the curve is readable.
        let window = max(1, state.history.count / 200)
        var smoothed: [(x: Double, y: Double)] = []
        var i = 0
        while i < state.history.count {
            let chunk = state.history[i..<min(i + window, state.history.count)]
            smoothed.append((Double(chunk.last!.step), chunk.map { Double($0.loss) }.reduce(0, +) / Double(chunk.count)))
            i += window
        }
        let val = state.history.compactMap { r in r.validationLoss.map { (x: Double(r.step), y: Double($0)) } }
        let svg = LossPlot.svg(
            title: "Training loss", xLabel: "step", yLabel: "cross-entropy",
            series: [
                .init(name: options.labelSmoothing > 0 ? "train (label-smoothed)" : "train", color: "#1f77b4", points: smoothed),
                .init(name: "validation", color: "#d62728", points: val)
            ])
        try Data(svg.utf8).write(to: dir.appendingPathComponent("loss.svg"), options: .atomic)
    }
}

// MARK: - The encoder–decoder task

/// Sentence pairs batched by length for a `Seq2SeqModel`.
public final class Seq2SeqTask: TrainingTask {
    public let model: Seq2SeqModel
    public let codec: SentenceCodec
    let train: [IDPair]
    let validation: [IDPair]
    let plan: BatchPlan
    let validationPlan: BatchPlan
    let acts: Seq2SeqActivations
    let seed: UInt64
    private var orderEpoch = -1
    private var order: [Int] = []

    public init(model: Seq2SeqModel, codec: SentenceCodec, train: [IDPair], validation: [IDPair], options: TrainOptions) throws {
        guard !train.isEmpty else { throw TrainingError("no training pairs") }
        self.model = model; self.codec = codec; self.train = train; self.validation = validation; seed = options.seed
        plan = BatchPlan(
            lengths: train.map { ($0.source.count, $0.target.count) }, batchSize: options.batchSize, maxTokens: options.maxTokens)
        validationPlan = BatchPlan(
            lengths: validation.map { ($0.source.count, $0.target.count) }, batchSize: options.batchSize, maxTokens: options.maxTokens)
        let maxS = (train + validation).map(\.source.count).max() ?? 1
        let maxT = ((train + validation).map(\.target.count).max() ?? 0) + 1
        let maxB = max(plan.batches.map(\.count).max() ?? 1, validationPlan.batches.map(\.count).max() ?? 1)
        acts = Seq2SeqActivations(config: model.config, maxBatch: maxB, maxSource: maxS, maxTarget: maxT)
    }

    public var params: FlatBuffer { model.params }
    public var grads: FlatBuffer { model.grads }
    public var layout: BufferLayout { model.layout }
    public var dModel: Int { model.config.dModel }
    public var batchesPerEpoch: Int { plan.batches.count }

    func batch(_ indices: [Int], from pairs: [IDPair]) -> Seq2SeqBatch {
        Seq2SeqBatch(pairs: indices.map { pairs[$0] }, pad: codec.padID, start: codec.startID, end: codec.endID)
    }

    /// The shard's run of the batch's sentence pairs, padded to its own longest pair.
    public func trainStep(epoch: Int, index: Int, shard: Shard, options: TrainOptions, rng: inout SeededRNG) -> (loss: Float, tokens: Int) {
        if orderEpoch != epoch { order = plan.order(epoch: epoch, seed: seed); orderEpoch = epoch }
        let pairs = plan.batches[order[index]]
        let mine = shard.rows(of: pairs.count)
        guard !mine.isEmpty else { return (0, 0) }
        return step(batch(Array(pairs[mine]), from: train), options: options, rng: &rng)
    }

    public var dataFingerprint: UInt64 {
        var f = Fingerprint()
        for set in [train, validation] {
            f.add([set.count])
            for p in set { f.add(p.source); f.add([-1]); f.add(p.target) }
        }
        return f.value
    }

    func step(_ b: Seq2SeqBatch, options: TrainOptions, rng: inout SeededRNG) -> (loss: Float, tokens: Int) {
        let r = model.forward(b, acts: acts, labelSmoothing: options.labelSmoothing, dropout: options.dropout, rng: &rng)
        model.backward(b, acts: acts, dropout: options.dropout)
        return r
    }

    public func evaluate() -> (loss: Float, accuracy: Float)? {
        guard !validation.isEmpty else { return nil }
        var total = 0.0, count = 0, correct = 0
        let v = model.config.targetVocabSize
        for idx in validationPlan.batches {
            let b = batch(idx, from: validation)
            var rng = SeededRNG(seed: 0)
            // computeGradient: false keeps the logits for the accuracy.
            let (loss, tokens) = model.forward(b, acts: acts, rng: &rng, computeGradient: false)
            total += Double(loss) * Double(tokens); count += tokens
            for i in 0..<(b.batchSize * b.targetLength) where b.targetOutput[i] != b.pad {
                let row = acts.logits.pointer + i * v
                var best = 0
                for j in 1..<v where row[j] > row[best] { best = j }
                if best == Int(b.targetOutput[i]) { correct += 1 }
            }
        }
        return count > 0 ? (Float(total / Double(count)), Float(correct) / Float(count)) : nil
    }

    public func writeModelFiles(to dir: URL, options: TrainOptions, step: Int) throws {
        try Safetensors.write(
            Checkpoint.tensors(model.params, model.layout), metadata: ["format": "transformer-seq2seq/1", "step": "\(step)"],
            to: dir.appendingPathComponent("model.safetensors"))
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(CheckpointConfig(model: model.config, options: options)).write(
            to: dir.appendingPathComponent("config.json"), options: .atomic)
        try codec.jsonData().write(to: dir.appendingPathComponent("tokenizer.json"), options: .atomic)
    }
}

/// The encoder–decoder trainer.
public typealias Seq2SeqTrainer = Trainer<Seq2SeqTask>

extension Trainer where Task == Seq2SeqTask {
    public convenience init(model: Seq2SeqModel, codec: SentenceCodec, train: [IDPair], validation: [IDPair], options: TrainOptions) throws
    {
        try self.init(
            task: Seq2SeqTask(model: model, codec: codec, train: train, validation: validation, options: options), options: options)
    }
    public var model: Seq2SeqModel { task.model }
    public var codec: SentenceCodec { task.codec }

    /// One optimisation step on a given batch (benchmarks). Returns (loss, tokens, gradient norm, lr).
    @discardableResult
    public func step(_ b: Seq2SeqBatch) -> (loss: Float, tokens: Int, norm: Float, lr: Float) {
        var rng = stepRNG()
        task.grads.zero()
        let r = task.step(b, options: options, rng: &rng)
        let (norm, lr) = update()
        return (r.loss, r.tokens, norm, lr)
    }
}

public func formatDuration(_ s: Double) -> String {
    guard s.isFinite, s >= 0 else { return "?" }
    let t = Int(s.rounded())
    if t >= 3600 { return "\(t / 3600)h\(String(format: "%02d", (t % 3600) / 60))m" }
    if t >= 60 { return "\(t / 60)m\(String(format: "%02d", t % 60))s" }
    return "\(t)s"
}
