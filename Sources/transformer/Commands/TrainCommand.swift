import ArgumentParser
import DataParallel
import Foundation
import TensorKit
import Training
import TransformerKit
import Tokenizers
import ModelFiles

struct ModelShapeOptions: ParsableArguments {
    @Option(name: .customLong("d-model"), help: "Model width.") var dModel: Int = 256
    @Option(help: "Attention heads.") var heads: Int = 8
    @Option(name: .customLong("d-ff"), help: "Feed-forward width (default 4 · d_model).") var dFF: Int?
    @Option(help: "Encoder and decoder layers.") var layers: Int = 3
    @Option(name: .customLong("max-length"), help: "Longest sequence (positional table); longer pairs are skipped.") var maxLength: Int = 64
    @Option(help: "Layer-norm placement: post or pre.") var norm: String = "post"
    @Option(help: "Activation: relu, gelu, gelu_tanh.") var activation: String = "relu"
    @Option(help: "Embedding sharing: all, tied_output, separate.") var embeddings: String = "all"
    @Option(help: "Positions: sinusoidal or learned.") var positions: String = "sinusoidal"

    func config(vocabularySize: Int) throws -> TransformerConfig {
        var c = TransformerConfig()
        c.dModel = dModel; c.heads = heads; c.dFF = dFF ?? 4 * dModel; c.encoderLayers = layers; c.decoderLayers = layers
        c.contextLength = maxLength; c.sourceVocabSize = vocabularySize; c.targetVocabSize = vocabularySize
        c.scaleEmbeddings = true
        guard let n = NormPlacement(rawValue: norm) else { throw TrainingError("--norm must be post or pre") }
        guard let a = Activation(rawValue: activation) else { throw TrainingError("--activation must be relu, gelu or gelu_tanh") }
        guard let e = EmbeddingSharing(rawValue: embeddings) else {
            throw TrainingError("--embeddings must be all, tied_output or separate")
        }
        guard let p = PositionKind(rawValue: positions) else { throw TrainingError("--positions must be sinusoidal or learned") }
        c.norm = n; c.activation = a; c.embeddings = e; c.positions = p
        do { try c.validate() } catch let e as ConfigError { throw TrainingError(e.message) }
        return c
    }
}

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train an encoder–decoder Transformer on sentence pairs.",
        discussion: """
            Examples:
              transformer train --output runs/toy                       # the seed's toy corpus
              transformer train --source-file train.de --target-file train.en --tokenizer bpe --output runs/de-en
              transformer train --output runs/de-en --resume             # continue where it stopped
              transformer train --model gpt --data input.txt --tokenizer char --d-model 128 --heads 4 --layers 4 \\
                  --max-length 64 --batch-size 12 --steps 2000 --schedule constant --lr 1e-3 --dropout 0 --output runs/shakespeare
            """)

    @Option(help: "What to train: seq2seq (encoder–decoder on sentence pairs) or gpt (decoder-only on one text).") var model: String =
        "seq2seq"
    @Option(help: "The text to train a GPT on (--model gpt).") var data: String?
    @Option(help: "GPT: tokens per training window (default: the context, --max-length).") var blockSize: Int?
    @Option(help: "Source sentences, one per line (.gz is read through gzip).") var sourceFile: String?
    @Option(help: "Target sentences, aligned line by line with --source-file.") var targetFile: String?
    @Option(help: "One file of source<TAB>target pairs.") var pairs: String?
    @Option(help: "Validation source file (default: hold out --validation-fraction of the pairs).") var validSource: String?
    @Option(help: "Validation target file.") var validTarget: String?
    @Option(
        help:
            """
            Fraction of the pairs (GPT: of the text's tokens, at most 0.5) held out for validation when no validation files are \
            given (default 0.05; a resumed run keeps its saved value).
            """
    ) var validationFraction: Double?
    @Option(help: "Tokenizer: char, word or bpe (byte-level BPE trained on the corpus).") var tokenizer: String = "bpe"
    @Option(help: "BPE vocabulary size.") var vocabSize: Int = 8000
    @Option(help: "Use this saved tokenizer.json (e.g. from another run) instead of building one from the corpus.") var vocabulary: String?
    @OptionGroup var shape: ModelShapeOptions
    @Option(help: "Sentences per batch.") var batchSize: Int = 64
    @Option(help: "Most padded tokens per batch (0: no limit).") var maxTokens: Int = 0
    @Option(help: "Epochs.") var epochs: Int = 10
    @Option(help: "Stop after this many steps (0: run the epochs).") var steps: Int = 0
    @Option(help: "Schedule: noam (the paper), constant or cosine.") var schedule: String = "noam"
    @Option(help: "Peak learning rate (constant/cosine) or the noam factor.") var lr: Float = 1
    @Option(help: "Warm-up steps.") var warmup: Int = 400
    @Option(help: "Label smoothing ε.") var labelSmoothing: Float = 0.1
    @Option(help: "Dropout.") var dropout: Float = 0.1
    @Option(help: "Clip the global gradient norm to this (0: off).") var clip: Float = 1
    @Option(help: "AdamW weight decay on weight matrices.") var weightDecay: Float = 0
    @Option(help: "AdamW β1.") var beta1: Float = 0.9
    @Option(help: "AdamW β2 (the paper: 0.98; nanoGPT: 0.99).") var beta2: Float = 0.98
    @Option(help: "AdamW ε (the paper: 1e-9).") var adamEps: Float = 1e-9
    @Option(help: "Final learning rate of the cosine schedule.") var minLr: Float = 0
    @Option(help: "Seed for weights, batch order and dropout.") var seed: UInt64 = 1
    @Option(
        help: "GPT weights at the start: gpt2 (N(0, 0.02), residual projections scaled by 1/√(2·layers)) or normal (N(0, 0.02) everywhere)."
    )
    var initialisation: String = "gpt2"
    @Option(help: "Validate every N steps (0: each epoch).") var evalEvery: Int = 0
    @Option(help: "Checkpoint every N steps (0: each epoch).") var checkpointEvery: Int = 0
    @Option(help: "Progress line every N steps.") var logEvery: Int = 10
    @Option(help: "Run folder for checkpoints and the loss curve.") var output: String = "runs/latest"
    @Flag(help: "Continue the run in --output from its latest checkpoint.") var resume = false
    @Option(help: "Stop after this many minutes of training (a checkpoint is saved).") var timeLimit: Double?
    @Option(
        help: ArgumentHelp(
            """
            A NaN or infinite loss or gradient: stop (exit non-zero naming the step and the layer; nothing of that step is saved, \
            the last checkpoint stays the newest) or skip (leave the weights and AdamW moments unchanged for that step, log it, \
            count it; stop after \(NonFinite.maxConsecutiveSkips) in a row). Default: stop.
            """,
            valueName: "stop|skip"))
    var onNonFinite: String?
    @Option(
        help: ArgumentHelp(
            """
            Matrix products of the linear layers and their gradients: fp32, or bf16 (inputs rounded to bfloat16, sums in \
            Float32; weights, AdamW moments, loss, norms and softmax stay Float32, checkpoints Float32). This build emulates \
            bf16 (the same numbers, no speed-up).
            """,
            valueName: "fp32|bf16"))
    var precision: String = "fp32"

    func validate() throws {
        guard GemmPrecision(rawValue: precision) != nil else {
            throw ValidationError("--precision must be fp32 or bf16 (got \(precision))")
        }
        if let onNonFinite, NonFinitePolicy(rawValue: onNonFinite) == nil {
            throw ValidationError("--on-non-finite must be stop or skip (got \(onNonFinite))")
        }
        if let validationFraction, !(0..<1).contains(validationFraction) {
            throw ValidationError("--validation-fraction must be in [0, 1) (got \(validationFraction))")
        }
    }

    func run() throws {
        let group: any ProcessGroup
        do { group = try DataParallel.start() } catch let e as DataParallelError { fail(e.message) }
        // Under mpirun every rank runs this command; rank 0 alone prints and writes.
        logQuiet = group.rank != 0
        if group.size > 1 { shareCores(group) }
        Gemm.precision = GemmPrecision(rawValue: precision) ?? .fp32
        if Gemm.precision == .bf16 {
            log("precision bf16 \(GemmPrecision.bf16Implementation().note); weights, moments, loss, norms and softmax in Float32")
        }
        do {
            switch model {
            case "seq2seq": try train(group)
            case "gpt": try trainGPT(group)
            default: throw TrainingError("--model must be seq2seq or gpt (got \(model))")
            }
        } catch {
            let message =
                (error as? TrainingError)?.message ?? (error as? TokenizerError)?.message ?? (error as? SafetensorsError)?.description
                ?? (error as? DataParallelError)?.message ?? "\(error)"
            guard group.size > 1 else { fail(message) }
            // Stop the other ranks too, rather than leave them waiting in a collective.
            FileHandle.standardError.write(Data("error (rank \(group.rank) of \(group.size)): \(message)\n".utf8))
            group.abort(code: 1)
            Foundation.exit(1)
        }
    }

    /// Ranks on one machine share its cores: each takes cores ÷ ranks-on-this-machine threads.
    func shareCores(_ group: any ProcessGroup) {
        let env = ProcessInfo.processInfo.environment
        guard let local = (env["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? env["MPI_LOCALNRANKS"]).flatMap({ Int($0) }), local > 1 else { return }
        Gemm.threads = max(1, ProcessInfo.processInfo.activeProcessorCount / local)
        log("data parallel: \(group.size) ranks, \(local) on this machine, \(Gemm.threads) thread(s) each")
    }

    func trainOptions() -> TrainOptions {
        var o = TrainOptions()
        o.batchSize = batchSize; o.maxTokens = maxTokens; o.epochs = epochs; o.maxSteps = steps; o.schedule = schedule
        o.learningRate = lr; o.warmup = warmup; o.labelSmoothing = labelSmoothing; o.dropout = dropout; o.clip = clip
        o.weightDecay = weightDecay; o.beta1 = beta1; o.beta2 = beta2; o.adamEps = adamEps; o.minLearningRate = minLr; o.seed = seed;
        o.evalEvery = evalEvery; o.checkpointEvery = checkpointEvery; o.logEvery = logEvery
        o.blockSize = blockSize ?? 0
        if let validationFraction { o.validationFraction = validationFraction }
        if let onNonFinite { o.onNonFinite = onNonFinite }
        return o
    }

    /// The saved options of a resumed run, with a longer `--steps` or `--epochs` taken from the command line.
    func resumedOptions(_ saved: TrainOptions?) -> TrainOptions {
        guard var o = saved else { return trainOptions() }
        if steps > 0 { o.maxSteps = steps }
        if let onNonFinite { o.onNonFinite = onNonFinite }
        if let blockSize { o.blockSize = blockSize }
        // Given again, it wins, though the held-out data then differs from the interrupted run's.
        if let validationFraction {
            if validationFraction != o.validationFraction {
                log(
                    """
                    note: --validation-fraction \(validationFraction) differs from the saved \(o.validationFraction); the \
                    held-out data changes, so this is not an exact resume
                    """
                )
            }
            o.validationFraction = validationFraction
        }
        if epochs != 10 { o.epochs = epochs }
        return o
    }

    func loadCorpus() throws -> (ParallelCorpus, ParallelCorpus?) {
        let corpus: ParallelCorpus
        if let pairs {
            corpus = try ParallelCorpus.load(tsv: pairs)
        } else if let sourceFile, let targetFile {
            corpus = try ParallelCorpus.load(source: sourceFile, target: targetFile)
        } else if sourceFile != nil || targetFile != nil {
            throw TrainingError("give both --source-file and --target-file (or --pairs)")
        } else {
            corpus = ParallelCorpus(pairs: ToyCorpus.pairs, description: "the seed 002 toy corpus")
        }
        var valid: ParallelCorpus? = nil
        if let validSource, let validTarget { valid = try ParallelCorpus.load(source: validSource, target: validTarget) }
        return (corpus, valid)
    }

    func train(_ group: any ProcessGroup) throws {
        guard batchSize >= 1, epochs >= 1 || steps >= 1 else {
            throw TrainingError("--batch-size and --epochs (or --steps) must be positive")
        }
        guard (0..<1).contains(dropout), (0..<1).contains(labelSmoothing) else {
            throw TrainingError("--dropout and --label-smoothing must be in [0, 1)")
        }
        let out = URL(fileURLWithPath: output)
        let (corpus, validFiles) = try loadCorpus()
        log("corpus: \(corpus.description), \(corpus.pairs.count) pairs")
        var (trainSet, validSet) = (corpus, validFiles ?? ParallelCorpus(pairs: [], description: "none"))
        // The held-out pairs depend on the fraction and the seed: a resumed run takes the saved ones (exact resume).
        func holdOut(_ o: TrainOptions) {
            if validFiles == nil && corpus.pairs.count >= 20 {
                (trainSet, validSet) = corpus.split(validationFraction: o.validationFraction, seed: o.seed)
            }
        }

        let model: Seq2SeqModel, codec: SentenceCodec, options: TrainOptions
        if data != nil {
            throw TrainingError("--data is for --model gpt; an encoder–decoder trains on --source-file/--target-file or --pairs")
        }
        var resumeFrom: Checkpoint.Loaded? = nil
        if resume {
            let loaded = try Checkpoint.load(out.path)
            guard let state = loaded.state else { throw TrainingError("\(loaded.directory.path): no state.json, cannot resume") }
            (model, codec) = (loaded.model, loaded.codec)
            options = resumedOptions(state.options ?? loaded.config.options)
            holdOut(options)
            resumeFrom = loaded
            log("resuming \(loaded.directory.path) at step \(state.step)")
            if group.rank == 0 {
                let n = Checkpoint.removeLeftovers(out);
                if n > 0 { log("removed \(n) unfinished temporary folder(s) left by an interrupted run") }
            }
        } else {
            options = trainOptions()
            holdOut(options)
            if let vocabulary {
                codec = try SentenceCodec.load(URL(fileURLWithPath: vocabulary))
                log("tokenizer: \(codec.kind.rawValue), \(codec.vocabularySize) tokens, from \(vocabulary)")
            } else {
                guard let kind = SentenceCodec.Kind(rawValue: tokenizer) else {
                    throw TrainingError("--tokenizer must be char, word or bpe")
                }
                let t0 = Date()
                codec = try SentenceCodec.build(
                    kind: kind, texts: trainSet.pairs.flatMap { [$0.source, $0.target] }, vocabularySize: vocabSize)
                log(
                    "tokenizer: \(kind.rawValue), \(codec.vocabularySize) tokens (built in \(String(format: "%.1f", Date().timeIntervalSince(t0))) s)"
                )
            }
            let config = try shape.config(vocabularySize: codec.vocabularySize)
            model = try Seq2SeqModel(config: config, seed: seed)
        }
        func encode(_ c: ParallelCorpus) -> ([IDPair], Int) {
            var out: [IDPair] = [], skipped = 0
            for p in c.pairs {
                let s = codec.encode(p.source), t = codec.encode(p.target)
                if s.isEmpty || t.isEmpty || s.count > model.config.contextLength || t.count + 1 > model.config.contextLength {
                    skipped += 1; continue
                }
                out.append((s, t))
            }
            return (out, skipped)
        }
        let (trainIDs, skippedT) = encode(trainSet), (validIDs, skippedV) = encode(validSet)
        if skippedT + skippedV > 0 {
            log("skipped \(skippedT + skippedV) pairs longer than --max-length \(model.config.contextLength) tokens")
        }
        let c = model.config
        log(
            """
            model: d_model \(c.dModel), \(c.heads) heads, d_ff \(c.dFF), \(c.encoderLayers)+\(c.decoderLayers) layers, \
            \(c.norm.rawValue)-norm, \(model.layout.total) parameters
            """
        )
        let trainer = try Seq2SeqTrainer(model: model, codec: codec, train: trainIDs, validation: validIDs, options: options)
        trainer.output = out
        trainer.group = group
        if let timeLimit { trainer.deadline = Date().addingTimeInterval(timeLimit * 60) }
        if let r = resumeFrom, let state = r.state { try trainer.resume(from: r.directory, state: state) }
        log(
            """
            training: \(trainIDs.count) pairs (\(trainer.batchesPerEpoch) batches/epoch), validation \(validIDs.count), \
            \(trainer.totalSteps) steps, schedule \(options.schedule)
            """
        )
        if group.rank == 0 { try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true) }
        try trainer.run(log: log)
        log("saved \(out.path)/latest · loss curve \(out.path)/loss.svg and loss.csv")
    }
}

/// Set on data-parallel ranks other than 0, which train silently.
nonisolated(unsafe) var logQuiet = false

func log(_ s: String) {
    if logQuiet { return }
    FileHandle.standardError.write(Data((s + "\n").utf8))
}
