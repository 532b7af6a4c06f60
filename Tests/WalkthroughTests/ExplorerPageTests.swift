import Foundation
#if canImport(FoundationXML)
    import FoundationXML
#endif
import Testing
import TensorKit
import TransformerKit
@testable import Walkthrough

/// The explorer's pictures in the HTML page: attention heatmaps per layer and head with the mask,
/// the next-token bar chart, the training step, and the attention SVG files.
@Suite struct ExplorerPageTests {
    func count(_ s: String, _ needle: String) -> Int { s.components(separatedBy: needle).count - 1 }

    @Test func seq2seqPageHasAHeatmapPerLayerAndHeadWithTheMask() throws {
        let doc = try WalkthroughSetup().run()
        let c = doc.config
        let maps = doc.attentionMaps
        // Encoder self-attention, decoder self- and cross-attention: every layer, every head.
        #expect(maps.count == (c.encoderLayers + 2 * c.decoderLayers) * c.heads)
        let html = try doc.render(.html)
        #expect(count(html, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"heatmap\"") == maps.count)
        for m in maps {
            #expect(html.contains("data-block=\"\(m.block)\" data-layer=\"\(m.layer)\" data-kind=\"\(m.kind)\" data-head=\"\(m.head)\""))
        }
        // The decoder's causal mask: 7 positions, 21 cells above the diagonal, in each decoder self-attention head only.
        let dec = try #require(maps.first { $0.step == "dec0.self_attn.head0.weights" })
        #expect(dec.masked.filter { $0 }.count == 21)
        #expect(count(MatrixSVG.attention(dec), "<rect class=\"masked\"") == 21)
        #expect(count(html, "<rect class=\"masked\"") == 21 * c.heads * c.decoderLayers)
        let enc = try #require(maps.first { $0.block == "enc0" })
        #expect(!enc.masked.contains(true))
        // Every step is still there, and the page is one file with no network access.
        #expect(count(html, "<section class=\"step\"") == doc.steps.count)
        #expect(!html.lowercased().contains("src=\"http") && !html.lowercased().contains("href=\"http"))
    }

    /// The play panel's data: the real logits of the predicted position, every head's four stages
    /// with its Q and K, and tour stops that all point at something on the page.
    @Test func playPanelCarriesTheTracesNumbers() throws {
        let doc = try WalkthroughSetup().run()
        let r = HTMLRenderer(doc: doc, options: RenderOptions())
        let data = r.playData()
        let next = try #require(data.next)
        let logits = try #require(doc.step("out.logits"))
        let v = logits.shape[1]
        let last = Array(logits.values[((logits.shape[0] - 1) * v)...])
        #expect(next.fromLogits && next.vocabulary == v && next.tokens.count == v)
        #expect(next.logits.first == last.max())
        // softmax(z / 1) of the page's logits is the trace's distribution
        let z = next.logits.map(Double.init), m = z.max()!
        let sum = z.reduce(0) { $0 + Foundation.exp($1 - m) }
        let top = try #require(doc.nextToken)
        #expect(abs(Float(Foundation.exp(z[0] - m) / sum) - top.probability) < 1e-5)
        #expect(next.tokens.first == top.token)
        #expect(data.heads.count == doc.attentionMaps.count)
        let h = try #require(data.heads.first { $0.step == "dec0.self_attn.head0" })
        let scaled = try #require(doc.step("dec0.self_attn.head0.scaled"))
        #expect(abs(h.scaled[1][0] - scaled.values[scaled.shape[1]]) < 1e-4)
        #expect(h.masked?[0][1] == -.infinity)
        #expect(h.dk == doc.config.dModel / doc.config.heads)
        let html = r.render()
        for stop in data.tour {
            #expect(html.contains("id=\"\(stop.target)\""), "tour stop \(stop.title) points at \(stop.target)")
        }
        #expect(data.tour.count >= 12)
        #expect(html.contains("<script type=\"application/json\" id=\"play-data\">"))
    }

    @Test func nextTokenChartShowsTheArgmax() throws {
        let doc = try WalkthroughSetup().run()
        let next = try #require(doc.nextToken)
        let probs = try #require(doc.step("out.probs"))
        let last = probs.tensor.row(probs.shape[0] - 1)
        let best = last.indices.max { last[$0] < last[$1] }!
        #expect(next.id == best && next.token == doc.vocabulary[best])
        #expect(next.top.count == 10 && next.top.map(\.probability) == next.top.map(\.probability).sorted(by: >))
        let html = try doc.render(.html)
        #expect(html.contains("id=\"predicted-token\" class=\"next-token\" data-id=\"\(best)\">\(next.token)</strong>"))
        #expect(count(html, "class=\"next-bar\"") == 10)
    }

    @Test func gptPageHasEveryHeadAndTheNextToken() throws {
        var g = GPTWalkthroughSetup()
        g.config.layers = 2
        g.config.heads = 2
        let doc = try g.run()
        let html = try doc.render(.html)
        #expect(count(html, "class=\"heatmap\" data-step=") == 4)
        let next = try #require(doc.nextToken)
        #expect(next.after == doc.step("out.next")?.rowLabels.first)
        // The causal mask: n(n−1)/2 cells per head.
        let n = try #require(doc.step("in.ids")).shape[0]
        #expect(count(html, "<rect class=\"masked\"") == 4 * n * (n - 1) / 2)
    }

    @Test func trainingTraceShowsGradientsAndTheUpdate() throws {
        var s = WalkthroughSetup()
        s.trainStep = true
        let doc = try s.run()
        let html = try doc.render(.html)
        #expect(html.contains("<section id=\"training\">"))
        let grads = doc.steps.filter { $0.op == .gradient || $0.op == .softmaxCrossEntropyGrad }
        #expect(count(html, "class=\"grad-bar\"") == grads.count)
        #expect(count(html, "class=\"update-map\"") == 3)  // before, change, after
        #expect(html.contains("changes the loss from"))
    }

    @Test func attentionSVGFiles() throws {
        let doc = try WalkthroughSetup().run()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("attention-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let names = try MatrixSVG.writeAttention(doc, to: dir)
        #expect(names.count == doc.attentionMaps.count)
        #expect(names.contains("attention-dec0-cross_attn-head1.svg"))
        let svg = try String(contentsOf: dir.appendingPathComponent("attention-dec0-self_attn-head0.svg"), encoding: .utf8)
        #expect(svg.hasPrefix("<?xml") && svg.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        // Well-formed XML: parsed by Foundation's parser.
        let parser = XMLParser(data: Data(svg.utf8))
        #expect(parser.parse())
        // One rectangle per cell (7×7 decoder positions).
        #expect(count(svg, "<rect x=") + count(svg, "<rect class=\"masked\"") == 49)
        #expect(svg.contains(">decoder layer 1 · masked self-attention · head 0</text>"))
    }

    @Test func liveFragmentAndPage() throws {
        let doc = try WalkthroughSetup().run()
        let fragment = ExplorerPage.fragment(doc)
        #expect(!fragment.contains("<html") && fragment.contains("<main>") && fragment.contains("id=\"attention\""))
        let page = ExplorerPage.live(model: "m <1>", completion: ("Translate", "/api/translate"), maxCharacters: 50, example: "a\"b")
        #expect(page.contains("maxlength=\"50\"") && page.contains("value=\"a&quot;b\"") && page.contains("m &lt;1&gt;"))
        #expect(page.contains("fetch(path") && page.contains("\"/api/trace\""))
    }
}
