/// SplitMix64 (Steele, Lea and Flood, 2014): a seeded 64-bit generator whose numbers are the same
/// on every platform. The dropout masks hash with its finaliser; weight initialisation and the
/// benchmarks draw from it.
public struct SplitMix64 {
    /// The golden-ratio increment added to the state before every draw (a computed constant, so
    /// that other modules fold it into their hot loops instead of calling a global accessor).
    @inlinable public static var increment: UInt64 { 0x9E37_79B9_7F4A_7C15 }
    /// The generator's whole state (the seed before the first draw).
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    @inlinable @inline(__always) public mutating func next() -> UInt64 {
        state &+= Self.increment
        return Self.finalize(state)
    }

    /// A uniform double in (0, 1) from 53 random bits (never 0, so its logarithm is finite).
    @inlinable public mutating func nextUnitInterval() -> Double {
        (Double(next() >> 11) + 0.5) / 9_007_199_254_740_992
    }

    /// The finaliser alone: a bijective avalanche mix of one 64-bit value.
    @inlinable @inline(__always) public static func finalize(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
