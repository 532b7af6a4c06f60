import Foundation
import Testing
import TensorKit
@testable import TransformerKit
@testable import ModelFiles

// MARK: - Helpers

/// Assembles a safetensors file from header text (padded with spaces to a multiple of 8) and a buffer.
private func assemble(header: String, buffer: [UInt8], pad: Bool = true) -> Data {
    var h = Array(header.utf8)
    if pad { h.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - h.count % 8) % 8)) }
    var out = Data()
    withUnsafeBytes(of: UInt64(h.count).littleEndian) { out.append(contentsOf: $0) }
    out.append(contentsOf: h)
    out.append(contentsOf: buffer)
    return out
}

private func leBytes(_ values: [UInt16]) -> [UInt8] { values.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] } }
private func leBytes(_ values: [Float]) -> [UInt8] {
    values.flatMap { v in (0..<4).map { UInt8((v.bitPattern >> (8 * $0)) & 0xFF) } }
}

private func bits(_ t: Tensor) -> [UInt32] { t.data.map(\.bitPattern) }

/// The header text (padding trimmed) and buffer of a file.
private func split(_ data: Data) -> (header: String, buffer: [UInt8]) {
    let bytes = [UInt8](data)
    var n = 0
    for k in 0..<8 { n |= Int(bytes[k]) << (8 * k) }
    let header = String(decoding: bytes[8..<(8 + n)], as: UTF8.self).trimmingCharacters(in: .whitespaces)
    return (header, Array(bytes[(8 + n)...]))
}

private func temporaryDirectory() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("safetensors-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

private func fixture(_ name: String, _ ext: String) throws -> URL {
    try #require(Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Fixtures"))
}

/// A valid file: "w" [2,3] and "b" [2], data in that order (w at 0..<24, b at 24..<32).
private let validTensors: [(String, Tensor)] = [
    ("w", Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6])),
    ("b", Tensor(vector: [0.5, -0.5]))
]

private func validFile() -> Data { (try? Safetensors.serialize(validTensors)) ?? Data() }

/// The valid file with its header text edited (and the length recomputed).
private func editedHeader(_ edit: (String) -> String) -> Data {
    let (header, buffer) = split(validFile())
    return assemble(header: edit(header), buffer: buffer)
}

private func withLength(_ n: UInt64, _ data: Data) -> Data {
    var d = data
    withUnsafeBytes(of: n.littleEndian) { d.replaceSubrange(0..<8, with: $0) }
    return d
}

struct CorruptCase: Sendable, CustomTestStringConvertible {
    let label: String
    let data: Data
    let fragments: [String]
    var testDescription: String { label }
    init(_ label: String, _ data: Data, _ fragments: String...) {
        self.label = label
        self.data = data
        self.fragments = fragments
    }
}

private let entryB = #""b":{"dtype":"F32","shape":[2],"data_offsets":[24,32]}"#
private let entryW = #""w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}"#

private let corruptCases: [CorruptCase] = {
    let valid = validFile()
    let (_, buffer) = split(valid)
    func b(_ replacement: String) -> Data { editedHeader { $0.replacingOccurrences(of: entryB, with: replacement) } }
    func w(_ replacement: String) -> Data { editedHeader { $0.replacingOccurrences(of: entryW, with: replacement) } }
    var invalidUTF8 = valid
    invalidUTF8[10] = 0xFF  // inside the first tensor name
    return [
        CorruptCase("empty file", Data(), "0 bytes", "shorter than the 8-byte header length"),
        CorruptCase("truncated to 5 bytes", valid.prefix(5), "5 bytes", "shorter than the 8-byte header length"),
        CorruptCase("header length one past the file", withLength(UInt64(valid.count - 8 + 1), valid), "header length", "larger than"),
        CorruptCase("header length 2^64-1", withLength(.max, valid), "header length 18446744073709551615", "absurd"),
        CorruptCase("header length 200 MB", withLength(200_000_000, valid), "header length 200000000", "absurd"),
        CorruptCase("truncated inside the buffer", valid.prefix(valid.count - 3), "tensor \"b\"", "beyond the data buffer"),
        CorruptCase("truncated inside the header", valid.prefix(20), "header length", "larger than"),
        CorruptCase("header length zero", withLength(0, valid), "not valid JSON", "empty"),
        CorruptCase("invalid UTF-8", invalidUTF8, "not valid UTF-8"),
        CorruptCase("missing closing brace", editedHeader { String($0.dropLast()) }, "not valid JSON"),
        CorruptCase("trailing garbage", editedHeader { $0 + "x" }, "not valid JSON", "only whitespace after"),
        CorruptCase("header is an array", assemble(header: "[]", buffer: []), "must be a JSON object", "an array"),
        CorruptCase("header is a string", assemble(header: "\"hi\"", buffer: []), "must be a JSON object", "a string"),
        CorruptCase("entry is a number", b(#""b":5"#), "tensor \"b\"", "must be an object"),
        CorruptCase("missing dtype", b(#""b":{"shape":[2],"data_offsets":[24,32]}"#), "tensor \"b\"", "missing field \"dtype\""),
        CorruptCase("missing shape", b(#""b":{"dtype":"F32","data_offsets":[24,32]}"#), "tensor \"b\"", "missing field \"shape\""),
        CorruptCase("missing data_offsets", b(#""b":{"dtype":"F32","shape":[2]}"#), "tensor \"b\"", "missing field \"data_offsets\""),
        CorruptCase(
            "dtype is a number", b(#""b":{"dtype":32,"shape":[2],"data_offsets":[24,32]}"#), "tensor \"b\"", "\"dtype\" must be a string"),
        CorruptCase(
            "shape is a string", b(#""b":{"dtype":"F32","shape":"2","data_offsets":[24,32]}"#), "tensor \"b\"", "\"shape\" must be an array"
        ),
        CorruptCase(
            "shape holds null", b(#""b":{"dtype":"F32","shape":[null],"data_offsets":[24,32]}"#), "tensor \"b\"", "\"shape\"", "found null"),
        CorruptCase(
            "three data_offsets", b(#""b":{"dtype":"F32","shape":[2],"data_offsets":[24,32,40]}"#), "tensor \"b\"",
            "\"data_offsets\" must have 2 integers"),
        CorruptCase(
            "data_offsets holds a string", b(#""b":{"dtype":"F32","shape":[2],"data_offsets":["24",32]}"#), "tensor \"b\"",
            "\"data_offsets\"", "a string"),
        CorruptCase(
            "negative data_offsets", b(#""b":{"dtype":"F32","shape":[2],"data_offsets":[-8,32]}"#), "tensor \"b\"", "\"data_offsets\"",
            "negative -8"),
        CorruptCase(
            "unknown dtype", b(#""b":{"dtype":"F17","shape":[2],"data_offsets":[24,32]}"#), "tensor \"b\"", "unknown dtype \"F17\""),
        CorruptCase(
            "negative shape", b(#""b":{"dtype":"F32","shape":[-2],"data_offsets":[24,32]}"#), "tensor \"b\"", "\"shape\"", "negative -2"),
        CorruptCase(
            "fractional shape", b(#""b":{"dtype":"F32","shape":[2.0],"data_offsets":[24,32]}"#), "tensor \"b\"", "\"shape\"",
            "non-integer 2.0"),
        CorruptCase("exponent shape", b(#""b":{"dtype":"F32","shape":[2e0],"data_offsets":[24,32]}"#), "tensor \"b\"", "non-integer 2e0"),
        CorruptCase(
            "shape beyond Int", b(#""b":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[24,32]}"#), "tensor \"b\"",
            "too large"),
        CorruptCase(
            "shape product overflows", b(#""b":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[24,32]}"#), "tensor \"b\"",
            "overflow"),
        CorruptCase(
            "byte count overflows", b(#""b":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[24,32]}"#), "tensor \"b\"",
            "overflow"),
        CorruptCase(
            "begin after end", b(#""b":{"dtype":"F32","shape":[2],"data_offsets":[32,24]}"#), "tensor \"b\"", "[32, 24]",
            "begin is after end"),
        CorruptCase(
            "end beyond the buffer", b(#""b":{"dtype":"F32","shape":[4],"data_offsets":[24,40]}"#), "tensor \"b\"", "[24, 40]",
            "beyond the data buffer (32 bytes)"),
        CorruptCase(
            "huge end", b(#""b":{"dtype":"F32","shape":[2],"data_offsets":[24,9223372036854775807]}"#), "tensor \"b\"",
            "beyond the data buffer"),
        CorruptCase(
            "size does not match shape", b(#""b":{"dtype":"F32","shape":[3],"data_offsets":[24,32]}"#), "tensor \"b\"", "hold 8 bytes",
            "needs 12"),
        CorruptCase(
            "size does not match dtype", b(#""b":{"dtype":"F16","shape":[2],"data_offsets":[24,32]}"#), "tensor \"b\"", "hold 8 bytes",
            "F16 needs 4"),
        CorruptCase(
            "overlapping tensors", b(#""b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}"#), "tensor \"b\"", "overlap tensor \"w\""),
        CorruptCase(
            "hole between tensors", w(#""w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}"#), "tensor \"b\"", "hole", "16..<24"),
        CorruptCase("hole at the start", w(#""w":{"dtype":"F32","shape":[2,2],"data_offsets":[8,24]}"#), "tensor \"w\"", "hole", "0..<8"),
        CorruptCase(
            "trailing bytes in the buffer", assemble(header: split(valid).header, buffer: buffer + [0, 0, 0, 0]),
            "cover 32 bytes of the 36-byte data buffer"),
        CorruptCase(
            "tensors do not reach the end", b(#""b":{"dtype":"F32","shape":[1],"data_offsets":[24,28]}"#), "cover 28 bytes of the 32-byte"),
        CorruptCase(
            "duplicate tensor names", editedHeader { $0.replacingOccurrences(of: entryW, with: entryW + "," + entryW) },
            "tensor \"w\"", "duplicate tensor name"),
        CorruptCase(
            "duplicate field", b(#""b":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[24,32]}"#), "tensor \"b\"",
            "\"dtype\" appears twice"),
        CorruptCase(
            "metadata value not a string", editedHeader { "{\"__metadata__\":{\"k\":1}," + $0.dropFirst() }, "__metadata__",
            "\"k\" must be a string"),
        CorruptCase(
            "metadata not an object", editedHeader { "{\"__metadata__\":[]," + $0.dropFirst() }, "__metadata__", "must be an object"),
        CorruptCase(
            "metadata twice", editedHeader { "{\"__metadata__\":{},\"__metadata__\":{}," + $0.dropFirst() }, "__metadata__", "appears twice"
        ),
        CorruptCase(
            "deeply nested unknown field",
            b(
                #""b":{"dtype":"F32","x":"# + String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
                    + #","shape":[2],"data_offsets":[24,32]}"#), "nested more than 64 levels"),
        CorruptCase(
            "unpaired surrogate", b(#""\ud800":{"dtype":"F32","shape":[2],"data_offsets":[24,32]}"#), "not valid JSON", "surrogate"),
        CorruptCase(
            "control character in a name", b("\"b\n\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[24,32]}"), "not valid JSON",
            "control characters"),
        CorruptCase("bad escape", b(#""\q":{"dtype":"F32","shape":[2],"data_offsets":[24,32]}"#), "not valid JSON", "escape"),
        CorruptCase("leading zero", b(#""b":{"dtype":"F32","shape":[02],"data_offsets":[24,32]}"#), "not valid JSON")
    ]
}()

// MARK: - Tests

@Suite struct SafetensorsTests {
    // MARK: Writing and reading back

    @Test(arguments: [[:], ["format": "pt", "note": "héllo \"world\"\n\ttab\u{1}", "": "empty key"]])
    func roundTripOfSeveralShapes(metadata: [String: String]) throws {
        var rng = SeededRNG(seed: 7)
        let tensors: [(String, Tensor)] = [
            ("z.vector", rng.uniform(shape: [5], low: -1, high: 1)),
            ("a.matrix", rng.uniform(shape: [3, 4], low: -1, high: 1)),
            ("m.cube", rng.uniform(shape: [2, 3, 2], low: -10, high: 10)),
            ("scalar", Tensor(shape: [], data: [42])),
            ("empty", Tensor(zeros: [0, 3])),
            ("special", Tensor(vector: [.infinity, -.infinity, -0.0, .leastNonzeroMagnitude, .greatestFiniteMagnitude])),
            ("名前 \"quoted\"", Tensor(vector: [1, 2]))
        ]
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("model.safetensors")
        try Safetensors.write(tensors, metadata: metadata, to: url)

        let viaURL = try Safetensors.read(url)
        let viaData = try Safetensors.read(data: Safetensors.serialize(tensors, metadata: metadata), name: "mem")
        for file in [viaURL, viaData] {
            #expect(file.metadata == metadata)
            #expect(file.names == tensors.map(\.0))  // file order is the order given
            for ((name, t), read) in zip(tensors, file.tensors) {
                #expect(read.name == name)
                #expect(read.dtype == .f32)
                #expect(read.shape == t.shape)
                #expect(read.values.shape == t.shape)
                #expect(bits(read.values) == bits(t))
            }
        }
        #expect(try Data(contentsOf: url) == Safetensors.serialize(tensors, metadata: metadata))
        // Only the destination is left in the directory (the temporary file was renamed).
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["model.safetensors"])
    }

    @Test func exactBytesOfATinyFile() throws {
        let data = try Safetensors.serialize([("b", Tensor(vector: [1.0, -2.0]))])
        let header = #"{"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#  // 54 bytes + 2 spaces = 56
        let expected: [UInt8] =
            [0x38, 0, 0, 0, 0, 0, 0, 0] + Array(header.utf8) + [0x20, 0x20]
            + [0x00, 0x00, 0x80, 0x3F]  // 1.0
            + [0x00, 0x00, 0x00, 0xC0]  // -2.0
        #expect([UInt8](data) == expected)
        // The same bytes as Python: safetensors.numpy.save({"b": np.array([1, -2], np.float32)}).
        let python =
            "38000000000000007b2262223a7b226474797065223a22463332222c227368617065223a5b325d2c22646174615f6f666673657473223a5b302c385d7d7d20200000803f000000c0"
        #expect(data.map { String(format: "%02x", $0) }.joined() == python)
    }

    @Test func headerIsSortedAndPaddedAndDataKeepsTheGivenOrder() throws {
        let data = try Safetensors.serialize(
            [("b", Tensor(vector: [1])), ("a", Tensor(vector: [2, 3])), ("B", Tensor(vector: [4]))],
            metadata: ["z": "1", "a": "x\"\n\u{1}é"])
        let (header, buffer) = split(data)
        #expect(
            header == #"{"__metadata__":{"a":"x\"\n\u0001é","z":"1"},"B":{"dtype":"F32","shape":[1],"data_offsets":[12,16]},"#
                + #""a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#)
        #expect(buffer == leBytes([1, 2, 3, 4] as [Float]))
        #expect((data.count - buffer.count) % 8 == 0)
        let empty = try Safetensors.serialize([])
        #expect([UInt8](empty) == [8, 0, 0, 0, 0, 0, 0, 0] + Array("{}      ".utf8))
        #expect(try Safetensors.read(data: empty, name: "empty").tensors.isEmpty)
    }

    @Test func writerMatchesPythonByteForByte() throws {
        let url = try fixture("peer_f32", "safetensors")
        let python = try Data(contentsOf: url)
        let peer = try Safetensors.read(url)
        #expect(peer.metadata == ["note": "tab\there \"q\" \\ é \u{1} ✓"])
        // numpy's save_file writes F32 tensors in name order; given in that order, ours are identical.
        let mine = try Safetensors.serialize(peer.tensors.map { ($0.name, $0.values) }, metadata: peer.metadata)
        #expect(mine == python)
    }

    // MARK: The reference implementation's files

    @Test func readsAFileWrittenByPythonSafetensors() throws {
        struct Expected: Decodable {
            struct T: Decodable { let name: String; let dtype: String; let shape: [Int]; let bits: [UInt32] }
            let metadata: [String: String]
            let tensors: [T]
        }
        let all = try JSONDecoder().decode([String: Expected].self, from: Data(contentsOf: fixture("peer_expected", "json")))
        for fileName in ["peer", "peer_f32"] {
            let expected = try #require(all["\(fileName).safetensors"])
            let url = try fixture(fileName, "safetensors")
            let file = try Safetensors.read(url)
            #expect(file.metadata == expected.metadata)
            #expect(file.names == expected.tensors.map(\.name))
            for (e, t) in zip(expected.tensors, file.tensors) {
                #expect(t.dtype.rawValue == e.dtype, "\(e.name)")
                #expect(t.shape == e.shape, "\(e.name)")
                #expect(bits(t.values) == e.bits, "\(e.name)")
            }
            // The lazy archive converts the same values on request.
            let archive = try Safetensors.open(url)
            #expect(archive.names == file.names)
            for e in expected.tensors.reversed() {
                #expect(try bits(archive.tensor(e.name)) == e.bits)
            }
        }
        let peer = try Safetensors.open(fixture("peer", "safetensors"))
        #expect(peer.metadata["note"] == "héllo\nworld")
        #expect(peer.entry("half")?.dtype == .f16)
        #expect(peer.entry("brain")?.dtype == .bf16)
        #expect(peer.entry("double")?.dtype == .f64)
        #expect(peer.entry("scale")?.shape == [])
    }

    // MARK: Dtype conversion

    @Test func f16KnownBitPatterns() throws {
        let cases: [(UInt16, Float)] = [
            (0x3C00, 1.0), (0xC000, -2.0), (0x3800, 0.5), (0x7BFF, 65504), (0xFBFF, -65504),
            (0x0001, 0x1p-24),  // smallest subnormal
            (0x03FF, 1023 * 0x1p-24),  // largest subnormal
            (0x0400, 0x1p-14),  // smallest normal
            (0x7C00, .infinity), (0xFC00, -.infinity), (0x0000, 0), (0x3555, 0.333251953125)
        ]
        let data = assemble(
            header: #"{"h":{"dtype":"F16","shape":[\#(cases.count)],"data_offsets":[0,\#(2 * cases.count)]}}"#,
            buffer: leBytes(cases.map(\.0)))
        let t = try Safetensors.read(data: data, name: "f16").tensor("h")
        #expect(t.data == cases.map(\.1))
        #expect(floatFromHalfBits(0x8000).bitPattern == (-0.0 as Float).bitPattern)
        #expect(floatFromHalfBits(0x7E00).isNaN)
        #expect(floatFromHalfBits(0x7E00).bitPattern == 0x7FC0_0000)
    }

    @Test func bf16KnownBitPatterns() throws {
        let cases: [(UInt16, Float)] = [
            (0x3F80, 1.0), (0xC000, -2.0), (0x3E20, 0.15625), (0x7F80, .infinity), (0xFF80, -.infinity),
            (0x0001, Float(bitPattern: 0x0001_0000)), (0x7F7F, Float(bitPattern: 0x7F7F_0000))
        ]
        let data = assemble(
            header: #"{"b":{"dtype":"BF16","shape":[\#(cases.count)],"data_offsets":[0,\#(2 * cases.count)]}}"#,
            buffer: leBytes(cases.map(\.0)))
        #expect(try Safetensors.read(data: data, name: "bf16").tensor("b").data == cases.map(\.1))
    }

    @Test func f64IntegerAndBoolConversion() throws {
        var buffer: [UInt8] = []
        for d in [0.1, -1e300, 2.0 / 3.0] as [Double] { withUnsafeBytes(of: d.bitPattern.littleEndian) { buffer += $0 } }
        for i in [-3, 1 << 40] as [Int64] { withUnsafeBytes(of: i.littleEndian) { buffer += $0 } }
        for i in [-7, 100_000] as [Int32] { withUnsafeBytes(of: i.littleEndian) { buffer += $0 } }
        buffer += [0, 1, 2]  // BOOL
        buffer += [0xFF]  // I8 -1
        let header =
            #"{"d":{"dtype":"F64","shape":[3],"data_offsets":[0,24]},"l":{"dtype":"I64","shape":[2],"data_offsets":[24,40]},"#
            + #""i":{"dtype":"I32","shape":[2],"data_offsets":[40,48]},"f":{"dtype":"BOOL","shape":[3],"data_offsets":[48,51]},"#
            + #""s":{"dtype":"I8","shape":[],"data_offsets":[51,52]}}"#
        let file = try Safetensors.read(data: assemble(header: header, buffer: buffer), name: "mixed")
        #expect(file.names == ["d", "l", "i", "f", "s"])
        #expect(try file.tensor("d").data == [Float(0.1), -.infinity, Float(2.0 / 3.0)])
        #expect(try file.tensor("l").data == [-3, 0x1p40])
        #expect(try file.tensor("i").data == [-7, 100_000])
        #expect(try file.tensor("f").data == [0, 1, 1])
        #expect(try file.tensor("s").data == [-1])
        #expect(try file.tensor("s").shape == [])
    }

    @Test func unconvertibleDtypeIsRefusedOnlyWhenAskedFor() throws {
        let header = #"{"q":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]},"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        let data = assemble(header: header, buffer: [1, 2, 3, 4] + leBytes([3.5] as [Float]))
        let archive = try Safetensors.open(data: data, name: "fp8.safetensors")
        #expect(try archive.tensor("x").data == [3.5])
        #expect(archive.entry("q")?.dtype == .f8e4m3)
        let e = #expect(throws: SafetensorsError.self) { try archive.tensor("q") }
        #expect(e?.description.contains("fp8.safetensors") == true)
        #expect(e?.description.contains("tensor \"q\"") == true)
        #expect(e?.description.contains("F8_E4M3 cannot be converted") == true)
        #expect(throws: SafetensorsError.self) { try Safetensors.read(data: data, name: "fp8") }
        let missing = #expect(throws: SafetensorsError.self) { try archive.tensor("nope") }
        #expect(missing?.description.contains("tensor \"nope\": no such tensor") == true)
    }

    @Test func readsAHeaderWithExtraFieldsWhitespaceAndUnalignedData() throws {
        // Odd header length (no padding): the buffer starts at an unaligned address.
        let header =
            """
             {\n\"x\" : {\"data_offsets\": [0, 8], \"extra\": {\"a\": [1, 2.5e3, true, null, \"s\"]}, \"shape\": [2], \"dtype\": \
            \"F32\"} } 
            """
        let data = assemble(header: header, buffer: leBytes([1.5, -0.25] as [Float]), pad: false)
        #expect((data.count - 8) % 2 == 1)
        #expect(try Safetensors.read(data: data, name: "odd").tensor("x").data == [1.5, -0.25])
        // A slice whose startIndex is not zero.
        let sliced = (Data([9, 9, 9]) + data).dropFirst(3)
        #expect(try Safetensors.read(data: sliced, name: "slice").tensor("x").data == [1.5, -0.25])
    }

    // MARK: Corrupt input

    @Test(arguments: corruptCases)
    func corruptFileGivesANamedError(_ c: CorruptCase) {
        do {
            let f = try Safetensors.read(data: c.data, name: "bad.safetensors")
            Issue.record("accepted a corrupt file: \(f.names)")
        } catch let e as SafetensorsError {
            let text = e.description
            #expect(text.hasPrefix("safetensors file \"bad.safetensors\""), "\(text)")
            for fragment in c.fragments {
                #expect(text.contains(fragment), "\(text)")
            }
            #expect(!text.contains("\n"))
        } catch {
            Issue.record("not a SafetensorsError: \(error)")
        }
    }

    @Test func randomAndMutatedInputsNeverCrash() throws {
        var rng = SeededRNG(seed: 2024)
        func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(rng.next(upperBound: UInt64(n))) }
        func randomByte() -> UInt8 { UInt8(truncatingIfNeeded: rng.next()) }
        let valid = [UInt8](
            try Safetensors.serialize(
                [
                    ("w", Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6])), ("b", Tensor(vector: [0.5, -0.5])),
                    ("s", Tensor(shape: [], data: [1]))
                ],
                metadata: ["k": "v"]))
        let headerEnd = 8 + Int(valid[0])
        let tokens = [
            "{", "}", "[", "]", ",", ":", "\"", "\\", "-", "0", "9", "1e9", ".5", "null", "true", "F16", "BF16", "F64",
            "\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"__metadata__\"", "99999999999999999999", "\\ud800", " "
        ]
        func withLengthField(_ n: UInt64, _ rest: [UInt8]) -> [UInt8] {
            var out: [UInt8] = []
            withUnsafeBytes(of: n.littleEndian) { out.append(contentsOf: $0) }
            return out + rest
        }
        var accepted = 0, refused = 0
        for round in 0..<2000 {
            var bytes: [UInt8]
            switch round % 5 {
            case 0:  // random bytes, sometimes behind a plausible header length
                bytes = (0..<below(80)).map { _ in randomByte() }
                if bytes.count >= 8 && below(2) == 0 {
                    bytes = withLengthField(UInt64(below(bytes.count - 7)), Array(bytes[8...]))
                }
            case 1:  // random byte flips anywhere
                bytes = valid
                for _ in 0...below(4) { bytes[below(bytes.count)] = randomByte() }
            case 2:  // a token spliced into the header, length fixed up
                var header = Array(valid[8..<headerEnd])
                let at = below(header.count + 1)
                let token = Array(tokens[below(tokens.count)].utf8)
                if below(2) == 0, at < header.count {
                    header.replaceSubrange(at..<min(header.count, at + token.count), with: token)
                } else {
                    header.insert(contentsOf: token, at: at)
                }
                bytes = withLengthField(UInt64(header.count), header + Array(valid[headerEnd...]))
            case 3:  // a digit in the header changed (offsets and shapes)
                bytes = valid
                let digits = (8..<headerEnd).filter { (0x30...0x39).contains(bytes[$0]) }
                bytes[digits[below(digits.count)]] = UInt8(0x30 + below(10))
            default:  // truncated or extended, or a random header length
                bytes = valid
                switch below(3) {
                case 0: bytes = Array(bytes.prefix(below(bytes.count)))
                case 1: bytes += (0...below(16)).map { _ in randomByte() }
                default: bytes = withLengthField(rng.next() >> UInt64(below(64)), Array(valid[8...]))
                }
            }
            do {
                let archive = try Safetensors.open(data: Data(bytes), name: "fuzz")
                for e in archive.entries where e.dtype.isConvertibleToFloat32 {
                    let t = try archive.tensor(e.name)
                    #expect(t.count == e.elementCount && t.shape == e.shape)
                }
                accepted += 1
            } catch let e as SafetensorsError {
                #expect(!e.description.contains("\n"))
                refused += 1
            } catch {
                Issue.record("not a SafetensorsError: \(error)")
            }
        }
        #expect(accepted + refused == 2000)
        #expect(accepted > 0 && refused > 1000)
    }

    // MARK: Writer errors and atomicity

    @Test func writerRefusesBadInput() throws {
        let d = #expect(throws: SafetensorsError.self) {
            try Safetensors.serialize([("a", Tensor(vector: [1])), ("a", Tensor(vector: [2]))])
        }
        #expect(d?.description.contains("tensor \"a\": duplicate tensor name") == true)
        #expect(throws: SafetensorsError.self) { try Safetensors.serialize([("__metadata__", Tensor(vector: [1]))]) }
        var broken = Tensor(vector: [1, 2])
        broken.shape = [3]
        let s = #expect(throws: SafetensorsError.self) { try Safetensors.serialize([("x", broken)]) }
        #expect(s?.description.contains("does not hold its 2 values") == true)
    }

    @Test func failedWriteLeavesTheOldFileAndNoTemporaries() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("weights.safetensors")
        try Safetensors.write([("old", Tensor(vector: [1]))], metadata: ["v": "1"], to: url)
        // A refused write changes nothing.
        #expect(throws: SafetensorsError.self) {
            try Safetensors.write([("a", Tensor(vector: [1])), ("a", Tensor(vector: [1]))], metadata: [:], to: url)
        }
        #expect(try Safetensors.read(url).names == ["old"])
        // A successful write replaces the file whole.
        try Safetensors.write([("new", Tensor(vector: [2, 3]))], metadata: [:], to: url)
        let file = try Safetensors.read(url)
        #expect(file.names == ["new"] && file.metadata.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["weights.safetensors"])
        // A missing directory gives a named error.
        let nowhere = dir.appendingPathComponent("missing/w.safetensors")
        let e = #expect(throws: SafetensorsError.self) { try Safetensors.write([], metadata: [:], to: nowhere) }
        #expect(e?.description.contains("missing/w.safetensors") == true)
        let r = #expect(throws: SafetensorsError.self) { try Safetensors.read(nowhere) }
        #expect(r?.description.contains("cannot read the file") == true)
    }
}
