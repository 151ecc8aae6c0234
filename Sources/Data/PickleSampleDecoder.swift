#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The general sample decoder's opcode pass, for the opcode shapes CPython writes for samples
/// (dicts, lists, str, int) in any order and layout. The generic `PickleReader` builds a full
/// value tree with reference-counted nodes; this keeps plain (offset, length) slots, which
/// `fillView` (PickleSampleViewDecoder.swift) then reads into a view, or a `Sample`. Anything
/// unusual returns nil, and the caller falls back to `PickleReader` (which also produces the
/// precise error for bad input).
///
/// What it accepts, CPython's `pickle.loads` accepts too, with the same stack discipline: a
/// MARK fences off the stack below it (APPENDS/SETITEMS/memo stores/STOP never reach under the
/// innermost open one), dict keys are hashable (no list or dict), and every str is UTF-8 (a
/// str that is not, even where a sample does not look, leaves the decision to the generic reader).
struct PickleSampleDecoder {
    /// A stack entry without reference counting: strings stay ranges of the input.
    enum Slot {
        /// A str whose bytes are valid UTF-8.
        case string(start: Int, count: Int)
        /// A str whose bytes are not valid UTF-8 (lone surrogates that Python accepts, or bytes it refuses).
        case badString(start: Int, count: Int)
        case int(Int)
        case list(Int)
        case dict(Int)
        case scalar  // None, bool, float: allowed only under keys a Sample ignores
        case missing  // an unused memo index
    }

    /// A run of a container's items in `items` (one APPEND(S)/SETITEM(S)); runs are chained.
    struct Chunk {
        var start: Int
        var count: Int
        var next: Int
    }

    /// A list or dict: its first and last chunk (-1 when empty).
    struct Container {
        var first = -1
        var last = -1
    }

    var bytes = UnsafeBufferPointer<UInt8>(start: nil, count: 0)
    var position = 0
    var stack: [Slot] = []
    var marks: [Int] = []
    var memo: [Slot] = []
    var memoLength = 0
    /// Whether any str so far was `.badString`.
    var sawBadString = false
    // Flat storage, no per-container arrays: items of every container, in chained chunks.
    var items: [Slot] = []
    var chunks: [Chunk] = []
    var containers: [Container] = []  // lists and dicts share the numbering

    /// A decoder whose scratch arrays are reused from sample to sample (not thread-safe: one per thread).
    init() {
        stack.reserveCapacity(32)
        memo.reserveCapacity(32)
        items.reserveCapacity(64)
        chunks.reserveCapacity(16)
        containers.reserveCapacity(16)
    }

    /// Runs the pickle at the start of `bytes` into slots; the caller reads them through `items`
    /// and must call `finish()` before the bytes go away. Nil when the fast path does not apply.
    mutating func start(_ bytes: UnsafeBufferPointer<UInt8>) -> Slot? {
        self.bytes = bytes
        position = 0
        memoLength = 0
        sawBadString = false
        stack.removeAll(keepingCapacity: true)
        marks.removeAll(keepingCapacity: true)
        memo.removeAll(keepingCapacity: true)
        items.removeAll(keepingCapacity: true)
        chunks.removeAll(keepingCapacity: true)
        containers.removeAll(keepingCapacity: true)
        return run()
    }

    mutating func finish() { bytes = UnsafeBufferPointer(start: nil, count: 0) }

    @inline(__always)
    mutating func take(_ count: Int) -> Int? {
        guard count >= 0, count <= bytes.count - position else { return nil }
        defer { position += count }
        return position
    }

    @inline(__always)
    mutating func loadLE<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        T(littleEndian: UnsafeRawPointer(bytes.baseAddress! + offset).loadUnaligned(as: T.self))
    }

    /// The innermost open MARK (0 without one): nothing at or below it may be taken off the stack.
    @inline(__always)
    var fence: Int { marks.last ?? 0 }

    mutating func put(_ index: Int) -> Bool {
        guard stack.count > fence, let top = stack.last, index >= 0, index < 1 << 20 else { return false }
        if index == memo.count {
            memo.append(top)
            memoLength += 1
            return true
        }
        if index > memo.count { memo.append(contentsOf: repeatElement(.missing, count: index - memo.count + 1)) }
        if case .missing = memo[index] { memoLength += 1 }
        memo[index] = top
        return true
    }

    mutating func get(_ index: Int) -> Bool {
        guard index >= 0, index < memo.count else { return false }
        let slot = memo[index]
        if case .missing = slot { return false }
        stack.append(slot)
        return true
    }

    /// The MARK of an APPENDS/SETITEMS, which must lie above the one before it (as in CPython).
    mutating func popMark() -> Int? {
        guard let mark = marks.popLast(), mark <= stack.count, mark > fence else { return nil }
        return mark
    }

    /// A str's slot: valid UTF-8 or not (checked once here, for every str, as CPython decodes every str).
    @inline(__always)
    mutating func pushString(_ start: Int, _ count: Int) {
        if UTF8Validation.isValid(bytes.baseAddress! + start, count: count) {
            stack.append(.string(start: start, count: count))
        } else {
            sawBadString = true
            stack.append(.badString(start: start, count: count))
        }
    }

    /// Whether `slot` can be a dict key: Python refuses a list or dict (unhashable) as one.
    @inline(__always)
    func isHashable(_ slot: Slot) -> Bool {
        switch slot {
        case .list, .dict: return false
        default: return true
        }
    }

    mutating func run() -> Slot? {
        while position < bytes.count {
            let opcode = bytes[position]
            position += 1
            switch opcode {
            case 0x80: guard let p = take(1), bytes[p] <= 5 else { return nil }
            case 0x95:  // FRAME: like CPython, the declared frame must be present
                guard let p = take(8), loadLE(UInt64.self, at: p) <= UInt64(bytes.count - position) else { return nil }
            case 0x2E:  // STOP: the top value, as CPython (whatever is below it, marks too, is ignored)
                guard stack.count > fence else { return nil }
                return stack[stack.count - 1]
            case 0x7D: containers.append(Container()); stack.append(.dict(containers.count - 1))
            case 0x5D: containers.append(Container()); stack.append(.list(containers.count - 1))
            case 0x28: marks.append(stack.count)
            case 0x73:  // SETITEM
                guard stack.count >= 3, stack.count - 3 >= fence, isHashable(stack[stack.count - 2]),
                      case .dict(let id) = stack[stack.count - 3] else { return nil }
                add(to: id, from: stack.count - 2)
            case 0x75:  // SETITEMS
                guard let mark = popMark(), (stack.count - mark) % 2 == 0 else { return nil }
                if mark == stack.count { break }  // an empty batch touches nothing (CPython)
                guard case .dict(let id) = stack[mark - 1] else { return nil }
                for k in stride(from: mark, to: stack.count, by: 2) where !isHashable(stack[k]) { return nil }
                add(to: id, from: mark)
            case 0x61:  // APPEND
                guard stack.count >= 2, stack.count - 2 >= fence,
                      case .list(let id) = stack[stack.count - 2] else { return nil }
                add(to: id, from: stack.count - 1)
            case 0x65:  // APPENDS
                guard let mark = popMark() else { return nil }
                if mark == stack.count { break }  // an empty batch touches nothing (CPython)
                guard case .list(let id) = stack[mark - 1] else { return nil }
                add(to: id, from: mark)
            case 0x4A: guard let p = take(4) else { return nil }; stack.append(.int(Int(loadLE(Int32.self, at: p))))
            case 0x4B: guard let p = take(1) else { return nil }; stack.append(.int(Int(bytes[p])))
            case 0x4D: guard let p = take(2) else { return nil }; stack.append(.int(Int(loadLE(UInt16.self, at: p))))
            case 0x8A:  // LONG1 up to 8 bytes
                guard let p = take(1), bytes[p] <= 8, let q = take(Int(bytes[p])) else { return nil }
                let n = Int(bytes[p])
                var value: UInt64 = 0
                for i in 0..<n { value |= UInt64(bytes[q + i]) << (8 * UInt64(i)) }
                if n > 0 && n < 8 && bytes[q + n - 1] & 0x80 != 0 { value |= ~0 << (8 * UInt64(n)) }
                stack.append(.int(Int(bitPattern: UInt(value))))
            case 0x8C:
                guard let p = take(1), let q = take(Int(bytes[p])) else { return nil }
                pushString(q, Int(bytes[p]))
            case 0x58:
                guard let p = take(4) else { return nil }
                let n = Int(loadLE(UInt32.self, at: p))
                guard let q = take(n) else { return nil }
                pushString(q, n)
            case 0x8D:
                guard let p = take(8) else { return nil }
                let n = Int(clamping: loadLE(UInt64.self, at: p))
                guard let q = take(n) else { return nil }
                pushString(q, n)
            case 0x94: guard put(memoLength) else { return nil }
            case 0x71: guard let p = take(1), put(Int(bytes[p])) else { return nil }
            case 0x72: guard let p = take(4), put(Int(loadLE(UInt32.self, at: p))) else { return nil }
            case 0x68: guard let p = take(1), get(Int(bytes[p])) else { return nil }
            case 0x6A: guard let p = take(4), get(Int(loadLE(UInt32.self, at: p))) else { return nil }
            case 0x4E, 0x88, 0x89: stack.append(.scalar)
            case 0x47: guard take(8) != nil else { return nil }; stack.append(.scalar)
            default: return nil
            }
        }
        return nil
    }

    /// Moves the stack above `from` into a new chunk of container `id`.
    mutating func add(to id: Int, from: Int) {
        let count = stack.count - from
        guard count > 0 else { return }
        chunks.append(Chunk(start: items.count, count: count, next: -1))
        for k in from..<stack.count { items.append(stack[k]) }  // no ArraySlice: it would retain `stack`
        stack.removeLast(count)
        let chunk = chunks.count - 1
        if containers[id].last >= 0 { chunks[containers[id].last].next = chunk } else { containers[id].first = chunk }
        containers[id].last = chunk
    }

    /// A position in a container's chained chunks. Plain loops over cursors, not closures:
    /// a closure would capture (and retain) the decoder's arrays on every call.
    struct Cursor {
        var chunk: Int
        var index: Int
        var end: Int
    }

    func cursor(_ id: Int) -> Cursor {
        let first = containers[id].first
        guard first >= 0 else { return Cursor(chunk: -1, index: 0, end: 0) }
        return Cursor(chunk: first, index: chunks[first].start, end: chunks[first].start + chunks[first].count)
    }

    /// The next item, or nil at the end. Dict chunks hold whole key/value pairs (SETITEMS
    /// with an odd count is refused), so two calls give a key and its value.
    func next(_ c: inout Cursor) -> Slot? {
        while c.index >= c.end {
            guard c.chunk >= 0 else { return nil }
            c.chunk = chunks[c.chunk].next
            guard c.chunk >= 0 else { return nil }
            c.index = chunks[c.chunk].start
            c.end = c.index + chunks[c.chunk].count
        }
        c.index += 1
        return items[c.index - 1]
    }

    func isKey(_ start: Int, _ count: Int, _ key: StaticString) -> Bool {
        count == key.utf8CodeUnitCount && memcmp(bytes.baseAddress! + start, key.utf8Start, count) == 0
    }
}

/// Why pickle bytes are not a sample: the pickle is bad, or it is fine but not a sample dict.
public enum SamplePickleError: Error, Equatable, CustomStringConvertible {
    case pickle(PickleError)
    case notASample(String)
    /// A text field is not valid UTF-8 (offset from the start of the pickle).
    case invalidUTF8(field: String, offset: Int)

    public var description: String {
        switch self {
        case .pickle(let error): return "\(error)"
        case .notASample(let message): return "not a sample: \(message)"
        case .invalidUTF8(let field, let offset): return "`\(field)` is not valid UTF-8 at byte offset \(offset)"
        }
    }
}

extension Sample {
    /// Decodes one pickled sample from the start of `bytes`: the fast path first, then the
    /// generic reader (which gives the precise error). Never runs code from the pickle.
    ///
    /// The same pass as the view's (`PickleSampleDecoder.fillView`), so both accept the same
    /// pickles and read the same fields; the generic reader decides whatever that pass hands over.
    public static func decode(pickle bytes: UnsafeBufferPointer<UInt8>) throws(SamplePickleError) -> Sample {
        var decoder = PickleSampleDecoder()
        var view = SampleView()
        switch decoder.fillView(bytes, into: &view, owner: nil) {
        case .ok: return view.sample
        case .invalidUTF8(let field, let offset): throw .invalidUTF8(field: field, offset: offset)
        case .fallback: return try decodeGenerically(pickle: bytes)
        }
    }

    /// The generic reader's value tree, read as a sample (shapes and errors the fast passes leave to it).
    static func decodeGenerically(pickle bytes: UnsafeBufferPointer<UInt8>) throws(SamplePickleError) -> Sample {
        let value: PickleValue
        do { value = try PickleReader.read(bytes).value } catch { throw .pickle(error) }
        do { return try Sample(pickle: value) } catch { throw .notASample(error.message) }
    }
}

extension SampleView {
    /// The sample pickled at the start of `bytes` as a view INTO `bytes` (which must outlive the
    /// view's use): the same validating pass as `ByteDataset.readView(at:into:)`.
    public static func decode(pickle bytes: UnsafeBufferPointer<UInt8>) throws(SamplePickleError) -> SampleView {
        if let view = scanned(pickle: bytes) { return view }
        return try decodeGenerally(pickle: bytes)
    }

    /// The read fast path alone (`PickleSampleScanner`): the view when the pickle is in the layout
    /// CPython and `PickleWriter` give a sample and all is well, nil where it hands over to the
    /// general decoder. For tests and benchmarks that compare the two paths.
    public static func scanned(pickle bytes: UnsafeBufferPointer<UInt8>) -> SampleView? {
        var view = SampleView()
        var scanner = PickleSampleScanner()
        return scanner.fill(&view, from: bytes, owner: nil) ? view : nil
    }

    /// The general path alone, without the fast scanner: the slot decoder, then the generic
    /// `PickleReader` for anything unusual (which names the error).
    public static func decodeGenerally(pickle bytes: UnsafeBufferPointer<UInt8>) throws(SamplePickleError) -> SampleView {
        var view = SampleView()
        var decoder = PickleSampleDecoder()
        switch decoder.fillView(bytes, into: &view, owner: nil) {
        case .ok: return view
        case .invalidUTF8(let field, let offset): throw .invalidUTF8(field: field, offset: offset)
        case .fallback: return SampleView(try Sample.decodeGenerically(pickle: bytes))
        }
    }
}
