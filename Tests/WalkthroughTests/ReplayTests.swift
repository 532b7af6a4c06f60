import Foundation
import Testing
import TensorKit
import TransformerKit
@testable import Walkthrough

/// Replaying a trace recomputes every step from its op, inputs and attrs and compares.
@Suite struct ReplayTests {
    static func articleDoc() throws -> TraceDocument {
        var setup = WalkthroughSetup()
        setup.weightsFile = WalkthroughResources.articleWeightsURL
        #expect(setup.weightsFile != nil)
        return try setup.run()
    }

    @Test func defaultWalkthroughReplaysExactly() throws {
        let doc = try WalkthroughSetup().run()
        let mismatches = replay(doc)
        #expect(mismatches.isEmpty, "\(mismatches.map(\.description).joined(separator: "\n"))")
        #expect(doc.steps.count > 50)
    }

    @Test func articleWeightsTraceReplaysExactly() throws {
        let doc = try Self.articleDoc()
        let mismatches = replay(doc)
        #expect(mismatches.isEmpty, "\(mismatches.map(\.description).joined(separator: "\n"))")
    }

    /// Other conventions exercise the other ops: pre-norm, GELU (both forms), learned positions,
    /// separate embeddings (a `linear` output), attention biases (`linear` with bias), scaled embeddings.
    @Test(
        arguments: [
            { (c: inout TransformerConfig) in
                c.norm = .pre; c.activation = .gelu
            },
            { (c: inout TransformerConfig) in
                c.activation = .geluTanh; c.positions = .learned; c.embeddings = .separate
            },
            { (c: inout TransformerConfig) in
                c.attentionBias = true; c.scaleEmbeddings = true; c.heads = 3; c.encoderLayers = 2
            }
        ] as [@Sendable (inout TransformerConfig) -> Void])
    func otherConventionsReplayExactly(_ change: @Sendable (inout TransformerConfig) -> Void) throws {
        var setup = WalkthroughSetup()
        change(&setup.config)
        let mismatches = replay(try setup.run())
        #expect(mismatches.isEmpty, "\(mismatches.map(\.description).joined(separator: "\n"))")
    }

    @Test func oneCorruptedValueIsReportedAtThatStepOnly() throws {
        var doc = try WalkthroughSetup().run()
        let i = try #require(doc.steps.firstIndex { $0.id == "enc0.self_attn.head0.scaled" })
        doc.steps[i].values[3] += 0.01
        let mismatches = replay(doc)
        #expect(mismatches.map(\.stepID) == ["enc0.self_attn.head0.scaled"])
        #expect(mismatches.first?.message.contains("row 1") == true)
        #expect(abs((mismatches.first?.maxDifference ?? 0) - 0.01) < 1e-4)
    }

    @Test func aWrongStepWhoseConsumersFollowItIsReportedOnce() throws {
        // As if the model computed one step wrongly and carried on with it: only that step is reported.
        var setup = WalkthroughSetup()
        setup.config.heads = 1
        let good = try setup.run()
        var doc = good
        let i = try #require(doc.steps.firstIndex { $0.id == "enc0.self_attn.scaled" })
        doc.steps[i].values = doc.steps[i - 1].values  // "forgot" 1/√d_k ...
        let masked = applyMask(doc.steps[i].tensor, try #require(doc.step("enc.mask")).tensor)
        doc.steps[i + 1].values = masked.data  // ... and masked and normalised that
        doc.steps[i + 2].values = softmaxRows(masked).data
        let j = try #require(doc.steps.firstIndex { $0.id == "enc0.self_attn.context" })
        doc.steps[j].values = matmul(doc.steps[i + 2].tensor, try #require(doc.step("enc0.self_attn.v")).tensor).data
        let mismatches = replay(doc)
        #expect(mismatches.map(\.stepID) == ["enc0.self_attn.scaled"])
    }

    @Test func jsonRoundTripStillReplaysExactly() throws {
        for doc in [try WalkthroughSetup().run(), try Self.articleDoc()] {
            let back = try TraceDocument.decoder().decode(TraceDocument.self, from: doc.jsonData())
            let masked = try #require(back.step("dec0.self_attn.masked") ?? back.step("dec0.self_attn.head0.masked"))
            #expect(masked.values.contains(-.infinity))
            let mismatches = replay(back)
            #expect(mismatches.isEmpty, "\(mismatches.map(\.description).joined(separator: "\n"))")
        }
    }

    @Test func malformedTracesGiveMessagesNotCrashes() throws {
        var doc = try WalkthroughSetup().run()
        let q = try #require(doc.steps.firstIndex { $0.id == "enc0.self_attn.q" })
        doc.steps[q].inputs = ["src.x", "encoder.layers.0.self_attn.w_nope"]
        let scale = try #require(doc.steps.firstIndex { $0.id == "enc0.self_attn.head0.scaled" })
        doc.steps[scale].attrs = [:]
        let pe = try #require(doc.steps.firstIndex { $0.id == "src.pe" })
        doc.steps[pe].values.removeLast()
        let ids = try #require(doc.steps.firstIndex { $0.id == "src.ids" })
        doc.steps[ids].values[0] = 1.5
        let mask = try #require(doc.steps.firstIndex { $0.id == "dec.mask" })
        doc.steps[mask].values[1] = 1
        let embed = try #require(doc.steps.firstIndex { $0.id == "src.embed" })
        doc.steps[embed].inputs = ["src_embed", "out.loss"]
        let m = replay(doc)
        func message(_ id: String) -> String { m.filter { $0.stepID == id }.map(\.message).joined(separator: " | ") }
        #expect(message("enc0.self_attn.q").contains("unknown input \"encoder.layers.0.self_attn.w_nope\""))
        #expect(message("enc0.self_attn.head0.scaled").contains("missing attr factor"))
        #expect(message("src.pe").contains("35 values"))
        #expect(message("src.ids").contains("not a whole"))
        #expect(message("dec.mask").contains("row 1, column 2"))
        #expect(message("src.embed").contains("later step"))
    }

    @Test func replayFromASavedFile() throws {
        let doc = try WalkthroughSetup().run()
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("trace-\(UUID().uuidString).json")
        try doc.jsonData().write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        #expect(try replay(contentsOf: url).isEmpty)
    }
}
