/// The read fast path: one forward pass over a sample pickled in the exact layout CPython's
/// pickler (protocols 2–5) and `PickleWriter` give a sample dict,
///
///     EMPTY_DICT memo MARK
///         "sample_id" int
///         "questions" [text, ...]
///         "positive_contexts" [passage, ...]
///         "hardneg_contexts" [passage, ...]
///     SETITEMS STOP
///
/// where a list is EMPTY_LIST memo and then batches (MARK items APPENDS, or one item APPEND), a
/// passage is EMPTY_DICT memo MARK "title" text "text" text SETITEMS, a text is a str (memo), a
/// BINGET of a memoized str, or a list of ints, an int is BININT/BININT1/BININT2/LONG1, and PROTO
/// or FRAME may come between any two opcodes.
///
/// Each str is checked to be UTF-8 where it lies, so the sample's bytes are read once, in file
/// order, with no stack, memo of values or container tree in between (the general decoder,
/// `PickleSampleDecoder.fillView`, builds those and walks them afterwards). Anything else
/// (another layout, code-running opcodes, truncation, invalid UTF-8) makes `fill` return false
/// and the caller runs the general decoder, which decides and names the error: this path accepts
/// only pickles the general decoder accepts, and gives the same view for them.
struct PickleSampleScanner {
    // The pickle being read: `p` is the next opcode; nothing at or past `end` is ever loaded.
    private var base = PickleSampleScanner.nowhere
    private var p = PickleSampleScanner.nowhere
    private var end = PickleSampleScanner.nowhere
    /// Per memo index: the str it holds, or `count == -1` for a list, dict or int.
    private var memo = ScratchBuffer<MemoEntry>(capacity: 64)
    private var fields = ScratchBuffer<SampleView.FieldRange>(capacity: 32)
    private var tokens = ScratchBuffer<Int>(capacity: 64)

    /// What the pointers hold before the first `fill` (never read through): one byte, for all scanners.
    private static let nowhere = UnsafePointer<UInt8>(UnsafeMutablePointer<UInt8>.allocate(capacity: 1))

    /// A str as a byte range from `base`.
    private struct MemoEntry {
        var start: Int
        var count: Int
        static let notAString = MemoEntry(start: 0, count: -1)
    }

    /// The opcodes of the layout (pickletools names).
    private enum Op {
        static let proto: UInt8 = 0x80, frame: UInt8 = 0x95, stop: UInt8 = 0x2E, mark: UInt8 = 0x28
        static let emptyDict: UInt8 = 0x7D, emptyList: UInt8 = 0x5D
        static let setItems: UInt8 = 0x75, append: UInt8 = 0x61, appends: UInt8 = 0x65
        static let binInt: UInt8 = 0x4A, binInt1: UInt8 = 0x4B, binInt2: UInt8 = 0x4D, long1: UInt8 = 0x8A
        static let shortBinUnicode: UInt8 = 0x8C, binUnicode: UInt8 = 0x58, binUnicode8: UInt8 = 0x8D
        static let memoize: UInt8 = 0x94, binPut: UInt8 = 0x71, longBinPut: UInt8 = 0x72
        static let binGet: UInt8 = 0x68, longBinGet: UInt8 = 0x6A
    }

    /// A scanner whose scratch buffers are reused from sample to sample (one per thread, never copied while in use).
    init() {}

    /// Fills `view` from the pickle at the start of `input` (field ranges relative to its base
    /// address) and returns true; returns false, leaving `view` as it was, when the pickle is not in
    /// the layout above or anything in it is wrong.
    mutating func fill(_ view: inout SampleView, from input: UnsafeBufferPointer<UInt8>, owner: AnyObject?) -> Bool {
        guard let start = input.baseAddress else { return false }
        base = start
        p = start
        end = start + input.count
        memo.removeAll()
        fields.removeAll()
        tokens.removeAll()

        guard expect(Op.emptyDict), memoize(.notAString), expect(Op.mark),
              key("sample_id"), let sampleID = int(), memoizeIfAny(),
              key("questions"), let questionCount = textList(),
              key("positive_contexts"), let positiveCount = passageList(),
              key("hardneg_contexts"), let hardnegCount = passageList(),
              expect(Op.setItems), expect(Op.stop) else { return false }

        view.reset(base: start, owner: owner)
        view.sampleID = sampleID
        view.questionCount = questionCount
        view.positiveCount = positiveCount
        view.hardnegCount = hardnegCount
        view.fields.append(contentsOf: fields.elements)
        if tokens.count > 0 { view.tokenIDs.append(contentsOf: tokens.elements) }
        return true
    }

    // MARK: - opcodes
    // Plain if-chains, most frequent opcode first: a switch becomes a jump table, whose indirect
    // branch the CPU predicts worse along this opcode stream.

    @inline(__always)
    private func load<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        T(littleEndian: UnsafeRawPointer(p + offset).loadUnaligned(as: T.self))
    }

    /// The next opcode, not consumed, after any PROTO and FRAME; nil at the end or on a bad one.
    @inline(__always)
    private mutating func peek() -> UInt8? {
        while p < end {
            let op = p.pointee
            if op != Op.frame && op != Op.proto { return op }
            guard skipFraming(op) else { return nil }
        }
        return nil
    }

    /// Skips a PROTO or FRAME, checked as the general decoder checks them: a known protocol, the
    /// declared frame present (frames carry no meaning beyond that).
    @inline(never)
    private mutating func skipFraming(_ op: UInt8) -> Bool {
        if op == Op.proto {
            guard end - p >= 2, p[1] <= 5 else { return false }
            p += 2
        } else {
            guard end - p >= 9 else { return false }
            let length = load(UInt64.self, at: 1)
            p += 9
            guard length <= UInt64(end - p) else { return false }
        }
        return true
    }

    @inline(__always)
    private mutating func expect(_ op: UInt8) -> Bool {
        guard peek() == op else { return false }
        p += 1
        return true
    }

    /// The memo opcodes after a value: each records `entry` under the next index. Only the
    /// sequential indices CPython writes are taken (the general decoder handles any other).
    ///
    /// Inlined is only what CPython's protocol 4 writes, one MEMOIZE; everything else goes to one
    /// out-of-line loop. (A chain of opcode tests with several destinations would become a jump
    /// table, whose indirect branch the CPU predicts poorly along the opcode stream.)
    @inline(__always)
    private mutating func memoize(_ entry: MemoEntry) -> Bool {
        guard p < end else { return false }  // a value is never the last thing in a pickle
        var op = p.pointee
        if op == Op.memoize {
            guard memo.count < 1 << 20 else { return false }  // the general decoder's memo bound
            memo.append(entry)
            p += 1
            guard p < end else { return false }
            op = p.pointee
        }
        if op == Op.binPut || op == Op.longBinPut || op == Op.memoize || op == Op.frame || op == Op.proto {
            return memoizeSlowly(entry)
        }
        return true
    }

    /// Any sequence of memo opcodes (BINPUT and LONG_BINPUT in protocols 2 and 3), PROTO and FRAME.
    @inline(never)
    private mutating func memoizeSlowly(_ entry: MemoEntry) -> Bool {
        while let op = peek() {
            if op == Op.memoize {
                p += 1
            } else if op == Op.binPut || op == Op.longBinPut {
                guard putIndex(op) == memo.count else { return false }
            } else {
                return true
            }
            guard memo.count < 1 << 20 else { return false }
            memo.append(entry)
        }
        return false
    }

    /// The index of a BINPUT or LONG_BINPUT (protocols 2 and 3), consumed; -1 if truncated.
    @inline(never)
    private mutating func putIndex(_ op: UInt8) -> Int {
        if op == Op.binPut {
            guard end - p >= 2 else { return -1 }
            defer { p += 2 }
            return Int(p[1])
        }
        guard end - p >= 5 else { return -1 }
        defer { p += 5 }
        return Int(load(UInt32.self, at: 1))
    }

    /// Memo opcodes after an int (CPython writes none; the general decoder accepts them).
    @inline(__always)
    private mutating func memoizeIfAny() -> Bool {
        guard let op = peek() else { return false }
        if op == Op.memoize || op == Op.binPut || op == Op.longBinPut { return memoize(.notAString) }
        return true
    }

    /// A str (or BINGET of a memoized one), consumed; nil when the next value is not a str. The
    /// caller reads its bytes before `memoize(_:)`, so the bytes after it are loaded in order.
    @inline(__always)
    private mutating func string() -> MemoEntry? {
        guard let op = peek() else { return nil }
        let rest = end - p - 1
        var header = 0, count = 0
        if op == Op.shortBinUnicode {
            guard rest >= 1 else { return nil }
            header = 2
            count = Int(p[1])
        } else if op == Op.binUnicode {
            guard rest >= 4 else { return nil }
            header = 5
            count = Int(load(UInt32.self, at: 1))
        } else if op == Op.binGet {
            guard rest >= 1 else { return nil }
            let index = Int(p[1])
            p += 2
            guard index < memo.count, memo[index].count >= 0 else { return nil }
            return memo[index]
        } else {
            return rareString(op)
        }
        guard count <= rest + 1 - header else { return nil }
        let entry = MemoEntry(start: p + header - base, count: count)
        p += header + count
        return entry
    }

    /// BINUNICODE8 (a str of 4 GiB or more) and LONG_BINGET (memo index over 255).
    @inline(never)
    private mutating func rareString(_ op: UInt8) -> MemoEntry? {
        let rest = end - p - 1
        if op == Op.binUnicode8 {
            guard rest >= 8 else { return nil }
            let count = Int(clamping: load(UInt64.self, at: 1))
            guard count <= rest - 8 else { return nil }
            let entry = MemoEntry(start: p + 9 - base, count: count)
            p += 9 + count
            return entry
        }
        guard op == Op.longBinGet, rest >= 4 else { return nil }
        let index = Int(load(UInt32.self, at: 1))
        p += 5
        guard index < memo.count, memo[index].count >= 0 else { return nil }
        return memo[index]
    }

    /// A dict key: a str equal to `name` (compared as bytes, like the general decoder).
    @inline(__always)
    private mutating func key(_ name: StaticString) -> Bool {
        guard let s = string(), s.count == name.utf8CodeUnitCount,
              Self.equal(base + s.start, name.utf8Start, count: s.count) else { return false }
        return memoize(s)
    }

    /// Whether `count` bytes at `a` and `b` are equal: for the 4 to 24 bytes of a key, a few
    /// overlapping word loads and one branch instead of a byte loop whose exit varies.
    @inline(__always)
    private static func equal(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, count: Int) -> Bool {
        let x = UnsafeRawPointer(a), y = UnsafeRawPointer(b)
        @inline(__always) func differs<T: FixedWidthInteger>(_ type: T.Type, _ offset: Int) -> T {
            x.loadUnaligned(fromByteOffset: offset, as: T.self) ^ y.loadUnaligned(fromByteOffset: offset, as: T.self)
        }
        if count >= 8 && count <= 24 {
            var d = differs(UInt64.self, 0) | differs(UInt64.self, count - 8)
            if count > 16 { d |= differs(UInt64.self, 8) }
            return d == 0
        }
        if count >= 4 && count < 8 { return differs(UInt32.self, 0) | differs(UInt32.self, count - 4) == 0 }
        for i in 0..<count where a[i] != b[i] { return false }
        return true
    }

    /// BININT1, BININT2, BININT or LONG1 of up to 8 bytes (the general decoder's int opcodes).
    @inline(__always)
    private mutating func int() -> Int? {
        guard let op = peek() else { return nil }
        let rest = end - p - 1
        if op == Op.binInt1 {
            guard rest >= 1 else { return nil }
            defer { p += 2 }
            return Int(p[1])
        } else if op == Op.binInt2 {
            guard rest >= 2 else { return nil }
            defer { p += 3 }
            return Int(load(UInt16.self, at: 1))
        } else if op == Op.binInt {
            guard rest >= 4 else { return nil }
            defer { p += 5 }
            return Int(load(Int32.self, at: 1))
        } else if op == Op.long1 {
            guard rest >= 1 else { return nil }
            let n = Int(p[1])
            guard n <= 8, rest - 1 >= n else { return nil }
            let q = p + 2
            var value: UInt64 = 0
            for i in 0..<n { value |= UInt64(q[i]) << (8 * UInt64(i)) }
            if n > 0 && n < 8 && q[n - 1] & 0x80 != 0 { value |= ~0 << (8 * UInt64(n)) }  // sign
            p = q + n
            return Int(bitPattern: UInt(value))
        }
        return nil
    }

    @inline(__always)
    private func isIntOp(_ op: UInt8) -> Bool {
        op == Op.binInt1 || op == Op.binInt2 || op == Op.binInt || op == Op.long1
    }

    @inline(__always)
    private func isTextOp(_ op: UInt8) -> Bool {
        op == Op.shortBinUnicode || op == Op.binUnicode || op == Op.binGet || op == Op.emptyList
            || op == Op.binUnicode8 || op == Op.longBinGet
    }

    // MARK: - fields

    /// One text field: a str whose bytes are valid UTF-8, or a list of ints (pre-tokenized).
    /// Inlined so that titles, texts and questions each get their own branches (each site
    /// sees one opcode pattern, which the CPU then predicts).
    @inline(__always)
    private mutating func text() -> Bool {
        guard let op = peek() else { return false }
        if op == Op.emptyList {
            p += 1
            return memoize(.notAString) && tokenList()
        }
        // Invalid UTF-8: the general decoder names the field and the offset.
        guard let s = string(), UTF8Validation.isValid(base + s.start, count: s.count) else { return false }
        fields.append(SampleView.FieldRange(start: s.start, count: s.count, isTokens: false))
        return memoize(s)
    }

    // The three lists below each write out their MARK ... APPENDS loop. One shared helper taking
    // the item reader as an inlined closure was measured 1-3% slower (single-view reads of the
    // fixture dataset, `srdpr bench dataset`), so the repetition stays.

    /// The items of a token-id list (after its EMPTY_LIST and memo): batches of ints.
    private mutating func tokenList() -> Bool {
        let first = tokens.count
        while let op = peek() {
            if op == Op.mark {
                p += 1
                while true {
                    guard let op = peek() else { return false }
                    if op == Op.appends { p += 1; break }
                    guard let v = int(), memoizeIfAny() else { return false }
                    tokens.append(v)
                }
            } else if isIntOp(op) {
                guard let v = int(), memoizeIfAny(), expect(Op.append) else { return false }
                tokens.append(v)
            } else {
                fields.append(SampleView.FieldRange(start: first, count: tokens.count - first, isTokens: true))
                return true
            }
        }
        return false
    }

    /// The questions list: its length, with one field per item.
    private mutating func textList() -> Int? {
        guard expect(Op.emptyList), memoize(.notAString) else { return nil }
        let first = fields.count
        while let op = peek() {
            if op == Op.mark {
                p += 1
                while true {
                    guard let op = peek() else { return nil }
                    if op == Op.appends { p += 1; break }
                    guard text() else { return nil }
                }
            } else if isTextOp(op) {
                // One item and APPEND, or already the next key: parse it, and undo if no APPEND follows.
                let saved = (p, memo.count, fields.count, tokens.count)
                guard text() else { return nil }
                if peek() == Op.append {
                    p += 1
                } else {
                    p = saved.0
                    memo.truncate(to: saved.1)
                    fields.truncate(to: saved.2)
                    tokens.truncate(to: saved.3)
                    break
                }
            } else {
                break
            }
        }
        return fields.count - first
    }

    /// A passages list: its length, with (title, text) fields per item.
    private mutating func passageList() -> Int? {
        guard expect(Op.emptyList), memoize(.notAString) else { return nil }
        var count = 0
        while let op = peek() {
            if op == Op.mark {
                p += 1
                while true {
                    guard let op = peek() else { return nil }
                    if op == Op.appends { p += 1; break }
                    guard passage() else { return nil }
                    count += 1
                }
            } else if op == Op.emptyDict {
                guard passage(), expect(Op.append) else { return nil }
                count += 1
            } else {
                return count
            }
        }
        return nil
    }

    /// `{"title": text, "text": text}`, exactly these keys in this order.
    private mutating func passage() -> Bool {
        expect(Op.emptyDict) && memoize(.notAString) && expect(Op.mark)
            && key("title") && text() && key("text") && text() && expect(Op.setItems)
    }
}
