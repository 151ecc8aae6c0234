/// A Python int of any size, as pickle stores it: little-endian two's complement bytes
/// (the LONG1/LONG4 payload, shortest form).
public struct PickleBigInt: Hashable, Sendable, CustomStringConvertible {
    public private(set) var littleEndianBytes: [UInt8]

    /// From a LONG1/LONG4 payload (trimmed to the shortest two's complement form).
    public init(littleEndianTwosComplement bytes: [UInt8]) {
        littleEndianBytes = PickleBigInt.trimmed(bytes)
    }

    /// From decimal text such as "-123456789012345678901234567890"; nil if it is not an integer.
    public init?(decimal text: String) {
        var digits = Substring(text)
        var negative = false
        if digits.first == "-" { negative = true; digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        // Magnitude as little-endian base-256 limbs: multiply by 10 and add each digit.
        var magnitude: [UInt8] = [0]
        for ch in digits.utf8 {
            var carry = UInt32(ch - UInt8(ascii: "0"))
            for i in magnitude.indices {
                let v = UInt32(magnitude[i]) * 10 + carry
                magnitude[i] = UInt8(v & 0xFF)
                carry = v >> 8
            }
            while carry > 0 { magnitude.append(UInt8(carry & 0xFF)); carry >>= 8 }
        }
        magnitude.append(0)  // room for the sign bit
        if negative {
            // Two's complement: invert and add one.
            var carry: UInt16 = 1
            for i in magnitude.indices {
                let v = UInt16(~magnitude[i]) + carry
                magnitude[i] = UInt8(v & 0xFF)
                carry = v >> 8
            }
        }
        littleEndianBytes = PickleBigInt.trimmed(magnitude)
    }

    /// The value as `Int`, if it fits.
    public var intValue: Int? {
        if littleEndianBytes.count > 8 { return nil }
        var value: UInt64 = 0
        for (i, b) in littleEndianBytes.enumerated() { value |= UInt64(b) << (8 * UInt64(i)) }
        let n = littleEndianBytes.count
        if n == 0 { return 0 }
        if n < 8, littleEndianBytes[n - 1] & 0x80 != 0 { value |= ~0 << (8 * UInt64(n)) }  // sign-extend
        return Int(bitPattern: UInt(value))
    }

    public var isNegative: Bool { (littleEndianBytes.last ?? 0) & 0x80 != 0 }

    /// Decimal text, as Python prints the int.
    public var description: String {
        var magnitude = littleEndianBytes
        let negative = isNegative
        if negative {
            var carry: UInt16 = 1
            for i in magnitude.indices {
                let v = UInt16(~magnitude[i]) + carry
                magnitude[i] = UInt8(v & 0xFF)
                carry = v >> 8
            }
        }
        var digits: [UInt8] = []
        while magnitude.contains(where: { $0 != 0 }) {
            var remainder: UInt32 = 0
            for i in magnitude.indices.reversed() {
                let v = remainder << 8 | UInt32(magnitude[i])
                magnitude[i] = UInt8(v / 10)
                remainder = v % 10
            }
            digits.append(UInt8(remainder) + UInt8(ascii: "0"))
        }
        if digits.isEmpty { digits = [UInt8(ascii: "0")] }
        return (negative ? "-" : "") + String(decoding: digits.reversed(), as: UTF8.self)
    }

    /// Drops redundant sign bytes, like Python's `encode_long`; zero is no bytes at all.
    static func trimmed(_ bytes: [UInt8]) -> [UInt8] {
        var b = bytes
        while let last = b.last {
            let previousHigh = b.count >= 2 ? b[b.count - 2] & 0x80 : (last == 0 ? 0 : 0xFF)
            if last == 0x00 && previousHigh == 0 { b.removeLast() }
            else if last == 0xFF && b.count >= 2 && previousHigh != 0 { b.removeLast() }
            else { break }
        }
        return b
    }

    /// The LONG1/LONG4 payload for an `Int` (Python's `encode_long`).
    static func encode(_ value: Int) -> [UInt8] {
        if value == 0 { return [] }
        var bytes = withUnsafeBytes(of: value.littleEndian) { Array($0) }
        bytes = trimmed(bytes)
        return bytes
    }
}
