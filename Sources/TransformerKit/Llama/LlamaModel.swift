import Foundation
import TensorKit
import ModelFiles

/// The sizes of a Llama-family model, read from a GGUF file's metadata (`llama.*`, `qwen2.*`, …: the
/// keys sit under the architecture's name).
public struct LlamaConfig: Sendable, Equatable {
    /// Which member of the family, and what it changes in the block.
    public var architecture: LlamaArchitecture = .llama
    public var vocabSize: Int
    public var dModel: Int
    /// The feed-forward's inner width (SwiGLU: gate and up project to it, down projects back).
    public var dFF: Int
    public var layers: Int
    public var heads: Int
    /// Key/value heads: fewer than `heads` is grouped-query attention.
    public var kvHeads: Int
    /// Each head's width: d_model / heads, unless the file says otherwise (`ARCH.attention.key_length`:
    /// Gemma 3 270M has 4 heads of 256 on a d_model of 640).
    public var headSize: Int
    /// Width of all query heads together (= d_model unless `headSize` was given).
    public var queryWidth: Int { heads * headSize }
    public var contextLength: Int
    public var ropeBase: Double
    /// Linear RoPE scaling: positions divided by this factor (`ARCH.rope.scaling.type` "linear",
    /// `ARCH.rope.scaling.factor`); 1 without scaling. Llama 3.1's scaling is a tensor instead
    /// (`LlamaModel.ropeDivisors`).
    public var ropeScale: Double = 1
    public var rmsEps: Float
    /// How many positions a sliding-window block sees (`ARCH.attention.sliding_window`), or nil when
    /// every block attends to all positions.
    public var slidingWindow: Int?

    /// Whether block `layer` attends within the sliding window (and uses the local RoPE base).
    public func isSlidingWindow(layer: Int) -> Bool {
        guard slidingWindow != nil, architecture.slidingWindowPattern > 0 else { return false }
        return (layer + 1) % architecture.slidingWindowPattern != 0
    }

    public init(
        vocabSize: Int, dModel: Int, dFF: Int, layers: Int, heads: Int, kvHeads: Int, contextLength: Int, ropeBase: Double, rmsEps: Float
    ) {
        self.vocabSize = vocabSize; self.dModel = dModel; self.dFF = dFF; self.layers = layers; self.heads = heads
        self.kvHeads = kvHeads; self.contextLength = contextLength; self.ropeBase = ropeBase; self.rmsEps = rmsEps
        headSize = dModel / heads
    }

    /// Reads and checks the metadata.
    /// - Throws: `GGUFError` for another architecture, a missing key or sizes that do not fit together.
    public init(gguf f: GGUFFile) throws {
        architecture = try LlamaArchitecture.named(try f.string("general.architecture"), path: f.path)
        let a = architecture.name
        dModel = try f.int("\(a).embedding_length")
        dFF = try f.int("\(a).feed_forward_length")
        layers = try f.int("\(a).block_count")
        heads = try f.int("\(a).attention.head_count")
        kvHeads = f.metadata["\(a).attention.head_count_kv"] != nil ? try f.int("\(a).attention.head_count_kv") : heads
        contextLength = try f.int("\(a).context_length")
        ropeBase = f.metadata["\(a).rope.freq_base"] != nil ? try f.float("\(a).rope.freq_base") : 10_000
        rmsEps = Float(try f.float("\(a).attention.layer_norm_rms_epsilon"))
        if f.metadata["\(a).vocab_size"] != nil {
            vocabSize = try f.int("\(a).vocab_size")
        } else {
            vocabSize = try f.strings("tokenizer.ggml.tokens").count
        }
        guard dModel > 0, dFF > 0, layers > 0, heads > 0, kvHeads > 0, contextLength > 0, vocabSize > 0 else {
            throw GGUFError(
                """
                \(f.path): \(a).* sizes must be positive (embedding \(dModel), feed-forward \(dFF), blocks \(layers), heads \
                \(heads)/\(kvHeads), context \(contextLength), vocabulary \(vocabSize))
                """
            )
        }
        let keyLength = "\(a).attention.key_length", valueLength = "\(a).attention.value_length"
        if f.metadata[keyLength] != nil {
            headSize = try f.int(keyLength)
            if f.metadata[valueLength] != nil, try f.int(valueLength) != headSize {
                throw GGUFError(
                    "\(f.path): \(valueLength) is \(try f.int(valueLength)) but \(keyLength) is \(headSize); expected equal key and value widths"
                )
            }
            guard headSize > 0, headSize % 2 == 0 else {
                throw GGUFError("\(f.path): \(keyLength) is \(headSize), expected a positive even head size")
            }
        } else {
            guard dModel % heads == 0, (dModel / heads) % 2 == 0 else {
                throw GGUFError(
                    "\(f.path): embedding \(dModel) with \(heads) heads: expected the heads to divide the embedding into even head sizes")
            }
            headSize = dModel / heads
        }
        guard heads % kvHeads == 0 else {
            throw GGUFError("\(f.path): \(heads) heads and \(kvHeads) key/value heads: expected the key/value heads to divide the heads")
        }
        let ropeDims = "\(a).rope.dimension_count"
        if f.metadata[ropeDims] != nil, try f.int(ropeDims) != headSize {
            throw GGUFError(
                "\(f.path): \(ropeDims) is \(try f.int(ropeDims)), expected the head size \(headSize) (partial rotary embeddings are not supported)"
            )
        }
        // RoPE scaling: linear here; Llama 3.1's comes as the tensor rope_freqs.weight (LlamaModel). Others
        // (YaRN, LongRoPE) change the angles in ways not implemented: refused rather than run wrong.
        let scaling = "\(a).rope.scaling.type"
        if let kind = f.metadata[scaling]?.string, kind != "none" {
            guard kind == "linear" else {
                throw GGUFError(
                    "\(f.path): \(scaling) is \"\(kind)\"; this project applies \"linear\" RoPE scaling (and Llama 3.1's rope_freqs)")
            }
            let factor = try f.float("\(a).rope.scaling.factor")
            guard factor > 0, factor.isFinite else {
                throw GGUFError("\(f.path): \(a).rope.scaling.factor is \(factor), expected a positive number")
            }
            ropeScale = factor
        }
        if architecture.slidingWindowPattern > 0 {
            let key = "\(a).attention.sliding_window"
            let w = try f.int(key)
            guard w > 0 else { throw GGUFError("\(f.path): \(key) is \(w), expected a positive number of positions") }
            slidingWindow = w
        }
    }
}

/// A Llama-family decoder (SmolLM2, Llama 2/3 shapes): token embedding; per block RMSNorm →
/// grouped-query attention with rotary positions → residual, RMSNorm → SwiGLU feed-forward →
/// residual; final RMSNorm; output projection (tied to the embedding when the file has no
/// `output.weight`). Tensor names are GGUF's (`blk.N.attn_q.weight`, …); weight matrices are
/// `[out, in]` row-major, as in PyTorch.
///
/// The weights are read in place from the memory-mapped file in their stored formats (Q4_1, Q8_0, …)
/// so that the model needs about its file's size of memory, or — `dequantize: true` — converted to
/// Float32 once at load.
public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfig
    public let file: GGUFFile
    public let dequantized: Bool

    struct Block {
        let attnNorm: [Float], ffnNorm: [Float]
        let q, k, v, o, gate, up, down: QuantizedMatrix
        /// Q, K and V biases (Qwen2), or nil.
        let qBias: [Float]?, kBias: [Float]?, vBias: [Float]?
        /// Per-head query and key norms (`[headSize]` each, Gemma 3), or nil.
        let qNorm: [Float]?, kNorm: [Float]?
        /// Norms on the attention and feed-forward outputs (Gemma), or nil.
        let postAttnNorm: [Float]?, postFFNNorm: [Float]?
    }
    let blocks: [Block]
    let tokenEmbedding: QuantizedMatrix
    /// Llama 3.1's RoPE scaling: each frequency's divisor (`rope_freqs.weight`, headSize / 2 values), or nil.
    public let ropeDivisors: [Float]?
    let outputNorm: [Float]
    let output: QuantizedMatrix
    /// Float32 copies when de-quantised (the matrices above then point into these).
    private var owned: [FlatBuffer] = []

    /// - Parameters:
    ///   - f: the GGUF file.
    ///   - dequantize: convert every matrix to Float32 once (faster prompts, about 4–8× the memory).
    ///   - packRows: also keep the Q4_0/Q4_1/Q5_0/Q8_0/Q4_K/Q6_K matrices repacked 8 rows at a time (`PackedRows`:
    ///     as large as the rows they copy, the K-quants 4/3 and 3/2 as large), which the integer kernels read faster, one token or several conversations at a
    ///     time. By default, when the active kernels have 8-bit activations (only they read the packed rows).
    /// - Throws: `GGUFError` when a tensor is missing or its shape does not match the metadata.
    public init(file f: GGUFFile, dequantize: Bool = false, packRows: Bool = ActivationPrecision.int8Available) throws {
        let c = try LlamaConfig(gguf: f)
        config = c; file = f; dequantized = dequantize
        let d = c.dModel, kv = c.kvHeads * c.headSize, qw = c.queryWidth, hs = c.headSize
        var owned: [FlatBuffer] = []
        func matrix(_ name: String, _ rows: Int, _ cols: Int) throws -> QuantizedMatrix {
            var m = try f.matrix(name, rows: rows, cols: cols)
            if packRows && !dequantize { m.packed = PackedRows(m) }
            if !dequantize || m.type == .f32 { return m }
            let buf = FlatBuffer(count: rows * cols)
            Quantized.dequantize(m, into: buf.pointer)
            owned.append(buf)
            return QuantizedMatrix(type: .f32, rows: rows, cols: cols, data: UnsafeRawPointer(buf.pointer))
        }
        tokenEmbedding = try matrix("token_embd.weight", c.vocabSize, d)
        var blocks: [Block] = []
        for l in 0..<c.layers {
            let p = "blk.\(l)."
            let arch = c.architecture, bias = arch.attentionBias
            func norm(_ name: String, _ width: Int, if present: Bool) throws -> [Float]? {
                present ? try f.floats(p + name, dims: [width]) : nil
            }
            blocks.append(
                Block(
                    attnNorm: try f.floats(p + "attn_norm.weight", dims: [d]), ffnNorm: try f.floats(p + "ffn_norm.weight", dims: [d]),
                    q: try matrix(p + "attn_q.weight", qw, d), k: try matrix(p + "attn_k.weight", kv, d),
                    v: try matrix(p + "attn_v.weight", kv, d), o: try matrix(p + "attn_output.weight", d, qw),
                    gate: try matrix(p + "ffn_gate.weight", c.dFF, d), up: try matrix(p + "ffn_up.weight", c.dFF, d),
                    down: try matrix(p + "ffn_down.weight", d, c.dFF),
                    qBias: try norm("attn_q.bias", qw, if: bias), kBias: try norm("attn_k.bias", kv, if: bias),
                    vBias: try norm("attn_v.bias", kv, if: bias),
                    qNorm: try norm("attn_q_norm.weight", hs, if: arch.normalizesQK),
                    kNorm: try norm("attn_k_norm.weight", hs, if: arch.normalizesQK),
                    postAttnNorm: try norm("post_attention_norm.weight", d, if: arch.normalizesSublayerOutputs),
                    postFFNNorm: try norm("post_ffw_norm.weight", d, if: arch.normalizesSublayerOutputs)))
        }
        self.blocks = blocks
        outputNorm = try f.floats("output_norm.weight", dims: [d])
        if f.tensor("rope_freqs.weight") != nil {
            let v = try f.floats("rope_freqs.weight", dims: [hs / 2])
            if let bad = v.firstIndex(where: { !($0 > 0 && $0.isFinite) }) {
                throw GGUFError("\(f.path): rope_freqs.weight[\(bad)] is \(v[bad]), expected positive divisors")
            }
            ropeDivisors = v
        } else {
            ropeDivisors = nil
        }
        output = f.tensor("output.weight") != nil ? try matrix("output.weight", c.vocabSize, d) : tokenEmbedding
        self.owned = owned
    }

    /// Loads a GGUF file.
    public convenience init(url: URL, dequantize: Bool = false) throws {
        try self.init(file: GGUFFile(url: url), dequantize: dequantize)
    }

    /// Bytes of weights the model reads per token (the matrices in their stored formats).
    public var weightBytes: Int {
        var n = output.rows * output.rowBytes
        if output.data != tokenEmbedding.data { n += tokenEmbedding.rows * tokenEmbedding.rowBytes }
        for b in blocks { for m in [b.q, b.k, b.v, b.o, b.gate, b.up, b.down] { n += m.rows * m.rowBytes } }
        return n
    }
}

/// Why a `LlamaSession` cannot go on.
public struct LlamaError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// What a block did to the last position, for walkthroughs: the vectors it added to the residual
/// stream, the stream after it, and each head's attention over the positions so far.
public struct LlamaBlockSummary: Sendable {
    public let layer: Int
    public let attentionOutput: [Float], feedForwardOutput: [Float], residual: [Float]
    /// `[heads][positions]`, each row summing to 1.
    public let attention: [[Float]]
}

/// One conversation with a model: the KV cache (Float32, grown as the context fills), the work
/// buffers, and the position. `feed` runs tokens through every block — a prompt as matrix–matrix
/// products, one token as matrix–vector products — and returns the next token's logits.
public final class LlamaSession: GenerationSession {
    public let model: LlamaModel
    public internal(set) var length = 0
    /// The most positions this session will hold (at most the model's context length).
    public let maxLength: Int
    private var capacity = 0
    // internal: `LlamaBatchDecoder` writes one position of several sessions' caches per step
    var kCache: [FlatBuffer] = [], vCache: [FlatBuffer] = []
    var rope = FlatBuffer(count: 0), ropeLocal = FlatBuffer(count: 0)
    private var batch = 0
    private var x = FlatBuffer(count: 0), h = FlatBuffer(count: 0), q = FlatBuffer(count: 0), ctx = FlatBuffer(count: 0)
    private var tmp = FlatBuffer(count: 0), gate = FlatBuffer(count: 0), up = FlatBuffer(count: 0)
    private let logits: FlatBuffer
    private let blockSums: FlatBuffer, dequantScratch: FlatBuffer
    /// Called after each block with the last position's summary (walkthroughs); nil costs nothing.
    public var observe: ((LlamaBlockSummary) -> Void)?
    /// Prompts go through in chunks of this many tokens (bounds the work buffers).
    public let chunk: Int
    /// How one token's matrix–vector products treat their input: rounded to 8 bits per block for
    /// integer dot products (`int8`, the default where the CPU has them, as llama.cpp does), or kept
    /// in Float32 (`float32`: the exact product of the de-quantised weights, for checking against a
    /// peer to 1e-6). With `int8`, prompts go through the batched integer kernel where every layer matrix has one.
    /// `TRANSFORMER_ACTIVATIONS` sets the default.
    public var activations: ActivationPrecision = .default

    /// - Parameters:
    ///   - model: the weights (shared; sessions of one model may run on different threads).
    ///   - maxLength: the KV cache's length (default and upper bound: the model's context).
    ///   - chunk: prompt tokens per forward pass (default: 64 where the attention, gate and up matrices have a
    ///     batched integer kernel and activations are 8-bit, else 512).
    ///   - activations: `int8` or `float32` matrix–vector products (see `activations`).
    public init(model: LlamaModel, maxLength: Int? = nil, chunk: Int? = nil, activations: ActivationPrecision = .default) {
        self.model = model
        // Through the batched integer kernel a prompt is fastest in chunks of 64 (`gguf-bench --prompt-tokens 512` on
        // SmolLM2 Q4_1, 1 thread: 286 tokens/s in one chunk, 444 in chunks of 32, 480 of 64, 479 of 96; 2 threads:
        // 563, 750, 792, 777): each layer's activations then stay in the caches. (Qwen2.5 Q4_K_M, 1 thread: 110
        // tokens/s in chunks of 512; 145 in chunks of 64 with its Q6_K/Q4_K down projections de-quantised for the
        // GEMM; 211 with them packed for the integer kernel too.)
        let batched =
            activations.effective == .int8
            && model.blocks.allSatisfy { b in
                [b.q, b.k, b.v, b.o, b.gate, b.up].allSatisfy { Quantized.hasBatchedInt8Kernel($0.type) }
            }
        self.chunk = max(1, chunk ?? (batched ? 64 : 512))
        self.activations = activations
        let c = model.config
        self.maxLength = min(maxLength ?? c.contextLength, c.contextLength)
        logits = FlatBuffer(count: c.vocabSize)
        blockSums = FlatBuffer(count: max(c.dModel, c.dFF, c.queryWidth) / 32 + 1)
        let largest = model.dequantized ? 0 : max(c.dFF * c.dModel, c.queryWidth * c.dModel)
        dequantScratch = FlatBuffer(count: largest)
    }

    public func reset() { length = 0 }

    /// Forgets every position from `n` on: the next token goes to position `n`, and the cache keeps
    /// positions `0..<n` (a conversation that re-renders its history keeps the prefix it shares).
    public func rewind(to n: Int) {
        precondition(n >= 0 && n <= length, "rewind(to: \(n)) outside 0...\(length)")
        length = n
    }

    /// Feeds tokens at the next positions and returns the logits that follow the last one.
    ///
    /// A copy (vocabulary-sized; microseconds against the forward pass): it used to be a pointer into
    /// the session's buffer, which `Array(try LlamaSession(model: m).feed(ids))` read after the
    /// temporary session had been freed (AddressSanitizer: heap-use-after-free; see README, Sanitizers).
    /// - Throws: `LlamaError` when the tokens would overflow the context, or an id is out of range.
    @discardableResult
    public func feed(_ tokens: [Int]) throws -> [Float] {
        Array(try advance(tokens))
    }

    /// `feed` without the copy: the logits in the session's own buffer, valid only while the session
    /// is alive and until its next call — so only for its own methods.
    private func advance(_ tokens: [Int]) throws -> UnsafeBufferPointer<Float> {
        let c = model.config
        guard !tokens.isEmpty else { throw LlamaError(description: "nothing to feed: the token list is empty") }
        guard length + tokens.count <= maxLength else {
            throw LlamaError(
                description:
                    """
                    \(length + tokens.count) tokens do not fit in the context of \(maxLength) (\(length) already used, \
                    \(tokens.count) new)
                    """
            )
        }
        if let bad = tokens.first(where: { $0 < 0 || $0 >= c.vocabSize }) {
            throw LlamaError(description: "token id \(bad) is outside the vocabulary (0..<\(c.vocabSize))")
        }
        var i = 0
        while i < tokens.count {
            let n = min(chunk, tokens.count - i)
            forward(Array(tokens[i..<(i + n)]), logits: i + n == tokens.count)
            i += n
        }
        return UnsafeBufferPointer(start: logits.pointer, count: c.vocabSize)
    }

    func reserve(positions: Int, batch n: Int) {
        let c = model.config, kv = c.kvHeads * c.headSize
        if positions > capacity {
            let newCapacity = min(maxLength, max(positions, 2 * capacity, 256))
            for l in 0..<c.layers {
                let k = FlatBuffer(count: newCapacity * kv), v = FlatBuffer(count: newCapacity * kv)
                if capacity > 0 {
                    k.pointer.update(from: kCache[l].pointer, count: length * kv)
                    v.pointer.update(from: vCache[l].pointer, count: length * kv)
                }
                if l < kCache.count { kCache[l] = k; vCache[l] = v } else { kCache.append(k); vCache.append(v) }
            }
            rope = FlatBuffer(count: newCapacity * c.headSize)
            Kernels.ropeTable(
                rope.pointer, positions: newCapacity, headSize: c.headSize, base: c.ropeBase, scale: c.ropeScale,
                divisors: model.ropeDivisors)
            if c.slidingWindow != nil {
                ropeLocal = FlatBuffer(count: newCapacity * c.headSize)
                Kernels.ropeTable(ropeLocal.pointer, positions: newCapacity, headSize: c.headSize, base: c.architecture.localRoPEBase)
            }
            capacity = newCapacity
        }
        if n > batch {
            x = FlatBuffer(count: n * c.dModel); h = FlatBuffer(count: n * c.dModel); q = FlatBuffer(count: n * c.queryWidth)
            ctx = FlatBuffer(count: n * c.queryWidth); tmp = FlatBuffer(count: n * c.dModel)
            gate = FlatBuffer(count: n * c.dFF); up = FlatBuffer(count: n * c.dFF)
            batch = n
        }
    }

    /// `out[n, m.rows] = inp[n, m.cols] · mᵀ` for each (out, m): matrix–vector products on the blocks
    /// for one token (in one parallel job); for a prompt of up to 255 tokens with 8-bit activations and
    /// formats the batched integer kernel reads (Q4_K and Q6_K included, not de-quantised weights), the
    /// batched products on the blocks (each block unpacked once for all n tokens); de-quantise + GEMM
    /// otherwise. (`gguf-bench --prompt-tokens P` on SmolLM2 Q4_1, 2 threads, batched against GEMM:
    /// 8 tokens 274 against 183 tokens/s, 64: 830 against 549, 128: 781 against 601, 512: 542 against 578.)
    private func linear(_ products: [(FloatPtr, QuantizedMatrix)], _ inp: FloatPtr, n: Int) {
        if n == 1 {
            Quantized.matvec(products.map { (out: $0.0, matrix: $0.1) }, inp, scratch: blockSums.pointer, activations: activations)
        } else if n < Self.batchedPromptBelow && activations.effective == .int8
            && products.allSatisfy({ Quantized.hasBatchedInt8Kernel($0.1.type) })
        {
            Quantized.matvecRows(products.map { (out: $0.0, matrix: $0.1) }, inp, n: n, activations: activations)
        } else {
            for (out, m) in products { Quantized.matmul(out, m, inp, n: n, scratch: dequantScratch.pointer) }
        }
    }

    private func linear(_ out: FloatPtr, _ inp: FloatPtr, _ m: QuantizedMatrix, n: Int) { linear([(out, m)], inp, n: n) }

    /// Prompts shorter than this take the batched block products (with 8-bit activations), as llama.cpp
    /// rounds a prompt's activations to 8 bits for its block products.
    static let batchedPromptBelow = 256

    /// Tokens `length ..< length + n` through every block; leaves the last position's logits (`logits`: only
    /// the last chunk of a prompt needs them, and the output matrix is the largest: Qwen2.5's 151,936 × 896
    /// took 4% of a 512-token prompt in chunks of 64).
    private func forward(_ tokens: [Int], logits wanted: Bool = true) {
        let c = model.config, d = c.dModel, n = tokens.count, start = length
        let kvDim = c.kvHeads * c.headSize, qw = c.queryWidth, arch = c.architecture
        reserve(positions: start + n, batch: n)
        let emb = model.tokenEmbedding
        for (i, t) in tokens.enumerated() { Quantized.dequantize(emb.type, emb.row(t), x.pointer + i * d, count: d) }
        if arch.scalesEmbedding {
            let s = Float(d).squareRoot()
            for j in 0..<n * d { x[j] *= s }
        }
        for (l, b) in model.blocks.enumerated() {
            // attention: x += W_o · attn(rope(W_q h), rope(W_k h), W_v h), h = rmsnorm(x)
            Kernels.rmsNormForward(out: h.pointer, input: x.pointer, weight: b.attnNorm, rows: n, width: d, eps: c.rmsEps)
            let kNew = kCache[l].pointer + start * kvDim, vNew = vCache[l].pointer + start * kvDim
            // q (n, heads·hs); k, v (n, kvHeads·hs), straight into the cache
            linear([(q.pointer, b.q), (kNew, b.k), (vNew, b.v)], h.pointer, n: n)
            if let qb = b.qBias, let kb = b.kBias, let vb = b.vBias {
                Kernels.addBias(q.pointer, bias: qb, rows: n, width: qw)
                Kernels.addBias(kNew, bias: kb, rows: n, width: kvDim)
                Kernels.addBias(vNew, bias: vb, rows: n, width: kvDim)
            }
            if let qn = b.qNorm, let kn = b.kNorm {  // each head's row on its own: (n·heads, headSize)
                Kernels.rmsNormForward(out: q.pointer, input: q.pointer, weight: qn, rows: n * c.heads, width: c.headSize, eps: c.rmsEps)
                Kernels.rmsNormForward(out: kNew, input: kNew, weight: kn, rows: n * c.kvHeads, width: c.headSize, eps: c.rmsEps)
            }
            let local = c.isSlidingWindow(layer: l)
            let table = local ? ropeLocal.pointer : rope.pointer
            let rotate = arch.ropePairs == .halves ? Kernels.ropeForwardNeox : Kernels.ropeForward
            rotate(q.pointer, table, n, start, c.heads, c.headSize, qw)
            rotate(kNew, table, n, start, c.kvHeads, c.headSize, kvDim)
            Kernels.cachedAttentionForward(
                out: ctx.pointer, q: q.pointer, kCache: kCache[l].pointer, vCache: vCache[l].pointer,
                n: n, start: start, heads: c.heads, kvHeads: c.kvHeads, headSize: c.headSize,
                window: local ? c.slidingWindow ?? .max : .max)
            linear(tmp.pointer, ctx.pointer, b.o, n: n)
            if let pn = b.postAttnNorm {
                Kernels.rmsNormForward(out: tmp.pointer, input: tmp.pointer, weight: pn, rows: n, width: d, eps: c.rmsEps)
            }
            for j in 0..<n * d { x[j] += tmp[j] }
            let attnOut = observe == nil ? [] : Array(UnsafeBufferPointer(start: tmp.pointer + (n - 1) * d, count: d))
            // feed-forward: x += W_down · (silu(W_gate h) ⊙ W_up h), h = rmsnorm(x)
            Kernels.rmsNormForward(out: h.pointer, input: x.pointer, weight: b.ffnNorm, rows: n, width: d, eps: c.rmsEps)
            linear([(gate.pointer, b.gate), (up.pointer, b.up)], h.pointer, n: n)  // (n, hidden) each
            switch arch.gate {
            case .silu: Kernels.swigluForward(out: gate.pointer, gate: gate.pointer, up: up.pointer, count: n * c.dFF)
            case .geluTanh: Kernels.gegluForward(out: gate.pointer, gate: gate.pointer, up: up.pointer, count: n * c.dFF)
            }
            linear(tmp.pointer, gate.pointer, b.down, n: n)
            if let pn = b.postFFNNorm {
                Kernels.rmsNormForward(out: tmp.pointer, input: tmp.pointer, weight: pn, rows: n, width: d, eps: c.rmsEps)
            }
            for j in 0..<n * d { x[j] += tmp[j] }
            if let observe {
                observe(
                    LlamaBlockSummary(
                        layer: l, attentionOutput: attnOut,
                        feedForwardOutput: Array(UnsafeBufferPointer(start: tmp.pointer + (n - 1) * d, count: d)),
                        residual: Array(UnsafeBufferPointer(start: x.pointer + (n - 1) * d, count: d)),
                        attention: lastAttention(l, n: n, start: start)))
            }
        }
        length = start + n
        guard wanted else { return }
        // Only the last position's logits are needed: one matrix–vector product.
        Kernels.rmsNormForward(out: h.pointer, input: x.pointer + (n - 1) * d, weight: model.outputNorm, rows: 1, width: d, eps: c.rmsEps)
        Quantized.matvec(logits.pointer, model.output, h.pointer, scratch: blockSums.pointer, activations: activations)
    }

    /// The last position's attention weights per head, recomputed from its query (still in `q`) and
    /// the cached keys: softmax(q·kᵀ/√d) as the attention kernel computes them.
    private func lastAttention(_ l: Int, n: Int, start: Int) -> [[Float]] {
        let c = model.config, hs = c.headSize, kvDim = c.kvHeads * hs, len = start + n
        // A sliding-window block sees only the last `window` positions: the others get weight 0.
        let lo = c.isSlidingWindow(layer: l) ? max(0, len - (c.slidingWindow ?? len)) : 0
        return (0..<c.heads).map { h in
            let qh = q.pointer + (n - 1) * c.queryWidth + h * hs, kvh = h / (c.heads / c.kvHeads)
            var s = (0..<len).map { j -> Float in
                if j < lo { return -.infinity }
                var dot: Float = 0
                for e in 0..<hs { dot += qh[e] * kCache[l].pointer[j * kvDim + kvh * hs + e] }
                return dot / Float(hs).squareRoot()
            }
            let m = s.max()!
            s = s.map { Foundation.exp($0 - m) }
            let sum = s.reduce(0, +)
            return s.map { $0 / sum }
        }
    }

    /// The final norm and output projection applied to any residual vector (the "logit lens": what
    /// the model would predict if it stopped at that block).
    public func logits(ofResidual r: [Float]) -> [Float] {
        let c = model.config
        var h = [Float](repeating: 0, count: c.dModel), out = [Float](repeating: 0, count: c.vocabSize)
        Kernels.rmsNormForward(out: &h, input: r, weight: model.outputNorm, rows: 1, width: c.dModel, eps: c.rmsEps)
        Quantized.matvec(&out, model.output, h, scratch: blockSums.pointer, activations: activations)
        return out
    }

    /// Feeds `prompt` (after what the session already holds) and samples up to `maxNewTokens`,
    /// streaming each through `onToken`; stops after a token in `stop` or when the context is full.
    /// Returns the new tokens.
    /// - Throws: `LlamaError` when the prompt does not fit in the context.
    public func generate(
        prompt: [Int], maxNewTokens: Int, sampling: SamplingOptions, stop: Set<Int> = [],
        onToken: (Int) -> Void = { _ in }
    ) throws -> [Int] {
        var rng = SeededRNG(seed: sampling.seed)
        var logits = try advance(prompt)
        var out: [Int] = []
        while out.count < maxNewTokens {
            let next = sampleToken(logits, sampling, rng: &rng)
            out.append(next); onToken(next)
            if stop.contains(next) || out.count == maxNewTokens || length >= maxLength { break }
            logits = try advance([next])
        }
        return out
    }
}
