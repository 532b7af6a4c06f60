import Foundation
import Testing
import TensorKit
@testable import TransformerKit

/// "GPT-3 on a napkin": parameter counts against known figures and against the model's own tensors,
/// FLOPs against the GPT-3 paper, activation memory against what `GPTActivations` allocates.
@Suite struct NapkinTests {
    /// Hugging Face's `num_parameters()` of the released GPT-2 checkpoints (tied head).
    @Test(arguments: [("gpt2", 124_439_808), ("gpt2-medium", 354_823_168), ("gpt2-large", 774_030_080), ("gpt2-xl", 1_557_611_200)])
    func gpt2CountsAreExact(_ name: String, _ expected: Int) throws {
        #expect(try Napkin.preset(name).parameters == expected)
    }

    @Test func gpt3Is175B() throws {
        let n = try Napkin.preset("gpt3-175b")
        #expect(
            n.config.layers == 96 && n.config.dModel == 12288 && n.config.heads == 96 && n.config.contextLength == 2048
                && n.config.vocabSize == 50257)
        #expect(n.parameters == 174_604_259_328)  // 12·L·d² + 13·L·d + (V + T)·d + 2d
        #expect(abs(Double(n.parameters) / 175e9 - 1) < 0.01)
        #expect(n.perLayer == 12 * 12288 * 12288 + 13 * 12288)
        // Brown et al. 2020, Table D.1: 3.14e23 FLOPs to train on 300B tokens ≈ 6N per token.
        let perToken = n.trainingFLOPsPerToken(context: 2048)
        #expect(abs(perToken * 300e9 / 3.14e23 - 1) < 0.04)
        #expect(perToken == 6 * Double(n.matmulWeights) + 12 * 96 * 2048 * 12288)
        #expect(n.forwardFLOPsPerToken(context: 2048) * 3 == perToken)
    }

    /// The table is the model's own parameter list, for every preset (shapes only; nothing is allocated).
    @Test func componentsAddUpToTheModelsTensors() throws {
        for p in Napkin.presets {
            let n = Napkin(name: p.name, config: p.config)
            let fromShapes = p.config.parameterShapes.reduce(0) { $0 + $1.1.reduce(1, *) }
            #expect(n.parameters == fromShapes, "\(p.name)")
            #expect(
                n.parameters == n.config.layers * n.perLayer + (n.config.vocabSize + n.config.contextLength) * n.config.dModel + 2
                    * n.config.dModel)
        }
        var untied = try Napkin.preset("gpt2")
        untied.tiedHead = false
        #expect(untied.parameters == 124_439_808 + 50257 * 768)
    }

    @Test func memoryFormulas() throws {
        let n = try Napkin.preset("gpt2")
        let m = n.memory(batch: 8, context: 1024)
        #expect(m.weightsFP32 == 4 * 124_439_808 && m.weightsFP16 == 2 * 124_439_808 && m.adamW == 8 * 124_439_808)
        #expect(m.trainingStateFP32 == 16 * 124_439_808 && m.trainingStateMixed == m.trainingStateFP32)
        // Korthikanti et al. 2022, eq. (1), per layer s·b·h·(34 + 5·a·s/h), plus fp32 logits.
        let perLayer = 1024.0 * 8 * 768 * (34 + 5 * 12 * 1024 / 768.0)
        #expect(m.activations16bit == 12 * perLayer + 4 * 8 * 1024 * 50257)
    }

    /// The activation estimate is exactly what the model allocates.
    @Test func activationFloatsMatchGPTActivations() throws {
        for (config, b, t) in [
            (GPTConfig(vocabSize: 65, contextLength: 64, dModel: 128, layers: 4, heads: 4), 12, 64),
            (GPTConfig(vocabSize: 11, contextLength: 9, dModel: 6, layers: 2, heads: 3, dFF: 10), 3, 7)
        ] {
            let acts = GPTActivations(config: config, maxBatch: b, maxLength: t)
            #expect(Napkin(name: "x", config: config).activationFloats(batch: b, context: t) == Self.allocatedValues(acts, b * t))
        }
    }

    /// Sums every `FlatBuffer` reachable from `acts` (blocks included) and the two Int32 id buffers.
    static func allocatedValues(_ acts: GPTActivations, _ n: Int) -> Int {
        func sum(_ value: Any) -> Int {
            if let f = value as? FlatBuffer { return f.count }
            if let blocks = value as? [GPTActivations.Block] { return blocks.reduce(0) { $0 + sum($1) } }
            return Mirror(reflecting: value).children.reduce(0) { $0 + (($1.value as? FlatBuffer)?.count ?? 0) }
        }
        return Mirror(reflecting: acts).children.reduce(0) { $0 + sum($1.value) } + 2 * n
    }

    @Test func unknownPresetListsTheKnownOnes() {
        #expect(throws: ConfigError.self) { try Napkin.preset("gpt4") }
        do { _ = try Napkin.preset("gpt4") } catch let e as ConfigError {
            #expect(e.message.contains("gpt4") && e.message.contains("gpt2-medium") && e.message.contains("gpt3-175b"))
        } catch { Issue.record("\(error)") }
    }
}
