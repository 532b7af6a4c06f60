import Foundation
#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif
import TensorKit

// MARK: - Format
//
// A safetensors file (Hugging Face) is:
//
//     8 bytes      N, the header length, unsigned little-endian
//     N bytes      UTF-8 JSON object, padded with trailing spaces:
//                  {"__metadata__": {"k": "v", …},
//                   "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, …}
//     the rest     the byte buffer; offsets are relative to its start, values little-endian, row-major
//
// The reader trusts nothing: every field is checked, every size is computed with overflow checks,
// and the tensors must tile the buffer exactly (sorted by `begin`, each starts where the previous
// ended, the last ends at the end of the file), as the reference implementation requires.
// Any malformed input gives a `SafetensorsError`; no input traps.
//
// Conversion to Float32 (this project's only element type):
//   F32 exact; F16 and BF16 exact (every value, including subnormals, ±inf and NaN);
//   F64 rounded to nearest (out-of-range values become ±inf);
//   I8/U8/I16/U16/I32/U32/I64/U64 converted to the nearest Float (exact for |x| ≤ 2^24);
//   BOOL as 0 or 1.
//   F8_*, F6_*, F4 and C64 entries are accepted and validated (so other tensors of such a file
//   can be read), but asking for their values throws.
//
// Note on memory mapping: files are mapped (`.alwaysMapped`). As with any mmap, if another process
// truncates the file while it is mapped, touching the lost pages raises SIGBUS; the writer here
// never does that (it replaces files atomically by rename).

/// The element types of the safetensors format.
public enum SafetensorsDType: String, Sendable, CaseIterable, CustomStringConvertible {
    case bool = "BOOL"
    case u8 = "U8", i8 = "I8"
    case f8e5m2 = "F8_E5M2", f8e4m3 = "F8_E4M3", f8e8m0 = "F8_E8M0"
    case i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
    case i32 = "I32", u32 = "U32", f32 = "F32"
    case f64 = "F64", i64 = "I64", u64 = "U64"
    case c64 = "C64"
    case f4 = "F4", f6e2m3 = "F6_E2M3", f6e3m2 = "F6_E3M2"

    /// Bits per element (a few formats are narrower than a byte).
    public var bitSize: Int {
        switch self {
        case .f4: return 4
        case .f6e2m3, .f6e3m2: return 6
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3, .f8e8m0: return 8
        case .i16, .u16, .f16, .bf16: return 16
        case .i32, .u32, .f32: return 32
        case .f64, .i64, .u64, .c64: return 64
        }
    }

    /// Whether `tensor(_:)` can convert this type to Float32.
    public var isConvertibleToFloat32: Bool {
        switch self {
        case .f8e5m2, .f8e4m3, .f8e8m0, .c64, .f4, .f6e2m3, .f6e3m2: return false
        default: return true
        }
    }

    /// The header's spelling (`"F32"`, `"BF16"`, …).
    public var description: String { rawValue }
}

/// Why a safetensors file could not be read or written. One line, naming the file and, where there
/// is one, the tensor (or header field) at fault.
public struct SafetensorsError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file (path or given name).
    public let file: String
    /// The tensor or header key the problem is in, if any.
    public let tensor: String?
    /// What is wrong.
    public let message: String

    /// An error about `file`, and `tensor` (a tensor name or `__metadata__`) when there is one.
    public init(file: String, tensor: String? = nil, message: String) {
        self.file = file
        self.tensor = tensor
        self.message = message
    }

    /// `safetensors file "F", tensor "T": message`, on one line whatever the names contain.
    public var description: String {
        var s = "safetensors file \(quotedForMessage(file))"
        if let tensor {
            s += tensor == "__metadata__" ? ", __metadata__" : ", tensor \(quotedForMessage(tensor))"
        }
        s += ": " + message
        return oneLine(s)
    }
}

/// One tensor's header entry: where its bytes are and how to read them.
public struct SafetensorsEntry: Sendable, Equatable {
    /// The tensor's name (its key in the header).
    public let name: String
    /// The element type stored in the file.
    public let dtype: SafetensorsDType
    /// Dimensions, outermost first (`[]` for a scalar).
    public let shape: [Int]
    /// Byte range relative to the start of the data buffer (the header's `data_offsets`).
    public let dataOffsets: Range<Int>
    /// Product of `shape` (1 for a scalar `[]`).
    public let elementCount: Int
}

/// One tensor converted to Float32.
public struct SafetensorsTensor: Sendable, Equatable {
    /// The tensor's name (its key in the header).
    public let name: String
    /// The dtype stored in the file (the values are converted to Float32).
    public let dtype: SafetensorsDType
    /// Dimensions, outermost first (`[]` for a scalar).
    public let shape: [Int]
    /// The values as Float32, row-major, with `shape`.
    public let values: Tensor
}

/// A fully converted safetensors file: metadata and every tensor, in file order (by data offset).
public struct SafetensorsFile: Sendable, Equatable {
    /// The path or name the file was read from (used in error messages).
    public let name: String
    /// The header's `__metadata__` (string → string; empty when the file has none).
    public let metadata: [String: String]
    /// Every tensor, converted.
    public let tensors: [SafetensorsTensor]

    /// The tensors' names, in file order.
    public var names: [String] { tensors.map(\.name) }

    /// The named tensor's values, or nil when the file has no such tensor.
    public subscript(name: String) -> Tensor? { tensors.first { $0.name == name }?.values }

    /// The named tensor; throws (listing some known names) if there is none.
    public func tensor(_ name: String) throws -> Tensor {
        guard let t = self[name] else { throw missingTensor(name, file: self.name, known: names) }
        return t
    }
}

/// A validated safetensors file whose values are converted only on request, so a big file need not
/// be converted (or, when mapped, even paged in) up front.
public struct SafetensorsArchive: Sendable {
    /// The path or name the file was read from (used in error messages).
    public let name: String
    /// The header's `__metadata__` (string → string; empty when the file has none).
    public let metadata: [String: String]
    /// Header entries in file order (by data offset).
    public let entries: [SafetensorsEntry]
    private let data: Data
    private let bufferStart: Int
    private let index: [String: Int]

    fileprivate init(name: String, metadata: [String: String], entries: [SafetensorsEntry], data: Data, bufferStart: Int) {
        self.name = name
        self.metadata = metadata
        self.entries = entries
        self.data = data
        self.bufferStart = bufferStart
        var index: [String: Int] = [:]
        for (i, e) in entries.enumerated() { index[e.name] = i }
        self.index = index
    }

    /// The tensors' names, in file order.
    public var names: [String] { entries.map(\.name) }

    /// The named tensor's header entry (dtype, shape, byte range), or nil when there is none.
    public func entry(_ name: String) -> SafetensorsEntry? { index[name].map { entries[$0] } }

    /// The named tensor converted to Float32.
    public func tensor(_ name: String) throws -> Tensor {
        guard let i = index[name] else { throw missingTensor(name, file: self.name, known: names) }
        return try convert(entries[i])
    }

    /// Converts every tensor.
    public func load() throws -> SafetensorsFile {
        let tensors = try entries.map { e in
            SafetensorsTensor(name: e.name, dtype: e.dtype, shape: e.shape, values: try convert(e))
        }
        return SafetensorsFile(name: name, metadata: metadata, tensors: tensors)
    }

    private func convert(_ e: SafetensorsEntry) throws -> Tensor {
        guard e.dtype.isConvertibleToFloat32 else {
            throw SafetensorsError(
                file: name, tensor: e.name,
                message: "dtype \(e.dtype) cannot be converted to Float32 (supported: F32, F16, BF16, F64, integer types, BOOL)")
        }
        let n = e.elementCount
        let values: [Float] = data.withUnsafeBytes { (all: UnsafeRawBufferPointer) -> [Float] in
            // Offsets were validated against this buffer when the archive was opened.
            let raw = UnsafeRawBufferPointer(
                rebasing: all[(bufferStart + e.dataOffsets.lowerBound)..<(bufferStart + e.dataOffsets.upperBound)])
            return [Float](unsafeUninitializedCapacity: n) { out, initialized in
                decode(e.dtype, raw, n, into: out)
                initialized = n
            }
        }
        return Tensor(shape: e.shape, data: values)
    }
}

// MARK: - API

/// Reading and writing safetensors files (Hugging Face's format: an 8-byte header length, a JSON
/// header, then the raw little-endian data), checked field by field; writes are atomic.
public enum Safetensors {
    /// Header lengths above this are refused (the reference implementation's limit).
    public static let maxHeaderLength = 100_000_000

    /// Reads and converts a whole file.
    public static func read(_ url: URL) throws -> SafetensorsFile { try open(url).load() }

    /// Reads and converts a whole in-memory file; `name` is used in error messages.
    public static func read(data: Data, name: String) throws -> SafetensorsFile { try open(data: data, name: name).load() }

    /// Maps and validates a file; values are converted per tensor on request.
    public static func open(_ url: URL) throws -> SafetensorsArchive {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw SafetensorsError(file: url.path, message: "cannot read the file: \(error.localizedDescription)")
        }
        return try open(data: data, name: url.path)
    }

    /// Validates an in-memory file; values are converted per tensor on request.
    public static func open(data: Data, name: String) throws -> SafetensorsArchive {
        func fail(_ tensor: String?, _ message: String) -> SafetensorsError {
            SafetensorsError(file: name, tensor: tensor, message: message)
        }
        func fail(_ message: String) -> SafetensorsError { fail(nil, message) }
        let total = data.count
        guard total >= 8 else {
            throw fail("file is \(total) bytes, shorter than the 8-byte header length")
        }
        let n64: UInt64 = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self)) }
        guard n64 <= UInt64(maxHeaderLength) else {
            throw fail("header length \(n64) is absurd (more than \(maxHeaderLength) bytes)")
        }
        let n = Int(n64)
        guard n <= total - 8 else {
            throw fail("header length \(n) is larger than the \(total - 8) bytes after the length field")
        }
        let headerBytes: [UInt8] = data.withUnsafeBytes { Array($0[8..<(8 + n)]) }
        let parser = HeaderParser(bytes: headerBytes, file: name)
        let header = try parser.parseHeader()

        let bufferStart = 8 + n
        let bufferLength = total - bufferStart
        var entries: [SafetensorsEntry] = []
        entries.reserveCapacity(header.entries.count)
        for raw in header.entries {
            guard let dtype = SafetensorsDType(rawValue: raw.dtype) else {
                throw fail(raw.name, "unknown dtype \(quotedForMessage(raw.dtype))")
            }
            var count = 1
            for d in raw.shape {
                let (p, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow else { throw fail(raw.name, "shape \(raw.shape) has too many elements (integer overflow)") }
                count = p
            }
            let (bits, overflow) = count.multipliedReportingOverflow(by: dtype.bitSize)
            guard !overflow else { throw fail(raw.name, "shape \(raw.shape) of \(dtype) is too many bytes (integer overflow)") }
            guard bits % 8 == 0 else {
                throw fail(raw.name, "shape \(raw.shape) of \(dtype) (\(dtype.bitSize)-bit) does not fill whole bytes")
            }
            let begin = raw.offsets.0, end = raw.offsets.1
            guard begin <= end else {
                throw fail(raw.name, "data_offsets [\(begin), \(end)]: begin is after end")
            }
            guard end <= bufferLength else {
                throw fail(raw.name, "data_offsets [\(begin), \(end)]: end is beyond the data buffer (\(bufferLength) bytes)")
            }
            guard end - begin == bits / 8 else {
                throw fail(
                    raw.name,
                    "data_offsets [\(begin), \(end)] hold \(end - begin) bytes, but shape \(raw.shape) of \(dtype) needs \(bits / 8)")
            }
            entries.append(SafetensorsEntry(name: raw.name, dtype: dtype, shape: raw.shape, dataOffsets: begin..<end, elementCount: count))
        }

        // File order: by offset (header position breaks ties between empty tensors).
        let order = entries.indices.sorted {
            let a = entries[$0].dataOffsets, b = entries[$1].dataOffsets
            return (a.lowerBound, a.upperBound, $0) < (b.lowerBound, b.upperBound, $1)
        }
        entries = order.map { entries[$0] }

        // The tensors must tile the buffer exactly.
        var covered = 0
        var previous: SafetensorsEntry? = nil
        for e in entries {
            let r = e.dataOffsets
            if r.lowerBound < covered, let p = previous {
                throw fail(
                    e.name,
                    """
                    data_offsets [\(r.lowerBound), \(r.upperBound)] overlap tensor \(quotedForMessage(p.name)) at \
                    [\(p.dataOffsets.lowerBound), \(p.dataOffsets.upperBound)]
                    """
                )
            }
            if r.lowerBound > covered {
                throw fail(
                    e.name,
                    """
                    data_offsets [\(r.lowerBound), \(r.upperBound)] leave a hole: buffer bytes \(covered)..<\(r.lowerBound) \
                    belong to no tensor
                    """
                )
            }
            covered = r.upperBound
            previous = e
        }
        guard covered == bufferLength else {
            throw fail("the tensors cover \(covered) bytes of the \(bufferLength)-byte data buffer; the data_offsets must cover it exactly")
        }
        return SafetensorsArchive(name: name, metadata: header.metadata, entries: entries, data: data, bufferStart: bufferStart)
    }

    /// Serializes Float32 tensors. The header is laid out as Python's `safetensors` writes it:
    /// compact JSON, `__metadata__` first (omitted when empty), then the tensors sorted by name in
    /// byte order (the reference sorts by dtype alignment, then name; all ours are F32), strings
    /// escaped as serde_json does, padded with spaces to a multiple of 8 bytes. Metadata keys are
    /// sorted too (the reference writes them in hash order), so the output is deterministic.
    /// The data are in the order given, and the offsets follow that order.
    public static func serialize(_ tensors: [(String, Tensor)], metadata: [String: String] = [:]) throws -> Data {
        try serialize(tensors, metadata: metadata, file: "(in memory)")
    }

    /// Writes Float32 tensors atomically: to a temporary file in the same directory, flushed to disk,
    /// then renamed over `url`. An interrupted write leaves either the old file or the new one.
    /// The new file gets mode 0644 (less the umask); an existing file's permissions are not kept.
    public static func write(_ tensors: [(String, Tensor)], metadata: [String: String] = [:], to url: URL) throws {
        let path = url.path
        let bytes = try serialize(tensors, metadata: metadata, file: path)
        let dir = url.deletingLastPathComponent()
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp").path
        func failure(_ what: String) -> SafetensorsError {
            let reason = String(cString: strerror(errno))
            return SafetensorsError(file: path, message: "\(what): \(reason)")
        }
        let fd = posixCreateExclusive(tmp)
        guard fd >= 0 else { throw failure("cannot create temporary file \(tmp)") }
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        let written: Bool = bytes.withUnsafeBytes { buf in
            guard let base = buf.baseAddress else { return buf.isEmpty }
            var off = 0
            while off < buf.count {
                let r = posixWrite(fd, base + off, buf.count - off)
                if r < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                off += r
            }
            return true
        }
        guard written else { let e = failure("cannot write \(tmp)"); close(fd); throw e }
        guard fsync(fd) == 0 else { let e = failure("cannot flush \(tmp)"); close(fd); throw e }
        guard close(fd) == 0 else { throw failure("cannot close \(tmp)") }
        guard rename(tmp, path) == 0 else { throw failure("cannot rename \(tmp) over the destination") }
        ok = true
        // Best effort: make the rename itself durable.
        let dfd = posixOpenDirectory(dir.path)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    private static func serialize(_ tensors: [(String, Tensor)], metadata: [String: String], file: String) throws -> Data {
        var seen = Set<String>()
        var offsets: [(begin: Int, end: Int)] = []
        var position = 0
        for (name, t) in tensors {
            guard name != "__metadata__" else {
                throw SafetensorsError(file: file, tensor: name, message: "\"__metadata__\" is reserved and cannot name a tensor")
            }
            guard seen.insert(name).inserted else {
                throw SafetensorsError(file: file, tensor: name, message: "duplicate tensor name")
            }
            var count = 1
            for d in t.shape {
                let (p, overflow) = count.multipliedReportingOverflow(by: d)
                guard d >= 0, !overflow else {
                    throw SafetensorsError(file: file, tensor: name, message: "invalid shape \(t.shape)")
                }
                count = p
            }
            guard count == t.data.count else {
                throw SafetensorsError(file: file, tensor: name, message: "shape \(t.shape) does not hold its \(t.data.count) values")
            }
            offsets.append((position, position + 4 * count))
            position += 4 * count
        }

        var parts: [String] = []
        if !metadata.isEmpty {
            let kv = metadata.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
                .map { "\(jsonString($0.key)):\(jsonString($0.value))" }
            parts.append("\"__metadata__\":{\(kv.joined(separator: ","))}")
        }
        let headerOrder = tensors.indices.sorted { tensors[$0].0.utf8.lexicographicallyPrecedes(tensors[$1].0.utf8) }
        for i in headerOrder {
            let (name, t) = tensors[i]
            let shape = t.shape.map(String.init).joined(separator: ",")
            parts.append(
                "\(jsonString(name)):{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offsets[i].begin),\(offsets[i].end)]}")
        }
        var header = Array("{\(parts.joined(separator: ","))}".utf8)
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8))

        var out = Data(capacity: 8 + header.count + position)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: header)
        for (_, t) in tensors {
            #if _endian(little)
                t.data.withUnsafeBytes { out.append(contentsOf: $0) }
            #else
                for v in t.data { withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
            #endif
        }
        return out
    }
}

// MARK: - POSIX helpers

private func posixCreateExclusive(_ path: String) -> Int32 {
    open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
}

private func posixOpenDirectory(_ path: String) -> Int32 {
    open(path, O_RDONLY | O_CLOEXEC)
}

private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    #if canImport(Glibc)
        return Glibc.write(fd, p, n)
    #elseif canImport(Musl)
        return Musl.write(fd, p, n)
    #else
        return Darwin.write(fd, p, n)
    #endif
}

// MARK: - Decoding

/// Converts `n` little-endian elements of `dtype` from `raw` (exactly the tensor's bytes).
private func decode(_ dtype: SafetensorsDType, _ raw: UnsafeRawBufferPointer, _ n: Int, into out: UnsafeMutableBufferPointer<Float>) {
    switch dtype {
    case .f32:
        #if _endian(little)
            UnsafeMutableRawBufferPointer(out).copyMemory(from: raw)  // raw.count == 4 * n, validated
        #else
            for i in 0..<n { out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        #endif
    case .f16:
        for i in 0..<n { out[i] = floatFromHalf(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
    case .bf16:
        for i in 0..<n {
            out[i] = Float(bitPattern: UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16)
        }
    case .f64:
        for i in 0..<n {
            out[i] = Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
        }
    case .i64:
        for i in 0..<n { out[i] = Float(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))) }
    case .u64:
        for i in 0..<n { out[i] = Float(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))) }
    case .i32:
        for i in 0..<n { out[i] = Float(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
    case .u32:
        for i in 0..<n { out[i] = Float(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
    case .i16:
        for i in 0..<n { out[i] = Float(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))) }
    case .u16:
        for i in 0..<n { out[i] = Float(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
    case .i8:
        for i in 0..<n { out[i] = Float(Int8(bitPattern: raw[i])) }
    case .u8:
        for i in 0..<n { out[i] = Float(raw[i]) }
    case .bool:
        for i in 0..<n { out[i] = raw[i] == 0 ? 0 : 1 }
    case .f8e5m2, .f8e4m3, .f8e8m0, .c64, .f4, .f6e2m3, .f6e3m2:
        // Refused before decoding (see `isConvertibleToFloat32`).
        for i in 0..<n { out[i] = .nan }
    }
}

// MARK: - Header parsing

/// The safetensors header schema, read from the package's JSON scanner: key order kept, duplicate
/// keys refused, integers told apart from other numbers, nesting at most 64 deep, and every problem a
/// `SafetensorsError` naming the tensor or field.
private struct HeaderParser {
    struct RawEntry {
        var name: String
        var dtype: String
        var shape: [Int]
        var offsets: (Int, Int)
    }

    let bytes: [UInt8]
    let file: String
    static let maxDepth = 64

    init(bytes: [UInt8], file: String) {
        self.bytes = bytes
        self.file = file
    }

    func failure(_ tensor: String?, _ message: String) -> SafetensorsError {
        SafetensorsError(file: file, tensor: tensor, message: message)
    }

    func failure(_ message: String) -> SafetensorsError { failure(nil, message) }

    func parseHeader() throws -> (metadata: [String: String], entries: [RawEntry]) {
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) {
            throw failure("header is not valid JSON: it is empty")
        }
        let root: JSONNode
        do { root = try JSONScanner(maxDepth: Self.maxDepth).scan(bytes) } catch {
            switch error.reason {
            case .tooDeep(let limit): throw failure("header JSON is nested more than \(limit) levels deep")
            case .duplicateKey(let path, let key):
                if path.isEmpty {
                    throw failure(key, key == "__metadata__" ? "appears twice in the header" : "duplicate tensor name in the header")
                }
                if path == ["__metadata__"] { throw failure("__metadata__", "key \(quotedForMessage(key)) appears twice") }
                throw failure(path[0], path.count == 1 ? "field \(quotedForMessage(key)) appears twice" : error.message)
            case .loneSurrogate: throw failure("header is not valid JSON: unpaired surrogate in string at byte \(error.offset)")
            case .syntax(let expected, let found):
                throw failure("header is not valid JSON: expected \(expected) at byte \(error.offset), found \(found)")
            case .invalidUTF8: throw failure("header is not valid UTF-8 (byte \(error.offset))")
            }
        }
        guard let members = root.members else { throw failure("header must be a JSON object, found \(root.kind)") }
        var metadata: [String: String] = [:]
        var entries: [RawEntry] = []
        for m in members {
            if m.key == "__metadata__" {
                guard let pairs = m.value.members else {
                    throw failure("__metadata__", "must be an object of strings, found \(m.value.kind)")
                }
                for p in pairs {
                    guard let v = p.value.string else {
                        throw failure("__metadata__", "value of \(quotedForMessage(p.key)) must be a string, found \(p.value.kind)")
                    }
                    // Distinct byte strings may still be equal Strings (canonical equivalence).
                    guard metadata.updateValue(v, forKey: p.key) == nil else {
                        throw failure("__metadata__", "key \(quotedForMessage(p.key)) appears twice")
                    }
                }
            } else {
                entries.append(try parseEntry(m.key, m.value))
            }
        }
        var seen = Set<String>()
        for e in entries where !seen.insert(e.name).inserted {
            throw failure(e.name, "duplicate tensor name in the header")
        }
        return (metadata, entries)
    }

    func parseEntry(_ name: String, _ node: JSONNode) throws -> RawEntry {
        guard let fields = node.members else {
            throw failure(name, "entry must be an object with dtype, shape and data_offsets, found \(node.kind)")
        }
        var dtype: String?
        var shape: [Int]?
        var offsets: [Int]?
        for f in fields {
            switch f.key {
            case "dtype":
                guard let s = f.value.string else { throw failure(name, "field \"dtype\" must be a string, found \(f.value.kind)") }
                dtype = s
            case "shape": shape = try integers(f.value, name, field: "shape")
            case "data_offsets": offsets = try integers(f.value, name, field: "data_offsets")
            default: break  // unknown fields are ignored, as by the reference reader
            }
        }
        guard let dtype else { throw failure(name, "missing field \"dtype\"") }
        guard let shape else { throw failure(name, "missing field \"shape\"") }
        guard let offsets else { throw failure(name, "missing field \"data_offsets\"") }
        guard offsets.count == 2 else {
            throw failure(name, "field \"data_offsets\" must have 2 integers [begin, end], found \(offsets.count)")
        }
        return RawEntry(name: name, dtype: dtype, shape: shape, offsets: (offsets[0], offsets[1]))
    }

    /// An array of non-negative integers that fit in `Int` (`-0` counts as 0).
    func integers(_ node: JSONNode, _ name: String, field: String) throws -> [Int] {
        let what = "field \(quotedForMessage(field)) must be an array of non-negative integers"
        guard let items = node.array else { throw failure(name, "\(what), found \(node.kind)") }
        return try items.map { item in
            guard let text = item.numberLiteral else { throw failure(name, "\(what), found \(item.kind)") }
            let brief = item.brief
            if text.contains(where: { ".eE".contains($0) }) { throw failure(name, "\(what), found non-integer \(brief)") }
            if text.hasPrefix("-") && text != "-0" { throw failure(name, "\(what), found negative \(brief)") }
            guard let v = Int(text) else { throw failure(name, "\(what), found \(brief), which is too large") }
            return abs(v)
        }
    }
}

// MARK: - Text helpers

private func missingTensor(_ name: String, file: String, known: [String]) -> SafetensorsError {
    let list = known.prefix(12).map { quotedForMessage($0) }.joined(separator: ", ") + (known.count > 12 ? ", …" : "")
    return SafetensorsError(file: file, tensor: name, message: "no such tensor; the file has \(known.count): \(list)")
}
