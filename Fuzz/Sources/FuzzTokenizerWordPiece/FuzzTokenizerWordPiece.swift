import Foundation
import FuzzSupport
import Tokenizers

// WordPiece (BERT). The first byte chooses:
//   even: the rest is text for the fixture vocabulary (bert-tiny's vocab.txt), encoded with a
//         maxLength from 2 to 129: [CLS] first, [SEP] last, at most maxLength ids, all in range;
//   odd:  the rest is a vocab.txt; one that loads must encode a sample text within range.
let fixtureVocab = try! WordPieceTokenizer(
    vocabData: FuzzSupport.fixture("Tests/TransformerKitTests/Fixtures/bert-tiny/vocab.txt"), name: "vocab.txt")
let sample = "Hello, world! It's naïve CAFÉ, 马无夜草不肥 unaffable [UNK] [SEP]"

func checkEncoding(_ tok: WordPieceTokenizer, _ text: String, maxLength: Int, _ what: String) {
    let ids = tok.encode(text, maxLength: maxLength)
    require(ids.count >= 2 && ids.count <= maxLength, "\(what): \(ids.count) ids for maxLength \(maxLength)")
    require(ids.first == tok.cls && ids.last == tok.sep, "\(what): not [CLS] … [SEP]")
    require(ids.allSatisfy { $0 >= 0 && $0 < tok.vocabularySize }, "\(what): an id out of range")
    _ = tok.tokens(ids)
    for w in tok.words(text).prefix(16) {
        require(tok.wordPieces(w).allSatisfy { $0 >= 0 && $0 < tok.vocabularySize }, "\(what): a piece id out of range")
    }
}

@_cdecl("FuzzTokenizerWordPiece_main") public func fuzzMain(_ argc: CInt, _ argv: Arguments) -> CInt { runFuzzer(argc, argv, fuzz) }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let (mode, rest) = selector(bytes(data, size))
    if mode % 2 == 0 {
        let text = String(decoding: rest, as: UTF8.self)
        checkEncoding(fixtureVocab, text, maxLength: 2 + Int(mode / 2), "fixture")
        var cased = fixtureVocab
        cased.lowercase = false
        checkEncoding(cased, text, maxLength: 256, "fixture, cased")
    } else {
        for lowercase in [true, false] {
            guard let tok = try? WordPieceTokenizer(vocabData: rest, name: "vocab.txt", lowercase: lowercase) else { continue }
            checkEncoding(tok, sample, maxLength: 64, "loaded vocabulary")
        }
    }
    return 0
}
