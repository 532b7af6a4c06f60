import Foundation
import Testing
import Training

@Suite struct BLEUTests {
    struct Corpus: Decodable {
        var hyps: [String]
        var refs: [[String]]
        var score: Double
        var precisions: [Double]
        var counts: [Int]
        var totals: [Int]
        var bp: Double
        var sys_len: Int
        var ref_len: Int
        var summary: String
    }
    struct Tokenized: Decodable { var line: String; var tokens: String }
    struct Fixture: Decodable { var corpora: [Corpus]; var tokenize_13a: [Tokenized] }

    static func fixture() throws -> Fixture {
        let url = try #require(Bundle.module.url(forResource: "bleu_cases", withExtension: "json", subdirectory: "Fixtures"))
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    static func close(_ a: Double, _ b: Double, rel: Double = 1e-6) -> Bool {
        a == b || abs(a - b) <= rel * max(abs(a), abs(b))
    }

    // MARK: - Worked by hand

    /// hyp "the cat sat on the mat", ref "the cat is on the mat" (6 tokens each, BP = 1):
    ///   1-grams 5/6 (the ×2, cat, on, mat), 2-grams 3/5 (the cat, on the, the mat),
    ///   3-grams 1/4 (on the mat), 4-grams 0/3 → smoothed to 1/(2·3).
    /// BLEU = (83.33 · 60 · 25 · 16.67)^(1/4) ≈ 37.99.
    @Test func handWorkedSentence() {
        let b = BLEU.corpusScore(hypotheses: ["the cat sat on the mat"], references: ["the cat is on the mat"])
        #expect(b.counts == [5, 3, 1, 0])
        #expect(b.totals == [6, 5, 4, 3])
        #expect(b.sysLen == 6 && b.refLen == 6 && b.brevityPenalty == 1)
        let p = [100.0 * 5 / 6, 60, 25, 100.0 / 6]
        #expect(zip(b.precisions, p).allSatisfy { Self.close($0, $1, rel: 1e-12) })
        #expect(Self.close(b.score, pow(p.reduce(1, *), 0.25), rel: 1e-12))
        #expect(abs(b.score - 37.9918) < 1e-4)
    }

    /// hyp "the cat", ref "the cat is here": every n-gram matches, but there are no 3-grams, so
    /// the 3- and 4-gram precisions are 0 and (without effective order) BLEU is 0; BP = e^(1 − 4/2).
    @Test func handWorkedShortHypothesis() {
        let b = BLEU.corpusScore(hypotheses: ["the cat"], references: ["the cat is here"])
        #expect(b.precisions == [100, 100, 0, 0])
        #expect(b.score == 0)
        #expect(Self.close(b.brevityPenalty, exp(-1.0), rel: 1e-15))
        // a perfect match scores 100, nothing in common scores 0
        #expect(Self.close(BLEU.corpusScore(hypotheses: ["A dog runs ."], references: ["A dog runs."]).score, 100, rel: 1e-12))
        #expect(BLEU.corpusScore(hypotheses: ["x y z w"], references: ["a b c d"]).score == 0)
    }

    @Test func tokenizer13aByHand() {
        #expect(BLEU.tokenize13a("Hello, world!") == "Hello , world !")
        #expect(BLEU.tokenize13a("3.14 and 1,000 but 5. and end.") == "3.14 and 1,000 but 5 . and end .")
        #expect(BLEU.tokenize13a("a well-known 1984-05-12 date") == "a well-known 1984 - 05 - 12 date")
        #expect(BLEU.tokenize13a("&quot;hi&quot; &amp; &lt;b&gt;") == "\" hi \" & < b >")
        #expect(BLEU.tokenize13a("it's  (x)\t[y]\n") == "it's ( x ) [ y ]")
        #expect(BLEU.tokenize13a("") == "")
    }

    // MARK: - sacreBLEU

    @Test func matchesSacreBLEU() throws {
        let fx = try Self.fixture()
        #expect(fx.corpora[0].hyps.count >= 30)
        for c in fx.corpora {
            let b = BLEU.corpusScore(hypotheses: c.hyps, referenceStreams: c.refs)
            #expect(Self.close(b.score, c.score), "\(c.summary): got \(b.score)")
            #expect(b.precisions.count == 4)
            for (x, y) in zip(b.precisions, c.precisions) { #expect(Self.close(x, y), "\(c.summary)") }
            #expect(Self.close(b.brevityPenalty, c.bp))
            #expect(b.counts == c.counts && b.totals == c.totals)
            #expect(b.sysLen == c.sys_len && b.refLen == c.ref_len)
            #expect(b.description == c.summary)
            if c.refs.count == 1 {
                #expect(BLEU.corpusScore(hypotheses: c.hyps, references: c.refs[0]) == b)
            }
        }
    }

    @Test func tokenizer13aMatchesSacreBLEU() throws {
        let fx = try Self.fixture()
        #expect(fx.tokenize_13a.count > 200)
        for t in fx.tokenize_13a {
            // sacreBLEU strips trailing whitespace before tokenizing
            var line = t.line
            while let last = line.unicodeScalars.last, last.properties.isWhitespace { line.unicodeScalars.removeLast() }
            #expect(Array(BLEU.tokenize13a(line).unicodeScalars) == Array(t.tokens.unicodeScalars), "\(t.line.debugDescription)")
        }
    }
}
