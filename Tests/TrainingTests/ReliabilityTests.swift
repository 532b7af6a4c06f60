import DataParallel
import Foundation
import Testing
import TensorKit
import TransformerKit
import Training
import Tokenizers
import ModelFiles

/// Exact resume (the curve and the weights bit for bit after a stop or a "kill") and the non-finite
/// guards. `scripts/kill-test.sh` does the same through the CLI with real SIGKILLs.
@Suite struct ExactResumeTests {
    static func tempDir(_ tag: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("\(tag)-\(UUID().uuidString)")
    }

    // MARK: Encoder–decoder, with dropout, label smoothing, warm-up + cosine, clipping and weight decay

    static func seq2seqOptions(steps: Int) -> TrainOptions {
        var o = TrainOptions()
        o.batchSize = 4; o.maxSteps = steps; o.schedule = "cosine"; o.learningRate = 3e-3; o.warmup = 5; o.minLearningRate = 1e-4
        o.labelSmoothing = 0.1; o.dropout = 0.1; o.clip = 0.5; o.weightDecay = 0.01; o.logEvery = 1000
        o.checkpointEvery = 4; o.evalEvery = 6
        return o
    }

    static func seq2seq(_ model: Seq2SeqModel, _ codec: SentenceCodec, _ o: TrainOptions) throws -> Seq2SeqTrainer {
        let pairs = ToyCorpus.pairs.map { (codec.encode($0.source), codec.encode($0.target)) }
        return try Seq2SeqTrainer(model: model, codec: codec, train: pairs, validation: pairs, options: o)
    }

    static func freshSeq2Seq(_ o: TrainOptions) throws -> Seq2SeqTrainer {
        let codec = try SentenceCodec.build(kind: .char, texts: ToyCorpus.pairs.flatMap { [$0.source, $0.target] })
        var c = TransformerConfig()
        c.dModel = 32; c.heads = 4; c.dFF = 64; c.encoderLayers = 2; c.decoderLayers = 2; c.contextLength = 16
        c.sourceVocabSize = codec.vocabularySize; c.targetVocabSize = codec.vocabularySize; c.embeddings = .all; c.scaleEmbeddings = true
        return try seq2seq(try Seq2SeqModel(config: c, seed: 1), codec, o)
    }

    /// Loads a checkpoint folder (or a run folder) into a fresh trainer, as `--resume` does.
    static func resumedSeq2Seq(_ path: URL) throws -> Seq2SeqTrainer {
        let loaded = try Checkpoint.load(path.path)
        let state = try #require(loaded.state)
        let t = try seq2seq(loaded.model, loaded.codec, try #require(state.options))
        try t.resume(from: loaded.directory, state: state)
        return t
    }

    static func text(_ url: URL) throws -> String { try String(contentsOf: url, encoding: .utf8) }

    @Test func encoderDecoderWithDropoutResumesBitForBit() throws {
        let ref = Self.tempDir("ref"), vic = Self.tempDir("vic")
        defer { for d in [ref, vic] { try? FileManager.default.removeItem(at: d) } }
        let full = try Self.freshSeq2Seq(Self.seq2seqOptions(steps: 24))
        full.output = ref
        try full.run(log: { _ in })

        // Stopped at step 10 (a checkpoint is written there), then resumed from `latest`.
        let first = try Self.freshSeq2Seq(Self.seq2seqOptions(steps: 24))
        first.output = vic; first.stopAtStep = 10
        try first.run(log: { _ in })
        #expect(first.state.step == 10)
        let second = try Self.resumedSeq2Seq(vic)
        #expect(second.state.step == 10)
        second.output = vic
        try second.run(log: { _ in })
        #expect(second.state.history == full.state.history)
        #expect(second.model.parameterSet() == full.model.parameterSet())
        #expect(try Self.text(vic.appendingPathComponent("loss.csv")) == (try Self.text(ref.appendingPathComponent("loss.csv"))))

        // "Killed" after step 22: resume from the step-20 checkpoint; steps 21–22 are recomputed identically.
        let third = try Self.resumedSeq2Seq(ref.appendingPathComponent("checkpoints/step-0000020"))
        #expect(third.state.history.count == 20)
        try third.run(log: { _ in })
        #expect(third.state.history == full.state.history)
        #expect(third.model.parameterSet() == full.model.parameterSet())
        func values(_ b: FlatBuffer) -> [Float] { Array(UnsafeBufferPointer(start: b.pointer, count: b.count)) }
        #expect(values(third.optimizer.m) == values(full.optimizer.m))
        #expect(values(third.optimizer.v) == values(full.optimizer.v))
        #expect(third.optimizer.step == full.optimizer.step)
    }

    /// The history goes through state.json and loss.csv without losing a bit.
    @Test func lossesRoundTripThroughJSONAndCSV() throws {
        let full = try Self.freshSeq2Seq(Self.seq2seqOptions(steps: 6))
        let dir = Self.tempDir("csv")
        defer { try? FileManager.default.removeItem(at: dir) }
        full.output = dir
        try full.run(log: { _ in })
        let state = try JSONDecoder().decode(
            TrainState.self, from: Data(contentsOf: Checkpoint.resolve(dir.path).appendingPathComponent("state.json")))
        #expect(state.history.map(\.loss.bitPattern) == full.state.history.map(\.loss.bitPattern))
        let rows = try Self.text(dir.appendingPathComponent("loss.csv")).split(separator: "\n").dropFirst()
        #expect(rows.map { Float(String($0.split(separator: ",")[1]))!.bitPattern } == full.state.history.map(\.loss.bitPattern))
    }

    /// The held-out share is saved with the options (the seq2seq split depends on it and the seed), and
    /// state.json written before it was saved still loads, with the old default.
    @Test func validationFractionIsSavedAndOldStateLoads() throws {
        var o = Self.seq2seqOptions(steps: 2)
        o.validationFraction = 0.2; o.seed = 7
        let t = try Self.freshSeq2Seq(o)
        let dir = Self.tempDir("vf")
        defer { try? FileManager.default.removeItem(at: dir) }
        t.output = dir
        try t.run(log: { _ in })
        let loaded = try Checkpoint.load(dir.path)
        let saved = try #require(loaded.state?.options)
        #expect(saved.validationFraction == 0.2 && saved.seed == 7)
        // The same split from the saved options as from the original ones.
        let corpus = ParallelCorpus(pairs: (0..<40).map { (source: "s\($0)", target: "t\($0)") }, description: "numbers")
        let a = corpus.split(validationFraction: o.validationFraction, seed: o.seed),
            b = corpus.split(validationFraction: saved.validationFraction, seed: saved.seed)
        #expect(a.validation.pairs.map(\.source) == b.validation.pairs.map(\.source) && b.validation.pairs.count == 8)
        let old = try JSONDecoder().decode(TrainOptions.self, from: Data(#"{"batch_size": 4, "seed": 3}"#.utf8))
        #expect(old.validationFraction == 0.05 && old.batchSize == 4 && old.seed == 3)
    }

    // MARK: GPT, cosine schedule with clipping, resumed from a run folder

    static func gpt(steps: Int, lr: Float = 3e-3, onNonFinite: NonFinitePolicy = .stop) throws -> Trainer<GPTTask> {
        let text = GPTTrainingTests.text
        let tok = try TextTokenizer(characters: text)
        let ids = try tok.encode(text)
        let model = try GPTModel(
            config: GPTConfig(vocabSize: tok.vocabularySize, contextLength: 16, dModel: 32, layers: 2, heads: 4), seed: 1)
        return try gptTrainer(model, tok, ids, steps: steps, lr: lr, onNonFinite: onNonFinite)
    }

    static func gptTrainer(
        _ model: GPTModel, _ tok: TextTokenizer, _ ids: [Int], steps: Int, lr: Float = 3e-3,
        onNonFinite: NonFinitePolicy = .stop
    ) throws -> Trainer<GPTTask> {
        let split = ids.count * 9 / 10
        let task = try GPTTask(
            model: model, tokenizer: tok, train: Array(ids[..<split]), validation: Array(ids[split...]),
            batchSize: 8, blockSize: 16, evalBatches: 2, seed: 3)
        var o = TrainOptions()
        o.batchSize = 8; o.maxSteps = steps; o.schedule = "cosine"; o.learningRate = lr; o.warmup = 3
        o.dropout = 0; o.labelSmoothing = 0; o.clip = 0.5; o.evalEvery = 5; o.logEvery = 1000; o.checkpointEvery = 2
        o.onNonFinite = onNonFinite.rawValue
        let t = try Trainer(task: task, options: o)
        t.faultInjection = nil
        return t
    }

    static func resumedGPT(_ path: URL) throws -> Trainer<GPTTask> {
        let ck = try Checkpoint.resolve(path.path)
        let model = try GPTCheckpoint.loadHuggingFace(ck)
        let tok = try TextTokenizer.load(ck.appendingPathComponent("tokenizer.json"))
        let state = try JSONDecoder().decode(TrainState.self, from: Data(contentsOf: ck.appendingPathComponent("state.json")))
        let o = try #require(state.options)
        let t = try gptTrainer(
            model, tok, try tok.encode(GPTTrainingTests.text), steps: o.maxSteps,
            onNonFinite: NonFinitePolicy(rawValue: o.onNonFinite) ?? .stop)
        try t.resume(from: ck, state: state)
        return t
    }

    @Test func gptResumesBitForBitFromTheRunFolder() throws {
        let ref = Self.tempDir("gref"), vic = Self.tempDir("gvic")
        defer { for d in [ref, vic] { try? FileManager.default.removeItem(at: d) } }
        let full = try Self.gpt(steps: 14)
        full.output = ref
        try full.run(log: { _ in })
        let first = try Self.gpt(steps: 14)
        first.output = vic; first.stopAtStep = 7
        try first.run(log: { _ in })
        let second = try Self.resumedGPT(vic)
        #expect(second.state.step == 7)
        second.output = vic
        try second.run(log: { _ in })
        #expect(second.state.history == full.state.history)
        #expect(second.task.model.parameterSet() == full.task.model.parameterSet())
        #expect(try Self.text(vic.appendingPathComponent("loss.csv")) == (try Self.text(ref.appendingPathComponent("loss.csv"))))
        let a = try Data(contentsOf: Checkpoint.resolve(vic.path).appendingPathComponent("model.safetensors"))
        let b = try Data(contentsOf: Checkpoint.resolve(ref.path).appendingPathComponent("model.safetensors"))
        #expect(a == b, "the final weights files differ")
    }

    /// The same run on 1 thread and on 2 gives the same bits: every kernel's result is independent of the
    /// thread count (GEMM splits rows or columns; the row reductions split by the work), so a run resumed
    /// on a machine with another core count stays exact, and tests that change `Gemm.threads` cannot
    /// disturb another test's bit-for-bit comparison.
    @Test func gptTrainsToTheSameBitsOnOneThreadAndTwo() throws {
        func run(threads: Int) throws -> Trainer<GPTTask> {
            let saved = Gemm.threads
            Gemm.threads = threads
            defer { Gemm.threads = saved }
            let t = try Self.gpt(steps: 6)
            try t.run(log: { _ in })
            return t
        }
        let one = try run(threads: 1), two = try run(threads: 2)
        #expect(one.state.history.map(\.loss.bitPattern) == two.state.history.map(\.loss.bitPattern))
        let a = one.task.model.parameterSet(), b = two.task.model.parameterSet()
        let differ = a.names.filter { a[$0] != b[$0] }
        #expect(differ.isEmpty, "tensors that differ between 1 and 2 threads: \(differ)")
    }

    // MARK: Checkpoint folders after a kill

    @Test func resumePicksTheNewestCompleteCheckpointAndLeftoversAreRemoved() throws {
        let dir = Self.tempDir("ck")
        defer { try? FileManager.default.removeItem(at: dir) }
        let t = try Self.gpt(steps: 6)
        t.output = dir
        try t.run(log: { _ in })
        let fm = FileManager.default
        let ck = dir.appendingPathComponent("checkpoints")
        #expect(try fm.contentsOfDirectory(atPath: ck.path).sorted() == ["step-0000002", "step-0000004", "step-0000006"])
        // Killed while writing step 8: a half-written temporary folder. Resume ignores it; the next save removes it.
        try fm.createDirectory(at: ck.appendingPathComponent(".tmp-step-0000008-99999"), withIntermediateDirectories: true)
        try Data("partial".utf8).write(to: ck.appendingPathComponent(".tmp-step-0000008-99999/model.safetensors"))
        #expect(try Checkpoint.resolve(dir.path).lastPathComponent == "step-0000006")
        // Killed after renaming step 6 into place but before `latest` moved: the complete step 6 is newer.
        try Data("checkpoints/step-0000004\n".utf8).write(to: dir.appendingPathComponent("latest"))
        #expect(try Checkpoint.resolve(dir.path).lastPathComponent == "step-0000006")
        // No `latest` at all (killed before the first one was written).
        try fm.removeItem(at: dir.appendingPathComponent("latest"))
        #expect(try Checkpoint.resolve(dir.path).lastPathComponent == "step-0000006")
        #expect(Checkpoint.removeLeftovers(dir) == 1)
        #expect(try fm.contentsOfDirectory(atPath: ck.path).sorted() == ["step-0000002", "step-0000004", "step-0000006"])
        // A new run started (without resuming) in the same folder: its first checkpoint removes the old
        // run's later ones, so they cannot be taken for the newest.
        let fresh = try Self.gpt(steps: 2)
        fresh.output = dir
        try fresh.run(log: { _ in })
        #expect(try fm.contentsOfDirectory(atPath: ck.path).sorted() == ["step-0000002"])
        #expect(try Checkpoint.resolve(dir.path).lastPathComponent == "step-0000002")
    }
}

@Suite struct NonFiniteGuardTests {
    @Test func parameterNamesAreDescribedByLayer() {
        #expect(NonFinite.describe("h.1.mlp.c_fc.weight") == "layer 1, MLP")
        #expect(NonFinite.describe("h.0.attn.c_attn.bias") == "layer 0, attention")
        #expect(NonFinite.describe("h.3.ln_2.weight") == "layer 3, layer norm")
        #expect(NonFinite.describe("ln_f.bias") == "final layer norm")
        #expect(NonFinite.describe("wte.weight") == "token embedding")
        #expect(NonFinite.describe("decoder.layers.2.cross_attn.w_q") == "decoder layer 2, cross-attention")
        #expect(NonFinite.describe("encoder.layers.0.ffn.w1") == "encoder layer 0, MLP")
        #expect(NonFinite.describe("encoder.norm.gamma") == "final layer norm")
    }

    /// `stop`: the error names the step, the tensor and its layer; nothing of the bad step is applied
    /// or saved, and `latest` stays at the last good checkpoint.
    @Test func stopNamesTheStepAndTheLayerAndSavesNothingBad() throws {
        let dir = ExactResumeTests.tempDir("nan-stop")
        defer { try? FileManager.default.removeItem(at: dir) }
        let t = try ExactResumeTests.gpt(steps: 10)
        t.output = dir
        t.faultInjection = FaultInjection(poisonStep: 5, parameter: "h.1.mlp.c_fc.weight")
        var message = ""
        do { try t.run(log: { _ in }); Issue.record("expected the run to stop") } catch let e as TrainingError { message = e.message }
        #expect(message.hasPrefix("step 5: gradient of h.1.mlp.c_fc.weight (layer 1, MLP) is NaN (1 of "), "\(message)")
        #expect(message.contains("stopped"))
        #expect(t.state.step == 4)
        #expect(NonFinite.first(in: t.task.params, layout: t.task.layout) == nil)
        #expect(try Checkpoint.resolve(dir.path).lastPathComponent == "step-0000004")
        // The last good checkpoint resumes (without the fault) and finishes.
        let r = try ExactResumeTests.resumedGPT(dir)
        r.output = dir
        try r.run(log: { _ in })
        #expect(r.state.step == 10)
        #expect(NonFinite.first(in: r.task.params, layout: r.task.layout) == nil)
    }

    /// `skip`: the poisoned step leaves weights and moments untouched, is logged and counted, and the
    /// run goes on to finite weights.
    @Test func skipLeavesWeightsAndMomentsUntouchedAndContinues() throws {
        let dir = ExactResumeTests.tempDir("nan-skip")
        defer { try? FileManager.default.removeItem(at: dir) }
        let t = try ExactResumeTests.gpt(steps: 10, onNonFinite: .skip)
        t.output = dir
        t.faultInjection = FaultInjection(poisonStep: 5, parameter: "h.0.attn.c_attn.weight", value: .infinity)
        t.stopAtStep = 4
        try t.run(log: { _ in })
        func snapshot(_ b: FlatBuffer) -> [Float] { Array(UnsafeBufferPointer(start: b.pointer, count: b.count)) }
        let before = (snapshot(t.task.params), snapshot(t.optimizer.m), snapshot(t.optimizer.v), t.optimizer.step)
        t.stopAtStep = 5
        var lines: [String] = []
        try t.run(log: { lines.append($0) })
        #expect(t.state.step == 5)
        #expect(snapshot(t.task.params) == before.0)
        #expect(snapshot(t.optimizer.m) == before.1)
        #expect(snapshot(t.optimizer.v) == before.2)
        #expect(t.optimizer.step == before.3)
        #expect(
            lines.contains {
                $0.hasPrefix("step 5: gradient of h.0.attn.c_attn.weight (layer 0, attention) is +Inf") && $0.contains("skipped")
            }, "\(lines)")
        t.stopAtStep = nil
        lines = []
        try t.run(log: { lines.append($0) })
        #expect(t.state.step == 10)
        #expect(t.state.skippedSteps == [5])
        #expect(t.state.history.map(\.step) == [1, 2, 3, 4, 6, 7, 8, 9, 10])
        #expect(t.optimizer.step == 9)
        #expect(NonFinite.first(in: t.task.params, layout: t.task.layout) == nil)
        #expect(lines.contains { $0.contains("1 skipped") }, "progress lines: \(lines)")
        #expect(lines.contains { $0.hasPrefix("skipped 1 step(s)") }, "\(lines)")
        // The skip is in the checkpoint's state.
        let state = try JSONDecoder().decode(
            TrainState.self, from: Data(contentsOf: Checkpoint.resolve(dir.path).appendingPathComponent("state.json")))
        #expect(state.skippedSteps == [5])
    }

    /// A learning rate so large that the weights blow up: every later step is non-finite, and `skip`
    /// gives up after `maxConsecutiveSkips` in a row.
    @Test func skipGivesUpAfterTooManyConsecutiveNonFiniteSteps() throws {
        let t = try ExactResumeTests.gpt(steps: 40, lr: 1e30, onNonFinite: .skip)
        var message = ""
        do { try t.run(log: { _ in }); Issue.record("expected the run to stop") } catch let e as TrainingError { message = e.message }
        #expect(message.contains("\(NonFinite.maxConsecutiveSkips) consecutive steps"), "\(message)")
        #expect(t.state.skippedSteps?.count == NonFinite.maxConsecutiveSkips)
    }

    /// With data parallelism the poisoned gradient of one rank reaches every rank through the
    /// all-reduce, so all ranks skip the same step and keep identical weights.
    @Test func allRanksSkipTheSameStep() throws {
        let ranks = DataParallelTests.onRanks(2) { g -> ([Int], [Float]) in
            let t = try ExactResumeTests.gpt(steps: 6, onNonFinite: .skip)
            t.group = g
            t.faultInjection = FaultInjection(poisonStep: 3)  // applied on rank 0 only
            try t.run(log: { _ in })
            return (t.state.skippedSteps ?? [], Array(UnsafeBufferPointer(start: t.task.params.pointer, count: t.task.params.count)))
        }
        let r0 = try ranks[0].get(), r1 = try ranks[1].get()
        #expect(r0.0 == [3] && r1.0 == [3])
        #expect(r0.1 == r1.1)
    }

    @Test func checkpointsRefuseNonFiniteWeightsAndLoadingNamesTheTensor() throws {
        let dir = ExactResumeTests.tempDir("nan-ck")
        defer { try? FileManager.default.removeItem(at: dir) }
        let t = try ExactResumeTests.gpt(steps: 2)
        t.output = dir
        try t.run(log: { _ in })
        let good = try Checkpoint.resolve(dir.path)
        let e = try #require(t.task.layout.entry("h.1.ln_2.bias"))
        t.task.params.pointer[e.offset + 3] = .nan
        var message = ""
        do { try t.saveCheckpoint(dir) } catch let err as TrainingError { message = err.message }
        #expect(message.contains("refusing to save") && message.contains("h.1.ln_2.bias (layer 1, layer norm)"), "\(message)")
        #expect(try Checkpoint.resolve(dir.path) == good)
        // A weights file with a NaN in it (written by something else) does not load.
        let url = good.appendingPathComponent("model.safetensors")
        let file = try Safetensors.read(url)
        let tensors = try file.names.map { name -> (String, Tensor) in
            var x = try file.tensor(name)
            if name.hasSuffix("h.0.mlp.c_proj.weight") { x.data[0] = -.infinity }
            return (name, x)
        }
        try Safetensors.write(tensors, metadata: file.metadata, to: url)
        #expect { try GPTCheckpoint.loadHuggingFace(good) } throws: { error in
            "\(error)".contains("h.0.mlp.c_proj.weight") && "\(error)".contains("non-finite")
        }
    }
}
