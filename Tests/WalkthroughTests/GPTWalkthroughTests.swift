import Foundation
import Testing
import TensorKit
import TransformerKit
@testable import Walkthrough

/// `transformer walkthrough --model gpt`: the trace, its replay, every renderer and `check` on it.
@Suite struct GPTWalkthroughTests {
    static let doc: TraceDocument = try! GPTWalkthroughSetup().run()

    @Test func defaultIsATinyGPTOnTheSeedCorpus() throws {
        let doc = Self.doc
        #expect(doc.gpt?.dModel == 8 && doc.gpt?.heads == 2 && doc.gpt?.layers == 1 && doc.gpt?.vocabSize == 40)
        #expect(doc.step("in.ids")?.rowLabels == ["马", "无", "夜", "草", "不", "肥"])
        let mask = try #require(doc.step("mask"))
        #expect(mask.op == .maskMatrix && mask.attrs["causal"] == 1)
        for h in 0..<2 {
            let w = try #require(doc.step("h0.attn.head\(h).weights")).tensor
            for r in 0..<6 {
                #expect(abs(w.row(r).reduce(0, +) - 1) < 1e-6)
                for c in (r + 1)..<6 { #expect(w[r, c] == 0) }
            }
        }
        let next = try #require(doc.step("out.next"))
        #expect(next.shape == [1, 40] && next.rowLabels == ["肥"] && next.colLabels[10] == "马")
        #expect(abs(next.values.reduce(0, +) - 1) < 1e-5)
        #expect(next.notes.contains { $0.hasPrefix("Most likely next tokens: ") })
        // GPT-2's names, as in its checkpoints; no encoder–decoder parameters.
        #expect(doc.parameters.map(\.name).contains("h.0.attn.c_attn.weight"))
        #expect(!doc.parameters.contains { $0.name.hasPrefix("encoder.") || $0.name.hasPrefix("decoder.") })
    }

    @Test func traceReplaysExactly() throws {
        let mismatches = replay(Self.doc)
        #expect(mismatches.isEmpty, "\(mismatches.map(\.description).joined(separator: "\n"))")
    }

    @Test func jsonTraceReplaysExactlyAfterARoundTrip() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("gpt-trace-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data(Self.doc.render(.json).utf8).write(to: url)
        let loaded = try TraceDocument.load(from: url)
        #expect(loaded.gpt == Self.doc.gpt && loaded.steps == Self.doc.steps)
        let mismatches = try replay(contentsOf: url)
        #expect(mismatches.isEmpty, "\(mismatches.map(\.description).joined(separator: "\n"))")
    }

    /// More blocks, one head (no per-head split), words, a longer text: still exact.
    @Test func otherShapesReplayExactly() throws {
        var g = GPTWalkthroughSetup()
        g.config.layers = 2; g.config.heads = 1; g.config.dModel = 6; g.config.explicitDFF = 10
        g.tokenizer = .word
        g.corpus = ["the cat sat on the mat", "the dog sat on the log"]
        g.prompt = "the dog sat on the"
        let doc = try g.run()
        #expect(doc.step("h1.attn.weights") != nil && doc.step("h1.attn.head0.weights") == nil)
        #expect(doc.step("out.next")?.rowLabels == ["the"])
        #expect(replay(doc).isEmpty)
    }

    @Test func everyRendererWritesIt() throws {
        let doc = Self.doc
        let text = try doc.render(.text)
        #expect(text.contains("GPT · d_model 8 · heads 2") && text.contains("[out.next]") && text.contains("Most likely next tokens"))
        #expect(try doc.render(.markdown).contains("out.next"))
        #expect(try doc.render(.latex).contains("\\begin{document}"))
        let html = try doc.render(.html)
        #expect(html.contains("id=\"step-out.next\"") && html.contains("id=\"step-h0.attn.head1.weights\""))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gpt-csv-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(try CSVExport.write(doc, options: RenderOptions(), to: folder) == doc.steps.count)
    }

    /// A GPT-2 vocabulary is 50,257 columns: renderers show the first `maxColumns` and say how many more.
    @Test func wideMatricesAreCutInTheRenderedFormatsOnly() throws {
        var opts = RenderOptions()
        opts.maxColumns = 10
        opts.steps = ["out.next"]
        for format in [TraceFormat.text, .markdown, .latex, .html] {
            let out = try Self.doc.render(format, options: opts)
            #expect(out.contains("and 30 more columns not shown"), "\(format)")
        }
        #expect(try Self.doc.render(.text, options: opts).contains("物") == false)  // column 35 is cut
        #expect(try Self.doc.render(.json, options: opts).contains("and 30 more") == false)
        opts.maxColumns = 0
        #expect(try Self.doc.render(.text, options: opts).contains("more columns") == false)
    }

    @Test func checkWorksOnAGPTStep() throws {
        let step = try #require(Self.doc.step("h0.attn.head1.weights"))
        let right = try CheckTests.typed(step.tensor)
        #expect(check(right, against: step, in: Self.doc, tolerance: nil).isCorrect)
        var wrong = step.tensor
        wrong[2, 0] += 0.1
        #expect(!check(try CheckTests.typed(wrong), against: step, in: Self.doc, tolerance: nil).isCorrect)
    }

    @Test func badInputIsAClearError() {
        func message(_ change: (inout GPTWalkthroughSetup) -> Void) -> String? {
            var g = GPTWalkthroughSetup()
            change(&g)
            do { _ = try g.run(); return nil } catch let e as WalkthroughError { return e.message } catch { return "unexpected \(error)" }
        }
        #expect(message { $0.corpus = ["", "  "] }?.contains("corpus is empty") == true)
        #expect(message { $0.prompt = "，。" }?.contains("no tokens") == true)
        #expect(message { $0.config.contextLength = 4 }?.contains("context is 4") == true)
        #expect(message { $0.config.heads = 3 }?.contains("not divisible") == true)
        #expect(message { $0.prompt = "马无猫" } == nil)  // unknown tokens become <unk>, with a note
    }
}

extension GPTWalkthroughTests {
    /// A model saved as a Hugging Face GPT-2 folder and loaded back, as `--checkpoint` does.
    @Test func aLoadedCheckpointsTraceReplaysExactly() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gpt-walk-ckpt-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = GPTConfig(vocabSize: 13, contextLength: 8, dModel: 12, layers: 2, heads: 3)
        try GPTCheckpoint.saveHuggingFace(try GPTModel(config: config, seed: 9), to: dir)
        let loaded = try GPTCheckpoint.loadHuggingFace(dir)
        let vocab = (0..<13).map { "t\($0)" }
        let doc = try GPTWalkthrough.document(
            model: TracedGPT(loaded), ids: [3, 1, 4, 1, 5], tokens: ["t3", "t1", "t4", "t1", "t5"],
            vocabulary: vocab, corpusTokenCount: 13, corpus: [], text: "3 1 4 1 5", notes: ["from a folder"])
        #expect(doc.gpt == config && doc.step("h1.attn.head2.weights") != nil)
        #expect(replay(doc).isEmpty)
        // No corpus: the renderers skip the dataset and vocabulary sections but keep the notes.
        let text = try doc.render(.text)
        #expect(!text.contains("── Dataset ──") && text.contains("from a folder"))
    }
}
