import ArgumentParser
import Foundation
import TensorKit
import Training
import TransformerKit
import Tokenizers

/// `transformer napkin`: "GPT-3 on a napkin" (seed 004) — parameters, FLOPs and memory of a GPT from
/// its config, and, for one small enough to run here, the measured training speed beside the estimate.
struct NapkinCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "napkin",
        abstract: "GPT-3 on a napkin: parameters per component, FLOPs per token and memory of a GPT, from a preset or a config.",
        discussion: """
            Presets: \(Napkin.presets.map(\.name).joined(separator: ", ")) (default gpt3-175b).
            --config reads a GPT-2 config.json (Hugging Face names), or the config of a checkpoint or run folder.
            --measure trains a few steps of that config here and prints tokens/s and the model FLOPs utilisation.
            Examples:
              transformer napkin --preset gpt2 --batch 8
              transformer napkin --config runs/shakespeare --batch 12 --measure
              transformer napkin --preset gpt3-175b --format json
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json, markdown }

    @Option(help: "A named model (see below).") var preset: String?
    @Option(help: "A GPT-2 config.json, or a checkpoint / run folder holding one.") var config: String?
    @Flag(help: "Count a separate output layer (lm_head, d·V) instead of tying it to the token embedding.") var untiedHead = false
    @Option(help: "Sequences per batch, for the activation memory and --measure.") var batch: Int = 1
    @Option(help: "Tokens per sequence T (default: the config's context length).") var context: Int?
    @Flag(help: "Train a few steps of this config here and print the measured tokens/s and MFU.") var measure = false
    @Option(help: "--measure: timed training steps (after one warm-up step).") var steps: Int = 5
    @Option(help: "--measure: the peak to compute MFU against, in GFLOP/s (default: measure this project's GEMM now).") var peakGflops:
        Double?
    @Option(help: "Output format: text, json or markdown.") var format: Format = .text

    func run() throws {
        do {
            let napkin = try model()
            let t = context ?? napkin.config.contextLength
            guard batch >= 1 else { throw ConfigError(message: "--batch must be at least 1 (got \(batch))") }
            guard t >= 1, t <= napkin.config.contextLength else {
                throw ConfigError(
                    message: "--context must be between 1 and the model's context length \(napkin.config.contextLength) (got \(t))")
            }
            guard steps >= 1 else { throw ConfigError(message: "--steps must be at least 1") }
            if let p = peakGflops, !(p > 0) { throw ConfigError(message: "--peak-gflops must be positive") }
            var report = NapkinReport(napkin, batch: batch, context: t)
            if measure { report.measured = try measureTraining(napkin, batch: batch, context: t) }
            switch format {
            case .text: print(report.text(), terminator: "")
            case .markdown: print(report.markdown(), terminator: "")
            case .json:
                let e = JSONEncoder()
                e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try e.encode(report), as: UTF8.self))
            }
        } catch let e as ConfigError { fail(e.message) } catch let e as GPTCheckpointError { fail(e.message) } catch let e as TrainingError
        { fail(e.message) } catch let e as TokenizerError { fail(e.message) }
    }

    func model() throws -> Napkin {
        if preset != nil && config != nil { throw ConfigError(message: "give --preset or --config, not both") }
        var n: Napkin
        if let config {
            var url = URL(fileURLWithPath: config)
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
                throw ConfigError(message: "\(config) does not exist")
            }
            if isDir.boolValue {
                let direct = url.appendingPathComponent(GPTCheckpoint.configFile)
                url =
                    FileManager.default.fileExists(atPath: direct.path)
                    ? direct : try Checkpoint.resolve(config).appendingPathComponent(GPTCheckpoint.configFile)
            }
            n = Napkin(name: url.path, config: try GPTCheckpoint.readConfig(url))
        } else {
            n = try Napkin.preset(preset ?? "gpt3-175b")
        }
        n.tiedHead = !untiedHead
        return n
    }

    /// A few AdamW steps of a randomly initialised `GPTModel` on random tokens: the same forward,
    /// backward and optimizer as `transformer train --model gpt`, without data loading or evaluation.
    func measureTraining(_ napkin: Napkin, batch b: Int, context t: Int) throws -> NapkinReport.Measured {
        let c = napkin.config
        if !napkin.tiedHead { throw ConfigError(message: "--measure runs this project's GPT, whose output is tied; drop --untied-head") }
        let mem = napkin.memory(batch: b, context: t)
        let need = mem.trainingStateFP32 + mem.activationsThisProject
        let have = Double(ProcessInfo.processInfo.physicalMemory)
        guard need < have / 2 else {
            throw ConfigError(
                message: String(
                    format:
                        """
                        --measure: training %@ here needs %@ (weights, gradients, AdamW, activations) and this machine has %@; \
                        use a smaller config or batch
                        """,
                    napkin.name, bytesText(need), bytesText(have)))
        }
        let peak = peakGflops.map { ($0 * 1e9, "given with --peak-gflops") } ?? measureGEMMPeak()
        let flopsPerStep = napkin.trainingFLOPsPerToken(context: t) * Double(b * t)
        if flopsPerStep / peak.0 * Double(steps + 1) > 600 {
            throw ConfigError(
                message: String(
                    format: "--measure: %d steps would take over %.0f minutes even at the peak; use a smaller config, batch or --steps",
                    steps + 1, flopsPerStep / peak.0 * Double(steps + 1) / 60))
        }
        let model = try GPTModel(config: c, seed: 1)
        let acts = GPTActivations(config: c, maxBatch: b, maxLength: t)
        let opt = AdamW(count: model.layout.total, decayMask: AdamW.decayMask(for: model.layout))
        var rng = SeededRNG(seed: 2)
        let ids = (0..<(b * t)).map { _ in Int32(rng.nextInt(below: c.vocabSize)) }
        let targets = (0..<(b * t)).map { _ in Int32(rng.nextInt(below: c.vocabSize)) }
        func step() {
            model.grads.zero()
            model.forward(ids: ids, targets: targets, b: b, t: t, acts: acts)
            model.backward(b: b, t: t, acts: acts)
            opt.update(params: model.params, grads: model.grads, lr: 1e-4)
        }
        step()  // warm-up: first touches of every buffer, thread pool start
        let start = Date()
        for _ in 0..<steps { step() }
        let seconds = Date().timeIntervalSince(start)
        let tokensPerSecond = Double(steps * b * t) / seconds
        let achieved = tokensPerSecond * napkin.trainingFLOPsPerToken(context: t)
        return .init(
            steps: steps, seconds: seconds, tokensPerSecond: tokensPerSecond, achievedFLOPs: achieved, peakFLOPs: peak.0,
            peakSource: peak.1, estimatedTokensPerSecondAtPeak: peak.0 / napkin.trainingFLOPsPerToken(context: t), mfu: achieved / peak.0,
            threads: Gemm.threads)
    }

    /// The best of a few 1536³ products with this project's GEMM on every thread: the fastest this
    /// machine does the operation that dominates training, as the peak for MFU.
    func measureGEMMPeak() -> (Double, String) {
        let n = 1536
        var rng = SeededRNG(seed: 3)
        let a = rng.uniform(shape: [n * n], low: -1, high: 1).data, b = rng.uniform(shape: [n * n], low: -1, high: 1).data
        var c = [Float](repeating: 0, count: n * n)
        var best = Double.infinity
        for _ in 0..<4 {
            let s = Date()
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    c.withUnsafeMutableBufferPointer { pc in
                        Gemm.multiply(
                            transA: false, transB: false, m: n, n: n, k: n, a: pa.baseAddress!, lda: n, b: pb.baseAddress!, ldb: n,
                            c: pc.baseAddress!, ldc: n)
                    }
                }
            }
            best = min(best, Date().timeIntervalSince(s))
        }
        return (2 * Double(n * n * n) / best, "measured now: this project's GEMM, 1536×1536×1536 fp32, \(Gemm.threads) threads, best of 4")
    }
}

// MARK: - The report

struct NapkinReport: Encodable {
    struct Row: Encodable { var component: String; var formula: String; var each: Int; var times: Int; var total: Int }
    struct Measured: Encodable {
        var steps: Int
        var seconds: Double
        var tokensPerSecond: Double
        var achievedFLOPs: Double
        var peakFLOPs: Double
        var peakSource: String
        var estimatedTokensPerSecondAtPeak: Double
        var mfu: Double
        var threads: Int
        enum CodingKeys: String, CodingKey {
            case steps, seconds, tokensPerSecond = "tokens_per_second", achievedFLOPs = "achieved_flops_per_second", peakFLOPs =
                "peak_flops_per_second"
            case peakSource = "peak_source", estimatedTokensPerSecondAtPeak = "tokens_per_second_at_peak", mfu, threads
        }
    }

    var name: String
    var config: GPTConfig
    var tiedHead: Bool
    var batch: Int
    var context: Int
    var parameters: [Row]
    var totalParameters: Int
    var nonEmbeddingParameters: Int
    var matmulWeights: Int
    var forwardFLOPsPerToken: Double
    var trainingFLOPsPerToken: Double
    var memory: Napkin.Memory
    var measured: Measured?
    let formulas = [
        "parameters":
            """
        per layer 4d (two layer norms) + 3d² + 3d (c_attn) + d² + d (c_proj) + 2·d·d_ff + d_ff + d (MLP); + V·d (wte) + T·d \
        (wpe) + 2d (ln_f) [+ d·V untied head]
        """,
        "forward_flops_per_token":
            """
        2·N_mat + 4·L·T·d, N_mat = L·(4d² + 2·d·d_ff) + d·V (weights in a product per token; 2 FLOPs per multiply-add); \
        4·L·T·d is QKᵀ and A·V over T keys
        """,
        "training_flops_per_token":
            """
        3 × forward = 6·N_mat + 12·L·T·d — PaLM (Chowdhery et al. 2022, Appendix B): 6N + 12·L·H·Q·T; Kaplan et al. 2020, \
        Table 1: C_forward ≈ 2N + 2·L·T·d with N without embeddings
        """,
        "training_state":
            """
        16 bytes per parameter: fp32 weights 4 + gradients 4 + AdamW m, v 8; mixed precision the same 16: fp16 weights 2 + \
        gradients 2 + fp32 master, m, v 12 (ZeRO, Rajbhandari et al. 2020, §3.1)
        """,
        "activations_16bit":
            """
        L·T·B·d·(34 + 5·a·T/d) bytes (Korthikanti et al. 2022, eq. 1: 16-bit, dropout masks, no recomputation) + 4·B·T·V \
        (fp32 logits)
        """,
        "activations_this_project":
            """
        4 bytes × [L·(n·(10d + 2·d_ff + 4) + B·a·T²) + n·(9d + 2·d_ff + V + 5) + T], n = B·T: every buffer GPTActivations \
        allocates (fp32, no dropout)
        """,
        "mfu": "measured tokens/s × training FLOPs per token ÷ peak FLOP/s (PaLM's model FLOPs utilisation)"
    ]

    enum CodingKeys: String, CodingKey {
        case name, config, tiedHead = "tied_head", batch, context, parameters, totalParameters = "total_parameters"
        case nonEmbeddingParameters = "non_embedding_parameters", matmulWeights = "matmul_weights"
        case forwardFLOPsPerToken = "forward_flops_per_token", trainingFLOPsPerToken = "training_flops_per_token"
        case memory = "memory_bytes", measured, formulas
    }

    init(_ n: Napkin, batch: Int, context: Int) {
        name = n.name; config = n.config; tiedHead = n.tiedHead; self.batch = batch; self.context = context
        parameters = n.components.map { Row(component: $0.name, formula: $0.formula, each: $0.count, times: $0.times, total: $0.total) }
        totalParameters = n.parameters; nonEmbeddingParameters = n.nonEmbeddingParameters; matmulWeights = n.matmulWeights
        forwardFLOPsPerToken = n.forwardFLOPsPerToken(context: context); trainingFLOPsPerToken = n.trainingFLOPsPerToken(context: context)
        memory = n.memory(batch: batch, context: context)
    }

    var attentionForward: Double { 4 * Double(config.layers) * Double(context) * Double(config.dModel) }

    var headline: String {
        let c = config
        return
            "\(c.layers) layers · d_model \(c.dModel) · \(c.heads) heads (d_k \(c.headSize)) · d_ff \(c.dFF) · context \(c.contextLength) · vocabulary \(c.vocabSize) · output \(tiedHead ? "tied to wte" : "untied")"
    }

    var memoryRows: [(String, String, Double)] {
        let m = memory
        return [
            ("weights, fp32", "4P", m.weightsFP32), ("weights, fp16/bf16", "2P", m.weightsFP16),
            ("gradients, fp32", "4P", m.gradientsFP32), ("AdamW moments m, v (fp32)", "8P", m.adamW),
            ("training state (fp32, or mixed precision)", "16P", m.trainingStateFP32),
            ("activations, 16-bit (Korthikanti et al. 2022)", "L·T·B·d·(34 + 5aT/d) + 4BTV", m.activations16bit),
            ("activations, this project (fp32)", "GPTActivations", m.activationsThisProject),
            ("to train here: state + activations (fp32)", "16P + acts", m.trainingStateFP32 + m.activationsThisProject)
        ]
    }

    func text() -> String {
        var out: [String] = []
        out.append("\(name) — \(headline)")
        out.append("")
        out.append("Parameters")
        let table: [[String]] =
            [["component", "formula", "each", "× layers", "total", "share"]]
            + parameters.map {
                [
                    $0.component, $0.formula, grouped($0.each), $0.times == 1 ? "" : "× \($0.times)", grouped($0.total),
                    percent(Double($0.total) / Double(totalParameters))
                ]
            } + [
                ["total", "", "", "", grouped(totalParameters), countText(totalParameters)],
                ["  non-embedding (Kaplan's N)", "", "", "", grouped(nonEmbeddingParameters), ""],
                ["  one layer", "12d² + 13d at d_ff = 4d", grouped(perLayer), "", "", ""]
            ]
        out.append(contentsOf: aligned(table, right: [2, 3, 4, 5]).map { "  " + $0 })
        out.append("")
        out.append("FLOPs per token (T = \(context) tokens of context; a multiply-add is 2 FLOPs)")
        out.append(
            """
              N_mat = L·(4d² + 2·d·d_ff) + d·V = \(grouped(matmulWeights)) weights in a product per token (biases, norms, \
            softmax, GELU left out)
            """
        )
        out.append(
            """
              inference, forward:  2·N_mat + 4·L·T·d  = \(flopsText(2 * Double(matmulWeights))) + \(flopsText(attentionForward)) \
            = \(flopsText(forwardFLOPsPerToken))
            """
        )
        out.append(
            """
              training, fwd + bwd: 6·N_mat + 12·L·T·d = \(flopsText(6 * Double(matmulWeights))) + \
            \(flopsText(3 * attentionForward)) = \(flopsText(trainingFLOPsPerToken))
            """
        )
        out.append("  (PaLM, Chowdhery et al. 2022, Appendix B: 6N + 12·L·H·Q·T; the backward pass costs twice the forward.)")
        out.append("")
        out.append("Memory (P = \(grouped(totalParameters)); activations at batch \(batch) × \(context) tokens)")
        out.append(contentsOf: aligned(memoryRows.map { [$0.0, $0.1, bytesText($0.2)] }, right: [2]).map { "  " + $0 })
        out.append("  (mixed precision: fp16 weights 2 + gradients 2 + fp32 master weights, m, v 12 = 16 bytes per parameter, ZeRO §3.1)")
        if let m = measured {
            out.append("")
            out.append(
                "Measured here: \(m.steps) training steps (forward, backward, AdamW) of \(batch) × \(context) tokens, \(m.threads) threads")
            out.append(
                String(
                    format: "  tokens/s:  measured %@  ·  estimate at the peak (100%% MFU) %@", number(m.tokensPerSecond),
                    number(m.estimatedTokensPerSecondAtPeak)))
            out.append(
                String(format: "  achieved %@/s of a peak of %@/s (%@)", flopsText(m.achievedFLOPs), flopsText(m.peakFLOPs), m.peakSource))
            out.append(
                String(
                    format: "  model FLOPs utilisation (MFU) %.1f%%  = tokens/s × %@ per token ÷ peak", 100 * m.mfu,
                    flopsText(trainingFLOPsPerToken)))
        }
        return out.joined(separator: "\n") + "\n"
    }

    func markdown() -> String {
        var out: [String] = [
            "## \(name)", "", headline, "", "| component | formula | each | × layers | total | share |", "|---|---|---:|---:|---:|---:|"
        ]
        for r in parameters {
            out.append(
                "| \(r.component) | `\(r.formula)` | \(grouped(r.each)) | \(r.times == 1 ? "" : "\(r.times)") | \(grouped(r.total)) | \(percent(Double(r.total) / Double(totalParameters))) |"
            )
        }
        out.append("| **total** | | | | **\(grouped(totalParameters))** | \(countText(totalParameters)) |")
        out.append("")
        out.append("| per token (T = \(context)) | formula | FLOPs |")
        out.append("|---|---|---:|")
        out.append("| inference (forward) | `2·N_mat + 4·L·T·d` | \(flopsText(forwardFLOPsPerToken)) |")
        out.append("| training (forward + backward) | `6·N_mat + 12·L·T·d` | \(flopsText(trainingFLOPsPerToken)) |")
        out.append("")
        out.append("N_mat = L·(4d² + 2·d·d_ff) + d·V = \(grouped(matmulWeights)); formula: PaLM (Chowdhery et al. 2022), Appendix B.")
        out.append("")
        out.append("| memory (batch \(batch) × \(context)) | formula | bytes |")
        out.append("|---|---|---:|")
        for (what, formula, bytes) in memoryRows { out.append("| \(what) | `\(formula)` | \(bytesText(bytes)) |") }
        if let m = measured {
            out.append("")
            out.append("| measured here | value |")
            out.append("|---|---:|")
            out.append("| tokens/s (\(m.steps) steps, \(m.threads) threads) | \(number(m.tokensPerSecond)) |")
            out.append("| tokens/s at the peak (estimate) | \(number(m.estimatedTokensPerSecondAtPeak)) |")
            out.append("| peak (\(m.peakSource)) | \(flopsText(m.peakFLOPs))/s |")
            out.append(String(format: "| MFU | %.1f%% |", 100 * m.mfu))
        }
        return out.joined(separator: "\n") + "\n"
    }

    var perLayer: Int { Napkin(name: name, config: config).perLayer }
}

// MARK: - Number formatting

func grouped(_ n: Int) -> String {
    let s = String(n.magnitude)
    var out = ""
    for (i, ch) in s.enumerated() {
        if i > 0 && (s.count - i) % 3 == 0 { out.append(",") }
        out.append(ch)
    }
    return (n < 0 ? "-" : "") + out
}

func countText(_ n: Int) -> String {
    let x = Double(n)
    if x >= 1e9 { return String(format: "%.1f B", x / 1e9) }
    if x >= 1e6 { return String(format: "%.1f M", x / 1e6) }
    if x >= 1e3 { return String(format: "%.1f k", x / 1e3) }
    return "\(n)"
}

func percent(_ x: Double) -> String {
    if x == 0 { return "0" }
    if x < 0.00001 { return "<0.001%" }
    return String(format: x < 0.001 ? "%.3f%%" : "%.1f%%", 100 * x)
}

func flopsText(_ x: Double) -> String {
    for (scale, unit) in [(1e15, "PFLOP"), (1e12, "TFLOP"), (1e9, "GFLOP"), (1e6, "MFLOP"), (1e3, "kFLOP")] where x >= scale {
        return String(format: "%.3g %@", x / scale, unit)
    }
    return String(format: "%.0f FLOP", x)
}

func bytesText(_ x: Double) -> String {
    for (scale, unit) in [(1024.0 * 1024 * 1024 * 1024, "TiB"), (1024.0 * 1024 * 1024, "GiB"), (1024.0 * 1024, "MiB"), (1024.0, "KiB")]
    where x >= scale {
        return String(format: "%.1f %@", x / scale, unit)
    }
    return String(format: "%.0f B", x)
}

func number(_ x: Double) -> String { x >= 100 ? grouped(Int(x.rounded())) : String(format: "%.2f", x) }

/// Columns padded to their widest cell; `right` lists the right-aligned columns.
func aligned(_ rows: [[String]], right: Set<Int>) -> [String] {
    let cols = rows.map(\.count).max() ?? 0
    var widths = [Int](repeating: 0, count: cols)
    for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
    return rows.map { r in
        r.enumerated().map { i, c in
            let pad = String(repeating: " ", count: widths[i] - c.count)
            return right.contains(i) ? pad + c : c + pad
        }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
    }
}
