/// A small, seeded, platform-independent random number generator (SplitMix64).
///
/// Integer arithmetic only, and floats made from the top 24 bits, so the same seed gives the
/// same weights on every machine and every compiler — Swift's `SystemRandomNumberGenerator`
/// cannot be seeded, and libm differences would make Box–Muller normals differ in the last bit.
public struct SeededRNG: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1), exactly representable.
    public mutating func nextUnit() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// Uniform in [low, high).
    public mutating func uniform(_ low: Float, _ high: Float) -> Float { low + (high - low) * nextUnit() }

    /// A tensor of uniform values in [low, high).
    public mutating func uniform(shape: [Int], low: Float, high: Float) -> Tensor {
        let n = shape.reduce(1, *)
        var data = [Float](repeating: 0, count: n)
        for i in 0..<n { data[i] = uniform(low, high) }
        return Tensor(shape: shape, data: data)
    }

    /// Glorot/Xavier uniform for a `[fanIn, fanOut]` weight: U(-a, a), a = sqrt(6 / (fanIn + fanOut)),
    /// the initialisation PyTorch's `nn.Transformer` uses.
    public mutating func xavierUniform(fanIn: Int, fanOut: Int) -> Tensor {
        let a = (6 / Float(fanIn + fanOut)).squareRoot()
        return uniform(shape: [fanIn, fanOut], low: -a, high: a)
    }

    /// Uniform in [0, n).
    public mutating func nextInt(below n: Int) -> Int { Int(next() % UInt64(n)) }
}
