import Foundation
import Testing
@testable import TensorKit
import ModelFiles

/// Every ggml block type this project reads, de-quantised and multiplied on random blocks, against
/// the `gguf` Python package (`Fixtures/kquants/make_kquant_fixture.py`).
@Suite struct QuantizedBlockTests {
    struct Fixture: Decodable {
        struct Blocks: Decodable {
            var id: UInt32
            var block_size: Int
            var block_bytes: Int
            var hex: String
            var values: [Float]
        }
        var types: [String: Blocks]
    }

    static let fixture: Fixture = {
        let url = Bundle.module.url(forResource: "Fixtures/kquants/blocks", withExtension: "json")!
        return try! JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }()

    static func bytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = [], chars = Array(hex.utf8)
        var i = 0
        while i + 1 < chars.count {
            out.append(UInt8(String(decoding: chars[i..<i + 2], as: UTF8.self), radix: 16)!)
            i += 2
        }
        chars.removeAll()
        return out
    }

    static let types: [GGMLType] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]

    @Test func fixtureCoversEveryBlockType() {
        #expect(Set(Self.fixture.types.keys) == Set(Self.types.map(\.name)))
    }

    /// The de-quantised values equal `gguf.quants.dequantize`'s exactly (each is a product of small
    /// integers and half-precision scales, exact in Float32 on both sides).
    @Test(arguments: types)
    func dequantisesAsGGUF(type: GGMLType) throws {
        let f = try #require(Self.fixture.types[type.name])
        #expect(f.id == type.rawValue && f.block_size == type.blockSize && f.block_bytes == type.blockBytes)
        let raw = Self.bytes(f.hex)
        #expect(raw.count == 3 * type.blockBytes)
        var out = [Float](repeating: .nan, count: 3 * type.blockSize), simd = out
        raw.withUnsafeBytes { Quantized.dequantize(type, $0.baseAddress!, &out, count: out.count) }
        raw.withUnsafeBytes { Quantized.dequantizeSIMD(type, $0.baseAddress!, &simd, count: simd.count) }
        #expect(simd == out, "\(type.name): the SIMD de-quantisation differs from the reference")
        let bad = zip(out, f.values).enumerated().filter { $0.element.0 != $0.element.1 }
        #expect(bad.isEmpty, "\(type.name): \(bad.count) values differ, first at \(bad.first.map { "\($0.offset): \($0.element)" } ?? "")")
    }

    /// A matrix of these blocks times a vector: the mat-vec on the blocks and the de-quantise-then-GEMM
    /// path both give Σ w·x of the Python values.
    @Test(arguments: types)
    func productsMatchTheValues(type: GGMLType) throws {
        let f = try #require(Self.fixture.types[type.name])
        let raw = Self.bytes(f.hex)
        // Two rows: the three blocks, then the same three in reverse order.
        let bb = type.blockBytes, bs = type.blockSize
        let second = (0..<3).reversed().flatMap { raw[($0 * bb)..<(($0 + 1) * bb)] }
        let matrix = raw + second
        let cols = 3 * bs
        let values = f.values + (0..<3).reversed().flatMap { f.values[($0 * bs)..<(($0 + 1) * bs)] }
        var rng = SeededRNG(seed: 7)
        let x = (0..<cols).map { _ in rng.nextUnit() * 2 - 1 }
        var want = [Double](repeating: 0, count: 2)
        for r in 0..<2 { for c in 0..<cols { want[r] += Double(values[r * cols + c]) * Double(x[c]) } }
        var mv = [Float](repeating: 0, count: 2), mm = [Float](repeating: 0, count: 2)
        var scratch = [Float](repeating: 0, count: 2 * cols)
        matrix.withUnsafeBytes { buf in
            let m = QuantizedMatrix(type: type, rows: 2, cols: cols, data: buf.baseAddress!)
            Quantized.matvec(&mv, m, x, scratch: &scratch)
            Quantized.matmul(&mm, m, x, n: 1, scratch: &scratch)
        }
        let scale = values.map { abs(Double($0)) }.reduce(0, +) + 1e-6
        for r in 0..<2 {
            #expect(abs(Double(mv[r]) - want[r]) <= 1e-5 * scale, "\(type.name) row \(r): matvec \(mv[r]) vs \(want[r])")
            #expect(abs(Double(mm[r]) - want[r]) <= 1e-5 * scale, "\(type.name) row \(r): matmul \(mm[r]) vs \(want[r])")
        }
    }

    /// Several inputs at once (`matvecRows`, a server's batched decoding step: de-quantised tiles, 2 rows
    /// × 4 inputs) give each input what `matvec`'s Float32 path gives it alone, to float rounding, over
    /// more rows than one tile (16), an odd number of rows and of inputs, and two matrices in one job;
    /// one input is exactly `matvec` (8-bit activations included).
    @Test(arguments: types)
    func batchedRowsEqualOneAtATime(type: GGMLType) throws {
        let f = try #require(Self.fixture.types[type.name])
        let raw = Self.bytes(f.hex), bb = type.blockBytes
        let cols = 3 * type.blockSize, rows = 45, n = 3
        // 45 rows: the fixture's 3 blocks in a different rotation per row
        var matrix: [UInt8] = []
        for r in 0..<rows {
            for b in 0..<3 {
                let block = (b + r) % 3
                matrix += raw[(block * bb)..<((block + 1) * bb)]
            }
        }
        var rng = SeededRNG(seed: 5)
        for n in [1, 2, 3, 5, 7] {
            // blocks of 32 at different scales (8-bit activations: a different power of two per block and input)
            let spans: [Float] = [3, 0.3, 7, 1, 0.05]
            let x = (0..<n * cols).map { j in (rng.nextUnit() * 2 - 1) * spans[(j / 32) % spans.count] }
            for precision in ActivationPrecision.allCases {
                var batched = [Float](repeating: .nan, count: n * rows), second = batched
                var single = [Float](repeating: .nan, count: rows), scratch = [Float](repeating: 0, count: cols)
                try matrix.withUnsafeBytes { buf in
                    let m = QuantizedMatrix(type: type, rows: rows, cols: cols, data: buf.baseAddress!)
                    batched.withUnsafeMutableBufferPointer { b in
                        second.withUnsafeMutableBufferPointer { s in
                            Quantized.matvecRows([(b.baseAddress!, m), (s.baseAddress!, m)], x, n: n, activations: precision)
                        }
                    }
                    // Q4_0/Q4_1/Q5_0/Q8_0/Q4_K/Q6_K repacked 8 rows at a time (40 of the 45 rows; the last 5 row by row): the same
                    // products; with VNNI, groups 0–1 and 2–3 go 16 rows at a time and group 4 alone
                    var packed = m
                    packed.packed = PackedRows(m)
                    #expect(
                        (packed.packed != nil)
                            == [.q4_0, .q4_1, .q5_0, .q8_0, .q4_K, .q6_K].contains(type))
                    if packed.packed != nil {
                        var viaPacked = [Float](repeating: .nan, count: n * rows)
                        viaPacked.withUnsafeMutableBufferPointer { b in
                            Quantized.matvecRows([(b.baseAddress!, packed)], x, n: n, activations: precision)
                        }
                        let scale = batched.map(abs).max()! + 1e-6
                        let worst = zip(viaPacked, batched).map { abs($0 - $1) }.max()!
                        #expect(worst <= 1e-5 * scale, "\(type.name) packed \(precision) n \(n): \(worst)")
                        // rows split anywhere (the thread pool's ranges need not start at a multiple of 8)
                        if precision == .int8 && ActivationPrecision.int8Available {
                            var split = [Float](repeating: .nan, count: n * rows)
                            split.withUnsafeMutableBufferPointer { o in
                                x.withUnsafeBufferPointer { xs in
                                    Self.batchedInt8(o.baseAddress!, packed, xs.baseAddress!, n: n, ranges: [0..<3, 3..<29, 29..<45])
                                }
                            }
                            let w = zip(split, batched).map { abs($0 - $1) }.max()!
                            #expect(w <= 1e-5 * scale, "\(type.name) packed, split rows, n \(n): \(w)")
                            // VNNI (vpdpbusd) and AVX2 (vpmaddubsw) sum the same integers, then scale them in the same order
                            let sets = KernelSet.supported().filter(\.hasInt8)
                            let each = sets.map { kernels in
                                var o = [Float](repeating: .nan, count: n * rows)
                                o.withUnsafeMutableBufferPointer { o in
                                    x.withUnsafeBufferPointer { xs in
                                        Self.batchedInt8(
                                            o.baseAddress!, packed, xs.baseAddress!, n: n, ranges: [0..<rows], kernels: kernels)
                                    }
                                }
                                return o
                            }
                            for (kernels, o) in zip(sets, each) {
                                #expect(o == each[0], "\(type.name) packed, \(kernels) against \(sets[0]), n \(n)")
                            }
                        }
                    }
                    for i in 0..<n {
                        Array(x[(i * cols)..<((i + 1) * cols)]).withUnsafeBufferPointer { xi in
                            // the batch's 8-bit kernel where the format has one, else its Float32 tiles
                            let reference: ActivationPrecision =
                                n == 1 || Quantized.hasBatchedInt8Kernel(type) ? precision : .float32
                            Quantized.matvec(&single, m, xi.baseAddress!, scratch: &scratch, activations: reference)
                        }
                        let got = Array(batched[(i * rows)..<((i + 1) * rows)]), again = Array(second[(i * rows)..<((i + 1) * rows)])
                        let scale = single.map(abs).max()! + 1e-6
                        let worst = zip(got, single).map { abs($0 - $1) }.max()!
                        try #require(
                            n == 1 ? got == single : worst <= 1e-5 * scale, "\(type.name) \(precision) n \(n) input \(i): \(worst)")
                        #expect(again == got)
                    }
                }
            }
        }
    }

    /// Packed Q5_0 at its extremes: every value 31 (weight 15·d) against inputs rounded to ±127. One lane's 8
    /// words of `vpmaddubsw` pairs then sum to ±62,992, past 16 bits, so the AVX2 kernel must widen after 4
    /// words (the 4-bit formats reach only ±30,480). Each set must give Σ w·x = ±15 · 64 exactly to rounding.
    @Test(.enabled(if: ActivationPrecision.int8Available, "no integer kernels on this architecture"))
    func packedFiveBitSumsDoNotOverflow() throws {
        let rows = 24, cols = 64, n = 2
        // (24 rows: with VNNI, 16 at a time, then 8) a block: d = 1 (half 0x3C00), all 32 fifth bits set, all nibbles 15
        let block: [UInt8] = [0x00, 0x3C, 0xFF, 0xFF, 0xFF, 0xFF] + [UInt8](repeating: 0xFF, count: 16)
        let matrix = (0..<rows * cols / 32).flatMap { _ in block }
        let x = [Float](repeating: 1, count: cols) + [Float](repeating: -1, count: cols)
        try matrix.withUnsafeBytes { buf in
            var m = QuantizedMatrix(type: .q5_0, rows: rows, cols: cols, data: buf.baseAddress!)
            m.packed = try #require(PackedRows(m))
            for kernels in KernelSet.supported() where kernels.hasInt8 {
                var out = [Float](repeating: .nan, count: n * rows)
                out.withUnsafeMutableBufferPointer { o in
                    x.withUnsafeBufferPointer {
                        Self.batchedInt8(o.baseAddress!, m, $0.baseAddress!, n: n, ranges: [0..<rows], kernels: kernels)
                    }
                }
                for i in 0..<n {
                    let want: Float = i == 0 ? 960 : -960
                    for r in 0..<rows {
                        #expect(abs(out[i * rows + r] - want) <= 1e-3, "\(kernels) input \(i) row \(r): \(out[i * rows + r])")
                    }
                }
            }
        }
    }

    /// The batched integer kernel over `ranges` of rows, as the thread pool would split them.
    static func batchedInt8(
        _ out: UnsafeMutablePointer<Float>, _ m: QuantizedMatrix, _ x: UnsafePointer<Float>, n: Int, ranges: [Range<Int>],
        kernels: KernelSet = .active
    ) {
        let cols = m.cols, blocks = cols / 32
        let q = UnsafeMutablePointer<Int8>.allocate(capacity: n * cols), ds = UnsafeMutablePointer<Float>.allocate(capacity: 2 * n * blocks)
        defer { q.deallocate(); ds.deallocate() }
        for i in 0..<n { Quantized.quantizeActivations(x + i * cols, cols: cols, into: Quantized.rowActivations(q, ds, i, cols)) }
        for r in ranges {
            Quantized.dotRowsInt8Batched(out, m, { Quantized.rowActivations(q, ds, $0, cols) }, n: n, rows: r, kernels: kernels)
        }
    }
}

/// The integer kernels (8-bit activations, QuantizedInt8.swift) on the fixture's blocks: the input is
/// rounded to 8 bits per block of 32 (checked: d is the smallest power of two with max|x|/d ≤ 127,
/// |x − d·q| ≤ d/2), and each
/// row's product equals Σ w·(d·q) of the `gguf` package's values to float rounding — so the kernels
/// add no error beyond the activations' rounding.
@Suite struct QuantizedInt8Tests {
    static let types: [GGMLType] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q6_K]

    /// Every implementation the CPU and the build have (the portable one and the AVX2 intrinsics).
    @Test(arguments: KernelSet.supported()) func activationsRoundToEightBits(kernels: KernelSet) {
        var rng = SeededRNG(seed: 3)
        let cols = 96
        var x = (0..<cols).map { _ in (rng.nextUnit() * 2 - 1) * 5 }
        for c in 32..<64 { x[c] = 0 }  // an all-zero block: d = 0, q = 0
        x[69] = -31.75  // max|x|/127 = 1/4 exactly: d stays 1/4 (not 1/2), and q = −127
        var q = [Int8](repeating: 0, count: cols), ds = [Float](repeating: .nan, count: 6)
        q.withUnsafeMutableBufferPointer { qp in
            ds.withUnsafeMutableBufferPointer { dp in
                let a = Int8Activations(q: qp.baseAddress!, d: dp.baseAddress!, s: dp.baseAddress! + 3)
                Quantized.quantizeActivations(x, cols: cols, into: a, kernels: kernels)
            }
        }
        for b in 0..<3 {
            let d = ds[b], block = (32 * b)..<(32 * b + 32), amax = block.map { abs(x[$0]) }.max()!
            // a power of two, the smallest that keeps every |q| ≤ 127: the largest |q| is then 64…127
            #expect(d.significandBitPattern == 0 && amax <= 127 * d && (d == 0 || amax > 127 * d / 2))
            if d > 0 { #expect((64...127).contains(block.map { abs(Int(q[$0])) }.max()!)) }
            for c in block { #expect(abs(x[c] - d * Float(q[c])) <= d / 2 * (1 + 1e-5)) }
            #expect(abs(ds[3 + b] - d * Float(block.map { Int(q[$0]) }.reduce(0, +))) <= 1e-5 * max(1, abs(ds[3 + b])))
        }
        #expect(ds[1] == 0 && ds[4] == 0)
        #expect(ds[2] == 0.25 && q[69] == -127)
    }

    /// VNNI's one-pass rounding into both layouts (CKernels' `tk_quantize_by_block`) writes the same bytes, scales,
    /// sums and exponents as `quantizeActivations` row by row followed by `withInputsByBlock`.
    @Test(.enabled(if: KernelSet.supported().contains { $0.hasVNNI }, "no VNNI on this CPU"))
    func roundingByBlockEqualsTheTwoPasses() throws {
        var rng = SeededRNG(seed: 11)
        let n = 5, cols = 160, blocks = cols / 32, count = n * blocks
        var x = (0..<n * cols).map { j in (rng.nextUnit() * 2 - 1) * [3, 0.02, 40, 1, 7e-3, 0.5][(j / 32) % 6] }
        for c in 64..<96 { x[c] = 0 }  // input 0's block 2: all zero
        x[cols + 37] = 63.5  // input 1's block 1: max|x|/127 = 1/2 exactly
        let vnni = try #require(KernelSet.supported().first { $0.hasVNNI })
        let plain = try #require(KernelSet.supported().first { $0.hasInt8 && !$0.hasVNNI })
        // per kernel set: the rows' bytes and scales, then the side-by-side bytes, d, s, o, the starts and e
        func run(_ kernels: KernelSet) -> ([Int8], [Float], [Int8], [Float], [Float], [Int32], [Int32], [Float]) {
            let q8 = UnsafeMutablePointer<Int8>.allocate(capacity: n * cols), ds = UnsafeMutablePointer<Float>.allocate(capacity: 2 * count)
            defer { q8.deallocate(); ds.deallocate() }
            return x.withUnsafeBufferPointer { xs in
                Quantized.withQuantizedInputsByBlock(xs.baseAddress!, n: n, cols: cols, rows: q8, ds, kernels: kernels) { a in
                    func array<T>(_ p: UnsafePointer<T>, _ c: Int) -> [T] { Array(UnsafeBufferPointer(start: p, count: c)) }
                    let halves: [Int32] = array(a.o, 2 * count) + array(a.o32, 2 * count)
                    let starts: [Int32] = array(a.z8, count) + array(a.z16, count) + array(a.z128, count)
                    return (
                        array(q8, n * cols), array(ds, 2 * count), array(a.q, 32 * count), array(a.d, count), array(a.s, count), halves,
                        starts, array(a.e, count)
                    )
                }
            }
        }
        let one = run(vnni), two = run(plain)
        #expect(one.0 == two.0 && one.1 == two.1, "rows")
        #expect(one.2 == two.2 && one.3 == two.3 && one.4 == two.4, "bytes, scales and scaled sums side by side")
        #expect(one.5 == two.5 && one.6 == two.6 && one.7 == two.7, "half sums (and times −32), −8, −16 and −128 times Σq, and exponents")
        #expect(one.6[0] == -8 * (one.5[0] + one.5[1]) && one.6[count] == 2 * one.6[0] && one.6[2 * count] == 16 * one.6[0])
        #expect(one.5[2 * count] == -32 * one.5[0] && one.5[2 * count + 1] == -32 * one.5[1])
        // input 0's zero block (b = 2: j = 2n) and input 1's exact half (b = 1: j = n + 1)
        #expect(one.3[2 * n] == 0 && one.7[2 * n] == -.infinity && one.3[n + 1] == 0.5 && one.7[n + 1] == -1)
        #expect(one.2[32 * (n + 1) + 5] == 127)
    }

    @Test(.enabled(if: ActivationPrecision.int8Available, "no integer kernels on this architecture"), arguments: types)
    func productsMatchTheQuantisedInput(type: GGMLType) throws {
        #expect(Quantized.hasInt8Kernel(type))
        let f = try #require(QuantizedBlockTests.fixture.types[type.name])
        let raw = QuantizedBlockTests.bytes(f.hex)
        let bb = type.blockBytes, bs = type.blockSize
        let matrix = raw + (0..<3).reversed().flatMap { raw[($0 * bb)..<(($0 + 1) * bb)] }
        let values = f.values + (0..<3).reversed().flatMap { f.values[($0 * bs)..<(($0 + 1) * bs)] }
        let cols = 3 * bs
        var rng = SeededRNG(seed: 11)
        let x = (0..<cols).map { _ in rng.nextUnit() * 2 - 1 }
        var q = [Int8](repeating: 0, count: cols), ds = [Float](repeating: 0, count: 2 * cols / 32)
        q.withUnsafeMutableBufferPointer { qp in
            ds.withUnsafeMutableBufferPointer { dp in
                Quantized.quantizeActivations(
                    x, cols: cols, into: Int8Activations(q: qp.baseAddress!, d: dp.baseAddress!, s: dp.baseAddress! + cols / 32))
            }
        }
        let xq = (0..<cols).map { Double(ds[$0 / 32]) * Double(q[$0]) }
        var want = [Double](repeating: 0, count: 2), exact = want
        for r in 0..<2 {
            for c in 0..<cols {
                want[r] += Double(values[r * cols + c]) * xq[c]
                exact[r] += Double(values[r * cols + c]) * Double(x[c])
            }
        }
        var out = [Float](repeating: 0, count: 2), scratch = [Float](repeating: 0, count: cols)
        matrix.withUnsafeBytes { buf in
            let m = QuantizedMatrix(type: type, rows: 2, cols: cols, data: buf.baseAddress!)
            Quantized.matvec(&out, m, x, scratch: &scratch, activations: .int8)
        }
        let scale = values.map { abs(Double($0)) }.reduce(0, +) + 1e-6
        for r in 0..<2 {
            #expect(abs(Double(out[r]) - want[r]) <= 1e-5 * scale, "\(type.name) row \(r): int8 \(out[r]) vs \(want[r])")
            // and the rounding of the input moves the product by little
            #expect(abs(Double(out[r]) - exact[r]) <= 1e-2 * scale, "\(type.name) row \(r): int8 \(out[r]) vs exact \(exact[r])")
        }
    }
}

/// Real tensors of Qwen2.5-Coder-0.5B-Instruct Q4_K_M (Q5_0, Q8_0, Q4_K, Q6_K and F32 in one file, as
/// llama.cpp mixes them), against the `gguf` package: `Fixtures/kquants/make_qwen2_tensor_fixture.py`.
/// The file (491 MB) comes from `scripts/fetch-qwen2.sh`; the tests look at `$QWEN2_GGUF`, then
/// `.build/models/…`, and say that they skipped when neither exists.
@Suite struct Qwen2FileTensorTests {
    struct Fixture: Decodable {
        struct Row: Decodable { var row: Int; var sum: Double; var sumsq: Double }
        struct Tensor: Decodable { var name: String; var type: String; var dims: [Int]; var row0: [Float]; var rows: [Row] }
        var tensors: [Tensor]
    }

    static func modelURL() -> URL? {
        var candidates: [String] = []
        if let env = ProcessInfo.processInfo.environment["QWEN2_GGUF"] { candidates.append(env) }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(root.appendingPathComponent(".build/models/qwen2.5-coder-0.5b/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf").path)
        return candidates.first { FileManager.default.fileExists(atPath: $0) }.map { URL(fileURLWithPath: $0) }
    }

    static let found: Bool = {
        if modelURL() == nil {
            print("Qwen2FileTensorTests: skipped — the file is not there (set QWEN2_GGUF, or run scripts/fetch-qwen2.sh)")
        }
        return modelURL() != nil
    }()

    @Test(.enabled(if: found)) func blockTypesOfTheFile() throws {
        let f = try GGUFFile(url: #require(Self.modelURL()))
        var counts: [String: Int] = [:]
        for t in f.tensors { counts[t.type.name, default: 0] += 1 }
        #expect(counts == ["Q5_0": 133, "F32": 121, "Q8_0": 13, "Q6_K": 12, "Q4_K": 12])
    }

    @Test(.enabled(if: found)) func rowsDequantiseAsGGUF() throws {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/kquants/qwen2_tensors", withExtension: "json"))
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        let f = try GGUFFile(url: #require(Self.modelURL()))
        #expect(Set(fixture.tensors.map(\.type)) == ["Q5_0", "Q8_0", "Q4_K", "Q6_K", "F32"])
        for t in fixture.tensors {
            let info = try #require(f.tensor(t.name))
            #expect(info.type.name == t.type && info.dims == t.dims, "\(t.name)")
            let cols = t.dims[0], rows = t.dims.dropFirst().reduce(1, *)
            let m = QuantizedMatrix(type: info.type, rows: rows, cols: cols, data: f.data(of: info))
            var row = [Float](repeating: .nan, count: cols)
            Quantized.dequantize(info.type, m.row(0), &row, count: cols)
            #expect(Array(row.prefix(t.row0.count)) == t.row0, "\(t.name): row 0")
            for r in t.rows {
                Quantized.dequantize(info.type, m.row(r.row), &row, count: cols)
                let sum = row.reduce(0.0) { $0 + Double($1) }, sumsq = row.reduce(0.0) { $0 + Double($1) * Double($1) }
                #expect(abs(sum - r.sum) <= 1e-9 * max(1, r.sumsq), "\(t.name) row \(r.row): sum \(sum) vs \(r.sum)")
                #expect(abs(sumsq - r.sumsq) <= 1e-9 * max(1, r.sumsq), "\(t.name) row \(r.row): Σx² \(sumsq) vs \(r.sumsq)")
            }
        }
    }
}
