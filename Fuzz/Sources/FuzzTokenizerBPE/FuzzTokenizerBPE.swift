import Foundation
import FuzzSupport
import Tokenizers

// Byte-level BPE. The first byte chooses:
//   0–159: the rest is text for the fixture tokenizer (Tests/TransformerKitTests/Fixtures/bpe_*):
//          decode(encode(text)) == text, detokenize(tokenize(text)) == text, the pre-tokens join to
//          the text, and every id is in range;
//   160–223: the rest is `vocab.json`, a NUL byte, `merges.txt`: a table that loads must encode and
//          decode a sample text losslessly and write itself back to tables that load the same;
//   224–255: the rest is a training text: a tokenizer trained on it must round-trip it.
let fixture = try! ByteLevelBPE(
    vocabJSON: FuzzSupport.fixture("Tests/TransformerKitTests/Fixtures/bpe_vocab.json"),
    merges: String(decoding: FuzzSupport.fixture("Tests/TransformerKitTests/Fixtures/bpe_merges.txt"), as: UTF8.self))
let sample = "Hello, world! It's 2024: naïve café, 马无夜草不肥 🙂\n\ttabs  and  spaces <pad>"
let specials = SpecialToken.allCases.map(\.rawValue)

func roundTrip(_ bpe: ByteLevelBPE, _ text: String, _ what: String) {
    let ids = bpe.encode(text)
    require(ids.allSatisfy { $0 >= 0 && $0 < bpe.vocabSize }, "\(what): an id out of range")
    require(bpe.decode(ids) == text, "\(what): decode(encode(text)) != text")
    require(bpe.detokenize(bpe.tokenize(text)) == text, "\(what): detokenize(tokenize(text)) != text")
}

@_cdecl("FuzzTokenizerBPE_main") public func fuzzMain(_ argc: CInt, _ argv: Arguments) -> CInt { runFuzzer(argc, argv, fuzz) }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let (mode, rest) = selector(bytes(data, size))
    switch mode {
    case 0..<160:
        let text = String(decoding: rest, as: UTF8.self)
        require(ByteLevelBPE.preTokenize(text).joined() == text, "pre-tokens do not join to the text")
        roundTrip(fixture, text, "fixture")
        _ = fixture.decode([-1, fixture.vocabSize, Int.max, Int.min])
    case 160..<224:
        let parts = rest.split(separator: 0, maxSplits: 1, omittingEmptySubsequences: false)
        let vocab = Data(parts[0]), merges = parts.count > 1 ? String(decoding: parts[1], as: UTF8.self) : ""
        for sp in [nil, specials] {
            guard let bpe = try? ByteLevelBPE(vocabJSON: vocab, merges: merges, specialTokens: sp) else { continue }
            roundTrip(bpe, sample, "loaded tables")
            guard let again = try? ByteLevelBPE(vocabJSON: bpe.vocabJSON(), merges: bpe.mergesText(), specialTokens: sp) else {
                require(false, "tables that loaded do not load after writing them back"); return 0
            }
            require(again.tokens == bpe.tokens && again.encode(sample) == bpe.encode(sample), "written-back tables differ")
            _ = try? bpe.vocabulary()
        }
    default:
        let text = String(decoding: rest.prefix(2048), as: UTF8.self)
        let bpe = ByteLevelBPE.train(texts: [text, sample], vocabSize: 256 + specials.count + 40, specialTokens: specials, minFrequency: 2)
        roundTrip(bpe, text, "trained")
        require(bpe.vocabSize <= 256 + specials.count + 40, "trained past the vocabulary size")
    }
    return 0
}
