import Foundation

/// A tensor read from a weight file, converted to Float32.
public struct LoadedTensor {
    public var shape: [Int]
    public var floats: [Float]
}

/// Little-endian element decoding of raw storages (PyTorch checkpoints).
enum TensorDecoding {
    static func elementSize(_ dtype: String) -> Int? {
        switch dtype {
        case "F64", "I64", "U64": return 8
        case "F32", "I32", "U32": return 4
        case "F16", "BF16", "I16", "U16": return 2
        case "I8", "U8", "BOOL": return 1
        default: return nil
        }
    }

    static func decode(_ raw: UnsafeRawBufferPointer, at start: Int, count: Int, dtype: String,
                       file: String, name: String) throws -> [Float] {
        var out = [Float](repeating: 0, count: count)
        switch dtype {
        case "F32":
            out.withUnsafeMutableBytes { dst in
                dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[start..<(start + 4 * count)]))
            }
        case "F64":
            for i in 0..<count { out[i] = Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: start + 8 * i, as: UInt64.self)))) }
        case "F16":
            for i in 0..<count {
                #if arch(arm64)
                out[i] = Float(Float16(bitPattern: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: start + 2 * i, as: UInt16.self))))
                #else
                out[i] = halfToFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: start + 2 * i, as: UInt16.self)))
                #endif
            }
        case "BF16":
            for i in 0..<count {
                let b = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: start + 2 * i, as: UInt16.self))
                out[i] = Float(bitPattern: UInt32(b) << 16)
            }
        default:
            throw ModelError.unsupportedDType(file: file, name: name, dtype: dtype)
        }
        return out
    }

    static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exponent = Int((h >> 10) & 0x1f)
        let mantissa = UInt32(h & 0x3ff)
        if exponent == 0 {
            return (sign != 0 ? -1 : 1) * Float(mantissa) * Float(pow(2.0, -24.0))
        }
        if exponent == 31 { return Float(bitPattern: sign | 0x7f80_0000 | (mantissa << 13)) }
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
    }
}
