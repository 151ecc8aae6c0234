/// How the payloads of an all-reduce travel (`allreduce_dtype`): `fp32` as they are, or `bf16`,
/// the top 16 bits of each float (8 exponent bits, 7 mantissa bits), which halves the bytes on
/// the wire. Sums are always kept in fp32; only what is sent is rounded.
public enum AllReduceWireType: String, Sendable, CaseIterable, CustomStringConvertible {
    case fp32
    case bf16

    /// Bytes of one element on the wire.
    public var bytesPerElement: Int { self == .bf16 ? 2 : 4 }
    public var description: String { rawValue }
}

/// bfloat16 conversion, bit for bit as PyTorch's `tensor.to(torch.bfloat16)` (c10's
/// `round_to_nearest_even`): round to nearest, ties to even; every NaN becomes the quiet NaN
/// 0x7FC0; infinities stay infinities, finite values past the largest bfloat16 round to them;
/// subnormals are rounded like any other value (not flushed to zero).
public enum BFloat16 {
    /// The bfloat16 bits of `value`.
    @inline(__always)
    public static func bits(_ value: Float) -> UInt16 {
        if value.isNaN { return 0x7FC0 }
        let word = value.bitPattern
        // Adding 0x7FFF carries into bit 16 when the dropped half is above 0x8000; at exactly
        // 0x8000 the kept lowest bit decides, so a tie goes to the even neighbour.
        let rounded = word &+ 0x7FFF &+ ((word >> 16) & 1)
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }

    /// The float a bfloat16 stands for (exact: bfloat16 is a truncated float).
    @inline(__always)
    public static func float(_ bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    /// `value` rounded to the nearest bfloat16, as a float.
    @inline(__always)
    public static func rounded(_ value: Float) -> Float { float(bits(value)) }

    /// Writes the bfloat16 bits of `count` floats to `destination` (which need not be aligned).
    static func encode(_ source: UnsafePointer<Float>, count: Int, into destination: UnsafeMutableRawPointer) {
        for i in 0..<count {
            destination.storeBytes(of: bits(source[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self)
        }
    }

    /// `destination[i] += float(source[i])` for `count` little-endian bfloat16 values.
    static func accumulate(into destination: UnsafeMutablePointer<Float>, from source: UnsafeRawPointer, count: Int) {
        for i in 0..<count {
            destination[i] += float(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
        }
    }

    /// `destination[i] = float(source[i])` for `count` little-endian bfloat16 values.
    static func decode(_ source: UnsafeRawPointer, count: Int, into destination: UnsafeMutablePointer<Float>) {
        for i in 0..<count {
            destination[i] = float(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
        }
    }

    /// Rounds `count` floats to bfloat16 precision in place.
    static func round(_ values: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { values[i] = rounded(values[i]) }
    }
}
