import Foundation

/// The processes that train one model together, and the few collective operations data-parallel
/// training needs. Every process calls the same collectives in the same order; each call returns
/// when every process has made it.
///
/// Three implementations: `SingleProcess` (one process, every collective a no-op), `MPIGroup` (the
/// system MPI; only in builds with the `MPI` trait) and `LocalGroup` (ranks as threads of one
/// process, so the data-parallel trainer is tested by `swift test` without MPI).
public protocol ProcessGroup: AnyObject, Sendable {
    /// This process's index, 0..<size. Rank 0 logs and writes checkpoints.
    var rank: Int { get }
    var size: Int { get }
    /// Replaces `buffer` on every rank by the element-wise sum over the ranks.
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws
    func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) throws
    /// Copies `count` bytes from rank `root`'s buffer into every other rank's.
    func broadcast(_ bytes: UnsafeMutableRawPointer, count: Int, root: Int) throws
    func barrier() throws
    /// Ends every process of the group at once (after an error on one of them, so the others do not
    /// wait forever in a collective). Returns only for `LocalGroup`, which cannot end its threads.
    func abort(code: Int32)
}

/// A failed collective or start-up (the message says which call and why).
public struct DataParallelError: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension ProcessGroup {
    /// Broadcasts a whole flat Float buffer from `root`.
    public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int = 0) throws {
        try broadcast(UnsafeMutableRawPointer(buffer), count: count * MemoryLayout<Float>.stride, root: root)
    }
}

/// One process: rank 0 of 1; the collectives have nothing to do.
public final class SingleProcess: ProcessGroup {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {}
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {}
    public func broadcast(_ bytes: UnsafeMutableRawPointer, count: Int, root: Int) {}
    public func barrier() {}
    public func abort(code: Int32) { exit(code) }
}

public enum DataParallel {
    /// Whether this build links MPI (the `MPI` trait).
    public static var hasMPI: Bool {
        #if MPI
            return true
        #else
            return false
        #endif
    }

    /// The number of processes a launcher (mpirun, srun, hydra) started, from its environment, or nil
    /// when this process was started on its own.
    public static var launcherWorldSize: Int? {
        let env = ProcessInfo.processInfo.environment
        for key in ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"] {
            if let v = env[key], let n = Int(v) { return n }
        }
        return nil
    }

    /// The group this process belongs to: MPI's world when built with the `MPI` trait and started by
    /// a launcher, else a single process.
    /// - Throws: when a launcher started several processes but this build has no MPI (each would
    ///   train alone and overwrite the others' checkpoints), or when MPI fails to start.
    public static func start() throws -> any ProcessGroup {
        #if MPI
            if launcherWorldSize != nil { return try MPIGroup.start() }
            return SingleProcess()
        #else
            if let launched = launcherWorldSize, launched > 1 {
                throw DataParallelError(
                    """
                    started as one of \(launched) processes (mpirun?), but this build has no MPI: build with `swift build -c \
                    release --traits MPI` (README, \"Data-parallel training over MPI\")
                    """
                )
            }
            return SingleProcess()
        #endif
    }
}

/// FNV-1a, 64 bits: a checksum that is the same in every process (Swift's `Hasher` is seeded per
/// process), for checking that all ranks have the same options, data and weights.
public struct Fingerprint: Sendable, Equatable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    public init() {}
    /// Eight bytes at a time (FNV-1a's step on 64-bit words), then the tail byte by byte.
    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        var h = value ^ UInt64(bytes.count)
        let words = bytes.count / 8
        for i in 0..<words { h = (h ^ bytes.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) &* 0x100_0000_01b3 }
        for i in (words * 8)..<bytes.count { h = (h ^ UInt64(bytes[i])) &* 0x100_0000_01b3 }
        value = h
    }
    public mutating func add(_ s: String) { var s = s; s.withUTF8 { add(UnsafeRawBufferPointer($0)) } }
    public mutating func add<T: BitwiseCopyable>(_ values: [T]) { values.withUnsafeBytes { add($0) } }
    public mutating func add(_ pointer: UnsafePointer<Float>, count: Int) {
        add(UnsafeRawBufferPointer(start: pointer, count: count * MemoryLayout<Float>.stride))
    }
}
