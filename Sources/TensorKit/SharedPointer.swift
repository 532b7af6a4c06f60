/// A pointer handed to the worker threads of `parallelRanges` / `parallelFor`.
///
/// Raw pointers are not `Sendable`: the compiler cannot know who else writes through them. A kernel
/// that wraps one promises that its parts read shared inputs and write disjoint parts of the output,
/// which is what makes sharing the address safe. One wrapper, instead of each kernel turning its
/// pointers into integers (`UInt(bitPattern:)`) and back inside the closure.
@frozen public struct SharedPointer<Pointee>: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Pointee>

    @inlinable public init(_ pointer: UnsafeMutablePointer<Pointee>) { self.pointer = pointer }
    /// A read-only pointer; `readOnly` gives it back as such.
    @inlinable public init(_ pointer: UnsafePointer<Pointee>) { self.pointer = UnsafeMutablePointer(mutating: pointer) }

    @inlinable public var readOnly: UnsafePointer<Pointee> { UnsafePointer(pointer) }
}
