import ArgumentParser
import Foundation
import TensorKit
import TransformerKit
import Tokenizers
import ModelFiles

struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Sentence embeddings from a BERT-family sentence-transformers model (all-MiniLM-L6-v2).",
        discussion: """
            --model is a sentence-transformers folder (config.json, model.safetensors, vocab.txt, and \
            optionally modules.json, 1_Pooling/, sentence_bert_config.json); scripts/fetch-minilm.sh DIR \
            downloads all-MiniLM-L6-v2 into DIR. Sentences come from the arguments, or from --file (one \
            per line; "-" is standard input), or from standard input when neither is given. Every line \
            is a sentence, empty ones included (an empty sentence is embedded as [CLS] [SEP], as \
            sentence-transformers does), so output row i belongs to input line i. Control characters \
            are dropped by the tokenizer; sentences longer than the model's max_seq_length (256 word \
            pieces with [CLS] and [SEP] for all-MiniLM-L6-v2) are truncated.
            Output: text is one tab-separated vector per line; json is {"model", "dimension", \
            "max_length", "sentences", "tokens", "embeddings"}. With --similarity, the cosine-similarity \
            matrix instead (a table, or {"sentences", "similarity"} in json).
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

    @Option(help: "A sentence-transformers / Hugging Face BERT folder.") var model: String
    @Option(help: "Read sentences from this file, one per line (\"-\" for standard input).") var file: String?
    @Option(help: "Output format: text (TSV) or json.") var format: Format = .text
    @Flag(help: "Print the cosine-similarity matrix of the sentences instead of the vectors.") var similarity = false
    @Flag(help: "Print each sentence's word pieces and ids instead of the vectors.") var tokens = false
    @Option(help: "Sentences per batch (padded to the longest in the batch; sentences are sorted by length).") var batchSize: Int = 32
    @Option(help: "Tokens per sentence, [CLS] and [SEP] included (default: the model's max_seq_length).") var maxLength: Int?
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Flag(help: "Report load time and sentences/s on standard error.") var timing = false
    @Argument(help: "Sentences to embed.") var sentences: [String] = []

    func run() throws {
        do {
            guard batchSize >= 1 else { throw BERTCheckpointError("--batch-size must be at least 1") }
            if let threads {
                guard threads >= 1 else { throw BERTCheckpointError("--threads must be at least 1") }
                Gemm.threads = threads
            }
            let input = try readSentences()
            guard !input.isEmpty else {
                throw BERTCheckpointError("no sentences: give them as arguments, with --file, or on standard input")
            }
            let t0 = Date()
            let encoder = try SentenceEncoder(directory: URL(fileURLWithPath: model, isDirectory: true), maxLength: maxLength)
            let loaded = Date()
            if tokens { return printTokens(input, encoder) }
            let vectors = encoder.encode(input, batchSize: batchSize)
            if timing {
                let s = Date().timeIntervalSince(loaded), pieces = input.reduce(0) { $0 + encoder.tokenize($1).count }
                FileHandle.standardError.write(
                    Data(
                        String(
                            format: "loaded in %.2f s; %d sentences (%d tokens) in %.3f s: %.1f sentences/s, batch %d, %d thread(s)\n",
                            loaded.timeIntervalSince(t0), input.count, pieces, s, Double(input.count) / s, batchSize, Gemm.threads
                        ).utf8))
            }
            if similarity {
                let m = vectors.map { a in vectors.map { b in cosine(a, b) } }
                format == .json ? printSimilarityJSON(input, m) : printSimilarityTable(input, m)
            } else {
                format == .json ? printJSON(input, vectors, encoder) : printTSV(vectors)
            }
        } catch let e as BERTCheckpointError { fail(e.message) } catch let e as SafetensorsError { fail(e.description) } catch let e
            as WordPieceError
        {
            fail(e.message)
        }
    }

    func readSentences() throws -> [String] {
        if !sentences.isEmpty {
            guard file == nil else { throw BERTCheckpointError("give sentences either as arguments or with --file, not both") }
            return sentences
        }
        let data: Data
        let name: String
        if let file, file != "-" {
            name = file
            do { data = try Data(contentsOf: URL(fileURLWithPath: file)) } catch {
                throw BERTCheckpointError("cannot read \(file)\(FileManager.default.fileExists(atPath: file) ? "" : ": no such file")")
            }
        } else {
            if file == nil && isatty(0) != 0 {
                throw BERTCheckpointError("no sentences: give them as arguments, with --file, or on standard input")
            }
            name = "standard input"
            data = FileHandle.standardInput.readDataToEndOfFile()
        }
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }  // the file's final newline ends the last line
        return try lines.enumerated().map { i, raw in
            let bytes = raw.last == UInt8(ascii: "\r") ? raw.dropLast() : raw
            guard let s = String(bytes: bytes, encoding: .utf8) else {
                throw BERTCheckpointError("\(name), line \(i + 1): not valid UTF-8")
            }
            return s
        }
    }

    func cosine(_ a: [Float], _ b: [Float]) -> Float {
        var dot: Float = 0, na: Float = 0, nb: Float = 0
        for i in a.indices { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i] }
        return na > 0 && nb > 0 ? dot / (na.squareRoot() * nb.squareRoot()) : 0
    }

    func printTSV(_ vectors: [[Float]]) {
        var out = ""
        for v in vectors { out += v.map { "\($0)" }.joined(separator: "\t") + "\n" }
        FileHandle.standardOutput.write(Data(out.utf8))
    }

    /// What `--format json` prints for embeddings.
    struct EmbeddingsJSON: Encodable {
        var model: String
        var dimension: Int
        var maxLength: Int
        var sentences: [String]
        var tokens: [Int]
        var embeddings: [[Float]]
        enum CodingKeys: String, CodingKey { case model, dimension, maxLength = "max_length", sentences, tokens, embeddings }
    }

    /// What `--format json` prints for `--similarity`.
    struct SimilarityJSON: Encodable {
        var sentences: [String]
        var similarity: [[Double]]
    }

    /// One JSON document on standard output. JSONEncoder refuses NaN and infinities, so a broken model
    /// gives an error here rather than `nan` in a file that JSON readers reject.
    func writeJSON<T: Encodable>(_ value: T) {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            var data = try e.encode(value)
            data.append(0x0A)
            FileHandle.standardOutput.write(data)
        } catch {
            fail("a value is not a finite number (NaN or infinity), which JSON cannot hold: the model's weights are probably broken")
        }
    }

    func printJSON(_ input: [String], _ vectors: [[Float]], _ encoder: SentenceEncoder) {
        writeJSON(
            EmbeddingsJSON(
                model: model, dimension: encoder.model.config.dModel, maxLength: encoder.maxLength, sentences: input,
                tokens: input.map { encoder.tokenize($0).count }, embeddings: vectors))
    }

    func printSimilarityJSON(_ input: [String], _ m: [[Float]]) {
        // Six decimals, as the table shows four.
        writeJSON(SimilarityJSON(sentences: input, similarity: m.map { $0.map { (Double($0) * 1e6).rounded() / 1e6 } }))
    }

    /// Rows and columns numbered, the sentences listed below the table.
    func printSimilarityTable(_ input: [String], _ m: [[Float]]) {
        let w = max(String(input.count).count, 1)
        func pad(_ s: String, _ n: Int) -> String { String(repeating: " ", count: max(0, n - s.count)) + s }
        var out = pad("", w) + m.indices.map { pad(String($0 + 1), 8) }.joined() + "\n"
        for (i, row) in m.enumerated() { out += pad(String(i + 1), w) + row.map { pad(String(format: "%.4f", $0), 8) }.joined() + "\n" }
        out += "\n"
        for (i, s) in input.enumerated() {
            let shown = s.unicodeScalars.map { $0.properties.generalCategory == .control ? " " : String($0) }.joined()
            out += pad(String(i + 1), w) + ": " + (shown.count > 100 ? String(shown.prefix(99)) + "…" : shown) + "\n"
        }
        FileHandle.standardOutput.write(Data(out.utf8))
    }

    func printTokens(_ input: [String], _ encoder: SentenceEncoder) {
        var out = ""
        for s in input {
            let ids = encoder.tokenize(s)
            if format == .json {
                out +=
                    "{\"sentence\": \(jsonString(s)), \"ids\": [" + ids.map(String.init).joined(separator: ", ") + "], \"tokens\": ["
                    + encoder.tokenizer.tokens(ids).map(jsonString).joined(separator: ", ") + "]}\n"
            } else {
                out += zip(encoder.tokenizer.tokens(ids), ids).map { "\($0)(\($1))" }.joined(separator: " ") + "\n"
            }
        }
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}
