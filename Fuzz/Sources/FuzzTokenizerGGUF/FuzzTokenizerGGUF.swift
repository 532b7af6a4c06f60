import Foundation
import FuzzSupport
import Tokenizers
import ModelFiles

// The GGUF tokenizer (byte-level BPE with special tokens, as SmolLM2's file holds it), built once
// from an in-memory GGUF carrying the fixture BPE's tables plus ChatML's specials. On arbitrary
// text: decode(encode(text)) == text with and without special-token parsing. The input bytes, fed to
// `UTF8Stream` in pieces cut where the input's first byte says, must stream to the same text as
// decoding them at once, for valid UTF-8.
func ggufBytes(_ kv: [(String, UInt32, [UInt8])]) -> Data {
    var o: [UInt8] = Array("GGUF".utf8)
    func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { o += $0 } }
    func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { o += $0 } }
    u32(3); u64(0); u64(UInt64(kv.count))
    for (key, type, value) in kv { u64(UInt64(key.utf8.count)); o += Array(key.utf8); u32(type); o += value }
    return Data(o)
}
func str(_ s: String) -> [UInt8] { withUnsafeBytes(of: UInt64(s.utf8.count).littleEndian) { Array($0) } + Array(s.utf8) }
func strings(_ a: [String]) -> [UInt8] {
    withUnsafeBytes(of: UInt32(8).littleEndian) { Array($0) } + withUnsafeBytes(of: UInt64(a.count).littleEndian) { Array($0) }
        + a.flatMap(str)
}
func int32s(_ a: [Int32]) -> [UInt8] {
    withUnsafeBytes(of: UInt32(5).littleEndian) { Array($0) } + withUnsafeBytes(of: UInt64(a.count).littleEndian) { Array($0) }
        + a.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } }
}

let tokenizer: GGUFTokenizer = {
    let bpe = try! ByteLevelBPE(
        vocabJSON: fixture("Tests/TransformerKitTests/Fixtures/bpe_vocab.json"),
        merges: String(decoding: fixture("Tests/TransformerKitTests/Fixtures/bpe_merges.txt"), as: UTF8.self))
    let tokens = bpe.tokens + ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]
    let types = tokens.indices.map { i -> Int32 in i >= bpe.vocabSize || bpe.isSpecial(i) ? 3 : 1 }
    let data = ggufBytes([
        ("tokenizer.ggml.model", 8, str("gpt2")),
        ("tokenizer.ggml.tokens", 9, strings(tokens)),
        ("tokenizer.ggml.merges", 9, strings(bpe.merges.map { "\($0.0) \($0.1)" })),
        ("tokenizer.ggml.token_type", 9, int32s(types)),
        ("tokenizer.ggml.bos_token_id", 4, withUnsafeBytes(of: UInt32(tokens.count - 1).littleEndian) { Array($0) })
    ])
    return try! GGUFTokenizer(gguf: try! GGUFFile(data: data))
}()

@_cdecl("FuzzTokenizerGGUF_main") public func fuzzMain(_ argc: CInt, _ argv: Arguments) -> CInt { runFuzzer(argc, argv, fuzz) }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let raw = Array(UnsafeBufferPointer(start: data, count: data == nil ? 0 : size))
    let text = String(decoding: raw, as: UTF8.self)
    for parseSpecial in [true, false] {
        let ids = tokenizer.encode(text, parseSpecial: parseSpecial)
        require(ids.allSatisfy { $0 >= 0 && $0 < tokenizer.vocabSize }, "an id out of range")
        require(tokenizer.decode(ids) == text, "decode(encode(text)) != text (parseSpecial \(parseSpecial))")
    }
    _ = tokenizer.decode([-1, tokenizer.vocabSize, Int.max])
    // Streaming, in pieces of 1 to 8 bytes chosen by the input's first byte.
    if let first = raw.first, String(validating: raw, as: UTF8.self) != nil {
        var stream = UTF8Stream(), out = "", i = 0, step = 0
        while i < raw.count {
            let n = 1 + Int((first >> UInt8(step % 8)) & 7)
            out += stream.append(Array(raw[i..<min(raw.count, i + n)]))
            i += n; step += 1
        }
        out += stream.flush()
        require(out == text, "UTF8Stream pieces differ from decoding at once")
    }
    return 0
}
