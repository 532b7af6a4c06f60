import Foundation
import FuzzSupport
import TensorKit
import Tokenizers
import ModelFiles

// GGUF: arbitrary bytes as a file. A file that opens must have every tensor's bytes inside the
// file; small tensors of every block type are de-quantised and multiplied by a vector; a tokenizer
// in the metadata is built and used, with its chat template.
@_cdecl("FuzzGGUF_main") public func fuzzMain(_ argc: CInt, _ argv: Arguments) -> CInt { runFuzzer(argc, argv, fuzz) }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let d = bytes(data, size)
    guard let f = try? GGUFFile(data: d) else { return 0 }
    // (With no tensors the aligned data section may start past the end; nothing is read there.)
    require(f.tensors.isEmpty || f.dataOffset <= f.fileSize, "data section at \(f.dataOffset) of \(f.fileSize)")
    require(Set(f.keys) == Set(f.metadata.keys), "keys and metadata differ")
    for t in f.tensors {
        require(t.offset >= 0 && t.dims.allSatisfy { $0 >= 0 }, "\(t.name): offset \(t.offset), dims \(t.dims)")
        require(
            f.dataOffset + t.offset + t.byteCount <= f.fileSize,
            "\(t.name): bytes \(t.offset)..<\(t.offset + t.byteCount) past the end (data at \(f.dataOffset), file \(f.fileSize))")
        require(f.tensor(t.name) != nil, "\(t.name): lookup by name fails")
        if t.count <= 4096, let values = try? f.floats(t.name, dims: t.dims) {
            require(values.count == t.count, "\(t.name): \(values.count) values for \(t.count)")
        }
        if t.dims.count == 2, t.count <= 4096, let m = try? f.matrix(t.name, rows: t.dims[1], cols: t.dims[0]) {
            var out = [Float](repeating: 0, count: m.rows), scratch = [Float](repeating: 0, count: m.cols / 32 + 1)
            Quantized.matvec(&out, m, [Float](repeating: 1, count: m.cols), scratch: &scratch)
            Quantized.matvec(&out, m, [Float](repeating: 1, count: m.cols), scratch: &scratch, activations: .int8)
        }
    }
    for key in f.keys {
        _ = try? f.int(key); _ = try? f.float(key); _ = try? f.string(key); _ = try? f.strings(key); _ = try? f.ints(key)
        _ = f.metadata[key]?.summary
    }
    if let tok = try? GGUFTokenizer(gguf: f) {
        let text = "Hello, world! 12 héllo <|im_start|>"
        let ids = tok.encode(text)
        require(ids.allSatisfy { $0 >= 0 && $0 < tok.vocabSize }, "ids out of range")
        _ = tok.decode(ids)
        _ = try? tok.renderChat([.init(role: "user", content: "hi")])
    }
    return 0
}
