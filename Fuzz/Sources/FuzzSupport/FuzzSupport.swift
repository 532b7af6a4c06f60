import CFuzzerDriver
import Foundation

/// A property the input broke: print it and abort, which libFuzzer records as a crash.
public func require(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
    file: StaticString = #fileID, line: UInt = #line
) {
    if !condition() {
        FileHandle.standardError.write(Data("fuzz property failed at \(file):\(line): \(message())\n".utf8))
        abort()
    }
}

/// The repository's root (fixtures are read from Tests/…/Fixtures at start-up).
public let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

public func fixture(_ path: String) -> Data {
    let url = repositoryRoot.appendingPathComponent(path)
    guard let d = FileManager.default.contents(atPath: url.path) else {
        FileHandle.standardError.write(Data("cannot read the fixture \(url.path)\n".utf8))
        exit(2)
    }
    return d
}

/// The fuzz input as `Data` (copied: the fuzzer owns the buffer; an empty input may come as nil).
@inlinable public func bytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Data {
    guard let data else { return Data() }
    return Data(bytes: data, count: size)
}

/// The input split at its first byte: a selector, and the rest.
public func selector(_ d: Data) -> (UInt8, Data) {
    guard let first = d.first else { return (0, Data()) }
    return (first, d.dropFirst())
}

/// Bit-exact Float comparison (NaN payloads included).
public func sameBits(_ a: [Float], _ b: [Float]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
}

/// A C `argv`.
public typealias Arguments = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>

/// Runs libFuzzer's driver (its command line: corpus folders, -max_total_time=, -runs=, …) on `test`.
public func runFuzzer(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>,
    _ test: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt {
    var argc = argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&argc, &argv, test)
}
