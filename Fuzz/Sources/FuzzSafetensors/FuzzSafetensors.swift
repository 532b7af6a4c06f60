import Foundation
import FuzzSupport
import ModelFiles

// safetensors: arbitrary bytes as a file. Refusal (a thrown SafetensorsError) is fine. A file that
// opens must have every tensor's bytes inside the file, sized for its shape and dtype; one that
// loads must write back and read back to the same tensors (bit for bit).
@_cdecl("FuzzSafetensors_main") public func fuzzMain(_ argc: CInt, _ argv: Arguments) -> CInt { runFuzzer(argc, argv, fuzz) }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let d = bytes(data, size)
    guard let archive = try? Safetensors.open(data: d, name: "fuzz") else { return 0 }
    let headerLength = Int(d.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self).littleEndian })
    for e in archive.entries {
        require(
            e.dataOffsets.lowerBound >= 0 && 8 + headerLength + e.dataOffsets.upperBound <= d.count,
            "\(e.name): bytes \(e.dataOffsets) lie outside the \(d.count)-byte file")
        require(
            e.shape.allSatisfy { $0 >= 0 } && e.shape.reduce(1, *) == e.elementCount,
            "\(e.name): shape \(e.shape) vs \(e.elementCount) elements")
        require(
            (e.elementCount * e.dtype.bitSize + 7) / 8 == e.dataOffsets.count,
            "\(e.name): \(e.dataOffsets.count) bytes for \(e.elementCount) × \(e.dtype)")
        require(archive.entry(e.name) == e, "\(e.name): lookup by name differs")
    }
    guard let file = try? archive.load() else { return 0 }
    for t in file.tensors { require(t.values.count == t.shape.reduce(1, *), "\(t.name): value count") }
    let again: SafetensorsFile
    do {
        let written = try Safetensors.serialize(file.tensors.map { ($0.name, $0.values) }, metadata: file.metadata)
        again = try Safetensors.read(data: written, name: "rewritten")
    } catch {
        require(false, "a loaded file does not write back: \(error)")
        return 0
    }
    require(again.metadata == file.metadata, "metadata differs after a round trip")
    require(again.names == file.names, "names differ after a round trip")
    for (a, b) in zip(again.tensors, file.tensors) {
        require(a.shape == b.shape && sameBits(a.values.data, b.values.data), "\(a.name): values differ after a round trip")
    }
    return 0
}
