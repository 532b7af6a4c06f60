import Foundation
import FuzzSupport
import Tokenizers

// Character and word tokenizers on arbitrary bytes (read as UTF-8 with replacement, as the CLI reads
// text). Keeping punctuation and spaces, the character tokens join back to the text without its line
// breaks; through a vocabulary built from the text, decode(encode(text)) gives the joined tokens back.
@_cdecl("FuzzTokenizerChar_main") public func fuzzMain(_ argc: CInt, _ argv: Arguments) -> CInt { runFuzzer(argc, argv, fuzz) }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: data == nil ? 0 : size), as: UTF8.self)
    let char = CharTokenizer(dropPunctuation: false, dropWhitespace: false)
    let tokens = char.tokenize(text)
    require(char.detokenize(tokens) == String(text.filter { !$0.isNewline }), "char tokens do not join back to the text")
    let v = Vocabulary(corpusTokens: tokens)
    let ids = char.encode(text, vocabulary: v)
    require(
        ids.allSatisfy { $0 >= 0 && $0 < v.count && $0 != v.unkID },
        "char: an id out of range or <unk> for a token of the vocabulary's own text")
    require(char.decode(ids, vocabulary: v) == char.detokenize(tokens), "char: decode(encode(text)) differs")
    _ = CharTokenizer().tokenize(text)

    for word in [WordTokenizer(), WordTokenizer(dropPunctuation: true, lowercase: true)] {
        let wt = word.tokenize(text)
        require(wt.allSatisfy { !$0.isEmpty }, "word: an empty token")
        let wv = Vocabulary(corpusTokens: wt)
        let wids = word.encode(text, vocabulary: wv)
        require(wids.count == wt.count && wids.allSatisfy { $0 >= 0 && $0 < wv.count }, "word: ids")
        require(word.decode(wids, vocabulary: wv) == word.detokenize(wt), "word: decode(encode(text)) differs")
        _ = word.decode([-1, wv.count, 0], vocabulary: wv)
    }
    return 0
}
