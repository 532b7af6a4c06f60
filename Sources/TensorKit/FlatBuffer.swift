/// One contiguous, zero-initialised Float allocation that lives as long as its owner.
///
/// Parameters, gradients, optimizer moments and activations each live in one of these, sized once,
/// so a training step allocates nothing and the optimizer and checkpointing are single loops.
public final class FlatBuffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    public init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { pointer.deallocate() }

    public func zero() { pointer.update(repeating: 0, count: count) }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }

    public subscript(i: Int) -> Float {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }

    public func copy(from other: FlatBuffer) {
        precondition(other.count == count)
        pointer.update(from: other.pointer, count: count)
    }
}

/// Where each named tensor sits in a flat buffer.
public struct BufferLayout: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var shape: [Int]
        public var offset: Int
        public var count: Int { shape.reduce(1, *) }
    }
    public private(set) var entries: [Entry] = []
    public private(set) var total = 0
    private var index: [String: Int] = [:]

    public init(_ shapes: [(String, [Int])]) {
        for (name, shape) in shapes {
            index[name] = entries.count
            entries.append(Entry(name: name, shape: shape, offset: total))
            total += shape.reduce(1, *)
        }
    }

    public func entry(_ name: String) -> Entry? { index[name].map { entries[$0] } }

    public func offset(_ name: String) -> Int {
        guard let i = index[name] else { preconditionFailure("no tensor named \(name) in the layout") }
        return entries[i].offset
    }
}
