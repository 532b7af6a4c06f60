import ArgumentParser
import Foundation
import TensorKit
import TransformerKit
import Training
import Tokenizers

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract:
            "Speed figures: GEMM GFLOP/s, training tokens/s (GPT small, GPT tiny, encoder–decoder), batch-1 generation tokens/s, BPE.",
        discussion: """
            Parts: gemm, gpt-small, gpt-tiny, seq2seq, generate, bpe (default: all), gguf (with --gguf FILE), \
            and gemm-tune.

            gemm: best-of-5 GFLOP/s of three transformer shapes per --threads count; a correctness line per \
            shape and thread count (max |Gemm.fast − Gemm.reference| / max|C|; bench exits non-zero if one \
            is above 1e-5); best and median over --rounds × 10 runs of the four shapes (adding \
            (4096×384)·(384×384)); the reference loop against the fast path on 512×384×384; the \
            micro-kernel's L1-resident peak; and a table of small shapes.

            gemm-tune (minutes, not in the default set): the sweeps that chose the GEMM's knobs — block \
            sizes KC×MC×NC, the small-product threshold, the parallel threshold (resident pool against \
            concurrentPerform), the pool's spin/yield policy, and splitting M against N; each restores the \
            defaults after it.

            Each training figure is the mean over --steps timed steps after 2 warm-up steps (forward, \
            backward, clipping and AdamW, as `transformer train` runs them), with the peak resident memory \
            while that part ran. scripts/bench-vs-pytorch.sh runs the same configurations in PyTorch and \
            prints the ratios.

            --precision fp32,bf16 times the GEMM shapes and the training parts in both (bf16 runs on the \
            AVX-512 BF16 kernel where the CPU has one, else emulated, and the lines say which). gguf: a GGUF \
            model's prompt (512 tokens at once) and batch-1 generation (128 tokens) with its weights as \
            stored, 8-bit and Float32 activations, per --threads count (as `transformer gguf-bench`; \
            scripts/bench-smollm2.sh sets llama.cpp beside it).
            """)

    @Option(help: "Comma-separated parts: gemm, gpt-small, gpt-tiny, seq2seq, generate, bpe, gguf, gemm-tune.")
    var only: String = Self.defaultParts
    static let defaultParts = "gemm,gpt-small,gpt-tiny,seq2seq,generate,bpe"
    @Flag(help: "Only the GEMM figures (same as --only gemm).") var gemmOnly = false
    @Flag(help: "Only the training figures (same as --only gpt-small,gpt-tiny,seq2seq).") var trainOnly = false
    @Option(help: "Timed training steps per config (after 2 warm-up steps).") var steps: Int = 10
    @Option(help: "Thread counts for the GEMM, comma-separated.") var threads: String = "1,2"
    @Option(help: "Contexts for the generation figures, comma-separated.") var contexts: String = "64,256,1024"
    @Option(help: "Rounds of the GEMM throughput table (best and median over rounds × 10 runs).") var rounds: Int = 3
    @Option(help: "bpe: the text to learn a byte-level BPE from and encode, one sentence per line.") var text: String =
        "data/tinyshakespeare.txt"
    @Option(help: "bpe: the vocabulary size to learn.") var vocabSize: Int = 8000
    @Option(help: "Training parts: the precisions to time, comma-separated (fp32, bf16; bf16 is emulated on CPUs without AVX-512 BF16).")
    var precision: String = "fp32"
    @Option(help: "gguf: the .gguf model to time (adds the gguf part; e.g. the one scripts/fetch-smollm2.sh fetches).")
    var gguf: String?

    var precisions: [GemmPrecision] {
        precision.split(separator: ",").compactMap { GemmPrecision(rawValue: $0.trimmingCharacters(in: .whitespaces)) }
    }

    /// What a figure's line adds for its precision: nothing for fp32, " [bf16]" or " [bf16, emulated]".
    static func tag(_ p: GemmPrecision) -> String {
        p == .fp32 ? "" : " [\(p)\(GemmPrecision.bf16Implementation().native ? "" : ", emulated")]"
    }

    static let parts = ["gemm", "gpt-small", "gpt-tiny", "seq2seq", "generate", "bpe", "gguf", "gemm-tune"]

    func validate() throws {
        let asked = only.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
        for p in asked where !Self.parts.contains(p) {
            throw ValidationError("--only: unknown part \"\(p)\" (expected some of \(Self.parts.joined(separator: ", ")))")
        }
        if asked.contains("gguf") && gguf == nil {
            throw ValidationError("--only gguf needs --gguf FILE (scripts/fetch-smollm2.sh .build/models fetches SmolLM2-135M)")
        }
        if let gguf, !FileManager.default.isReadableFile(atPath: gguf) {
            throw ValidationError("--gguf \(gguf): no such readable file")
        }
        if steps < 1 { throw ValidationError("--steps must be at least 1") }
        if rounds < 1 { throw ValidationError("--rounds must be at least 1") }
        if vocabSize <= 256 { throw ValidationError("--vocab-size must be above 256 (the byte tokens)") }
        for p in precision.split(separator: ",", omittingEmptySubsequences: false)
        where GemmPrecision(rawValue: p.trimmingCharacters(in: .whitespaces)) == nil {
            throw ValidationError("--precision: \"\(p)\" is not fp32 or bf16")
        }
        for t in threads.split(separator: ",", omittingEmptySubsequences: false) {
            guard let v = Int(t.trimmingCharacters(in: .whitespaces)), v >= 1 else {
                throw ValidationError("--threads: \"\(t)\" is not a thread count of at least 1")
            }
        }
        for c in contexts.split(separator: ",") {
            guard let v = Int(c), v >= 40 else { throw ValidationError("--contexts: \"\(c)\" is not a context length of at least 40") }
        }
    }

    func run() throws {
        var parts = Set(only.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) })
        if gemmOnly { parts = ["gemm"] }
        if trainOnly { parts = ["gpt-small", "gpt-tiny", "seq2seq"] }
        if gguf != nil && !gemmOnly && !trainOnly && (only == Self.defaultParts || parts.contains("gguf")) { parts.insert("gguf") }
        print(
            "transformer bench · \(ProcessInfo.processInfo.activeProcessorCount) cores · Gemm.threads \(Gemm.threads) · \(Gemm.backend) · \(KernelSet.report) · reproduce: swift run -c release transformer bench --only \(Self.parts.filter(parts.contains).joined(separator: ","))\(precision == "fp32" ? "" : " --precision \(precision)")\(gguf.map { " --gguf \($0)" } ?? "")"
        )
        if parts.contains("gemm") { try gemm() }
        for p in precisions {
            // the training parts once per precision; their lines name it when it is not fp32
            Gemm.precision = p
            let tag = Self.tag(p)
            if parts.contains("gpt-small") {
                try trainGPT(
                    name: "gpt-small" + tag, GPTConfig(vocabSize: 65, contextLength: 256, dModel: 384, layers: 6, heads: 6), batch: 16)
            }
            if parts.contains("gpt-tiny") {
                try trainGPT(
                    name: "gpt-tiny" + tag, GPTConfig(vocabSize: 65, contextLength: 64, dModel: 128, layers: 4, heads: 4), batch: 32)
            }
            if parts.contains("seq2seq") { try trainSeq2Seq(tag: tag) }
        }
        Gemm.precision = .fp32
        if parts.contains("generate") { try generate() }
        if parts.contains("bpe") { try bpe() }
        if parts.contains("gguf"), let gguf { try ggufFigures(gguf) }
        if parts.contains("gemm-tune") { GemmBenchmarks.tune() }
    }

    func gemm() throws {
        // (4096×384)·(384×1536) and the two products its backward pass needs.
        let shapes: [(String, Bool, Bool, Int, Int, Int)] = [
            ("NN (4096×384)·(384×1536)", false, false, 4096, 1536, 384),
            ("NT (4096×1536)·(384×1536)ᵀ", false, true, 4096, 384, 1536),
            ("TN (4096×384)ᵀ·(4096×1536)", true, false, 384, 1536, 4096)
        ]
        var rng = SeededRNG(seed: 1)
        let saved = Gemm.threads
        defer { Gemm.threads = saved }
        let threadCounts = threads.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        for p in precisions {
            Gemm.precision = p
            let tag = Self.tag(p)
            for t in threadCounts {
                Gemm.threads = t
                for (name, ta, tb, m, n, k) in shapes {
                    let a = rng.uniform(shape: [m * k], low: -1, high: 1).data, b = rng.uniform(shape: [k * n], low: -1, high: 1).data
                    var c = [Float](repeating: 0, count: m * n)
                    let lda = ta ? m : k, ldb = tb ? k : n
                    func once() {
                        a.withUnsafeBufferPointer { pa in
                            b.withUnsafeBufferPointer { pb in
                                c.withUnsafeMutableBufferPointer { pc in
                                    Gemm.multiply(
                                        transA: ta, transB: tb, m: m, n: n, k: k, a: pa.baseAddress!, lda: lda, b: pb.baseAddress!,
                                        ldb: ldb,
                                        c: pc.baseAddress!, ldc: n)
                                }
                            }
                        }
                    }
                    once()
                    var best = Double.infinity
                    for _ in 0..<5 { let s = Date(); once(); best = min(best, Date().timeIntervalSince(s)) }
                    print(
                        String(
                            format: "gemm %-30@%@ threads %d: %6.1f GFLOP/s", name as NSString, tag, t, 2 * Double(m * n * k) / best / 1e9))
                }
            }
        }
        Gemm.precision = .fp32
        guard GemmBenchmarks.checkShapes(threads: threadCounts) else {
            fflush(nil)  // stdout first (the WRONG lines), when stdout and stderr go to the same place
            fail(
                """
                bench gemm: the packed GEMM (Gemm.fast) differs from Gemm.reference by more than 1e-5 of max|C| on a benchmark \
                shape (the WRONG lines above)
                """
            )
        }
        GemmBenchmarks.throughput(threads: threadCounts, rounds: rounds)
        GemmBenchmarks.kernelPeak()
        GemmBenchmarks.smallShapes()
    }

    /// The gguf part: `gguf-bench` on the file with its weights as stored, once per --threads count.
    func ggufFigures(_ file: String) throws {
        for t in threads.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            let g = try GGUFBenchCommand.parse(["--model", file, "--weights", "quantized", "--threads", t])
            try g.run()
        }
    }

    /// Byte-level BPE: learning `--vocab-size` tokens from the lines of `--text`, then encoding them all.
    func bpe() throws {
        guard let data = FileManager.default.contents(atPath: text) else {
            throw ValidationError("bpe: cannot read \(text) (give a text file with --text)")
        }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        let start = Date()
        let bpe = ByteLevelBPE.train(texts: lines, vocabSize: vocabSize, specialTokens: ByteLevelBPE.modelSpecialTokens)
        let trainSeconds = Date().timeIntervalSince(start)
        let t1 = Date()
        var total = 0
        for line in lines { total += bpe.encode(line).count }
        let encodeSeconds = Date().timeIntervalSince(t1)
        let bytes = lines.reduce(0) { $0 + $1.utf8.count }
        print(
            String(
                format:
                    """
                    bpe %@: %d lines, %d bytes; learnt %d tokens (%d merges) in %.2f s; encoded every line in %.2f s (%.1f MB/s, \
                    %d tokens, %.2f per line)
                    """,
                text, lines.count, bytes, bpe.vocabSize, bpe.merges.count, trainSeconds, encodeSeconds,
                Double(bytes) / encodeSeconds / 1e6, total, Double(total) / Double(lines.count)))
    }

    /// A GPT config trained on random character ids through the real trainer (AdamW, clipping).
    func trainGPT(name: String, _ c: GPTConfig, batch: Int) throws {
        resetPeakMemory()
        let model = try GPTModel(config: c, seed: 1)
        var rng = SeededRNG(seed: 3)
        let text = (0..<200_000).map { _ in rng.nextInt(below: c.vocabSize) }
        let chars = String((0..<c.vocabSize).map { Character(UnicodeScalar(UInt8(32 + $0))) })
        let task = try GPTTask(
            model: model, tokenizer: try TextTokenizer(characters: chars), train: text, validation: [],
            batchSize: batch, blockSize: c.contextLength, seed: 4)
        var o = TrainOptions()
        o.batchSize = batch; o.maxSteps = steps + 2; o.schedule = "constant"; o.learningRate = 1e-4; o.warmup = 0
        o.weightDecay = 0.1; o.clip = 1; o.dropout = 0
        let trainer = try Trainer(task: task, options: o)
        for _ in 0..<2 { try trainer.stepOnce() }
        let start = Date()
        var tokens = 0
        for _ in 0..<steps { tokens += try trainer.stepOnce().tokens }
        let dt = Date().timeIntervalSince(start) / Double(steps)
        let params = model.layout.total
        // Model FLOPs per token: 6 per parameter (forward + backward) plus attention's 12·L·T·d
        // (PaLM's appendix B count, as nanoGPT's estimate_mfu uses it).
        let flops = Double(6 * params + 12 * c.layers * c.contextLength * c.dModel) * Double(tokens) / Double(steps)
        print(
            String(
                format:
                    """
                    train %@ (vocab %d, %d layers, %d heads, %d wide, context %d, batch %d; %.2fM params): %.0f tokens/s (%.3f \
                    s/step, %.1f GFLOP/s of model work), peak RSS %@
                    """,
                name as NSString, c.vocabSize, c.layers, c.heads, c.dModel, c.contextLength, batch, Double(params) / 1e6,
                Double(tokens) / Double(steps) / dt, dt, flops / dt / 1e9, peakMemory() as NSString))
    }

    func trainSeq2Seq(tag: String) throws {
        resetPeakMemory()
        // The encoder–decoder config of the performance issue.
        var c = TransformerConfig()
        c.dModel = 256; c.heads = 8; c.dFF = 1024; c.encoderLayers = 3; c.decoderLayers = 3
        c.sourceVocabSize = 8000; c.targetVocabSize = 8000; c.contextLength = 64; c.embeddings = .all; c.scaleEmbeddings = true
        let b = 64, len = 32
        let model = try Seq2SeqModel(config: c, seed: 1)
        var rng = SeededRNG(seed: 2)
        let pairs: [IDPair] = (0..<b).map { _ in
            ((0..<len).map { _ in 4 + rng.nextInt(below: 7990) }, (0..<(len - 1)).map { _ in 4 + rng.nextInt(below: 7990) })
        }
        var o = TrainOptions()
        o.batchSize = b; o.maxSteps = steps + 2; o.schedule = "constant"; o.learningRate = 1e-4; o.warmup = 0
        o.dropout = 0.1; o.labelSmoothing = 0.1
        let trainer = try Seq2SeqTrainer(model: model, codec: BenchCodec.make(), train: pairs, validation: [], options: o)
        let batch = Seq2SeqBatch(pairs: pairs, pad: 0, start: 1, end: 2)
        for _ in 0..<2 { trainer.step(batch) }
        let start = Date()
        for _ in 0..<steps { trainer.step(batch) }
        let dt = Date().timeIntervalSince(start) / Double(steps)
        let tokens = batch.targetTokenCount
        print(
            String(
                format:
                    """
                    train encoder–decoder%@ d_model 256, 8 heads, 3+3 layers, d_ff 1024, len 32, batch 64, vocab 8000: %.0f target \
                    tokens/s (%.3f s/step), peak RSS %@
                    """,
                tag as NSString, Double(tokens) / dt, dt, peakMemory() as NSString))
    }

    /// Batch-1 generation on GPT small's shape (context widened to the longest asked): the time per
    /// new token once the context holds about `ctx` tokens, with and without the KV cache.
    func generate() throws {
        let ctxs = contexts.split(separator: ",").compactMap { Int($0) }
        let c = GPTConfig(vocabSize: 65, contextLength: ctxs.max() ?? 1024, dModel: 384, layers: 6, heads: 6)
        let model = try GPTModel(config: c, seed: 1)
        var rng = SeededRNG(seed: 5)
        for ctx in ctxs {
            var line = String(format: "generate gpt-small batch 1, context %d:", ctx)
            for cache in [true, false] {
                resetPeakMemory()
                let gen = GPTGenerator(model: model, useCache: cache)
                // Fill the context up to `ctx − timed` tokens, then time the last `timed` tokens one by
                // one, each the argmax of the previous logits.
                let timed = cache ? 32 : 8
                for _ in 0..<(ctx - timed) {
                    let t = rng.nextInt(below: c.vocabSize)
                    if cache { _ = gen.feed(t) } else { gen.push(t) }
                }
                var next = 1
                let start = Date()
                for _ in 0..<timed {
                    let l = gen.feed(next)
                    next = 0
                    for j in 1..<l.count where l[j] > l[next] { next = j }
                }
                let dt = Date().timeIntervalSince(start)
                line += String(
                    format: " %@ %.1f tokens/s (peak RSS %@);", (cache ? "KV cache" : "no cache") as NSString, Double(timed) / dt,
                    peakMemory() as NSString)
            }
            print(String(line.dropLast()))
        }
    }
}

/// A codec whose ids 0/1/2/3 are pad/start/end/unk, for synthetic benchmark batches.
enum BenchCodec {
    static func make() throws -> SentenceCodec {
        // A word vocabulary of 7,996 tokens plus the 4 specials = 8,000 ids; the specials sit last,
        // but the benchmark batch uses 0/1/2 as pad/start/end, which only changes which rows are read.
        try SentenceCodec.build(kind: .word, texts: [(0..<7996).map { "w\($0)" }.joined(separator: " ")])
    }
}

/// Peak resident memory of this process (VmHWM), as text.
func peakMemory() -> String {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
    else { return "n/a" }
    let kb = Double(line.split(separator: " ").dropFirst().first.flatMap { Double($0) } ?? 0)
    return String(format: "%.0f MB", kb / 1024)
}

/// Resets VmHWM to the current resident size (Linux: writing 5 to clear_refs), so each part of the
/// benchmark reports its own peak. Silently does nothing where that is not possible.
func resetPeakMemory() {
    if let h = FileHandle(forWritingAtPath: "/proc/self/clear_refs") {
        h.write(Data("5".utf8))
        try? h.close()
    }
}
