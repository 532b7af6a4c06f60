import ArgumentParser
import Foundation
import TensorKit
import TransformerKit
import Training

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Speed figures: GEMM GFLOP/s at transformer shapes, and training tokens/s of the encoder–decoder config.",
        discussion: "scripts/bench-vs-pytorch.sh runs the same configurations in PyTorch and prints the ratios.")

    @Flag(help: "Only the GEMM figures.") var gemmOnly = false
    @Flag(help: "Only the training figures.") var trainOnly = false
    @Option(help: "Timed training steps (after 2 warm-up steps).") var steps: Int = 10
    @Option(help: "Thread counts for the GEMM, comma-separated.") var threads: String = "1,2"

    func run() throws {
        print("transformer bench · \(ProcessInfo.processInfo.activeProcessorCount) cores · reproduce: swift run -c release transformer bench")
        if !trainOnly { gemm() }
        if !gemmOnly { try train() }
    }

    func gemm() {
        // (4096×384)·(384×1536) and the two products its backward pass needs.
        let shapes: [(String, Bool, Bool, Int, Int, Int)] = [
            ("NN (4096×384)·(384×1536)", false, false, 4096, 1536, 384),
            ("NT (4096×1536)·(384×1536)ᵀ", false, true, 4096, 384, 1536),
            ("TN (4096×384)ᵀ·(4096×1536)", true, false, 384, 1536, 4096),
        ]
        var rng = SeededRNG(seed: 1)
        let saved = Gemm.threads
        defer { Gemm.threads = saved }
        for t in threads.split(separator: ",").compactMap({ Int($0) }) {
            Gemm.threads = t
            for (name, ta, tb, m, n, k) in shapes {
                let a = rng.uniform(shape: [m * k], low: -1, high: 1).data, b = rng.uniform(shape: [k * n], low: -1, high: 1).data
                var c = [Float](repeating: 0, count: m * n)
                let lda = ta ? m : k, ldb = tb ? k : n
                func once() {
                    a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                        Gemm.multiply(transA: ta, transB: tb, m: m, n: n, k: k, a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb, c: pc.baseAddress!, ldc: n)
                    } } }
                }
                once()
                var best = Double.infinity
                for _ in 0..<5 { let s = Date(); once(); best = min(best, Date().timeIntervalSince(s)) }
                print(String(format: "gemm %-30@ threads %d: %6.1f GFLOP/s", name as NSString, t, 2 * Double(m * n * k) / best / 1e9))
            }
        }
    }

    func train() throws {
        // The encoder–decoder config of the performance issue.
        var c = TransformerConfig()
        c.dModel = 256; c.heads = 8; c.dFF = 1024; c.encoderLayers = 3; c.decoderLayers = 3
        c.sourceVocabSize = 8000; c.targetVocabSize = 8000; c.maxLength = 64; c.embeddings = .all; c.scaleEmbeddings = true
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
        print(String(format: "train encoder–decoder d_model 256, 8 heads, 3+3 layers, d_ff 1024, len 32, batch 64, vocab 8000: %.0f target tokens/s (%.3f s/step, threads %d), peak RSS %@",
                     Double(tokens) / dt, dt, Gemm.threads, peakMemory() as NSString))
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
          let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return "n/a" }
    let kb = Double(line.split(separator: " ").dropFirst().first.flatMap { Double($0) } ?? 0)
    return String(format: "%.0f MB", kb / 1024)
}
