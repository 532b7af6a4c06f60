import Foundation
import TensorKit
import Training
import TransformerKit
import Walkthrough
import Tokenizers
import ModelFiles

/// `transformer walkthrough --model gpt`: a tiny seeded GPT on the corpus, or a checkpoint.
extension WalkthroughOptions {
    func gptDocument() throws -> TraceDocument {
        let seq2seqOnly: [(String, Bool)] = [
            ("--source", source != nil), ("--target", target != nil), ("--norm", norm != nil), ("--activation", activation != nil),
            ("--positions", positions != nil), ("--embeddings", embeddings != nil), ("--scale-embeddings", scaleEmbeddings),
            ("--d-k", dK != nil), ("--weights", weights != nil), ("--train", train)
        ]
        for (flag, given) in seq2seqOnly where given {
            throw WalkthroughError(
                """
                \(flag) is for the encoder–decoder walkthrough; a GPT is pre-norm, GELU, learned positions and tied output by \
                design (use --prompt for its text)
                """
            )
        }
        if let checkpoint { return try checkpointDocument(checkpoint) }
        if ids != nil {
            throw WalkthroughError("--ids needs --checkpoint (the default model's vocabulary comes from the corpus: use --prompt)")
        }
        let base = try setup()  // corpus and tokenizer, read and checked as for the encoder–decoder
        var g = GPTWalkthroughSetup()
        g.corpus = base.corpus
        g.tokenizer = base.tokenizer
        g.prompt = prompt
        g.seed = seed
        if let dModel { g.config.dModel = dModel }
        if let heads { g.config.heads = heads }
        if let layers { g.config.layers = layers }
        if let dFF { g.config.explicitDFF = dFF }
        if let maxLength { g.config.contextLength = maxLength }
        return try g.run()
    }

    /// A checkpoint folder (ours or Hugging Face's) and its tokenizer; the text from --prompt or --ids.
    func checkpointDocument(_ path: String) throws -> TraceDocument {
        let sizes: [(String, Bool)] = [
            ("--d-model", dModel != nil), ("--heads", heads != nil), ("--layers", layers != nil),
            ("--d-ff", dFF != nil), ("--max-length", maxLength != nil), ("--corpus", corpus != nil), ("--text", text != nil)
        ]
        for (flag, given) in sizes where given {
            throw WalkthroughError("\(flag) cannot be used with --checkpoint: the checkpoint fixes the model and its vocabulary")
        }
        if prompt != nil && ids != nil { throw WalkthroughError("give either --prompt or --ids, not both") }
        do {
            let dir = try Checkpoint.resolve(path)
            let model = try GPTCheckpoint.loadHuggingFace(dir)
            let tok = try? TextTokenizer.load(directory: dir)
            return try gptCheckpointDocument(model: model, tokenizer: tok, directory: dir, prompt: prompt, ids: ids)
        } catch let e as GPTCheckpointError { throw WalkthroughError(e.message) } catch let e as TrainingError {
            throw WalkthroughError(e.message)
        } catch let e as TokenizerError { throw WalkthroughError(e.message) } catch let e as SafetensorsError {
            throw WalkthroughError(e.description)
        } catch let e as ConfigError { throw WalkthroughError(e.message) }
    }
}

/// The trace of a loaded GPT on a text (`prompt`, default a newline) or on token ids (`ids`, comma-separated);
/// shared by `walkthrough --checkpoint`, `explain` and `serve`. A text longer than the context keeps its end.
func gptCheckpointDocument(model: GPTModel, tokenizer tok: TextTokenizer?, directory dir: URL, prompt: String?, ids: String?) throws
    -> TraceDocument
{
    do {
        let c = model.config
        var notes = ["Weights from \(dir.path) (\(model.layout.total) parameters)."]
        let tokenIDs: [Int], text: String
        if let ids {
            tokenIDs = try ids.split(separator: ",", omittingEmptySubsequences: false).map {
                let p = $0.trimmingCharacters(in: .whitespaces)
                guard let i = Int(p) else { throw WalkthroughError("--ids: \"\(p)\" is not an integer token id") }
                return i
            }
            if let i = tokenIDs.firstIndex(where: { $0 < 0 || $0 >= min(c.vocabSize, tok?.vocabularySize ?? c.vocabSize) }) {
                throw WalkthroughError(
                    """
                    --ids: token \(tokenIDs[i]) (position \(i)) is outside the vocabulary \
                    0..<\(min(c.vocabSize, tok?.vocabularySize ?? c.vocabSize))
                    """
                )
            }
            text = tok.map { $0.decode(tokenIDs) } ?? tokenIDs.map(String.init).joined(separator: " ")
        } else {
            guard let tok else {
                throw WalkthroughError(
                    "\(dir.path) has no tokenizer (tokenizer.json, or vocab.json + merges.txt): give token ids with --ids 5,17,300")
            }
            text = prompt ?? "\n"
            do { tokenIDs = try tok.encode(text) } catch let e as TrainingError {
                throw WalkthroughError("the text: \(e.message)")
            } catch let e as TokenizerError { throw WalkthroughError("the text: \(e.message)") }
            guard !tokenIDs.isEmpty else { throw WalkthroughError("the text gives no tokens") }
        }
        if let i = tokenIDs.firstIndex(where: { $0 < 0 || $0 >= c.vocabSize }) {
            throw WalkthroughError("token id \(tokenIDs[i]) (position \(i)) is outside the model's vocabulary 0..<\(c.vocabSize)")
        }
        var used = tokenIDs
        if used.count > c.contextLength {
            notes.append("The text has \(used.count) tokens; only its last \(c.contextLength) fit the context.")
            used = Array(used.suffix(c.contextLength))
        }
        let vocab = (0..<c.vocabSize).map { tokenLabel($0, tok) }
        notes.append(
            tok.map {
                """
                Tokenizer: \($0.kind.rawValue), \($0.vocabularySize) tokens; spaces are shown as ␣, newlines as ↵, control \
                characters and pieces of a UTF-8 character as their bytes (<E9>).
                """
            } ?? "No tokenizer in the folder: tokens are labelled by id.")
        return try GPTWalkthrough.document(
            model: TracedGPT(model), ids: used, tokens: used.map { vocab[$0] }, vocabulary: vocab,
            corpusTokenCount: c.vocabSize, corpus: [], text: text, notes: notes)
    } catch let e as GPTCheckpointError { throw WalkthroughError(e.message) } catch let e as TrainingError {
        throw WalkthroughError(e.message)
    } catch let e as TokenizerError { throw WalkthroughError(e.message) } catch let e as SafetensorsError {
        throw WalkthroughError(e.description)
    } catch let e as ConfigError { throw WalkthroughError(e.message) }
}

/// A token as a matrix label: its text with whitespace and control characters made visible, or its
/// bytes (`<E9>`) when it is only part of a UTF-8 character; the id when there is no tokenizer.
func tokenLabel(_ id: Int, _ tok: TextTokenizer?) -> String {
    guard let tok else { return "#\(id)" }
    if tok.kind == .char { return id < tok.chars.count ? visible(String(tok.chars[id])) : "#\(id)" }
    guard let bpe = tok.bpe, id < bpe.vocabSize else { return "#\(id)" }
    let bytes = bpe.decodeBytes([id])
    if let s = String(validating: bytes, as: UTF8.self), !s.isEmpty { return visible(s) }
    return bytes.map { String(format: "<%02X>", $0) }.joined()
}

func visible(_ s: String) -> String {
    var out = ""
    for u in s.unicodeScalars {
        switch u {
        case " ": out += "␣"
        case "\n": out += "↵"
        case "\t": out += "⇥"
        case _ where u.properties.generalCategory == .control: out += String(format: "<%02X>", u.value)
        default: out.unicodeScalars.append(u)
        }
    }
    return out
}
