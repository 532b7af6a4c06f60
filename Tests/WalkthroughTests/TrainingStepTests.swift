import Foundation
import Testing
import TensorKit
import TransformerKit
@testable import Walkthrough

@Suite struct TrainingStepTests {
    static func doc(weights: Bool = false) throws -> TraceDocument {
        var s = WalkthroughSetup()
        s.trainStep = true
        s.learningRate = 0.5
        if weights { s.weightsFile = WalkthroughResources.articleWeightsURL }
        return try s.run()
    }

    @Test(arguments: [false, true])
    func trainingTraceReplays(articleWeights: Bool) throws {
        let d = try Self.doc(weights: articleWeights)
        let mismatches = replay(d)
        #expect(mismatches.isEmpty, "\(mismatches.prefix(3))")
        #expect(d.step("train.grad.encoder.layers.0.self_attn.w_q") != nil)
    }

    @Test func gradientAtLogitsIsSoftmaxMinusOneHot() throws {
        let d = try Self.doc()
        let g = try #require(d.step("train.dlogits")).tensor
        let p = try #require(d.step("out.probs")).tensor
        let y = try #require(d.step("out.targets")).values.map { Int($0) }
        let n = Float(g.rows)
        for r in 0..<g.rows {
            #expect(abs(g.row(r).reduce(0, +)) < 1e-6)  // each row sums to 0
            #expect(abs(g[r, y[r]] - (p[r, y[r]] - 1) / n) < 1e-6)
            #expect(g[r, y[r]] < 0)
        }
    }

    @Test func updateIsWeightMinusLearningRateTimesGradientAndLowersTheLoss() throws {
        let d = try Self.doc()
        let w = try #require(d.parameter("encoder.layers.0.self_attn.w_q")).tensor
        let g = try #require(d.step("train.grad.encoder.layers.0.self_attn.w_q")).tensor
        let after = try #require(d.step("train.update.w_q")).tensor
        #expect(after.maxAbsDifference(TensorKit.add(w, TensorKit.scale(g, -0.5))) < 1e-7)
        let note = try #require(d.step("train.update.w_q")?.notes.last)
        // "…changes the loss from A to B." with B < A
        let nums = note.split(whereSeparator: { !"0123456789.".contains($0) }).compactMap {
            Float($0.trimmingCharacters(in: CharacterSet(charactersIn: ".")))
        }
        #expect(nums.count >= 2 && nums[nums.count - 1] < nums[nums.count - 2], "\(note)")
    }

    /// A replayed gradient step that was tampered with is caught.
    @Test func tamperedGradientIsReported() throws {
        var d = try Self.doc()
        let i = try #require(d.steps.firstIndex { $0.id == "train.grad.encoder.layers.0.self_attn.w_k" })
        d.steps[i].values[3] += 0.01
        let m = replay(d)
        #expect(m.map(\.stepID).contains("train.grad.encoder.layers.0.self_attn.w_k"))
    }
}
