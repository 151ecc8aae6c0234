import CPrefetch
import Foundation

/// What is wrong with a ByteDataset; every case names the file and, where there is one, the sample.
public enum ByteDatasetError: Error, Equatable, CustomStringConvertible {
    case unreadable(file: String, reason: String)
    /// `idxs.pkl` is shorter than its 4-byte count.
    case missingCount(file: String, size: Int)
    /// `idxs.pkl` declares a number of samples that its size does not hold.
    case countMismatch(file: String, declared: Int, offsetsPresent: Int, size: Int)
    /// An offset in `idxs.pkl` points at or past the end of `data.pkl`.
    case offsetOutOfRange(file: String, index: Int, offset: Int, dataSize: Int)
    case indexOutOfRange(index: Int, count: Int)
    /// The pickle of sample `index` is bad (offset is absolute in data.pkl).
    case pickle(file: String, index: Int, PickleError)
    /// The pickle is fine but is not a sample dict.
    case notASample(file: String, index: Int, message: String)
    /// A text field's bytes are not valid UTF-8 (offset is absolute in data.pkl).
    case invalidUTF8(file: String, index: Int, field: String, offset: Int)

    public var description: String {
        switch self {
        case .unreadable(let file, let reason):
            return "\(file): cannot read: \(reason)"
        case .missingCount(let file, let size):
            return "\(file): \(size) bytes, too short for the 4-byte sample count"
        case .countMismatch(let file, let declared, let present, let size):
            return "\(file): declares \(declared) samples but its \(size) bytes hold \(present) offsets (expected \(4 + 6 * declared) bytes)"
        case .offsetOutOfRange(let file, let index, let offset, let dataSize):
            return "\(file): offset \(offset) of sample \(index) is past the end of data.pkl (\(dataSize) bytes)"
        case .indexOutOfRange(let index, let count):
            return "sample index \(index) is out of range (the dataset has \(count) samples)"
        case .pickle(let file, let index, let error):
            return "\(file): sample \(index): \(error)"
        case .notASample(let file, let index, let message):
            return "\(file): sample \(index) is not a sample: \(message)"
        case .invalidUTF8(let file, let index, let field, let offset):
            return "\(file): sample \(index): `\(field)` is not valid UTF-8 at byte offset \(offset)"
        }
    }
}

/// The original SR-DPR on-disk dataset (SPEC §1): `idxs.pkl` (4-byte big-endian count, then
/// 6-byte big-endian offsets) and `data.pkl` (one pickle per sample), read by random access
/// through memory maps so that datasets larger than RAM work.
public final class ByteDataset: SampleSource, @unchecked Sendable {
    public let directory: String
    public let count: Int
    private let idxs: MappedFile
    private let data: MappedFile
    private let idxsPath: String
    private let dataPath: String

    /// Opens the dataset in `directory` and checks that `idxs.pkl` holds the offsets it declares.
    public init(directory: String) throws(ByteDatasetError) {
        self.directory = directory
        idxsPath = directory.hasSuffix("/") ? directory + "idxs.pkl" : directory + "/idxs.pkl"
        dataPath = directory.hasSuffix("/") ? directory + "data.pkl" : directory + "/data.pkl"
        do { idxs = try MappedFile(path: idxsPath) } catch {
            throw .unreadable(file: idxsPath, reason: error.reason)
        }
        do { data = try MappedFile(path: dataPath) } catch {
            throw .unreadable(file: dataPath, reason: error.reason)
        }
        let b = idxs.bytes
        guard b.count >= 4 else { throw .missingCount(file: idxsPath, size: b.count) }
        let declared = Int(b[0]) << 24 | Int(b[1]) << 16 | Int(b[2]) << 8 | Int(b[3])
        guard b.count == 4 + 6 * declared else {
            throw .countMismatch(file: idxsPath, declared: declared, offsetsPresent: (b.count - 4) / 6, size: b.count)
        }
        count = declared
        idxs.adviseRandomAccess()
        data.adviseRandomAccess()
    }

    /// Size of `data.pkl` in bytes.
    public var dataByteCount: Int { data.count }

    /// The byte offset of sample `index` in `data.pkl` (checked against its size).
    public func offset(at index: Int) throws(ByteDatasetError) -> Int {
        guard index >= 0 && index < count else { throw .indexOutOfRange(index: index, count: count) }
        let offset = rawOffset(index)
        guard offset < data.count else {
            throw .offsetOutOfRange(file: idxsPath, index: index, offset: offset, dataSize: data.count)
        }
        return offset
    }

    /// Entry `index` (in range) of idxs.pkl, 6 bytes big-endian: one 8-byte load when the next
    /// entry follows it, bytes one by one for the last.
    @inline(__always)
    private func rawOffset(_ index: Int) -> Int {
        let p = UnsafeRawPointer(idxs.bytes.baseAddress! + 4 + 6 * index)
        if index + 1 < count { return Int(UInt64(bigEndian: p.loadUnaligned(as: UInt64.self)) >> 16) }
        var offset = 0
        for i in 0..<6 { offset = offset << 8 | Int(p.load(fromByteOffset: i, as: UInt8.self)) }
        return offset
    }

    /// Sample `index` as the raw unpickled value (the default policy: plain data only).
    public func value(at index: Int) throws(ByteDatasetError) -> PickleValue {
        let start = try offset(at: index)
        do {
            return try PickleReader.read(UnsafeBufferPointer(rebasing: data.bytes[start...])).value
        } catch {
            throw .pickle(file: dataPath, index: index, error.shifted(by: start))
        }
    }

    /// Sample `index`, decoded into a `Sample`.
    public func sample(at index: Int) throws -> Sample {
        try typedSample(at: index)
    }

    /// Sample `index` with a typed error.
    public func typedSample(at index: Int) throws(ByteDatasetError) -> Sample {
        let start = try offset(at: index)
        let pickle = UnsafeBufferPointer(rebasing: data.bytes[start...])
        let readers = takeReaders()
        defer { returnReaders(readers) }
        // The view `readView(at:into:)` gives, made into Strings: both paths accept the same samples.
        if !readers.scanner.fill(&readers.view, from: pickle, owner: nil) {
            switch readers.decoder.fillView(pickle, into: &readers.view, owner: nil) {
            case .ok: break
            case .invalidUTF8(let field, let offset):
                throw .invalidUTF8(file: dataPath, index: index, field: field, offset: start + offset)
            case .fallback: return try genericSample(at: index)
            }
        }
        return readers.view.sample
    }

    /// Sample `index` through the generic reader: the shapes and errors the fast passes hand over.
    private func genericSample(at index: Int) throws(ByteDatasetError) -> Sample {
        let value = try value(at: index)
        do {
            return try Sample(pickle: value)
        } catch {
            throw .notASample(file: dataPath, index: index, message: error.message)
        }
    }

    /// Sample `index` as a `SampleView`: byte ranges into the mapped `data.pkl`, no Strings.
    public func view(at index: Int) throws(ByteDatasetError) -> SampleView {
        var view = SampleView()
        try readView(at: index, into: &view)
        return view
    }

    /// Refills `view` with sample `index`, reusing its buffers: one validating pass over the
    /// pickle's opcodes (code-running opcodes refused, every text field checked to be UTF-8).
    public func readView(at index: Int, into view: inout SampleView) throws(ByteDatasetError) {
        let readers = takeReaders()
        defer { returnReaders(readers) }
        try readView(at: index, into: &view, scanner: &readers.scanner, readers: readers)
    }

    private func readView(at index: Int, into view: inout SampleView, scanner: inout PickleSampleScanner,
                          readers: Readers) throws(ByteDatasetError) {
        let start = try offset(at: index)
        let pickle = UnsafeBufferPointer(rebasing: data.bytes[start...])
        // The layout CPython and our writer produce, in one pass; anything else goes to the general decoder.
        if scanner.fill(&view, from: pickle, owner: data) { return }
        let outcome = readers.decoder.fillView(pickle, into: &view, owner: data)
        switch outcome {
        case .ok: return
        case .invalidUTF8(let field, let offset):
            throw .invalidUTF8(file: dataPath, index: index, field: field, offset: start + offset)
        case .fallback:
            // Not the usual shape (or bad data): the generic reader decides, with a precise error;
            // a valid sample of an unusual shape gets a view over its own copy.
            view = SampleView(try genericSample(at: index))
        }
    }

    /// Reads samples `indices` into `views[first...]` (appending views as needed), as
    /// `readView(at:into:)` does one by one. The indices of a batch are known before it is read,
    /// so while sample k is decoded the CPU is already working on the samples after it: the
    /// idxs.pkl entries 20 ahead, the page translations of sample k+16 (a TLB miss on a random
    /// page is expensive, the more so in a virtual machine), the bytes of sample k+4. Random
    /// reads then overlap their misses instead of waiting for each in turn.
    public func readViews(at indices: [Int], into views: inout [SampleView], startingAt first: Int = 0) throws(ByteDatasetError) {
        while views.count < first + indices.count { views.append(SampleView()) }
        let readers = takeReaders()
        defer { returnReaders(readers) }
        try readBatch(indices, into: &views, startingAt: first, scanner: &readers.scanner, readers: readers)
    }

    /// The loop of `readViews`, holding the scanner for the whole batch (one exclusivity check,
    /// not one per sample).
    private func readBatch(_ indices: [Int], into views: inout [SampleView], startingAt first: Int,
                           scanner: inout PickleSampleScanner, readers: Readers) throws(ByteDatasetError) {
        let bytesAhead = 4, pagesAhead = 16, offsetsAhead = 20
        let n = indices.count
        for k in 0..<min(offsetsAhead, n) { prefetchOffset(indices[k]) }
        for k in 0..<min(pagesAhead, n) { prefetchSample(indices[k], wholeLines: k < bytesAhead) }
        for k in 0..<n {
            if k + offsetsAhead < n { prefetchOffset(indices[k + offsetsAhead]) }
            if k + pagesAhead < n { prefetchSample(indices[k + pagesAhead], wholeLines: false) }
            if k + bytesAhead < n { prefetchSample(indices[k + bytesAhead], wholeLines: true) }
            try readView(at: indices[k], into: &views[first + k], scanner: &scanner, readers: readers)
        }
    }

    /// Starts loading the idxs.pkl entry of sample `index` (and the next, which bounds its size).
    @inline(__always)
    private func prefetchOffset(_ index: Int) {
        guard index >= 0 && index < count else { return }
        srdpr_prefetch(idxs.bytes.baseAddress! + 4 + 6 * index, 12)
    }

    /// Starts loading the pickle of sample `index` (up to 16 KB), all its lines or only its pages'
    /// translations; a hint only, never an error.
    @inline(__always)
    private func prefetchSample(_ index: Int, wholeLines: Bool) {
        guard index >= 0 && index < count else { return }
        let start = rawOffset(index)
        guard start < data.count else { return }
        var end = data.count
        if index + 1 < count {
            let next = rawOffset(index + 1)
            if next > start && next <= data.count { end = next } else { end = min(data.count, start + 4096) }
        }
        let length = min(end - start, 16384)
        if wholeLines {
            srdpr_prefetch(data.bytes.baseAddress! + start, length)
        } else {
            srdpr_prefetch_pages(data.bytes.baseAddress! + start, length)
        }
    }

    /// What a reading thread reuses from sample to sample: the layout scanner and the general
    /// decoder keep their scratch buffers between reads. A class, so the pool hands out one
    /// reference instead of copying (and retaining) every buffer.
    private final class Readers {
        var scanner = PickleSampleScanner()
        var decoder = PickleSampleDecoder()
        var view = SampleView()  // typedSample's scratch view
    }

    // A small pool lets several threads read the same dataset.
    private var readerPool: [Readers] = []
    private let readerPoolLock = NSLock()

    private func takeReaders() -> Readers {
        readerPoolLock.lock()
        defer { readerPoolLock.unlock() }
        return readerPool.popLast() ?? Readers()
    }

    private func returnReaders(_ readers: Readers) {
        readerPoolLock.lock()
        if readerPool.count < 8 { readerPool.append(readers) }
        readerPoolLock.unlock()
    }

    /// Every sample, in order (small datasets; large ones are read by index).
    public func samples() throws(ByteDatasetError) -> [Sample] {
        var out: [Sample] = []
        out.reserveCapacity(count)
        for i in 0..<count { out.append(try typedSample(at: i)) }
        return out
    }

    /// Checks every offset (and, with `decodeAll`, every sample) so a bad file fails up front.
    public func validate(decodeAll: Bool = false) throws(ByteDatasetError) {
        for i in 0..<count {
            if decodeAll { _ = try typedSample(at: i) } else { _ = try offset(at: i) }
        }
    }
}

extension Sample {
    /// Decodes the dict the original pickles for a sample; text fields may be str or list of ints.
    public init(pickle value: PickleValue) throws(SampleFieldError) {
        guard case .dict(let entries) = value else {
            throw SampleFieldError("the pickled object is not a dict")
        }
        var id: Int?
        var questions: [TextField]?
        var positives: [Passage]?
        var hardnegs: [Passage]?
        for entry in entries {
            guard case .string(let key) = entry.key else { continue }
            switch key {
            case "sample_id":
                switch entry.value {
                case .int(let v): id = v
                case .bigInt: throw SampleFieldError("`sample_id` does not fit in a 64-bit integer")
                default: throw SampleFieldError("`sample_id` is not an integer")
                }
            case "questions":
                guard case .list(let items) = entry.value else { throw SampleFieldError("`questions` is not a list") }
                var out: [TextField] = []
                out.reserveCapacity(items.count)
                for (i, item) in items.enumerated() { out.append(try Sample.textField(item, "questions[\(i)]")) }
                questions = out
            case "positive_contexts": positives = try Sample.passages(entry.value, key)
            case "hardneg_contexts": hardnegs = try Sample.passages(entry.value, key)
            default: continue
            }
        }
        guard let id else { throw SampleFieldError("missing field `sample_id`") }
        guard let questions else { throw SampleFieldError("missing field `questions`") }
        guard let positives else { throw SampleFieldError("missing field `positive_contexts`") }
        guard let hardnegs else { throw SampleFieldError("missing field `hardneg_contexts`") }
        self.init(sampleID: id, questions: questions, positiveContexts: positives, hardnegContexts: hardnegs)
    }

    private static func textField(_ value: PickleValue, _ name: @autoclosure () -> String) throws(SampleFieldError) -> TextField {
        switch value {
        case .string(let s): return .text(s)
        case .list(let items):
            var ids: [Int] = []
            ids.reserveCapacity(items.count)
            for item in items {
                guard case .int(let v) = item else { throw SampleFieldError("`\(name())` is not a string or a list of token ids") }
                ids.append(v)
            }
            return .tokenIDs(ids)
        default: throw SampleFieldError("`\(name())` is not a string or a list of token ids")
        }
    }

    private static func passages(_ value: PickleValue, _ name: String) throws(SampleFieldError) -> [Passage] {
        guard case .list(let items) = value else { throw SampleFieldError("`\(name)` is not a list") }
        var out: [Passage] = []
        out.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            guard case .dict = item else { throw SampleFieldError("`\(name)[\(i)]` is not a dict") }
            guard let title = item["title"] else { throw SampleFieldError("missing field `\(name)[\(i)].title`") }
            guard let text = item["text"] else { throw SampleFieldError("missing field `\(name)[\(i)].text`") }
            out.append(Passage(title: try textField(title, "\(name)[\(i)].title"), text: try textField(text, "\(name)[\(i)].text")))
        }
        return out
    }
}
