import Foundation
import Testing
import TensorKit
import TransformerKit
import Training
import Tokenizers

@Suite struct BadInputTests {
    let dir: URL = {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }()

    func file(_ name: String, _ text: String) throws -> String {
        let url = dir.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    func message(_ body: () throws -> Void) -> String {
        do { try body(); return "no error" } catch { return "\(error)" }
    }

    @Test func misalignedFiles() throws {
        let s = try file("a.de", "eins\nzwei\ndrei\n"), t = try file("a.en", "one\ntwo\n")
        let m = message { _ = try ParallelCorpus.load(source: s, target: t) }
        #expect(m.contains("a.de has 3 lines") && m.contains("a.en has 2"), "\(m)")
    }

    @Test func emptyLineNamesFileAndLine() throws {
        let s = try file("b.de", "eins\n\ndrei\n"), t = try file("b.en", "one\ntwo\nthree\n")
        let m = message { _ = try ParallelCorpus.load(source: s, target: t) }
        #expect(m.contains("b.de:2: empty line"), "\(m)")
    }

    @Test func tsvWithoutTab() throws {
        let p = try file("c.tsv", "a\tb\nno tab here\n")
        let m = message { _ = try ParallelCorpus.load(tsv: p) }
        #expect(m.contains("c.tsv:2") && m.contains("tab"), "\(m)")
    }

    @Test func notUTF8() throws {
        let url = dir.appendingPathComponent("d.txt")
        try Data([0x61, 0x0A, 0xFF, 0xFE, 0x0A]).write(to: url)
        let m = message { _ = try ParallelCorpus.readLines(url.path) }
        #expect(m.contains("d.txt:2: not valid UTF-8"), "\(m)")
    }

    /// A small trained checkpoint to damage.
    func checkpoint() throws -> URL {
        let trainer = try LearningTests.toyTrainer(steps: 2)
        try trainer.run(log: { _ in })
        let run = dir.appendingPathComponent("run")
        try trainer.saveCheckpoint(run)
        return try Checkpoint.resolve(run.path)
    }

    @Test func truncatedWeights() throws {
        let ck = try checkpoint()
        let w = ck.appendingPathComponent("model.safetensors")
        let data = try Data(contentsOf: w)
        try data.prefix(data.count / 2).write(to: w)
        let m = message { _ = try Checkpoint.load(ck.path) }
        #expect(m.contains("model.safetensors"), "\(m)")
    }

    @Test func checkpointFromAnotherConfig() throws {
        let ck = try checkpoint()
        let cfgURL = ck.appendingPathComponent("config.json")
        let text = try String(contentsOf: cfgURL, encoding: .utf8).replacingOccurrences(of: "\"d_ff\" : 64", with: "\"d_ff\" : 48")
        try Data(text.utf8).write(to: cfgURL)
        let m = message { _ = try Checkpoint.load(ck.path) }
        #expect(m.contains("has shape") && m.contains("ffn"), "\(m)")
    }

    @Test func vocabularyThatDoesNotMatch() throws {
        let ck = try checkpoint()
        let other = try SentenceCodec.build(kind: .char, texts: ["abc"])
        try other.jsonData().write(to: ck.appendingPathComponent("tokenizer.json"))
        let m = message { _ = try Checkpoint.load(ck.path) }
        #expect(m.contains("do not belong together"), "\(m)")
    }

    @Test func interruptedSaveLeavesTheLastCheckpointLoadable() throws {
        let ck = try checkpoint()
        // A save killed halfway leaves a temporary folder and no new `latest`.
        let tmp = ck.deletingLastPathComponent().appendingPathComponent(".tmp-step-0000003-999")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        try Data("partial".utf8).write(to: tmp.appendingPathComponent("model.safetensors"))
        let loaded = try Checkpoint.load(ck.deletingLastPathComponent().deletingLastPathComponent().path)
        #expect(loaded.state?.step == 2)
    }
}
