import Foundation
import FuzzSupport
import Training
import TransformerKit
import Tokenizers

// Config JSON: the same bytes through every config reader — TransformerConfig (Codable, then
// validate), a checkpoint's config.json and state.json, a Hugging Face GPT-2 and BERT config.json,
// and a tokenizer.json (every model TokenizerJSON reads, and the two codecs built on it). A config
// that validates must re-encode and decode equal, and its parameter shapes must be non-negative; a
// tokenizer.json that reads must write a file that reads back to the same bytes.
@_cdecl("FuzzConfigJSON_main") public func fuzzMain(_ argc: CInt, _ argv: Arguments) -> CInt { runFuzzer(argc, argv, fuzz) }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let d = bytes(data, size)
    let decoder = JSONDecoder(), encoder = JSONEncoder()
    if let c = try? decoder.decode(TransformerConfig.self, from: d) {
        _ = c.headSize; _ = c.attentionWidth; _ = c.conventions
        if (try? c.validate()) != nil {
            let shapes = c.parameterShapes
            require(shapes.allSatisfy { $0.1.allSatisfy { $0 >= 0 } }, "negative parameter shape from a valid config")
            if let again = try? encoder.encode(c) {
                require((try? decoder.decode(TransformerConfig.self, from: again)) == c, "TransformerConfig does not round-trip")
            }
        }
    }
    if let c = try? decoder.decode(CheckpointConfig.self, from: d) {
        if (try? c.model.validate()) != nil { _ = c.model.parameterShapes }
        _ = try? encoder.encode(c)
    }
    if let s = try? decoder.decode(TrainState.self, from: d) {
        if let again = try? encoder.encode(s), let back = try? decoder.decode(TrainState.self, from: again) {
            require(back.step == s.step && back.history.count == s.history.count, "TrainState does not round-trip")
        }
    }
    if let g = try? GPTCheckpoint.readConfig(data: d, path: "config.json") {
        require((try? g.validate()) != nil, "readConfig returned a GPT config that does not validate")
        require(g.parameterShapes.allSatisfy { $0.1.allSatisfy { $0 >= 0 } }, "negative GPT parameter shape")
        if let again = try? encoder.encode(g) {
            require((try? decoder.decode(GPTConfig.self, from: again)) == g, "GPTConfig does not round-trip")
        }
    }
    if let g = try? decoder.decode(GPTConfig.self, from: d), (try? g.validate()) != nil {
        _ = g.parameterShapes
    }
    if let b = try? BERTCheckpoint.readConfig(data: d, path: "config.json") {
        require(b.parameterShapes.allSatisfy { $0.1.allSatisfy { $0 >= 0 } }, "negative BERT parameter shape")
    }
    if let codec = try? SentenceCodec.load(data: d, name: "tokenizer.json") {
        let n = codec.vocabularySize
        for text in ["", "hello world", "马无夜草不肥", "<pad><end> x"] {
            let ids = codec.encode(text)
            require(ids.allSatisfy { $0 >= 0 && $0 < n }, "tokenizer.json: id out of range")
            _ = codec.decode(ids)
        }
        _ = codec.decode([-1, n, n + 1, 0])
        _ = codec.tokenLabel(-1); _ = codec.tokenLabel(n)
    }
    if let model = try? TokenizerJSON.read(data: d, name: "tokenizer.json") {
        let written = TokenizerJSON.data(model)
        let back = try? TokenizerJSON.read(data: written, name: "again")
        require(back.map { TokenizerJSON.data($0) == written } == true, "tokenizer.json does not round-trip")
        switch model {
        case .byteLevelBPE(let b): require(b.encode("hello <pad> 马").allSatisfy { $0 >= 0 && $0 < b.vocabSize }, "BPE id out of range")
        case .wordPiece(let w): require(w.encode("Hello, 马!").allSatisfy { $0 >= 0 && $0 < w.vocabularySize }, "WordPiece id out of range")
        case .wordLevel: _ = try? TextTokenizer.load(data: d, name: "tokenizer.json").encode("hello")
        }
    }
    return 0
}
