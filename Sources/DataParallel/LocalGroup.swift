import Foundation

/// `size` ranks as threads of one process: each thread takes `member(rank)` and calls the same
/// collectives as MPI ranks would. Sums add the ranks' values in rank order, like a reduction on one
/// machine. It exists so that `swift test` runs the data-parallel trainer without MPI.
public final class LocalGroup: @unchecked Sendable {
    public let size: Int
    private let condition = NSCondition()
    // Guarded by `condition`:
    private var arrived = 0
    private var generation = 0
    private var slots: [UInt]
    private var abortedBy: Int?

    public init(size: Int) {
        precondition(size >= 1)
        self.size = size
        slots = Array(repeating: 0, count: size)
    }

    public func member(_ rank: Int) -> any ProcessGroup { Member(group: self, rank: rank) }

    /// Waits until every rank has deposited its buffer; the last to arrive runs `combine` on all of
    /// them (the others are blocked meanwhile), then all return.
    fileprivate func exchange(rank: Int, _ pointer: UnsafeMutableRawPointer, _ combine: ([UnsafeMutableRawPointer]) -> Void) throws {
        condition.lock()
        defer { condition.unlock() }
        if let r = abortedBy { throw DataParallelError("rank \(r) stopped the group") }
        slots[rank] = UInt(bitPattern: pointer)
        arrived += 1
        let gen = generation
        if arrived == size {
            combine(slots.map { UnsafeMutableRawPointer(bitPattern: $0)! })
            arrived = 0
            generation += 1
            condition.broadcast()
        } else {
            while generation == gen && abortedBy == nil { condition.wait() }
            if generation == gen, let r = abortedBy { throw DataParallelError("rank \(r) stopped the group") }
        }
    }

    fileprivate func abort(rank: Int) {
        condition.lock()
        if abortedBy == nil { abortedBy = rank }
        condition.broadcast()
        condition.unlock()
    }

    private final class Member: ProcessGroup, @unchecked Sendable {
        let group: LocalGroup
        let rank: Int
        init(group: LocalGroup, rank: Int) { self.group = group; self.rank = rank }
        var size: Int { group.size }

        func sum<T: FloatingPoint>(_ buffer: UnsafeMutablePointer<T>, count: Int) throws {
            try group.exchange(rank: rank, UnsafeMutableRawPointer(buffer)) { all in
                let ps = all.map { $0.assumingMemoryBound(to: T.self) }
                for i in 0..<count {
                    var s = ps[0][i]
                    for p in ps.dropFirst() { s += p[i] }
                    for p in ps { p[i] = s }
                }
            }
        }
        func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws { try sum(buffer, count: count) }
        func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) throws { try sum(buffer, count: count) }
        func broadcast(_ bytes: UnsafeMutableRawPointer, count: Int, root: Int) throws {
            try group.exchange(rank: rank, bytes) { all in
                for (r, p) in all.enumerated() where r != root { p.copyMemory(from: all[root], byteCount: count) }
            }
        }
        func barrier() throws { try group.exchange(rank: rank, UnsafeMutableRawPointer(bitPattern: 1)!) { _ in } }
        func abort(code: Int32) { group.abort(rank: rank) }
    }
}
