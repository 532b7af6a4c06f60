import Foundation
import Testing
import TransformerKit  // public API only, so these tests also run in a release build (timing)
import Tokenizers

@Suite struct BPETests {
    // MARK: - Helpers

    static func fixtureURL(_ name: String, _ ext: String) throws -> URL {
        try #require(Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Fixtures"))
    }

    /// The tokenizer `make_bpe_fixture.py` trained with Hugging Face `tokenizers`.
    static func peerTokenizer() throws -> ByteLevelBPE {
        try ByteLevelBPE(vocabURL: fixtureURL("bpe_vocab", "json"), mergesURL: fixtureURL("bpe_merges", "txt"))
    }

    struct Case: Decodable { var text: String; var ids: [Int]; var tokens: [String]? }
    struct Fixture: Decodable {
        var vocab_size: Int
        var special_tokens: [String: Int]
        var cases: [Case]
        var decode_cases: [Case]
    }
    static func fixture() throws -> Fixture {
        try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: fixtureURL("bpe_cases", "json")))
    }

    /// SplitMix64: a small seeded generator, so the random strings are the same on every run.
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// A random string mixing the awkward cases: whitespace runs, \r\n, NUL and controls,
    /// contractions, digits, accents and combining marks, CJK, emoji sequences, any scalar.
    static func randomString(_ rng: inout SplitMix64) -> String {
        let pieces: [String] = [
            " ", "  ", "\t", "\n", "\r\n", "\u{0}", "\u{1C}", "\u{A0}", "\u{3000}", "\u{2028}",
            "'s", "'re", "'ll", "'", "''", "don't", "3.14", "1,000", "-", "...", "?!",
            "é", "e\u{301}", "a\u{308}\u{304}", "ß", "Ω", "ж", "١٢٣", "Ⅻ", "①",
            "白", "日本語", "한국어", "👍🏽", "👨\u{200D}👩\u{200D}👧", "🇩🇪", "\u{FEFF}", "\u{200B}",
            "word", "Word", "WORD", "the", " the"
        ]
        var s = ""
        for _ in 0..<Int.random(in: 0...24, using: &rng) {
            switch Int.random(in: 0..<10, using: &rng) {
            case 0..<5: s += pieces.randomElement(using: &rng)!
            case 5..<7: s.unicodeScalars.append(Unicode.Scalar(UInt8.random(in: 0...127, using: &rng)))
            case 7: s.unicodeScalars.append(Unicode.Scalar(UInt32.random(in: 0x80...0x7FF, using: &rng))!)
            default:
                var v = UInt32.random(in: 0x800...0x10FFFF, using: &rng)
                if (0xD800...0xDFFF).contains(v) { v = 0xE000 }
                s.unicodeScalars.append(Unicode.Scalar(v)!)
            }
        }
        return s
    }

    // MARK: - Byte table and pre-tokenizer

    @Test func byteTableIsGPT2s() {
        let t = ByteLevelBPE.byteToCharacter
        #expect(t.count == 256 && Set(t).count == 256)
        #expect(t[0x20] == "Ġ" && t[0x0A] == "Ċ" && t[0x0D] == "č" && t[0x09] == "ĉ" && t[0] == "Ā")
        #expect(t[0x21] == "!" && t[0x41] == "A" && t[0xE9] == "é" && t[0xAD] == "Ń" && t[0x7F] == "ġ")
        #expect(ByteLevelBPE.byteLevelString(Array("héllo wörld".utf8)) == "hÃ©lloĠwÃ¶rld")
        #expect(ByteLevelBPE.bytes(ofByteLevel: "hÃ©lloĠwÃ¶rld") == Array("héllo wörld".utf8))
        #expect(ByteLevelBPE.bytes(ofByteLevel: "a b") == nil)  // a real space is not a byte character
    }

    @Test func preTokenizerFollowsGPT2sPattern() {
        #expect(ByteLevelBPE.preTokenize("Hello, world!") == ["Hello", ",", " world", "!"])
        #expect(
            ByteLevelBPE.preTokenize("it's they're 'sa O'Neil ''s") == [
                "it", "'s", " they", "'re", " '", "sa", " O", "'", "Neil", " ''", "s"
            ])
        // `\s+(?!\S)`: a run of spaces before a word leaves its last space to the word
        #expect(ByteLevelBPE.preTokenize("x   y  ") == ["x", "  ", " y", "  "])
        #expect(ByteLevelBPE.preTokenize(" \t\n a") == [" \t\n", " a"])
        #expect(ByteLevelBPE.preTokenize("ab\r\n\r\ncd") == ["ab", "\r\n\r", "\n", "cd"])
        #expect(ByteLevelBPE.preTokenize("a \t\tb") == ["a", " \t", "\t", "b"])
        #expect(ByteLevelBPE.preTokenize("   ") == ["   "])
        #expect(ByteLevelBPE.preTokenize("") == [])
        // letters, numbers and the rest, with Unicode categories; \s is White_Space (U+00A0 yes, U+001C no)
        #expect(ByteLevelBPE.preTokenize("e\u{301}té ①② ٣ 3.14") == ["e", "\u{301}", "té", " ①②", " ٣", " 3", ".", "14"])
        #expect(ByteLevelBPE.preTokenize("!\u{A0}") == ["!", "\u{A0}"])
        #expect(ByteLevelBPE.preTokenize("!\u{1C}") == ["!\u{1C}"])
        #expect(ByteLevelBPE.preTokenize("白日 依山") == ["白日", " 依山"])
    }

    // MARK: - Training, worked by hand

    /// Corpus "low lower lowest" + "low low newer". Pre-tokens and counts:
    ///   low ×2, Ġlower, Ġlowest, Ġlow, Ġnewer (Ġ is the space).
    /// Pair counts: l·o 5, o·w 5, Ġ·l 3, w·e 3, e·r 2, the rest 1.
    ///  1. l·o (5; ties with o·w, and "l" < "o")           → lo
    ///  2. lo·w (5)                                          → low   (o·w is gone; w·e now 1, low·e 2)
    ///  3. Ġ·low (3)                                         → Ġlow
    ///  4. Ġlow·e (2; ties with e·r, and "Ġlow" < "e": 0x20 < 0x65) → Ġlowe (e·r drops to 1)
    /// Then every pair occurs once, below minFrequency 2: training stops.
    @Test func trainingOnATinyCorpusLearnsTheHandWorkedMerges() throws {
        let specials = ByteLevelBPE.modelSpecialTokens
        let bpe = ByteLevelBPE.train(texts: ["low lower lowest", "low low newer"], vocabSize: 1000, specialTokens: specials)
        #expect(bpe.merges.map { "\($0.0) \($0.1)" } == ["l o", "lo w", "Ġ low", "Ġlow e"])
        #expect(bpe.vocabSize == 256 + 4 + 4)
        #expect(Array(bpe.tokens[256..<260]) == ["lo", "low", "Ġlow", "Ġlowe"])
        #expect(Array(bpe.tokens[260...]) == ["<pad>", "<start>", "<end>", "<unk>"])
        #expect(bpe.id(forSpecial: "<pad>") == 260 && bpe.id(forSpecial: .unk) == 263)
        #expect(bpe.id(forSpecial: "low") == nil)
        // bytes keep their own ids: 'e' = 101, 'r' = 114, ' ' = 32
        #expect(bpe.encode("low") == [257])
        #expect(bpe.encode(" lower") == [259, 114])
        #expect(bpe.encode("lowest") == [257, 101, 115, 116])
        #expect(bpe.encode("lowlow") == [257, 257])
        #expect(bpe.encode("low lower") == [257, 259, 114])
        #expect(bpe.encode(" newest") == [32, 110, 101, 119, 101, 115, 116])
        #expect(bpe.tokenize("low lower") == ["low", "Ġlowe", "r"])
        #expect(bpe.detokenize(["low", "Ġlowe", "r"]) == "low lower")

        // a smaller vocabulary stops after the first merges; minFrequency 1 goes on further
        let two = ByteLevelBPE.train(texts: ["low lower lowest", "low low newer"], vocabSize: 262, specialTokens: specials)
        #expect(two.merges.map { "\($0.0) \($0.1)" } == ["l o", "lo w"])
        #expect(two.vocabSize == 262)
        let more = ByteLevelBPE.train(texts: ["low lower lowest", "low low newer"], vocabSize: 1000, specialTokens: [], minFrequency: 1)
        #expect(more.merges.count > 4)
        #expect(more.merges.prefix(4).map { "\($0.0) \($0.1)" } == ["l o", "lo w", "Ġ low", "Ġlow e"])
    }

    /// `make_bpe_training_fixture.py` recounts every pair before each merge; the incremental
    /// counts here must pick the same merges.
    @Test func trainingMatchesANaiveRecountingTrainer() throws {
        struct Expected: Decodable { var vocab_size: Int; var min_frequency: Int; var merges: [String]; var tokens: [String] }
        struct File: Decodable { var texts: [String]; var special_tokens: [String]; var cases: [Expected] }
        let file = try JSONDecoder().decode(File.self, from: Data(contentsOf: Self.fixtureURL("bpe_training", "json")))
        for c in file.cases {
            let bpe = ByteLevelBPE.train(
                texts: file.texts, vocabSize: c.vocab_size, specialTokens: file.special_tokens,
                minFrequency: c.min_frequency)
            #expect(bpe.merges.map { "\($0.0) \($0.1)" } == c.merges)
            #expect(bpe.tokens == c.tokens)
        }
    }

    @Test func trainingIsReproducibleAndReportsProgress() {
        let texts = (0..<200).map { "sentence number \($0 % 17) with some words, words and more words \($0)" }
        nonisolated(unsafe) var reports: [(Int, Int)] = []
        let a = ByteLevelBPE.train(texts: texts, vocabSize: 300, specialTokens: ["<pad>"]) { reports.append(($0, $1)) }
        let b = ByteLevelBPE.train(texts: texts.reversed(), vocabSize: 300, specialTokens: ["<pad>"])
        #expect(a.tokens == b.tokens)
        #expect(a.merges.map { "\($0.0) \($0.1)" } == b.merges.map { "\($0.0) \($0.1)" })
        #expect(a.vocabSize == 300)
        #expect(reports.count == 300 - 256 - 1)
        #expect(reports.last.map { $0.0 == $0.1 } == true)
    }

    @Test func specialTokenTextIsEncodedAsText() throws {
        // "<end>" is frequent in this corpus, but no merge may produce a token spelled "<end>"
        let texts = (0..<50).map { "a <end> b <end> c\($0)" }
        let bpe = ByteLevelBPE.train(texts: texts, vocabSize: 400, specialTokens: ByteLevelBPE.modelSpecialTokens)
        let end = try #require(bpe.id(forSpecial: "<end>"))
        let ids = bpe.encode("<end>")
        #expect(!ids.contains(end))
        #expect(!ids.contains { bpe.isSpecial($0) })
        #expect(bpe.decode(ids) == "<end>")
        #expect(bpe.decode([end]) == "<end>")  // a special id decodes to its text
        #expect(bpe.tokens.filter { $0 == "<end>" }.count == 1)
    }

    // MARK: - Round trip

    @Test func roundTripIsExactForRandomUnicode() throws {
        let peer = try Self.peerTokenizer()
        var rng = SplitMix64(state: 20240601)
        let corpus = (0..<300).map { _ in Self.randomString(&rng) }
        let trained = ByteLevelBPE.train(texts: corpus, vocabSize: 600, specialTokens: ByteLevelBPE.modelSpecialTokens)
        for bpe in [peer, trained] {
            for _ in 0..<1500 {
                let s = Self.randomString(&rng)
                let ids = bpe.encode(s)
                #expect(ids.allSatisfy { $0 >= 0 && $0 < bpe.vocabSize && !bpe.isSpecial($0) })
                #expect(bpe.decodeBytes(ids) == Array(s.utf8), "\(s.debugDescription)")
                #expect(Array(bpe.decode(ids).utf8) == Array(s.utf8))
                #expect(Array(bpe.detokenize(bpe.tokenize(s)).utf8) == Array(s.utf8))
                // pre-tokens cover the text exactly
                #expect(Array(ByteLevelBPE.preTokenize(s).joined().utf8) == Array(s.utf8))
            }
        }
        for s in ["", "\u{0}", "\r\n", "\t\t", "e\u{301}\u{302}", "🇩🇪👨‍👩‍👧", "\u{10FFFF}", "a\u{0}b"] {
            #expect(Array(peer.decode(peer.encode(s)).utf8) == Array(s.utf8))
        }
    }

    @Test func invalidUTF8DecodesWithReplacementCharacters() throws {
        let bpe = try Self.peerTokenizer()
        func ids(_ bytes: [UInt8]) -> [Int] { bytes.map { bpe.id(forToken: String(ByteLevelBPE.byteToCharacter[Int($0)]))! } }
        #expect(bpe.decode(ids([0x80])) == "\u{FFFD}")
        #expect(bpe.decode(ids([0x61, 0xE6, 0x97])) == "a\u{FFFD}")
        #expect(bpe.decodeBytes(ids([0x61, 0xE6, 0x97])) == [0x61, 0xE6, 0x97])
    }

    // MARK: - The Python peer

    @Test func loaderAndEncoderMatchHuggingFaceTokenizers() throws {
        let bpe = try Self.peerTokenizer()
        let fx = try Self.fixture()
        #expect(bpe.vocabSize == fx.vocab_size)
        for (s, id) in fx.special_tokens { #expect(bpe.id(forSpecial: s) == id) }
        #expect(bpe.specialTokens == ["<pad>", "<start>", "<end>", "<unk>"])
        #expect(fx.cases.count >= 12)
        for c in fx.cases {
            #expect(bpe.encode(c.text) == c.ids, "\(c.text.debugDescription)")
            if let tokens = c.tokens { #expect(bpe.tokenize(c.text) == tokens) }
            #expect(Array(bpe.decode(c.ids).utf8) == Array(c.text.utf8))
        }
        // Python's bytes.decode("utf-8", errors="replace") on invalid byte sequences
        for c in fx.decode_cases {
            #expect(Array(bpe.decode(c.ids).utf8) == Array(c.text.utf8), "\(c.ids)")
        }
        // the peer puts its specials first, so its ids cannot mirror a Vocabulary
        #expect(throws: TokenizerError.self) { try bpe.vocabulary() }
    }

    @Test func saveAndLoadRoundTrip() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bpe-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let peer = try Self.peerTokenizer()
        var rng = SplitMix64(state: 7)
        let trained = ByteLevelBPE.train(
            texts: (0..<200).map { _ in Self.randomString(&rng) } + ["\"quoted\" back\\slash"],
            vocabSize: 500, specialTokens: ByteLevelBPE.modelSpecialTokens + ["<sep \"x\">"])
        for (n, bpe) in [peer, trained].enumerated() {
            let sub = dir.appendingPathComponent("\(n)")
            try bpe.save(to: sub)
            let names = try FileManager.default.contentsOfDirectory(atPath: sub.path).sorted()
            #expect(names == ["merges.txt", "vocab.json"])  // no temporary files left behind
            let loaded = try ByteLevelBPE(directory: sub)
            #expect(loaded.tokens == bpe.tokens)
            #expect(loaded.specialTokens == bpe.specialTokens)
            #expect(loaded.merges.map { "\($0.0) \($0.1)" } == bpe.merges.map { "\($0.0) \($0.1)" })
            for _ in 0..<100 {
                let s = Self.randomString(&rng)
                #expect(loaded.encode(s) == bpe.encode(s))
            }
            // vocab.json is plain JSON that other readers agree with
            let json = try #require(
                try JSONSerialization.jsonObject(with: Data(contentsOf: sub.appendingPathComponent("vocab.json"))) as? [String: Int])
            #expect(json.count == bpe.vocabSize)
            for (t, id) in json { #expect(bpe.tokens[id] == t) }
            // overwriting an existing save works too
            try bpe.save(to: sub)
        }
        #expect(
            try String(contentsOf: dir.appendingPathComponent("0/merges.txt"), encoding: .utf8)
                == String(contentsOf: Self.fixtureURL("bpe_merges", "txt"), encoding: .utf8))
    }

    @Test func loaderRejectsBrokenFiles() throws {
        let vocab = Data(#"{"a": 0, "b": 1}"#.utf8)
        #expect(throws: TokenizerError.self) { try ByteLevelBPE(vocabJSON: vocab, merges: "") }  // bytes missing
        let peer = try Self.peerTokenizer()
        let good = peer.vocabJSON()
        #expect(throws: TokenizerError.self) { try ByteLevelBPE(vocabJSON: good, merges: "#version: 0.2\nq zzz\n") }
        #expect(throws: TokenizerError.self) { try ByteLevelBPE(vocabJSON: good, merges: "a b c\n") }
        #expect(throws: TokenizerError.self) { try ByteLevelBPE(vocabJSON: Data("{".utf8), merges: "") }
        #expect(throws: TokenizerError.self) {
            try ByteLevelBPE(vocabJSON: good, merges: peer.mergesText(), specialTokens: ["<missing>"])
        }
        // "\r\n" line ends and no #version line are fine
        let crlf = peer.merges.map { "\($0.0) \($0.1)" }.joined(separator: "\r\n")
        #expect(try ByteLevelBPE(vocabJSON: good, merges: crlf).merges.count == peer.merges.count)
    }

    // MARK: - The model's id space

    @Test func vocabularyMirrorsTheIDs() throws {
        let texts = ["Zwei junge Männer stehen draußen.", "Two young men are outside.", "Ein Hund läuft im Park."]
        let bpe = ByteLevelBPE.train(texts: texts, vocabSize: 300, specialTokens: ByteLevelBPE.modelSpecialTokens, minFrequency: 1)
        let v = try bpe.vocabulary()
        #expect(v.count == bpe.vocabSize)
        #expect(v.tokens == bpe.tokens)
        #expect(v.padID == bpe.id(forSpecial: .pad) && v.startID == bpe.id(forSpecial: .start))
        #expect(v.endID == bpe.id(forSpecial: .end) && v.unkID == bpe.id(forSpecial: .unk))
        // the Tokenizing extension methods then agree with encode/decode
        let s = "Zwei Hunde laufen draußen."
        #expect(bpe.encode(s, vocabulary: v) == bpe.encode(s))
        #expect(bpe.decode([v.startID] + bpe.encode(s) + [v.endID, v.padID], vocabulary: v) == s)
        // specials not in Vocabulary's order cannot be mirrored
        let other = ByteLevelBPE.train(texts: texts, vocabSize: 300, specialTokens: ["<unk>", "<pad>", "<start>", "<end>"])
        #expect(throws: TokenizerError.self) { try other.vocabulary() }
    }
}
