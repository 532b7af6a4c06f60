import Foundation
import Testing
@testable import TransformerKit
@testable import Tokenizers

@Suite struct TokenizerTests {
    @Test func charTokenizerDropsPunctuationAndKeepsEachCJKCharacter() {
        let t = CharTokenizer(dropPunctuation: true)
        #expect(t.tokenize("马无夜草不肥，人无横财不富。") == ["马", "无", "夜", "草", "不", "肥", "人", "无", "横", "财", "不", "富"])
    }

    @Test func charTokenizerKeepsPunctuationWhenAsked() {
        #expect(CharTokenizer(dropPunctuation: false, dropWhitespace: true).tokenize("a, b") == ["a", ",", "b"])
    }

    @Test func wordTokenizerSplitsPunctuationAndCJK() {
        let t = WordTokenizer()
        #expect(t.tokenize("Two young, White males.") == ["Two", "young", ",", "White", "males", "."])
        #expect(t.tokenize("I like 中文!") == ["I", "like", "中", "文", "!"])
        #expect(t.detokenize(["Two", "young", ",", "males", "."]) == "Two young, males.")
        #expect(WordTokenizer(dropPunctuation: true, lowercase: true).tokenize("Hello, World") == ["hello", "world"])
    }

    @Test func seedCorpusHas36Characters() {
        let corpus = ["白日依山尽，黄河入海流。", "马无夜草不肥，人无横财不富。", "天行健，君子以自强不息，地势坤，君子以厚德载物。"]
        let tok = CharTokenizer()
        let v = Vocabulary(corpusTokens: corpus.flatMap { tok.tokenize($0) })
        #expect(v.corpusTokenCount == 36)
        #expect(v.count == 40)
        #expect(v.id("白") == 0)
        #expect(v.id("马") == 10)  // the article's 11, counted from 1
        #expect(v.id("物") == 35)
        #expect(v.token(v.startID) == "<start>")
        let (ids, unknown) = v.ids(for: ["马", "猫"])
        #expect(ids == [10, v.unkID])
        #expect(unknown == ["猫"])
    }

    @Test func vocabularyRoundTripsThroughJSON() throws {
        let v = Vocabulary(corpusTokens: ["a", "b", "a", "c"])
        let data = try JSONEncoder().encode(v)
        let back = try JSONDecoder().decode(Vocabulary.self, from: data)
        #expect(back == v)
        #expect(back.id("c") == 2)
    }
}

@Suite struct EncodeDecodeTests {
    @Test func encodeDecodeRoundTrip() {
        let tok = WordTokenizer()
        let v = Vocabulary(corpusTokens: tok.tokenize("a dog runs . a cat sleeps ."))
        let ids = tok.encode("a cat runs .", vocabulary: v)
        #expect(ids == [0, 4, 2, 3])
        #expect(tok.decode([v.startID] + ids + [v.endID, 1], vocabulary: v) == "a cat runs.")
        #expect(tok.encode("a bird", vocabulary: v) == [0, v.unkID])
        let c = CharTokenizer()
        let cv = Vocabulary(corpusTokens: c.tokenize("人无横财不富"))
        #expect(c.decode(c.encode("人无横财不富", vocabulary: cv), vocabulary: cv) == "人无横财不富")
    }
}
