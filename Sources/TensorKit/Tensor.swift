/// A dense, contiguous, row-major Float32 tensor.
///
/// Most of a transformer's work is on matrices (`[rows, cols]`), so the helpers here are 2-D;
/// `shape` may have any rank for storage (e.g. a bias is `[n]`).
public struct Tensor: Equatable, Sendable, CustomStringConvertible {
    public var shape: [Int]
    public var data: [Float]

    public init(shape: [Int], data: [Float]) {
        precondition(shape.reduce(1, *) == data.count, "shape \(shape) does not hold \(data.count) values")
        self.shape = shape
        self.data = data
    }

    public init(zeros shape: [Int]) {
        self.init(shape: shape, data: [Float](repeating: 0, count: shape.reduce(1, *)))
    }

    public init(repeating value: Float, shape: [Int]) {
        self.init(shape: shape, data: [Float](repeating: value, count: shape.reduce(1, *)))
    }

    /// A matrix from nested rows; every row must have the same length.
    public init(_ rows: [[Float]]) {
        let cols = rows.first?.count ?? 0
        precondition(rows.allSatisfy { $0.count == cols }, "ragged rows")
        self.init(shape: [rows.count, cols], data: rows.flatMap { $0 })
    }

    /// A vector `[n]`.
    public init(vector: [Float]) { self.init(shape: [vector.count], data: vector) }

    public var count: Int { data.count }
    /// Rows of the matrix view: the product of all but the last dimension.
    public var rows: Int { shape.count <= 1 ? 1 : shape.dropLast().reduce(1, *) }
    /// Columns of the matrix view: the last dimension.
    public var cols: Int { shape.last ?? 1 }

    public subscript(r: Int, c: Int) -> Float {
        get { data[r * cols + c] }
        set { data[r * cols + c] = newValue }
    }

    public func row(_ r: Int) -> [Float] { Array(data[(r * cols)..<((r + 1) * cols)]) }
    public var rowArrays: [[Float]] { (0..<rows).map(row) }

    /// The same values seen as a `[rows, cols]` matrix.
    public var asMatrix: Tensor { Tensor(shape: [rows, cols], data: data) }

    public var description: String { "Tensor\(shape)" }

    /// Largest absolute elementwise difference; `.infinity` if shapes differ or non-finite values disagree.
    public func maxAbsDifference(_ other: Tensor) -> Float {
        guard shape == other.shape else { return .infinity }
        var worst: Float = 0
        for (a, b) in zip(data, other.data) {
            if a == b { continue }  // covers equal infinities
            let d = abs(a - b)
            if d.isNaN { return .infinity }
            worst = max(worst, d)
        }
        return worst
    }
}
