/// Strict UTF-8 validation without creating a String (Unicode Table 3-7: no overlong forms,
/// no surrogates, nothing above U+10FFFF). ASCII runs are checked eight bytes at a time.
enum UTF8Validation {
    /// The offset of the first byte of the first ill-formed sequence, or nil when all is valid.
    static func firstInvalidOffset(_ base: UnsafePointer<UInt8>, count: Int) -> Int? {
        var i = 0
        while i < count {
            // Fast path: ASCII, 32 then 8 bytes at once.
            while i + 32 <= count {
                let raw = UnsafeRawPointer(base + i)
                let word = raw.loadUnaligned(as: UInt64.self) | raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
                    | raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self) | raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
                if word & 0x8080_8080_8080_8080 != 0 { break }
                i += 32
            }
            while i + 8 <= count {
                let word = UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self)
                if word & 0x8080_8080_8080_8080 != 0 { break }
                i += 8
            }
            guard i < count else { return nil }
            let b0 = base[i]
            if b0 < 0x80 { i += 1; continue }
            let length: Int
            var low: UInt8 = 0x80, high: UInt8 = 0xBF  // allowed range of the second byte
            switch b0 {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; low = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; high = 0x9F  // no surrogates
            case 0xF0: length = 4; low = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; high = 0x8F
            default: return i
            }
            guard i + length <= count else { return i }
            let b1 = base[i + 1]
            guard b1 >= low && b1 <= high else { return i }
            if length > 2 {
                guard base[i + 2] & 0xC0 == 0x80 else { return i }
                if length > 3 { guard base[i + 3] & 0xC0 == 0x80 else { return i } }
            }
            i += length
        }
        return nil
    }

    static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return true }
        return firstInvalidOffset(base.assumingMemoryBound(to: UInt8.self), count: bytes.count) == nil
    }
}
