import Foundation
import Testing
import TensorKit
@testable import TransformerKit
@testable import Tokenizers
@testable import ModelFiles

/// Writes small GGUF files byte by byte, so the reader is tested without any download.
struct GGUFWriter {
    enum Value {
        case u32(UInt32), i32(Int32), f32(Float), bool(Bool), string(String), u64(UInt64), f64(Double), u8(UInt8), i16(Int16)
        case strings([String]), i32s([Int32]), f32s([Float])
    }
    var metadata: [(String, Value)] = []
    var tensors: [(name: String, dims: [Int], type: UInt32, bytes: [UInt8])] = []
    var alignment = 32
    var version: UInt32 = 3

    static func str(_ s: String, _ out: inout [UInt8]) { u64(UInt64(s.utf8.count), &out); out += Array(s.utf8) }
    static func u32(_ v: UInt32, _ out: inout [UInt8]) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
    static func u64(_ v: UInt64, _ out: inout [UInt8]) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }

    func data() -> Data {
        var o: [UInt8] = Array("GGUF".utf8)
        Self.u32(version, &o); Self.u64(UInt64(tensors.count), &o); Self.u64(UInt64(metadata.count), &o)
        for (k, v) in metadata {
            Self.str(k, &o)
            switch v {
            case .u8(let x): Self.u32(0, &o); o.append(x)
            case .i16(let x): Self.u32(3, &o); withUnsafeBytes(of: x.littleEndian) { o += $0 }
            case .u32(let x): Self.u32(4, &o); Self.u32(x, &o)
            case .i32(let x): Self.u32(5, &o); Self.u32(UInt32(bitPattern: x), &o)
            case .f32(let x): Self.u32(6, &o); Self.u32(x.bitPattern, &o)
            case .bool(let x): Self.u32(7, &o); o.append(x ? 1 : 0)
            case .string(let x): Self.u32(8, &o); Self.str(x, &o)
            case .u64(let x): Self.u32(10, &o); Self.u64(x, &o)
            case .f64(let x): Self.u32(12, &o); Self.u64(x.bitPattern, &o)
            case .strings(let a): Self.u32(9, &o); Self.u32(8, &o); Self.u64(UInt64(a.count), &o); for s in a { Self.str(s, &o) }
            case .i32s(let a):
                Self.u32(9, &o); Self.u32(5, &o); Self.u64(UInt64(a.count), &o); for x in a { Self.u32(UInt32(bitPattern: x), &o) }
            case .f32s(let a): Self.u32(9, &o); Self.u32(6, &o); Self.u64(UInt64(a.count), &o); for x in a { Self.u32(x.bitPattern, &o) }
            }
        }
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            offsets.append(offset)
            offset += (t.bytes.count + alignment - 1) / alignment * alignment
        }
        for (t, off) in zip(tensors, offsets) {
            Self.str(t.name, &o); Self.u32(UInt32(t.dims.count), &o)
            for d in t.dims { Self.u64(UInt64(d), &o) }
            Self.u32(t.type, &o); Self.u64(UInt64(off), &o)
        }
        while o.count % alignment != 0 { o.append(0) }
        for (t, off) in zip(tensors, offsets) {
            while o.count % alignment != 0 { o.append(0) }
            precondition(o.count >= off)
            o += t.bytes
        }
        while o.count % alignment != 0 { o.append(0) }
        return Data(o)
    }
}

/// Blocks made by hand, and quantisers to make random test matrices (the same rounding as ggml's).
enum Blocks {
    static func f16(_ x: Float) -> [UInt8] { withUnsafeBytes(of: Float16(x).bitPattern.littleEndian) { Array($0) } }
    static func f32(_ xs: [Float]) -> [UInt8] { xs.flatMap { x in withUnsafeBytes(of: x.bitPattern.littleEndian) { Array($0) } } }

    static func q8_0(_ xs: [Float]) -> [UInt8] {
        var out: [UInt8] = []
        for b in stride(from: 0, to: xs.count, by: 32) {
            let blk = xs[b..<(b + 32)], amax = blk.map(abs).max()!, d = amax / 127
            out += f16(d)
            for x in blk { out.append(UInt8(bitPattern: Int8(d == 0 ? 0 : (x / d).rounded()))) }
        }
        return out
    }

    static func q4_1(_ xs: [Float]) -> [UInt8] {
        var out: [UInt8] = []
        for b in stride(from: 0, to: xs.count, by: 32) {
            let blk = Array(xs[b..<(b + 32)]), lo = blk.min()!, hi = blk.max()!, d = (hi - lo) / 15
            out += f16(d) + f16(lo)
            let q = blk.map { UInt8(min(15, max(0, d == 0 ? 0 : (($0 - lo) / d).rounded()))) }
            for j in 0..<16 { out.append(q[j] | q[j + 16] << 4) }
        }
        return out
    }
}

@Suite struct GGUFTests {
    static func errorText(_ body: () throws -> Void) -> String? {
        do { try body(); return nil } catch { return String(describing: error) }
    }

    // MARK: - Blocks

    @Test func handMadeBlocksDequantise() throws {
        // Q4_1: d = 0.5, m = −1; byte j holds j in its low nibble and 15 − j in its high one.
        var q41 = Blocks.f16(0.5) + Blocks.f16(-1)
        for j in 0..<16 { q41.append(UInt8(j) | UInt8(15 - j) << 4) }
        // Q4_0: d = 2; values (q − 8)·2
        var q40 = Blocks.f16(2)
        for j in 0..<16 { q40.append(UInt8(j) | UInt8(15 - j) << 4) }
        // Q8_0: d = 0.25, q = j − 16
        var q80 = Blocks.f16(0.25)
        for j in 0..<32 { q80.append(UInt8(bitPattern: Int8(j - 16))) }
        var out = [Float](repeating: 0, count: 32)
        q41.withUnsafeBytes { Quantized.dequantize(.q4_1, $0.baseAddress!, &out, count: 32) }
        let want41: [Float] = (0..<32).map { (j: Int) -> Float in j < 16 ? 0.5 * Float(j) - 1 : 0.5 * Float(31 - j) - 1 }
        #expect(out == want41)
        q40.withUnsafeBytes { Quantized.dequantize(.q4_0, $0.baseAddress!, &out, count: 32) }
        let want40: [Float] = (0..<32).map { (j: Int) -> Float in j < 16 ? 2 * Float(j - 8) : 2 * Float(23 - j) }
        #expect(out == want40)
        q80.withUnsafeBytes { Quantized.dequantize(.q8_0, $0.baseAddress!, &out, count: 32) }
        #expect(out == (0..<32).map { 0.25 * Float($0 - 16) })
        let h = Blocks.f16(1.5) + Blocks.f16(-0.25)
        h.withUnsafeBytes { Quantized.dequantize(.f16, $0.baseAddress!, &out, count: 2) }
        #expect(Array(out[0..<2]) == [1.5, -0.25])
        #expect(GGMLType.q4_1.byteCount(64) == 40 && GGMLType.q8_0.byteCount(64) == 68 && GGMLType.q4_0.byteCount(32) == 18)
    }

    /// The SIMD matrix–vector product on the blocks against de-quantise-then-multiply (the reference).
    @Test(arguments: [GGMLType.f32, .f16, .q4_0, .q4_1, .q8_0])
    func matvecMatchesReference(type: GGMLType) throws {
        var rng = SeededRNG(seed: 7)
        let rows = 37, cols = 96
        let w = (0..<rows * cols).map { _ in rng.nextUnit() * 2 - 1 }
        let x = (0..<cols).map { _ in rng.nextUnit() * 2 - 1 }
        var bytes: [UInt8]
        switch type {
        case .f32: bytes = Blocks.f32(w)
        case .f16: bytes = w.flatMap(Blocks.f16)
        case .q8_0: bytes = Blocks.q8_0(w)
        case .q4_1: bytes = Blocks.q4_1(w)
        case .q4_0:  // reuse Q4_1's nibbles with Q4_0's header: any bytes are a valid block
            let b41 = Blocks.q4_1(w)
            bytes = []
            for o in stride(from: 0, to: b41.count, by: 20) { bytes += b41[o..<(o + 2)]; bytes += b41[(o + 4)..<(o + 20)] }
        default: return  // the other block types: QuantizedBlockTests, on blocks from the gguf package
        }
        bytes.withUnsafeBytes { raw in
            let m = QuantizedMatrix(type: type, rows: rows, cols: cols, data: raw.baseAddress!)
            var dense = [Float](repeating: 0, count: rows * cols)
            for r in 0..<rows { Quantized.dequantize(type, m.row(r), &dense[r * cols], count: cols) }
            var out = [Float](repeating: 0, count: rows), scratch = [Float](repeating: 0, count: cols / 32 + 1)
            Quantized.matvec(&out, m, x, scratch: &scratch)
            for r in 0..<rows {
                var s: Float = 0
                for c in 0..<cols { s += dense[r * cols + c] * x[c] }
                #expect(abs(out[r] - s) < 1e-4, "row \(r): \(out[r]) vs \(s)")
            }
            // matmul (a batch of 3) de-quantises and uses the GEMM
            let n = 3, xs = (0..<n * cols).map { _ in rng.nextUnit() - 0.5 }
            var big = [Float](repeating: 0, count: n * rows), deq = [Float](repeating: 0, count: rows * cols)
            Quantized.matmul(&big, m, xs, n: n, scratch: &deq)
            for i in 0..<n {
                Quantized.matvec(&out, m, Array(xs[(i * cols)..<((i + 1) * cols)]), scratch: &scratch)
                for r in 0..<rows { #expect(abs(big[i * rows + r] - out[r]) < 1e-4) }
            }
        }
    }

    // MARK: - Container

    static func smallFile() -> GGUFWriter {
        var w = GGUFWriter()
        w.metadata = [
            ("general.architecture", .string("llama")), ("a.u8", .u8(200)), ("a.i16", .i16(-3)), ("a.u32", .u32(7)),
            ("a.i32", .i32(-9)), ("a.f32", .f32(0.5)), ("a.bool", .bool(true)), ("a.u64", .u64(1 << 40)), ("a.f64", .f64(-2.25)),
            ("a.names", .strings(["x", "yz", "日本"])), ("a.ints", .i32s([1, -2, 3]))
        ]
        w.tensors = [
            ("vec", [4], 0, Blocks.f32([1, 2, 3, 4])),
            ("mat", [32, 2], 8, Blocks.q8_0((0..<64).map { Float($0 - 32) / 8 }))
        ]
        return w
    }

    @Test func readsEveryValueTypeAndTensor() throws {
        let f = try GGUFFile(data: Self.smallFile().data())
        #expect(f.version == 3 && f.alignment == 32 && f.dataOffset % 32 == 0)
        #expect(f.keys.first == "general.architecture")
        #expect(f.metadata["a.u8"] == .uint(200) && f.metadata["a.i16"] == .int(-3) && f.metadata["a.i32"] == .int(-9))
        #expect(try f.int("a.u32") == 7 && f.metadata["a.u64"] == .uint(1 << 40))
        #expect(try f.float("a.f32") == 0.5 && f.float("a.f64") == -2.25 && f.metadata["a.bool"] == .bool(true))
        #expect(try f.strings("a.names") == ["x", "yz", "日本"] && f.ints("a.ints") == [1, -2, 3])
        #expect(try f.floats("vec", dims: [4]) == [1, 2, 3, 4])
        let mat = try f.floats("mat", dims: [32, 2])  // Q8_0: within half a step (d/2 ≤ 4/127/2)
        #expect(zip(mat, (0..<64).map { Float($0 - 32) / 8 }).allSatisfy { abs($0 - $1) <= 0.016 })
        let m = try f.matrix("mat", rows: 2, cols: 32)
        #expect(m.type == .q8_0 && m.rowBytes == 34)
        // wrong expectations are reported, not trusted
        #expect(Self.errorText { _ = try f.matrix("mat", rows: 32, cols: 2) }?.contains("has shape [32, 2], expected [2, 32]") == true)
        #expect(Self.errorText { _ = try f.int("a.names") }?.contains("expected an integer") == true)
        #expect(Self.errorText { _ = try f.string("missing.key") }?.contains("missing.key is missing") == true)
    }

    @Test func customAlignmentAndVersion2() throws {
        var w = Self.smallFile()
        w.alignment = 64; w.version = 2
        w.metadata.append(("general.alignment", .u32(64)))
        let f = try GGUFFile(data: w.data())
        #expect(f.alignment == 64 && f.dataOffset % 64 == 0 && f.version == 2)
        #expect(try abs(f.floats("mat", dims: [32, 2])[63] - 31.0 / 8) < 0.016)
    }

    /// Every prefix of a valid file is rejected with a message that says it is truncated — never a crash.
    @Test func everyTruncationIsAnError() throws {
        let data = Self.smallFile().data()
        let full = try GGUFFile(data: data)
        let lastTensorEnd = full.dataOffset + full.tensors.map { $0.offset + $0.byteCount }.max()!
        for cut in 0..<lastTensorEnd {
            let e = Self.errorText { _ = try GGUFFile(data: data.prefix(cut), path: "cut.gguf") }
            #expect(e != nil, "a file cut at \(cut) bytes was accepted")
            if let e {
                #expect(
                    e.hasPrefix("cut.gguf: ") && (e.contains("truncated") || e.contains("not a GGUF") || e.contains("corrupt")),
                    "\(cut): \(e)")
            }
        }
    }

    @Test func badInputIsNamed() throws {
        var w = Self.smallFile()
        w.tensors[1].type = 16  // IQ2_XXS
        #expect(
            Self.errorText { _ = try GGUFFile(data: w.data(), path: "m.gguf") }
                == """
                m.gguf: tensor mat is stored as IQ2_XXS (type 16), which this reader does not support (it reads F32, F16, Q4_0, \
                Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)
                """
        )
        w.tensors[1].type = 14  // Q6_K, whose blocks hold 256 values
        #expect(
            Self.errorText { _ = try GGUFFile(data: w.data(), path: "m.gguf") }
                == "m.gguf: tensor mat is Q6_K with rows of 32 values, not a whole number of 256-value blocks")
        w = Self.smallFile(); w.tensors[1].dims = [30, 2]
        #expect(Self.errorText { _ = try GGUFFile(data: w.data()) }?.contains("not a whole number of 32-value blocks") == true)
        w = Self.smallFile(); w.version = 1
        #expect(Self.errorText { _ = try GGUFFile(data: w.data()) }?.contains("version 1 is not supported") == true)
        var bad = [UInt8](Self.smallFile().data()); bad[0] = 0x47 + 1
        #expect(Self.errorText { _ = try GGUFFile(data: Data(bad)) }?.contains("not a GGUF file") == true)
        // a tensor whose shape claims more data than the file has
        w = Self.smallFile(); w.tensors[0].dims = [400]
        #expect(Self.errorText { _ = try GGUFFile(data: w.data()) }?.contains("runs past the end of the file") == true)
        // a huge string length
        var data = [UInt8](Self.smallFile().data())
        data.replaceSubrange(24..<32, with: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])
        #expect(Self.errorText { _ = try GGUFFile(data: Data(data)) }?.contains("truncated or corrupt") == true)
        // another architecture
        w = Self.smallFile(); w.metadata[0].1 = .string("gpt2")
        let f = try GGUFFile(data: w.data(), path: "g.gguf")
        #expect(
            Self.errorText { _ = try LlamaConfig(gguf: f) }
                == "g.gguf: general.architecture is \"gpt2\"; this project runs \"llama\", \"qwen2\", \"gemma3\"")
    }

    // MARK: - A tiny random Llama

    /// d 64, 4 heads (2 key/value), feed-forward 96, 2 blocks, vocabulary 40; Q4_1 matrices, Q8_0 embedding.
    static func tinyLlama(seed: UInt64 = 3, vocab: Int = 40, context: Int = 64) -> GGUFWriter {
        var rng = SeededRNG(seed: seed)
        func rand(_ n: Int, _ s: Float) -> [Float] { (0..<n).map { _ in (rng.nextUnit() * 2 - 1) * s } }
        let d = 64, h = 96, kv = 32
        var w = GGUFWriter()
        w.metadata = [
            ("general.architecture", .string("llama")), ("llama.block_count", .u32(2)), ("llama.context_length", .u32(UInt32(context))),
            ("llama.embedding_length", .u32(UInt32(d))), ("llama.feed_forward_length", .u32(UInt32(h))),
            ("llama.attention.head_count", .u32(4)), ("llama.attention.head_count_kv", .u32(2)),
            ("llama.rope.freq_base", .f32(10000)), ("llama.attention.layer_norm_rms_epsilon", .f32(1e-5)),
            ("llama.vocab_size", .u32(UInt32(vocab)))
        ]
        w.tensors.append(("token_embd.weight", [d, vocab], 8, Blocks.q8_0(rand(vocab * d, 1))))
        for l in 0..<2 {
            let p = "blk.\(l)."
            w.tensors.append((p + "attn_norm.weight", [d], 0, Blocks.f32(rand(d, 0.2).map { $0 + 1 })))
            w.tensors.append((p + "attn_q.weight", [d, d], 3, Blocks.q4_1(rand(d * d, 0.3))))
            w.tensors.append((p + "attn_k.weight", [d, kv], 3, Blocks.q4_1(rand(kv * d, 0.3))))
            w.tensors.append((p + "attn_v.weight", [d, kv], 3, Blocks.q4_1(rand(kv * d, 0.3))))
            w.tensors.append((p + "attn_output.weight", [d, d], 3, Blocks.q4_1(rand(d * d, 0.2))))
            w.tensors.append((p + "ffn_norm.weight", [d], 0, Blocks.f32(rand(d, 0.2).map { $0 + 1 })))
            w.tensors.append((p + "ffn_gate.weight", [d, h], 3, Blocks.q4_1(rand(h * d, 0.2))))
            w.tensors.append((p + "ffn_up.weight", [d, h], 3, Blocks.q4_1(rand(h * d, 0.2))))
            w.tensors.append((p + "ffn_down.weight", [h, d], 3, Blocks.q4_1(rand(d * h, 0.2))))
        }
        w.tensors.append(("output_norm.weight", [d], 0, Blocks.f32(rand(d, 0.2).map { $0 + 1 })))
        return w
    }

    /// A prompt fed at once (matrix–matrix products, one attention call) and one token at a time
    /// (matrix–vector products, growing the cache) give the same logits; so do quantised and
    /// de-quantised weights (the same values, summed in another order).
    @Test func promptAtOnceEqualsTokenByToken() throws {
        let f = try GGUFFile(data: Self.tinyLlama().data())
        let ids = [3, 17, 5, 39, 0, 22, 8, 8, 11, 30]
        for deq in [false, true] {
            let model = try LlamaModel(file: f, dequantize: deq)
            let a = LlamaSession(model: model, activations: .float32), b = LlamaSession(model: model, activations: .float32)
            let chunked = LlamaSession(model: model, chunk: 8, activations: .float32)
            let whole = Array(try a.feed(ids + ids + ids))
            var last: [Float] = []
            for t in ids + ids + ids { last = Array(try b.feed([t])) }
            let inChunks = Array(try chunked.feed(ids + ids + ids))  // 8 + 8 + 8 + 6: the GEMM path after a filled cache
            #expect(whole.count == 40 && b.length == 3 * ids.count)
            let diff = zip(whole, last).map { abs($0 - $1) }.max()!, diff2 = zip(whole, inChunks).map { abs($0 - $1) }.max()!
            #expect(diff < 1e-4 && diff2 < 1e-4, "dequantize \(deq): max diff \(diff), \(diff2)")
        }
        let q = Array(try LlamaSession(model: LlamaModel(file: f), activations: .float32).feed(ids))
        let d = Array(try LlamaSession(model: LlamaModel(file: f, dequantize: true)).feed(ids))
        #expect(zip(q, d).map { abs($0 - $1) }.max()! < 1e-4)
    }

    /// 8-bit activations (the default for one token where the CPU has the integer kernels) move the
    /// logits by the input's rounding only: within 2% of their range of the Float32 path, token by token.
    @Test(.enabled(if: ActivationPrecision.int8Available)) func int8ActivationsStayClose() throws {
        let model = try LlamaModel(file: GGUFFile(data: Self.tinyLlama().data()))
        let ids = [3, 17, 5, 39, 0, 22, 8, 8, 11, 30]
        let exact = LlamaSession(model: model, activations: .float32), int8 = LlamaSession(model: model, activations: .int8)
        for t in ids {
            let a = try exact.feed([t]), b = try int8.feed([t])
            let range = a.max()! - a.min()!
            #expect(zip(a, b).map { abs($0 - $1) }.max()! <= 0.02 * range)
            #expect(a != b)  // the integer path did run
        }
    }

    /// Regression (AddressSanitizer, heap-use-after-free): `feed` returned a pointer into the session's
    /// own buffer, so `Array(try LlamaSession(model: m).feed(ids))` above read it after the temporary
    /// session was freed. The logits are a copy now: they survive the session, and fresh sessions
    /// (which may reuse the freed memory) running other tokens leave them alone.
    @Test func logitsOutliveATemporarySession() throws {
        let model = try LlamaModel(file: GGUFFile(data: Self.tinyLlama().data()))
        let ids = [3, 17, 5]
        let expected = try LlamaSession(model: model).feed(ids)
        let others = try (0..<4).map { _ in
            let s = LlamaSession(model: model)
            try s.feed([39, 1])
            return s
        }
        #expect(expected.count == 40 && expected.allSatisfy(\.isFinite))
        let again = try LlamaSession(model: model).feed(ids)
        #expect(again == expected)
        withExtendedLifetime(others) {}
    }

    /// The walkthrough's per-block summaries: attention rows sum to 1 over the positions so far, and the
    /// logit lens on the last block's residual is the model's output.
    @Test func blockSummaries() throws {
        let s = LlamaSession(model: try LlamaModel(file: GGUFFile(data: Self.tinyLlama().data())))
        var seen: [LlamaBlockSummary] = []
        s.observe = { seen.append($0) }
        let logits = Array(try s.feed([4, 9, 2]))
        #expect(seen.map(\.layer) == [0, 1])
        for b in seen {
            #expect(b.attention.count == 4 && b.attention.allSatisfy { $0.count == 3 && abs($0.reduce(0, +) - 1) < 1e-5 })
        }
        let lens = s.logits(ofResidual: seen[1].residual)
        #expect(zip(lens, logits).map { abs($0 - $1) }.max()! < 1e-5)
    }

    @Test func contextAndTensorErrors() throws {
        let f = try GGUFFile(data: Self.tinyLlama(context: 8).data(), path: "tiny.gguf")
        let s = LlamaSession(model: try LlamaModel(file: f))
        #expect(
            Self.errorText { try s.feed(Array(repeating: 1, count: 9)) }
                == "9 tokens do not fit in the context of 8 (0 already used, 9 new)")
        #expect(Self.errorText { try s.feed([40]) } == "token id 40 is outside the vocabulary (0..<40)")
        try s.feed([1, 2, 3, 4, 5, 6, 7])
        let out = try s.generate(prompt: [1], maxNewTokens: 5, sampling: SamplingOptions(temperature: 0))
        #expect(out.count == 1 && s.length == 8)  // stops when the context is full
        // a tensor whose size does not match the metadata
        var w = Self.tinyLlama()
        w.metadata[4] = ("llama.feed_forward_length", .u32(128))
        let g = try GGUFFile(data: w.data(), path: "bad.gguf")
        #expect(
            Self.errorText { _ = try LlamaModel(file: g) }
                == "bad.gguf: tensor blk.0.ffn_gate.weight has shape [64, 96], expected [64, 128] from the metadata")
        w = Self.tinyLlama(); w.tensors.removeLast()
        #expect(
            Self.errorText { _ = try LlamaModel(file: GGUFFile(data: w.data(), path: "x.gguf")) }
                == "x.gguf: tensor output_norm.weight is missing")
    }

    /// BOS/EOS ids: in range is kept, -1 (llama.cpp's "no token") is none, anything else is an error naming the key.
    @Test func startAndEndTokenIDs() throws {
        func tokenizer(bos: Int32, eos: Int32) throws -> GGUFTokenizer {
            var w = GGUFWriter()
            let bytes = (0..<256).map { ByteLevelBPE.byteLevelString([UInt8($0)]) }
            w.metadata = [
                ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.tokens", .strings(bytes + ["ab", "<|end|>"])),
                ("tokenizer.ggml.merges", .strings(["a b"])), ("tokenizer.ggml.token_type", .i32s([Int32](repeating: 1, count: 257) + [3])),
                ("tokenizer.ggml.bos_token_id", .i32(bos)), ("tokenizer.ggml.eos_token_id", .i32(eos))
            ]
            return try GGUFTokenizer(gguf: GGUFFile(data: w.data()))
        }
        let t = try tokenizer(bos: 0, eos: 257)
        #expect(t.bosID == 0 && t.eosID == 257)
        #expect(t.encode("ab<|end|>", parseSpecial: true) == [256, 257])
        let none = try tokenizer(bos: -1, eos: 257)
        #expect(none.bosID == nil)
        for (bos, eos) in [(-2, 257), (0, 258), (Int32.min, 0)] {
            let m = Self.errorText { _ = try tokenizer(bos: Int32(bos), eos: Int32(eos)) }
            #expect(m?.contains("outside the 258 tokens") == true, "bos \(bos) eos \(eos): \(m ?? "no error")")
        }
    }

    /// SentencePiece by hand: the highest-scoring pair merges first ("bc" before "ab"), ties go to the
    /// leftmost pair, a space is `▁`, a character with no piece falls back to its byte pieces, a byte
    /// with none to `<unk>`; user-defined tokens are cut out of the text first, control tokens only
    /// when asked.
    @Test func sentencePieceByHand() throws {
        let pieces = ["<unk>", "a", "b", "c", "ab", "bc", "abc", "▁", "▁a", "aa", "<0xC3>", "<0xA9>", "<eot>", "\n\n"]
        let scores: [Float] = [0, -1, -1, -1, -2, -1.5, -3, -1, -0.5, -1, 0, 0, 0, 0]
        let types = [2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 6, 6, 3, 4]
        let sp = try SentencePiece(pieces: pieces, scores: scores, types: types, addSpacePrefix: false, unknownID: 0)
        #expect(sp.encode("abc") == [6])  // b+c (−1.5) first, then a+bc = abc (−3)
        #expect(sp.encode("ab c") == [4, 7, 3])  // ab; "b▁", "▁c" are no pieces
        #expect(sp.encode("aaa") == [9, 1])  // two equal pairs: the left one merges
        #expect(sp.encode("é") == [10, 11])  // byte fallback
        #expect(sp.encode("x") == [0])  // no piece, no byte piece: unknown
        #expect(sp.encode("a", spacePrefix: true) == [8])
        #expect(String(decoding: sp.decodeBytes([4, 7, 3, 10, 11]), as: UTF8.self) == "ab cé")

        var w = GGUFWriter()
        w.metadata = [
            ("tokenizer.ggml.model", .string("llama")), ("tokenizer.ggml.tokens", .strings(pieces)),
            ("tokenizer.ggml.scores", .f32s(scores)), ("tokenizer.ggml.token_type", .i32s(types.map(Int32.init))),
            ("tokenizer.ggml.add_space_prefix", .bool(false))
        ]
        let tok = try GGUFTokenizer(gguf: GGUFFile(data: w.data()))
        #expect(tok.encode("ab\n\nc<eot>") == [4, 13, 3, 12])
        #expect(tok.encode("ab\n\nc<eot>", parseSpecial: false).prefix(3) == [4, 13, 3])
        #expect(!tok.encode("<eot>", parseSpecial: false).contains(12))
        #expect(tok.decode([4, 7, 3, 12]) == "ab c<eot>")
        w.metadata[0] = ("tokenizer.ggml.model", .string("bert"))
        let m = Self.errorText { _ = try GGUFTokenizer(gguf: GGUFFile(data: w.data(), path: "t.gguf")) }
        #expect(m == "t.gguf: tokenizer.ggml.model is \"bert\"; this project reads \"gpt2\" (byte-level BPE) and \"llama\" (SentencePiece)")
    }

    @Test func utf8StreamHoldsSplitCharacters() {
        var s = UTF8Stream()
        let bytes = Array("a日🙂b".utf8)  // 1 + 3 + 4 + 1 bytes
        var out = ""
        for b in bytes { out += s.append([b]) }
        out += s.flush()
        #expect(out == "a日🙂b")
        var t = UTF8Stream()
        #expect(t.append(Array(bytes[0..<3])) == "a")
        #expect(t.append(Array(bytes[3..<6])) == "日")
    }
}

/// `LlamaBatchDecoder` (a server's parallel slots): one step for several sessions at different
/// positions gives each session the logits `feed` gives it alone (to rounding; one session: exactly),
/// in either precision, and leaves its cache as `feed` would.
@Suite struct LlamaBatchTests {
    @Test(arguments: ActivationPrecision.allCases)
    func batchedStepEqualsSingleSteps(precision: ActivationPrecision) throws {
        let model = try LlamaModel(file: GGUFFile(data: GGUFTests.tinyLlama().data()))
        let prompts = [[3, 17, 5], [39, 0, 22, 8, 8, 11, 30], [1]]
        let batched = prompts.map { _ in LlamaSession(model: model, activations: precision) }
        let alone = prompts.map { _ in LlamaSession(model: model, activations: precision) }
        for (i, p) in prompts.enumerated() {
            try batched[i].feed(p)
            try alone[i].feed(p)
        }
        let decoder = LlamaBatchDecoder(model: model, maxRows: 4, activations: precision)
        // (this model's formats, Q8_0 and Q4_1, all have batched integer kernels: both sides keep `precision`)
        func close(_ a: [Float], _ b: [Float]) -> Bool {
            zip(a, b).map { abs($0 - $1) }.max()! <= 1e-4 * (b.map(abs).max()! + 1e-6)
        }
        for step in 0..<4 {
            let tokens = (0..<3).map { (7 * $0 + 3 * step + 1) % 40 }
            try decoder.step(batched, tokens)
            for i in 0..<3 {
                let want = try alone[i].feed([tokens[i]])
                #expect(close(Array(decoder.logits(row: i)), want), "step \(step) row \(i)")
                #expect(batched[i].length == alone[i].length)
            }
        }
        // and a session from the batch goes on alone as if it had always been alone
        #expect(close(try batched[1].feed([9]), try alone[1].feed([9])))
        // one session in a step is exactly `feed`, in its own precision
        let one = LlamaSession(model: model, activations: precision), ref = LlamaSession(model: model, activations: precision)
        try one.feed([4, 5]); try ref.feed([4, 5])
        try decoder.step([one], [6])
        #expect(Array(decoder.logits(row: 0)) == (try ref.feed([6])))
        // a repeated session and a full one are refused, not run
        #expect(throws: LlamaError.self) { try decoder.step([batched[0], batched[0]], [1, 2]) }
        let full = LlamaSession(model: model, maxLength: 2, activations: precision)
        try full.feed([1, 2])
        #expect(throws: LlamaError.self) { try decoder.step([full], [3]) }
    }

    /// Prompts read in the same step as other sessions' next tokens (a server's chunked prefill): each
    /// part's logits are those `feed` gives for the same tokens, and the caches go on as `feed`'s.
    @Test(arguments: ActivationPrecision.allCases)
    func promptPartsEqualFeed(precision: ActivationPrecision) throws {
        let model = try LlamaModel(file: GGUFFile(data: GGUFTests.tinyLlama().data()))
        func close(_ a: [Float], _ b: [Float]) -> Bool {
            zip(a, b).map { abs($0 - $1) }.max()! <= 1e-4 * (b.map(abs).max()! + 1e-6)
        }
        let decoder = LlamaBatchDecoder(model: model, maxRows: 12, maxSessions: 3, activations: precision)
        let sessions = (0..<3).map { _ in LlamaSession(model: model, activations: precision) }
        let alone = (0..<3).map { _ in LlamaSession(model: model, activations: precision) }
        try sessions[1].feed([2, 9]); try alone[1].feed([2, 9])  // one conversation already under way
        // step 1: a whole prompt, one next token, the first part of a longer prompt
        let parts = [[3, 17, 5, 30, 1], [12], [39, 0, 22]]
        try decoder.step(zip(sessions, parts).map { ($0, $1) })
        for i in 0..<3 {
            #expect(close(Array(decoder.logits(row: i)), try alone[i].feed(parts[i])), "part \(i)")
            #expect(sessions[i].length == alone[i].length)
        }
        // step 2: the rest of that prompt beside single tokens
        let next = [[8], [4], [8, 11, 30, 6]]
        try decoder.step(zip(sessions, next).map { ($0, $1) })
        for i in 0..<3 { #expect(close(Array(decoder.logits(row: i)), try alone[i].feed(next[i])), "part \(i), step 2") }
        // too many rows, too many sessions, an empty part: refused
        #expect(throws: LlamaError.self) { try decoder.step([(sessions[0], Array(repeating: 1, count: 13))]) }
        let fourth = LlamaSession(model: model, activations: precision)
        #expect(throws: LlamaError.self) { try decoder.step((sessions + [fourth]).map { ($0, [1]) }) }
        #expect(throws: LlamaError.self) { try decoder.step([(sessions[0], [])]) }
    }
}
