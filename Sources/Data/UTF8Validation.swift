/// Strict UTF-8 validation without creating a String (Unicode Table 3-7: no overlong forms,
/// no surrogates, nothing above U+10FFFF). ASCII runs are checked eight bytes at a time.
enum UTF8Validation {
    /// The offset of the first byte of the first ill-formed sequence, or nil when all is valid.
    /// `allowingSurrogates` also takes the 3-byte forms of U+D800...U+DFFF (ED A0 80...ED BF BF),
    /// as CPython's "surrogatepass" error handler does.
    static func firstInvalidOffset(_ base: UnsafePointer<UInt8>, count: Int, allowingSurrogates: Bool = false) -> Int? {
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
            case 0xED: length = 3; if !allowingSurrogates { high = 0x9F }  // surrogates above 9F
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
        return isValid(base.assumingMemoryBound(to: UInt8.self), count: bytes.count)
    }

    /// Whether `count` bytes at `base` are valid UTF-8 (equal to `firstInvalidOffset == nil`).
    ///
    /// Most text is ASCII, so this first ORs the bytes together 64 at a time, with overlapping
    /// loads for the tail instead of a byte loop: few branches, and the only one that depends on
    /// the length is the loop's exit. The first chunk with a high bit goes to the full check;
    /// every byte before it is ASCII, so the chunk starts on a character boundary.
    @inline(__always)
    static func isValid(_ base: UnsafePointer<UInt8>, count: Int) -> Bool {
        let raw = UnsafeRawPointer(base)
        @inline(__always) func word(_ offset: Int) -> UInt64 { raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self) }
        let high: UInt64 = 0x8080_8080_8080_8080
        if count >= 32 {
            var i = 0
            while i &+ 128 <= count {
                var w: UInt64 = 0
                for k in stride(from: 0, to: 128, by: 8) { w |= word(i &+ k) }
                if w & high != 0 { break }
                i &+= 128
            }
            while i &+ 64 <= count {
                let w = word(i) | word(i &+ 8) | word(i &+ 16) | word(i &+ 24)
                    | word(i &+ 32) | word(i &+ 40) | word(i &+ 48) | word(i &+ 56)
                if w & high != 0 { return firstInvalidOffset(base + i, count: count &- i) == nil }
                i &+= 64
            }
            // The rest (under 64 bytes): the last 32, which may overlap what is checked, and the
            // 32 from `i` when the rest is longer.
            let tail = count &- 32
            var w = word(tail) | word(tail &+ 8) | word(tail &+ 16) | word(tail &+ 24)
            if count &- i > 32 { w |= word(i) | word(i &+ 8) | word(i &+ 16) | word(i &+ 24) }
            return w & high == 0 || firstInvalidOffset(base + i, count: count &- i) == nil
        }
        let w: UInt64
        if count >= 8 {
            var v = word(0) | word(count &- 8)
            if count > 16 { v |= word(8) | word(count &- 16) }
            w = v
        } else if count >= 4 {
            w = UInt64(raw.loadUnaligned(as: UInt32.self) | raw.loadUnaligned(fromByteOffset: count &- 4, as: UInt32.self))
        } else {
            var v: UInt8 = 0
            for k in 0..<count { v |= base[k] }
            w = UInt64(v)
        }
        return w & high == 0 || firstInvalidOffset(base, count: count) == nil
    }
}
