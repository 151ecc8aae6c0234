#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes plain data as pickle, byte for byte as CPython's `pickle.dump` does (protocols 2–5).
///
/// Byte identity needs CPython's choices: the smallest int opcode, SHORT_BINUNICODE from
/// protocol 4, 64 KiB frames (a payload of 64 KiB or more goes outside any frame), batches of
/// 1000 in APPENDS/SETITEMS, and a memo entry for every string, list and dict. Repeated objects
/// become memo gets; what counts as "the same object" follows `json.loads`: equal dict keys are
/// one object (its key cache), as are empty and one-character Latin-1 strings (CPython
/// singletons); other strings and containers are always distinct.
public struct PickleWriter {
    public let protocolVersion: Int
    /// The pickle bytes written so far.
    public private(set) var output: [UInt8] = []

    private var framing = false
    private var frameStart = -1
    private var memoCount = 0
    /// Strings that are one object in Python (see the type's comment) and their memo index; a
    /// sample has a handful, so a linear scan beats hashing.
    private var sharedStrings: [(bytes: [UInt8], memoIndex: Int)] = []

    static let frameSizeTarget = 64 * 1024
    static let frameHeaderSize = 9
    static let batchSize = 1000

    /// A writer for `protocol` 2...5 (the original writes 4).
    public init(protocol version: Int = 4) {
        precondition((2...5).contains(version), "pickle protocol \(version) is not supported by the writer")
        protocolVersion = version
    }

    /// The pickle of one value, as `pickle.dumps(value, protocol)` (dict keys shared by value).
    public static func dumps(_ value: PickleValue, protocol version: Int = 4) throws(PickleWriteError) -> [UInt8] {
        var writer = PickleWriter(protocol: version)
        writer.begin()
        try writer.save(value)
        writer.end()
        return writer.output
    }

    /// The pickle of a JSON value as the original converter writes it: `pickle.dump(json.loads(line))`.
    public static func dumps(json value: JSONValue, protocol version: Int = 4) -> [UInt8] {
        var writer = PickleWriter(protocol: version)
        writer.dump(json: value)
        return writer.output
    }

    /// Appends the pickle of a JSON value to `output` (memo and frames start afresh, as in a new dump).
    public mutating func dump(json value: JSONValue) {
        begin()
        save(json: value)
        end()
    }

    /// Appends the pickle of a `Sample` (the dict the original writes) to `output`.
    public mutating func dump(sample: Sample) {
        begin()
        save(sample: sample)
        end()
    }

    /// Empties `output` (keeps its capacity), to reuse the writer for the next sample.
    public mutating func removeAllOutput() {
        output.removeAll(keepingCapacity: true)
    }

    // MARK: - dump framing

    private mutating func begin() {
        memoCount = 0
        sharedStrings.removeAll(keepingCapacity: true)
        framing = false
        frameStart = -1
        output.append(0x80)
        output.append(UInt8(protocolVersion))
        framing = protocolVersion >= 4
    }

    private mutating func end() {
        write(0x2E)  // STOP
        commitFrame()
        framing = false
    }

    @inline(__always)
    private mutating func openFrameIfNeeded() {
        if framing && frameStart < 0 {
            frameStart = output.count
            output.append(contentsOf: repeatElement(0, count: PickleWriter.frameHeaderSize))
        }
    }

    @inline(__always)
    private mutating func write(_ byte: UInt8) {
        openFrameIfNeeded()
        output.append(byte)
    }

    @inline(__always)
    private mutating func write<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        openFrameIfNeeded()
        output.append(contentsOf: bytes)
    }

    private mutating func commitFrame() {
        guard framing && frameStart >= 0 else { return }
        let length = output.count - frameStart - PickleWriter.frameHeaderSize
        if length >= 4 {
            output[frameStart] = 0x95
            var n = UInt64(length)
            for i in 1...8 { output[frameStart + i] = UInt8(n & 0xFF); n >>= 8 }
        } else {
            output.removeSubrange(frameStart..<(frameStart + PickleWriter.frameHeaderSize))
        }
        frameStart = -1
    }

    /// CPython ends a frame at the first object boundary after it reaches 64 KiB.
    @inline(__always)
    private mutating func objectBoundary() {
        if framing && frameStart >= 0 && output.count - frameStart - PickleWriter.frameHeaderSize >= PickleWriter.frameSizeTarget {
            commitFrame()
        }
    }

    /// A header and its payload; a large payload (and its header) goes outside frames.
    private mutating func writePayload(header: UnsafeBufferPointer<UInt8>, payload: UnsafeBufferPointer<UInt8>) {
        if payload.count >= PickleWriter.frameSizeTarget && framing {
            commitFrame()
            framing = false
            write(header)
            write(payload)
            framing = true
        } else {
            write(header)
            write(payload)
        }
    }

    // MARK: - memo

    private mutating func memoize() {
        if protocolVersion >= 4 {
            write(0x94)  // MEMOIZE (the common case: no array literal, no allocation)
        } else if memoCount < 256 {
            write([0x71, UInt8(memoCount)])  // BINPUT
        } else {
            write(0x72)  // LONG_BINPUT
            write(littleEndian32(memoCount))
        }
        memoCount += 1
    }

    private mutating func memoGet(_ index: Int) {
        if index < 256 {
            write(0x68)  // BINGET
            write(UInt8(index))
        } else {
            write(0x6A)  // LONG_BINGET
            write(littleEndian32(index))
        }
    }

    private func littleEndian32(_ value: Int) -> [UInt8] {
        let v = UInt32(truncatingIfNeeded: value)
        return [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)]
    }

    // MARK: - scalars

    private mutating func saveInt(_ value: Int) {
        if value >= 0 && value <= 0xFF {
            write(0x4B)  // BININT1
            write(UInt8(value))
        } else if value >= 0 && value <= 0xFFFF {
            write(0x4D)  // BININT2
            write(UInt8(value & 0xFF))
            write(UInt8(value >> 8))
        } else if value >= -0x8000_0000 && value <= 0x7FFF_FFFF {
            write(0x4A)  // BININT
            write(littleEndian32(value))
        } else {
            saveLong(PickleBigInt.encode(value))
        }
    }

    private mutating func saveLong(_ payload: [UInt8]) {
        if payload.count < 256 {
            write([0x8A, UInt8(payload.count)])  // LONG1
        } else {
            write(0x8B)  // LONG4
            write(littleEndian32(payload.count))
        }
        write(payload)
    }

    private mutating func saveFloat(_ value: Double) {
        write(0x47)  // BINFLOAT, big-endian
        var bits = value.bitPattern.bigEndian
        withUnsafeBytes(of: &bits) { write($0) }
    }

    /// A str given as UTF-8; `shared` strings are memo gets after their first appearance.
    private mutating func saveString(_ utf8: UnsafeBufferPointer<UInt8>, shared: Bool) {
        var isShared = shared
        if !isShared {
            // CPython's empty string and one-character Latin-1 strings are singletons.
            isShared = utf8.count == 0 || (utf8.count == 1) || (utf8.count == 2 && (utf8[0] == 0xC2 || utf8[0] == 0xC3))
        }
        if isShared {
            for entry in sharedStrings where entry.bytes.count == utf8.count {
                let same = entry.bytes.withUnsafeBufferPointer { stored in
                    utf8.count == 0 || memcmp(stored.baseAddress!, utf8.baseAddress!, utf8.count) == 0
                }
                if same {
                    memoGet(entry.memoIndex)
                    return
                }
            }
        }
        let n = utf8.count
        // The header goes in a fixed-size tuple: no heap allocation per string.
        var header: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0)
        let headerCount: Int
        if n <= 0xFF && protocolVersion >= 4 {
            header.0 = 0x8C  // SHORT_BINUNICODE
            header.1 = UInt8(n)
            headerCount = 2
        } else if n > 0xFFFF_FFFF && protocolVersion >= 4 {
            header.0 = 0x8D  // BINUNICODE8
            withUnsafeMutableBytes(of: &header) { raw in
                var v = UInt64(n)
                for i in 1...8 { raw[i] = UInt8(v & 0xFF); v >>= 8 }
            }
            headerCount = 9
        } else {
            header.0 = 0x58  // BINUNICODE
            withUnsafeMutableBytes(of: &header) { raw in
                var v = UInt32(n)
                for i in 1...4 { raw[i] = UInt8(v & 0xFF); v >>= 8 }
            }
            headerCount = 5
        }
        withUnsafeBytes(of: &header) { raw in
            writePayload(header: UnsafeBufferPointer(rebasing: raw.bindMemory(to: UInt8.self)[0..<headerCount]), payload: utf8)
        }
        if isShared { sharedStrings.append((Array(utf8), memoCount)) }
        memoize()
    }

    private mutating func saveString(_ bytes: [UInt8], shared: Bool) {
        bytes.withUnsafeBufferPointer { saveString($0, shared: shared) }
    }

    private mutating func saveString(_ string: String, shared: Bool) {
        var s = string
        s.withUTF8 { saveString($0, shared: shared) }
    }

    // MARK: - containers

    /// EMPTY_LIST, MEMOIZE, then the items as CPython batches them (one item: APPEND).
    private mutating func saveList(count: Int, item: (inout PickleWriter, Int) throws -> Void) rethrows {
        write(0x5D)  // EMPTY_LIST
        memoize()
        try batch(count: count, single: 0x61, many: 0x65) { w, i in try item(&w, i) }
    }

    private mutating func saveDict(count: Int, entry: (inout PickleWriter, Int) throws -> Void) rethrows {
        write(0x7D)  // EMPTY_DICT
        memoize()
        try batch(count: count, single: 0x73, many: 0x75) { w, i in try entry(&w, i) }
    }

    private mutating func batch(count: Int, single: UInt8, many: UInt8, _ body: (inout PickleWriter, Int) throws -> Void) rethrows {
        if count == 0 { return }
        if count == 1 {
            try body(&self, 0)
            write(single)
            return
        }
        var index = 0
        while index < count {
            write(0x28)  // MARK
            let end = min(index + PickleWriter.batchSize, count)
            while index < end {
                try body(&self, index)
                index += 1
            }
            write(many)
        }
    }

    // MARK: - JSON values

    private mutating func save(json value: JSONValue) {
        objectBoundary()
        switch value {
        case .null: write(0x4E)
        case .bool(let b): write(b ? 0x88 : 0x89)
        case .int(let v): saveInt(v)
        case .bigInt(let text): saveLong(PickleBigInt(decimal: text)?.littleEndianBytes ?? [])
        case .float(let v): saveFloat(v)
        case .string(let bytes): saveString(bytes, shared: false)
        case .array(let items):
            saveList(count: items.count) { w, i in w.save(json: items[i]) }
        case .object(let members):
            saveDict(count: members.count) { w, i in
                w.objectBoundary()
                w.saveString(members[i].key, shared: true)
                w.save(json: members[i].value)
            }
        }
    }

    // MARK: - samples

    private mutating func save(sample: Sample) {
        objectBoundary()
        saveDict(count: 4) { w, i in
            w.objectBoundary()
            w.saveString(SampleJSON.keys[i], shared: true)
            switch i {
            case 0: w.objectBoundary(); w.saveInt(sample.sampleID)
            case 1: w.saveTexts(sample.questions)
            case 2: w.savePassages(sample.positiveContexts)
            default: w.savePassages(sample.hardnegContexts)
            }
        }
    }

    private mutating func saveText(_ field: TextField) {
        objectBoundary()
        switch field {
        case .text(let s): saveString(s, shared: false)
        case .tokenIDs(let ids):
            saveList(count: ids.count) { w, i in w.objectBoundary(); w.saveInt(ids[i]) }
        }
    }

    private mutating func saveTexts(_ fields: [TextField]) {
        objectBoundary()
        saveList(count: fields.count) { w, i in w.saveText(fields[i]) }
    }

    private mutating func savePassages(_ passages: [Passage]) {
        objectBoundary()
        saveList(count: passages.count) { w, i in
            w.objectBoundary()
            w.saveDict(count: 2) { w, j in
                w.objectBoundary()
                w.saveString(j == 0 ? "title" : "text", shared: true)
                w.saveText(j == 0 ? passages[i].title : passages[i].text)
            }
        }
    }

    // MARK: - pickle values

    private mutating func save(_ value: PickleValue) throws(PickleWriteError) {
        objectBoundary()
        switch value {
        case .none: write(0x4E)
        case .bool(let b): write(b ? 0x88 : 0x89)
        case .int(let v): saveInt(v)
        case .bigInt(let big): saveLong(big.littleEndianBytes)
        case .float(let v): saveFloat(v)
        case .string(let s): saveString(s, shared: false)
        case .list(let items):
            do { try saveList(count: items.count) { w, i in try w.save(items[i]) } } catch { throw error as! PickleWriteError }
        case .dict(let entries):
            do {
                try saveDict(count: entries.count) { w, i in
                    if case .string(let key) = entries[i].key {
                        w.objectBoundary()
                        w.saveString(key, shared: true)
                    } else {
                        try w.save(entries[i].key)
                    }
                    try w.save(entries[i].value)
                }
            } catch { throw error as! PickleWriteError }
        case .tuple(let items) where items.isEmpty:
            write(0x29)  // EMPTY_TUPLE
        case .tuple(let items) where items.count <= 3:
            for item in items { try save(item) }
            write(0x85 + UInt8(items.count - 1))  // TUPLE1/2/3
            memoize()
        case .tuple(let items):
            write(0x28)  // MARK
            for item in items { try save(item) }
            write(0x74)  // TUPLE
            memoize()
        case .bytes, .set, .frozenSet:
            throw PickleWriteError(message: "writing bytes and sets is not supported (datasets do not use them)")
        case .global, .object, .persistentID:
            throw PickleWriteError(message: "refusing to write a pickle that imports or calls code")
        }
    }
}

/// A value the writer does not write (code references, bytes, sets).
public struct PickleWriteError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
