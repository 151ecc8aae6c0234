/// The text of a pickled str as Python reads it back, shared by every pickle decoder.
///
/// CPython's unpickler decodes BINUNICODE and its short/long forms as UTF-8 with the
/// "surrogatepass" error handler: anything ill-formed is an error (UnicodeDecodeError), except
/// the 3-byte form of a lone surrogate U+D800...U+DFFF, which CPython's pickler writes for a str
/// that holds one (`create-dataset` writes the same bytes for a JSON `"\ud800"` escape). Python
/// reads such a str back; so do we. A Swift String cannot hold a lone surrogate, so each one becomes
/// one U+FFFD: the same number of characters as Python's str, and the same tokens, because the
/// BERT tokenizer drops both (a surrogate is category Cs, a control character to `_is_control`;
/// U+FFFD is dropped by name). The zero-copy view never points at such bytes: the decoders hand
/// a sample with a surrogate to the path that makes a String (and a view over its own copy).
enum PickleString {
    /// The str in `count` bytes at `base`, or nil when Python would refuse them
    /// (`UTF8Validation.firstInvalidOffset(_:count:allowingSurrogates: true)` says where).
    static func decode(_ base: UnsafePointer<UInt8>, count: Int) -> String? {
        let bytes = UnsafeBufferPointer(start: base, count: count)
        if UTF8Validation.isValid(base, count: count) { return String(decoding: bytes, as: UTF8.self) }
        guard UTF8Validation.firstInvalidOffset(base, count: count, allowingSurrogates: true) == nil else { return nil }
        // Valid but for surrogates, so an ED byte always leads a 3-byte sequence: ED A0...BF xx is a
        // surrogate, rewritten in place as EF BF BD (U+FFFD, also 3 bytes).
        var repaired = Array(bytes)
        var i = 0
        while i + 2 < count {
            if repaired[i] == 0xED && repaired[i + 1] >= 0xA0 {
                repaired[i] = 0xEF
                repaired[i + 1] = 0xBF
                repaired[i + 2] = 0xBD
                i += 3
            } else {
                i += 1
            }
        }
        return String(decoding: repaired, as: UTF8.self)
    }

    static func decode(_ bytes: [UInt8]) -> String? {
        bytes.withUnsafeBufferPointer { b in
            guard let base = b.baseAddress else { return "" }
            return decode(base, count: b.count)
        }
    }
}
