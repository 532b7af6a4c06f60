import Explorer
import Foundation
import TensorKit
import Training
import TransformerKit
import Walkthrough
import Tokenizers
import ModelFiles

/// A checkpoint (a GPT, ours or Hugging Face's, or an encoder–decoder from `transformer train`) as the
/// explorer's model: traces through the walkthrough machinery, completions through the fast decoders.
///
/// `@unchecked Sendable`: the generator and translator keep scratch buffers, so one instance must not
/// run two calls at once. `transformer serve` calls it through an actor, one call at a time.
final class CheckpointExplorer: ExplorerModel, @unchecked Sendable {
    enum Loaded {
        case gpt(GPTModel, TextTokenizer?, URL)
        case seq2seq(Checkpoint.Loaded, Translator)
    }

    let loaded: Loaded
    let summary: String
    let lossCurveSVG: String?

    init(path: String) throws {
        do {
            let dir = try Checkpoint.resolve(path)
            // A run folder holds loss.svg; a checkpoint inside it (run/checkpoints/step-N) is two levels down.
            let runs = [URL(fileURLWithPath: path), dir.deletingLastPathComponent().deletingLastPathComponent()]
            lossCurveSVG = runs.lazy.compactMap { try? String(contentsOf: $0.appendingPathComponent("loss.svg"), encoding: .utf8) }.first
            if Self.isSeq2Seq(dir) {
                let l = try Checkpoint.load(dir.path)
                let c = l.config.model
                loaded = .seq2seq(l, Translator(model: l.model, codec: l.codec, maxBeam: 1))
                summary =
                    """
                    Encoder–decoder from \(dir.path): d_model \(c.dModel), \(c.heads) heads, \
                    \(c.encoderLayers)+\(c.decoderLayers) layers, vocabulary \(l.codec.vocabularySize) (\(l.codec.kind.rawValue))
                    """
            } else {
                let m = try GPTCheckpoint.loadHuggingFace(dir)
                let tok = try? TextTokenizer.load(directory: dir)
                guard tok != nil else {
                    throw WalkthroughError(
                        "\(dir.path) has no tokenizer (tokenizer.json, or vocab.json + merges.txt): the explorer needs one to read text")
                }
                let c = m.config
                loaded = .gpt(m, tok, dir)
                summary =
                    """
                    GPT from \(dir.path): d_model \(c.dModel), \(c.heads) heads, \(c.layers) layers, context \(c.contextLength), \
                    vocabulary \(c.vocabSize)
                    """
            }
        } catch let e as GPTCheckpointError { throw WalkthroughError(e.message) } catch let e as TrainingError {
            throw WalkthroughError(e.message)
        } catch let e as TokenizerError { throw WalkthroughError(e.message) } catch let e as SafetensorsError {
            throw WalkthroughError(e.description)
        } catch let e as ConfigError { throw WalkthroughError(e.message) }
    }

    /// Our encoder–decoder checkpoints say so in config.json (`"format": "transformer-seq2seq/1"`); anything else is read as a GPT.
    static func isSeq2Seq(_ dir: URL) -> Bool {
        guard let data = FileManager.default.contents(atPath: dir.appendingPathComponent("config.json").path),
            let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return false }
        return (obj["format"] as? String)?.hasPrefix("transformer-seq2seq") == true
    }

    var kind: ExplorerModelKind {
        if case .gpt = loaded { return .gpt }
        return .seq2seq
    }

    var maxInputTokens: Int {
        switch loaded {
        case .gpt(let m, _, _): return m.config.contextLength
        case .seq2seq(let l, _): return l.config.model.contextLength
        }
    }

    func tokenCount(_ text: String) throws -> Int {
        switch loaded {
        case .gpt(_, let tok, _):
            do { return try tok?.encode(text).count ?? 0 } catch let e as TrainingError { throw WalkthroughError(e.message) } catch let e
                as TokenizerError
            { throw WalkthroughError(e.message) }
        case .seq2seq(let l, _): return l.codec.encode(text).count
        }
    }

    func trace(_ text: String) throws -> TraceDocument {
        switch loaded {
        case .gpt(let m, let tok, let dir):
            return try gptCheckpointDocument(model: m, tokenizer: tok, directory: dir, prompt: text, ids: nil)
        case .seq2seq(let l, let t): return try seq2seqDocument(l, t, text)
        }
    }

    func complete(_ text: String, maxTokens: Int) throws -> String {
        switch loaded {
        case .gpt(let m, let tok, _):
            guard let tok else { throw WalkthroughError("no tokenizer") }
            var ids: [Int]
            do { ids = try tok.encode(text) } catch let e as TrainingError { throw WalkthroughError(e.message) } catch let e
                as TokenizerError
            { throw WalkthroughError(e.message) }
            if ids.isEmpty { ids = [0] }
            let out = GPTGenerator(model: m).generate(prompt: ids, maxNewTokens: maxTokens, sampling: SamplingOptions(temperature: 0))
            return tok.decode(out)
        case .seq2seq(_, let t):
            return t.translate(text)
        }
    }

    /// A token as a matrix label: whitespace made visible, a piece of a UTF-8 character as its bytes (`<E9>`).
    static func label(_ id: Int, _ codec: SentenceCodec) -> String {
        guard let bpe = codec.bpe else { return visible(codec.tokenLabel(id)) }
        let bytes = bpe.decodeBytes([id])
        if let s = String(validating: bytes, as: UTF8.self), !s.isEmpty { return visible(s) }
        return bytes.isEmpty ? visible(codec.tokenLabel(id)) : bytes.map { String(format: "<%02X>", $0) }.joined()
    }

    /// The encoder–decoder on `text` and its own greedy translation: the decoder is fed `<start>` and
    /// the translation (teacher forcing on the model's output), so each row's prediction is the next word
    /// it chose, and the last row predicts what follows the translation (`<end>` when it is done).
    func seq2seqDocument(_ l: Checkpoint.Loaded, _ t: Translator, _ text: String) throws -> TraceDocument {
        let c = l.config.model, codec = l.codec
        let src = codec.encode(text)
        guard !src.isEmpty else { throw WalkthroughError("the text gives no tokens") }
        guard src.count <= c.contextLength else {
            throw WalkthroughError("the text makes \(src.count) tokens; the model's positional table has \(c.contextLength)")
        }
        var out = t.greedy(src)
        if let end = out.firstIndex(of: codec.endID) { out = Array(out[..<end]) }
        out = Array(out.prefix(c.contextLength - 1))
        let decIn = [codec.startID] + out, decOut = out + [codec.endID]
        let vocab = (0..<codec.vocabularySize).map { Self.label($0, codec) }
        do {
            let model = try TracedEncoderDecoder(config: c, parameters: l.model.parameterSet())
            let tracer = Tracer()
            _ = try model.forward(
                source: src, target: decIn, targets: decOut, sourceTokens: src.map { vocab[$0] },
                targetTokens: decIn.map { vocab[$0] }, vocabularyTokens: vocab, trace: tracer)
            let translation = codec.decode(out)
            let notes = [
                "Weights from \(l.directory.path).",
                """
                The decoder is fed <start> and the model's own greedy translation (\(translation)), so each row predicts the \
                token that follows it; the loss is against that translation followed by <end>.
                """
            ]
            return TraceDocument(
                title: "Transformer explained: \(text) → \(translation)", config: c, conventions: c.conventions,
                corpus: [], vocabulary: vocab, corpusTokenCount: vocab.count, source: text, target: translation,
                notes: notes, steps: tracer.steps, parameters: tracer.parameters)
        } catch let e as ConfigError { throw WalkthroughError(e.message) }
    }
}
