/// A port of CPython's `random.Random` (MT19937), bit-exact for the calls SR-DPR makes:
/// seeding from an integer, `getrandbits`, `_randbelow`, `shuffle` and `random()` (SPEC §3).
public struct PythonRandom: Codable, Equatable, Sendable {
    private static let n = 624
    private static let m = 397

    /// The 624-word Mersenne Twister state and the position in it; Codable so a generator can be checkpointed.
    private var state: [UInt32]
    private var index: Int

    /// `random.Random(seed)`: init_by_array over the 32-bit words of |seed|, least significant first.
    public init(seed: Int) {
        state = [UInt32](repeating: 0, count: Self.n)
        index = Self.n
        self.seed(seed)
    }

    /// `random.seed(seed)` for an integer seed.
    public mutating func seed(_ seed: Int) {
        var magnitude = seed.magnitude
        var key: [UInt32] = []
        repeat {
            key.append(UInt32(truncatingIfNeeded: magnitude))
            magnitude >>= 32
        } while magnitude != 0
        initByArray(key)
    }

    private mutating func initGenrand(_ s: UInt32) {
        state[0] = s
        for i in 1..<Self.n {
            state[i] = 1812433253 &* (state[i - 1] ^ (state[i - 1] >> 30)) &+ UInt32(i)
        }
        index = Self.n
    }

    private mutating func initByArray(_ key: [UInt32]) {
        initGenrand(19650218)
        var i = 1, j = 0
        for _ in 0..<max(Self.n, key.count) {
            state[i] = (state[i] ^ ((state[i - 1] ^ (state[i - 1] >> 30)) &* 1664525)) &+ key[j] &+ UInt32(j)
            i += 1; j += 1
            if i >= Self.n { state[0] = state[Self.n - 1]; i = 1 }
            if j >= key.count { j = 0 }
        }
        for _ in 0..<(Self.n - 1) {
            state[i] = (state[i] ^ ((state[i - 1] ^ (state[i - 1] >> 30)) &* 1566083941)) &- UInt32(i)
            i += 1
            if i >= Self.n { state[0] = state[Self.n - 1]; i = 1 }
        }
        state[0] = 0x8000_0000
    }

    private mutating func twist() {
        let upper: UInt32 = 0x8000_0000, lower: UInt32 = 0x7fff_ffff
        for k in 0..<Self.n {
            let y = (state[k] & upper) | (state[(k + 1) % Self.n] & lower)
            var v = state[(k + Self.m) % Self.n] ^ (y >> 1)
            if y & 1 != 0 { v ^= 0x9908_b0df }
            state[k] = v
        }
        index = 0
    }

    /// One tempered 32-bit output (`genrand_uint32`).
    public mutating func nextUInt32() -> UInt32 {
        if index >= Self.n { twist() }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9d2c_5680
        y ^= (y << 15) & 0xefc6_0000
        y ^= y >> 18
        return y
    }

    /// `getrandbits(k)` for 0 <= k <= 64: 32-bit words least significant first, the last one shifted.
    public mutating func getrandbits(_ k: Int) -> UInt64 {
        precondition(k >= 0 && k <= 64, "getrandbits supports 0...64 bits")
        if k == 0 { return 0 }
        if k <= 32 { return UInt64(nextUInt32() >> (32 - UInt32(k))) }
        let low = UInt64(nextUInt32())
        let high = UInt64(nextUInt32() >> (64 - UInt32(k)))
        return low | (high << 32)
    }

    /// `_randbelow(n)`: rejection sampling with getrandbits(bit_length(n)); 0 for n <= 0.
    public mutating func randbelow(_ n: Int) -> Int {
        if n <= 0 { return 0 }
        let k = Int.bitWidth - n.leadingZeroBitCount
        var r = getrandbits(k)
        while r >= UInt64(n) { r = getrandbits(k) }
        return Int(r)
    }

    /// `random()`: a double in [0, 1) with 53 random bits.
    public mutating func random() -> Double {
        let a = Double(nextUInt32() >> 5), b = Double(nextUInt32() >> 6)
        return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0)
    }

    /// `shuffle(x)`: Fisher-Yates from the end, j = _randbelow(i + 1).
    public mutating func shuffle<T>(_ array: inout [T]) {
        var i = array.count - 1
        while i >= 1 {
            let j = randbelow(i + 1)
            array.swapAt(i, j)
            i -= 1
        }
    }
}
