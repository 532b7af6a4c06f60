import Foundation
import Testing
import TensorKit
import TransformerKit
@testable import Walkthrough

/// Inputs the `trace-json` and `matrix` fuzz targets (Fuzz/, `scripts/fuzz.sh`) found crashing,
/// replayed through the same entry points. Every file `Fixtures/fuzz-regressions/<target>-<what>` is
/// replayed by its target's test below, so a new crash needs only its file dropped in (and, for the
/// record, a test named after it). Refusal by a thrown error is the expected outcome; a crash fails
/// the run.
@Suite struct WalkthroughFuzzRegressionTests {
    static func directory() throws -> URL {
        try #require(Bundle.module.url(forResource: "fuzz-regressions", withExtension: nil, subdirectory: "Fixtures"))
    }

    static func inputs(_ target: String) throws -> [(name: String, data: Data)] {
        let dir = try directory()
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(target + "-") }.sorted()
        return try names.map { ($0, try Data(contentsOf: dir.appendingPathComponent($0))) }
    }

    /// What `transformer check --trace` and `transformer replay` do with a trace file.
    static func replayTrace(_ d: Data) {
        guard let doc = try? TraceDocument.load(data: d, name: "trace.json") else { return }
        _ = replay(doc)
        for format in [TraceFormat.text, .markdown, .latex, .html, .json] { _ = try? doc.render(format) }
        for step in doc.steps.prefix(8) {
            _ = check(ParsedMatrix(rows: 1, cols: 2, values: [0, 1]), against: step, in: doc, tolerance: nil).renderText()
        }
    }

    /// What `transformer check` does with a matrix text.
    static func replayMatrix(_ d: Data) {
        let text = String(decoding: d, as: UTF8.self)
        _ = try? MatrixParser.parse(text)
        _ = try? MatrixParser.parseEach(text)
        _ = try? MatrixParser.parseInline(text)
    }

    /// Passes unless a replay traps: each saved input once crashed a reader.
    @Test func savedTraceAndMatrixFuzzInputsNeverTrap() throws {
        let traces = try Self.inputs("trace-json"), matrices = try Self.inputs("matrix")
        #expect(!traces.isEmpty)
        for (_, d) in traces { Self.replayTrace(d) }
        for (_, d) in matrices { Self.replayMatrix(d) }
    }

    // MARK: One test per crash found

    /// A walkthrough trace with one value cut from `enc0.self_attn.v` (shape [6, 6], 29 values): the
    /// text renderer built a Tensor from it and trapped on the shape precondition.
    @Test func fuzzRegression_traceStepShapeValuesMismatch() throws {
        let d = try Data(contentsOf: Self.directory().appendingPathComponent("trace-json-step-shape-values-mismatch.json"))
        do {
            _ = try TraceDocument.load(data: d, name: "trace.json")
            Issue.record("expected the trace to be refused")
        } catch {
            #expect("\(error)".contains("step \"enc0.self_attn.v\" has shape [6, 6] but 29 values"), "\(error)")
        }
    }

    /// Not a fuzz find, the same fix: shapes whose product overflows Int are refused, not trapped on
    /// (while validating or replaying).
    @Test func traceShapeOverflowIsRefused() throws {
        var doc = try WalkthroughSetup().run()
        doc.steps[0].shape = [1 << 62, 4]
        let e = try #require(doc.shapeProblem)
        #expect(e.contains("has shape [\(1 << 62), 4]"))
        let m = replay(doc)
        #expect(m.contains { $0.stepID == doc.steps[0].id })
    }
}
