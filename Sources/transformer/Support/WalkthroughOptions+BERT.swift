import Foundation
import TensorKit
import TransformerKit
import Walkthrough
import Tokenizers
import ModelFiles

/// `transformer walkthrough --model bert --checkpoint DIR --prompt "sentence"`: a real BERT-family
/// model, one sentence, every step.
extension WalkthroughOptions {
    func bertDocument() throws -> TraceDocument {
        let notForBERT: [(String, Bool)] = [
            ("--source", source != nil), ("--target", target != nil), ("--norm", norm != nil), ("--activation", activation != nil),
            ("--positions", positions != nil), ("--embeddings", embeddings != nil), ("--scale-embeddings", scaleEmbeddings),
            ("--d-model", dModel != nil), ("--heads", heads != nil), ("--d-k", dK != nil), ("--d-ff", dFF != nil),
            ("--layers", layers != nil),
            ("--weights", weights != nil), ("--train", train), ("--corpus", corpus != nil), ("--text", text != nil), ("--ids", ids != nil)
        ]
        for (flag, given) in notForBERT where given {
            throw WalkthroughError(
                "\(flag) cannot be used with --model bert: the folder fixes the model and its tokenizer (give the sentence with --prompt)")
        }
        guard let checkpoint else {
            throw WalkthroughError(
                """
                --model bert needs --checkpoint DIR, a BERT / sentence-transformers folder (scripts/fetch-minilm.sh DIR downloads \
                all-MiniLM-L6-v2)
                """
            )
        }
        do {
            let encoder = try SentenceEncoder(directory: URL(fileURLWithPath: checkpoint, isDirectory: true), maxLength: maxLength)
            let sentence = prompt ?? "A man is playing a guitar."
            let c = encoder.model.config
            var notes = [
                """
                Weights from \(checkpoint) (\(encoder.model.layout.total) parameters; \(c.layers) layers, \(c.heads) heads, \
                d_model \(c.dModel)).
                """
            ]
            let n = encoder.tokenize(sentence).count
            if n == encoder.maxLength {
                notes.append(
                    "The sentence was cut at \(encoder.maxLength) tokens ([CLS] and [SEP] included), as sentence-transformers cuts it.")
            }
            return try BERTWalkthrough.document(encoder: encoder, text: sentence, notes: notes)
        } catch let e as BERTCheckpointError { throw WalkthroughError(e.message) } catch let e as SafetensorsError {
            throw WalkthroughError(e.description)
        } catch let e as WordPieceError { throw WalkthroughError(e.message) }
    }
}
