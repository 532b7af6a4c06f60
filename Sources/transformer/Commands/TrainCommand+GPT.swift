import DataParallel
import Foundation
import TensorKit
import Training
import TransformerKit
import Tokenizers

/// `transformer train --model gpt --data FILE`: the same trainer, progress line, checkpoints and loss
/// curve as the encoder–decoder.
extension TrainCommand {
    func trainGPT(_ group: any ProcessGroup) throws {
        let out = URL(fileURLWithPath: output)
        let model: GPTModel, tok: TextTokenizer, options: TrainOptions
        var resumeState: TrainState? = nil, resumeDir: URL? = nil
        guard let data else { throw TrainingError("--model gpt needs --data FILE (a UTF-8 text)") }
        guard let raw = FileManager.default.contents(atPath: data) else { throw TrainingError("\(data): cannot read the file") }
        guard !raw.isEmpty else { throw TrainingError("\(data): the file is empty") }
        if resume {
            let dir = try Checkpoint.resolve(out.path)
            model = try GPTCheckpoint.loadHuggingFace(dir)
            tok = try TextTokenizer.load(dir.appendingPathComponent("tokenizer.json"))
            guard let stateData = FileManager.default.contents(atPath: dir.appendingPathComponent("state.json").path),
                let state = try? JSONDecoder().decode(TrainState.self, from: stateData)
            else { throw TrainingError("\(dir.path): no readable state.json, cannot resume") }
            options = resumedOptions(state.options)
            resumeState = state; resumeDir = dir
            log("resuming \(dir.path) at step \(state.step)")
            if group.rank == 0 {
                let n = Checkpoint.removeLeftovers(out);
                if n > 0 { log("removed \(n) unfinished temporary folder(s) left by an interrupted run") }
            }
        } else {
            options = trainOptions()
            switch tokenizer {
            case "char":
                guard let text = String(data: raw, encoding: .utf8) else {
                    throw TrainingError("\(data): not UTF-8 text (use --tokenizer bpe, which takes any bytes)")
                }
                tok = try TextTokenizer(characters: text)
            case "bpe":
                let text = String(decoding: raw, as: UTF8.self)
                tok = TextTokenizer(
                    bpe: ByteLevelBPE.train(
                        texts: text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init),
                        vocabSize: vocabSize, specialTokens: ["<|endoftext|>"]))
            default: throw TrainingError("--tokenizer must be char or bpe for --model gpt")
            }
            let c = GPTConfig(
                vocabSize: tok.vocabularySize, contextLength: shape.maxLength, dModel: shape.dModel,
                layers: shape.layers, heads: shape.heads, dFF: shape.dFF)
            do { try c.validate() } catch let e as ConfigError { throw TrainingError(e.message) }
            guard let initScheme = GPTConfig.Initialisation(rawValue: initialisation) else {
                throw TrainingError("--initialisation must be gpt2 or normal, not \"\(initialisation)\"")
            }
            model = try GPTModel(config: c, seed: seed, initialisation: initScheme)
        }
        let text = String(decoding: raw, as: UTF8.self)
        let ids = try tok.encode(text)
        let split = Int(Double(ids.count) * (1 - min(options.validationFraction, 0.5)))
        // A resumed run keeps its saved block size (exact resume) unless --block-size is given again.
        let block = options.blockSize > 0 ? options.blockSize : model.config.contextLength
        let task = try GPTTask(
            model: model, tokenizer: tok, train: Array(ids[..<split]), validation: Array(ids[split...]),
            batchSize: options.batchSize, blockSize: block, seed: options.seed)
        let c = model.config
        log(
            """
            text: \(data), \(ids.count) tokens (\(tok.kind.rawValue), vocabulary \(tok.vocabularySize)); train \(split), \
            validation \(ids.count - split)
            """
        )
        log(
            """
            model: GPT, \(c.layers) layers, \(c.heads) heads, d_model \(c.dModel), context \(c.contextLength), block \(block), \
            \(model.layout.total) parameters
            """
        )
        let trainer = try Trainer(task: task, options: options)
        trainer.output = out
        trainer.group = group
        if let timeLimit { trainer.deadline = Date().addingTimeInterval(timeLimit * 60) }
        if let resumeState, let resumeDir { try trainer.resume(from: resumeDir, state: resumeState) }
        log("training: \(trainer.totalSteps) steps of \(options.batchSize)×\(block) tokens")
        if group.rank == 0 { try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true) }
        let start = Date()
        try trainer.run(log: log)
        log(String(format: "done in %.1f s; saved %@/latest · loss curve %@/loss.svg", Date().timeIntervalSince(start), out.path, out.path))
    }
}
