import Foundation
import TensorKit
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A failure to read a GGUF file: which file, what was being read, what was expected.
public struct GGUFError: Error, CustomStringConvertible, Sendable {
    /// One line, for the user: usually starts with the file's path.
    public let description: String
    /// Makes an error with a one-line message.
    public init(_ description: String) { self.description = description }
}

/// One metadata value. Integers of every width are widened to 64 bits, floats to Double; arrays
/// hold values of one type.
public enum GGUFValue: Sendable, Equatable {
    /// GGUF's u8/u16/u32/u64, i8/i16/i32/i64, f32/f64, bool, string (UTF-8; invalid bytes become U+FFFD)
    /// and array (nested at most two deep).
    case uint(UInt64), int(Int64), float(Double), bool(Bool), string(String), array([GGUFValue])

    /// An integer of either signedness as `Int`; `nil` for a `.uint` above `Int.max`, for floats (even whole
    /// ones) and for other kinds.
    public var int: Int? {
        switch self {
        case .uint(let v): v <= UInt64(Int.max) ? Int(v) : nil
        case .int(let v): Int(v)
        default: nil
        }
    }
    /// A float, or an integer converted (rounded above 2^53); `nil` for bools, strings and arrays.
    public var double: Double? {
        switch self {
        case .float(let v): v
        case .uint, .int: int.map(Double.init)
        default: nil
        }
    }
    /// The string, or `nil` for any other kind (nothing is converted to text).
    public var string: String? { if case .string(let s) = self { s } else { nil } }
    /// The bool, or `nil` for any other kind (an integer 0 or 1 is not a bool).
    public var bool: Bool? { if case .bool(let b) = self { b } else { nil } }
    /// The elements, or `nil` when this is not an array.
    public var array: [GGUFValue]? { if case .array(let a) = self { a } else { nil } }

    /// A short rendering for listings: arrays show their length and first elements.
    public var summary: String {
        switch self {
        case .uint(let v): "\(v)"
        case .int(let v): "\(v)"
        case .float(let v): "\(v)"
        case .bool(let v): "\(v)"
        case .string(let s):
            s.count > 60
                ? "\"\(s.prefix(57).replacingOccurrences(of: "\n", with: "\\n"))…\""
                : "\"\(s.replacingOccurrences(of: "\n", with: "\\n"))\""
        case .array(let a): "[\(a.count) items: \(a.prefix(3).map(\.summary).joined(separator: ", "))\(a.count > 3 ? ", …" : "")]"
        }
    }
}

/// Where a tensor's data sits in the file, and its shape and type. `dims` are ggml's `ne`, the
/// fastest-varying first: a matrix of `rows` rows of `cols` values has dims `[cols, rows]`.
public struct GGUFTensorInfo: Sendable, Equatable {
    /// The tensor's name, such as `blk.0.attn_q.weight`; unique in a file.
    public let name: String
    /// One to four extents, each at least 1, `dims[0]` a whole number of `type`'s blocks.
    public let dims: [Int]
    /// How the values are stored (F32, F16 or a block-quantized format).
    public let type: GGMLType
    /// From the start of the data section, in bytes; a multiple of the file's alignment.
    public let offset: Int
    /// The number of values: the product of `dims`.
    public var count: Int { dims.reduce(1, *) }
    /// The size of the data in the file, in bytes, block scales included for quantized types.
    public var byteCount: Int { type.byteCount(count) }
}

/// The bytes of a file, memory-mapped (or, for tests, copied from `Data`), alive as long as this is.
final class ByteStore: @unchecked Sendable {
    let base: UnsafeRawPointer
    let count: Int
    private let mapped: Bool

    init(mapping url: URL) throws {
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else { throw GGUFError("\(url.path): cannot open (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw GGUFError("\(url.path): cannot stat (\(String(cString: strerror(errno))))") }
        count = Int(st.st_size)
        guard count > 0 else { throw GGUFError("\(url.path): the file is empty, expected a GGUF header") }
        guard let p = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw GGUFError("\(url.path): cannot memory-map (\(String(cString: strerror(errno))))")
        }
        base = UnsafeRawPointer(p)
        mapped = true
    }

    init(data: Data) {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(data.count, 1), alignment: 64)
        data.withUnsafeBytes { if let b = $0.baseAddress { p.copyMemory(from: b, byteCount: data.count) } }
        base = UnsafeRawPointer(p); count = data.count; mapped = false
    }

    deinit {
        if mapped { munmap(UnsafeMutableRawPointer(mutating: base), count) } else { base.deallocate() }
    }
}

/// A GGUF file (versions 2 and 3): the header, the metadata key–values, the tensor infos, and the
/// tensor data read in place from a memory map.
///
/// Layout: `"GGUF"`, version (u32), tensor count (u64), metadata count (u64); the key–values (a
/// string key, a u32 type, the value); the tensor infos (name, dimension count u32, dims u64…, type
/// u32, offset u64); padding to `general.alignment` (default 32); the data section. Strings are a
/// u64 length and UTF-8 bytes; little-endian throughout.
///
/// Everything is checked before it is trusted: every read against the end of the file, string and
/// array lengths against the bytes left, tensor types against the formats this project reads,
/// every tensor's extent against the file's size.
public final class GGUFFile: @unchecked Sendable {
    /// The path it was read from (or the name given to `init(data:path:)`); error messages start with it.
    public let path: String
    /// The format version: 2 or 3.
    public let version: UInt32
    /// Metadata keys in file order, and their values.
    public let keys: [String]
    /// The metadata key–values, by key (keys are unique).
    public let metadata: [String: GGUFValue]
    /// The tensor infos, in file order; names are unique.
    public let tensors: [GGUFTensorInfo]
    /// The alignment of the data section and of every tensor's offset, in bytes: `general.alignment`
    /// (a power of two) or 32.
    public let alignment: Int
    /// Where the data section starts, in bytes from the start of the file.
    public let dataOffset: Int
    /// The size of the file, in bytes.
    public var fileSize: Int { store.count }
    let store: ByteStore
    private let index: [String: Int]

    /// Memory-maps and parses a file.
    /// - Throws: `GGUFError` naming the file and what was wrong.
    public convenience init(url: URL) throws {
        try self.init(store: ByteStore(mapping: url), path: url.path)
    }

    /// Parses bytes already in memory (tests); they are copied.
    /// - Throws: `GGUFError` naming `path` and what was wrong.
    public convenience init(data: Data, path: String = "<memory>") throws {
        try self.init(store: ByteStore(data: data), path: path)
    }

    init(store: ByteStore, path: String) throws {
        self.store = store; self.path = path
        var r = Reader(base: store.base, count: store.count, path: path)
        let magic = try r.bytes(4, "the magic number")
        guard Array(UnsafeRawBufferPointer(start: magic, count: 4)) == Array("GGUF".utf8) else {
            throw GGUFError("\(path): not a GGUF file (the first 4 bytes are not \"GGUF\")")
        }
        version = try r.u32("the version")
        guard version == 2 || version == 3 else {
            throw GGUFError("\(path): GGUF version \(version) is not supported (expected 2 or 3)")
        }
        let tensorCount = try r.u64("the tensor count"), kvCount = try r.u64("the metadata count")
        // Each key–value takes at least 12 bytes and each tensor info at least 24: reject absurd counts
        // before reserving anything.
        guard kvCount <= UInt64(store.count / 12), tensorCount <= UInt64(store.count / 24) else {
            throw GGUFError(
                """
                \(path): the header claims \(tensorCount) tensors and \(kvCount) metadata entries, more than a \
                \(store.count)-byte file can hold: it is truncated or corrupt
                """
            )
        }
        var keys: [String] = [], metadata: [String: GGUFValue] = [:]
        for i in 0..<Int(kvCount) {
            let key = try r.string("metadata key #\(i)")
            let type = try r.u32("the type of \(key)")
            let value = try r.value(type: type, key: key, depth: 0)
            if metadata.updateValue(value, forKey: key) != nil { throw GGUFError("\(path): metadata key \(key) appears twice") }
            keys.append(key)
        }
        self.keys = keys; self.metadata = metadata
        var alignment = 32
        if let a = metadata["general.alignment"] {
            guard let v = a.int, v > 0, v & (v - 1) == 0 else {
                throw GGUFError("\(path): general.alignment is \(a.summary), expected a power of two")
            }
            alignment = v
        }
        self.alignment = alignment
        var tensors: [GGUFTensorInfo] = [], index: [String: Int] = [:]
        for i in 0..<Int(tensorCount) {
            let name = try r.string("the name of tensor #\(i)")
            let nd = try r.u32("the dimension count of \(name)")
            guard (1...4).contains(nd) else { throw GGUFError("\(path): tensor \(name) has \(nd) dimensions, expected 1 to 4") }
            var dims: [Int] = [], count = 1
            for _ in 0..<nd {
                let d = try r.u64("a dimension of \(name)")
                guard d > 0, d < 1 << 40 else { throw GGUFError("\(path): tensor \(name) has a dimension of \(d)") }
                dims.append(Int(d))
                let (c, o) = count.multipliedReportingOverflow(by: Int(d))
                guard !o, c < 1 << 40 else { throw GGUFError("\(path): tensor \(name)'s shape \(dims) is too large") }
                count = c
            }
            let rawType = try r.u32("the type of \(name)")
            guard let type = GGMLType(rawValue: rawType) else {
                throw GGUFError(
                    "\(path): tensor \(name) is stored as \(GGMLType.name(of: rawType)), which this reader does not support (it reads \(GGMLType.allCases.map(\.name).joined(separator: ", ")))"
                )
            }
            guard dims[0] % type.blockSize == 0 else {
                throw GGUFError(
                    """
                    \(path): tensor \(name) is \(type.name) with rows of \(dims[0]) values, not a whole number of \
                    \(type.blockSize)-value blocks
                    """
                )
            }
            let offset = try r.u64("the offset of \(name)")
            guard offset < UInt64(store.count), Int(offset) % alignment == 0 else {
                throw GGUFError("\(path): tensor \(name) has offset \(offset), expected a multiple of \(alignment) inside the file")
            }
            if index.updateValue(i, forKey: name) != nil { throw GGUFError("\(path): tensor \(name) appears twice") }
            tensors.append(GGUFTensorInfo(name: name, dims: dims, type: type, offset: Int(offset)))
        }
        dataOffset = (r.position + alignment - 1) / alignment * alignment
        for t in tensors where dataOffset + t.offset + t.byteCount > store.count {
            throw GGUFError(
                """
                \(path): tensor \(t.name) (\(t.type.name), shape \(t.dims), \(t.byteCount) bytes at \(dataOffset + t.offset)) \
                runs past the end of the file (\(store.count) bytes): the file is truncated
                """
            )
        }
        self.tensors = tensors; self.index = index
    }

    /// The tensor named `name`, or `nil` when the file has none.
    public func tensor(_ name: String) -> GGUFTensorInfo? { index[name].map { tensors[$0] } }

    /// The start of a tensor's data, `t.byteCount` bytes long. Valid while this file is alive; `t` must be one
    /// of this file's `tensors` (it is not checked).
    public func data(of t: GGUFTensorInfo) -> UnsafeRawPointer { store.base + dataOffset + t.offset }

    /// A tensor with the shape it must have (`dims`, ggml order), or an error saying what it has.
    /// - Throws: `GGUFError` when the tensor is missing or its dims differ from `expected`.
    public func tensor(_ name: String, dims expected: [Int]) throws -> GGUFTensorInfo {
        guard let t = tensor(name) else { throw GGUFError("\(path): tensor \(name) is missing") }
        guard t.dims == expected else {
            throw GGUFError("\(path): tensor \(name) has shape \(t.dims), expected \(expected) from the metadata")
        }
        return t
    }

    /// A 2-D tensor `[cols, rows]` (ggml order) as a matrix of `rows` rows, read in place: it points into
    /// the file's memory, so keep this `GGUFFile` alive as long as the matrix is used.
    /// - Throws: `GGUFError` when the tensor is missing or not of dims `[cols, rows]`.
    public func matrix(_ name: String, rows: Int, cols: Int) throws -> QuantizedMatrix {
        let t = try tensor(name, dims: [cols, rows])
        return QuantizedMatrix(type: t.type, rows: rows, cols: cols, data: data(of: t))
    }

    /// A tensor's values as Float32, copied out (dequantized if need be), in ggml order: `dims[0]` fastest.
    /// - Throws: `GGUFError` when the tensor is missing or its dims differ from `dims`.
    public func floats(_ name: String, dims: [Int]) throws -> [Float] {
        let t = try tensor(name, dims: dims)
        var out = [Float](repeating: 0, count: t.count)
        out.withUnsafeMutableBufferPointer { Quantized.dequantize(t.type, data(of: t), $0.baseAddress!, count: t.count) }
        return out
    }

    // MARK: - Metadata, typed

    /// The value of a metadata key.
    /// - Throws: `GGUFError` when the key is missing. The typed getters below throw it too when the value
    ///   is of another kind.
    public func value(_ key: String) throws -> GGUFValue {
        guard let v = metadata[key] else { throw GGUFError("\(path): metadata key \(key) is missing") }
        return v
    }
    /// An integer of any width or signedness that fits in `Int` (see `GGUFValue.int`); floats are refused.
    public func int(_ key: String) throws -> Int {
        let v = try value(key)
        guard let i = v.int else { throw GGUFError("\(path): metadata \(key) is \(v.summary), expected an integer") }
        return i
    }
    /// A float, or an integer as a `Double` (see `GGUFValue.double`).
    public func float(_ key: String) throws -> Double {
        let v = try value(key)
        guard let d = v.double else { throw GGUFError("\(path): metadata \(key) is \(v.summary), expected a number") }
        return d
    }
    /// A string value.
    public func string(_ key: String) throws -> String {
        let v = try value(key)
        guard let s = v.string else { throw GGUFError("\(path): metadata \(key) is \(v.summary), expected a string") }
        return s
    }
    /// An array whose every element is a string (an empty array gives `[]`).
    public func strings(_ key: String) throws -> [String] {
        let v = try value(key)
        let s = v.array?.compactMap(\.string)
        guard let s, s.count == v.array!.count else {
            throw GGUFError("\(path): metadata \(key) is \(v.summary), expected an array of strings")
        }
        return s
    }
    /// An array whose every element is a number (SentencePiece's `tokenizer.ggml.scores`), as `Float`.
    public func floatArray(_ key: String) throws -> [Float] {
        let v = try value(key)
        let s = v.array?.compactMap(\.double)
        guard let s, s.count == v.array!.count else {
            throw GGUFError("\(path): metadata \(key) is \(v.summary), expected an array of numbers")
        }
        return s.map { Float($0) }
    }
    /// An array whose every element is an integer that fits in `Int` (an empty array gives `[]`).
    public func ints(_ key: String) throws -> [Int] {
        let v = try value(key)
        let s = v.array?.compactMap(\.int)
        guard let s, s.count == v.array!.count else {
            throw GGUFError("\(path): metadata \(key) is \(v.summary), expected an array of integers")
        }
        return s
    }
}

/// A bounds-checked little-endian cursor over the file's bytes.
private struct Reader {
    let base: UnsafeRawPointer, count: Int, path: String
    var position = 0

    mutating func bytes(_ n: Int, _ what: @autoclosure () -> String) throws -> UnsafeRawPointer {
        guard n >= 0, n <= count - position else {
            throw GGUFError("\(path): the file ends at byte \(count) while reading \(what()) (\(n) bytes at \(position)): it is truncated")
        }
        defer { position += n }
        return base + position
    }
    mutating func u32(_ what: @autoclosure () -> String) throws -> UInt32 {
        try bytes(4, what()).loadUnaligned(as: UInt32.self).littleEndian
    }
    mutating func u64(_ what: @autoclosure () -> String) throws -> UInt64 {
        try bytes(8, what()).loadUnaligned(as: UInt64.self).littleEndian
    }
    mutating func string(_ what: @autoclosure () -> String) throws -> String {
        let n = try u64("the length of \(what())")
        guard n <= UInt64(count - position) else {
            throw GGUFError(
                "\(path): \(what()) claims \(n) bytes at \(position) but the file has \(count - position) left: it is truncated or corrupt")
        }
        let p = try bytes(Int(n), what())
        return String(decoding: UnsafeRawBufferPointer(start: p, count: Int(n)), as: UTF8.self)
    }

    /// GGUF value types: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool, 8 string, 9 array,
    /// 10 u64, 11 i64, 12 f64.
    static let sizes: [UInt32: Int] = [0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 8: 8, 10: 8, 11: 8, 12: 8]

    mutating func value(type: UInt32, key: String, depth: Int) throws -> GGUFValue {
        let what = "the value of \(key)"
        switch type {
        case 0: return .uint(UInt64(try bytes(1, what).load(as: UInt8.self)))
        case 1: return .int(Int64(try bytes(1, what).load(as: Int8.self)))
        case 2: return .uint(UInt64(try bytes(2, what).loadUnaligned(as: UInt16.self).littleEndian))
        case 3: return .int(Int64(try bytes(2, what).loadUnaligned(as: Int16.self).littleEndian))
        case 4: return .uint(UInt64(try u32(what)))
        case 5: return .int(Int64(Int32(bitPattern: try u32(what))))
        case 6: return .float(Double(Float(bitPattern: try u32(what))))
        case 7:
            let b = try bytes(1, what).load(as: UInt8.self)
            guard b <= 1 else { throw GGUFError("\(path): \(key) is a bool stored as \(b), expected 0 or 1") }
            return .bool(b == 1)
        case 8: return .string(try string(what))
        case 9:
            guard depth < 2 else { throw GGUFError("\(path): \(key) nests arrays too deeply") }
            let elementType = try u32("the element type of \(key)")
            let n = try u64("the length of \(key)")
            let minSize = Self.sizes[elementType] ?? 12
            guard Self.sizes[elementType] != nil || elementType == 9 else {
                throw GGUFError("\(path): \(key) is an array of value type \(elementType), expected 0–12")
            }
            guard n <= UInt64((count - position) / minSize) else {
                throw GGUFError(
                    """
                    \(path): \(key) claims \(n) elements, more than the \(count - position) bytes left can hold: the file is \
                    truncated or corrupt
                    """
                )
            }
            var a: [GGUFValue] = []
            a.reserveCapacity(Int(n))
            for _ in 0..<Int(n) { a.append(try value(type: elementType, key: key, depth: depth + 1)) }
            return .array(a)
        case 10: return .uint(try u64(what))
        case 11: return .int(Int64(bitPattern: try u64(what)))
        case 12: return .float(Double(bitPattern: try u64(what)))
        default: throw GGUFError("\(path): \(key) has value type \(type), expected 0–12")
        }
    }
}
