/// One field of a `SampleView`: UTF-8 text inside the memory-mapped `data.pkl` (validated, not
/// copied), or the token ids of a pre-tokenized dataset.
public enum FieldView {
    /// Valid UTF-8; the pointer lives as long as the dataset (or the view's own storage) does.
    case utf8(UnsafeBufferPointer<UInt8>)
    case tokenIDs(ArraySlice<Int>)

    /// The field as a `TextField` (this creates the String or array the view avoids).
    public var textField: TextField {
        switch self {
        case .utf8(let bytes): return .text(String(decoding: bytes, as: UTF8.self))
        case .tokenIDs(let ids): return .tokenIDs(Array(ids))
        }
    }
}

extension FieldView: Equatable {
    /// Equal contents: the same bytes or the same token ids, wherever they are stored.
    public static func == (a: FieldView, b: FieldView) -> Bool {
        switch (a, b) {
        case (.utf8(let x), .utf8(let y)): return x.elementsEqual(y)
        case (.tokenIDs(let x), .tokenIDs(let y)): return x.elementsEqual(y)
        default: return false
        }
    }
}

/// A passage of a `SampleView`.
public struct PassageView {
    public let title: FieldView
    public let text: FieldView
}

/// A sample read without creating Strings or per-field arrays: the sample id, the number of
/// questions / positives / hard negatives, and for each field where its bytes are.
///
/// Produced by `ByteDataset.view(at:)` or refilled in place by `ByteDataset.readView(at:into:)`,
/// which reuses the view's two small buffers (field ranges, token ids) from read to read.
/// Every text field has been checked to be valid UTF-8 when the view is filled.
public struct SampleView {
    /// Where a field is: a byte range from `base`, or a range of `tokenIDs`.
    struct FieldRange {
        var start: Int
        var count: Int
        var isTokens: Bool
    }

    public internal(set) var sampleID = 0
    public internal(set) var questionCount = 0
    public internal(set) var positiveCount = 0
    public internal(set) var hardnegCount = 0
    /// Questions, then (title, text) of each positive, then of each hard negative.
    var fields: [FieldRange] = []
    var tokenIDs: [Int] = []
    var base: UnsafePointer<UInt8>?
    /// Keeps the memory under `base` alive (the dataset's mapping, or `OwnedBytes`).
    var owner: AnyObject?

    /// An empty view, to be filled by `ByteDataset.readView(at:into:)`.
    public init() {}

    /// A view over a copy of `sample`'s fields (for samples that are not in a ByteDataset).
    public init(_ sample: Sample) {
        var bytes: [UInt8] = []
        func add(_ field: TextField) {
            switch field {
            case .text(let s):
                let start = bytes.count
                bytes.append(contentsOf: s.utf8)
                fields.append(FieldRange(start: start, count: bytes.count - start, isTokens: false))
            case .tokenIDs(let ids):
                fields.append(FieldRange(start: tokenIDs.count, count: ids.count, isTokens: true))
                tokenIDs.append(contentsOf: ids)
            }
        }
        sampleID = sample.sampleID
        questionCount = sample.questions.count
        positiveCount = sample.positiveContexts.count
        hardnegCount = sample.hardnegContexts.count
        for q in sample.questions { add(q) }
        for p in sample.positiveContexts + sample.hardnegContexts { add(p.title); add(p.text) }
        let storage = OwnedBytes(bytes)
        owner = storage
        base = UnsafePointer(storage.pointer)
    }

    /// Empties the view, keeping its buffers' capacity.
    mutating func reset(base: UnsafePointer<UInt8>?, owner: AnyObject?) {
        sampleID = 0
        questionCount = 0
        positiveCount = 0
        hardnegCount = 0
        fields.removeAll(keepingCapacity: true)
        tokenIDs.removeAll(keepingCapacity: true)
        self.base = base
        if self.owner !== owner { self.owner = owner }  // the same mapping: no retain/release
    }

    @inline(__always)
    func field(_ k: Int) -> FieldView {
        let f = fields[k]
        if f.isTokens { return .tokenIDs(tokenIDs[f.start..<(f.start + f.count)]) }
        return .utf8(UnsafeBufferPointer(start: base.map { $0 + f.start }, count: f.count))
    }

    /// Question `i` (0 ..< questionCount).
    public func question(_ i: Int) -> FieldView { field(i) }

    /// Positive context `i` (0 ..< positiveCount).
    public func positive(_ i: Int) -> PassageView {
        let k = questionCount + 2 * i
        return PassageView(title: field(k), text: field(k + 1))
    }

    /// Hard negative `i` (0 ..< hardnegCount).
    public func hardneg(_ i: Int) -> PassageView {
        let k = questionCount + 2 * (positiveCount + i)
        return PassageView(title: field(k), text: field(k + 1))
    }

    /// The same sample as a `Sample` (creates the Strings and arrays).
    public var sample: Sample {
        Sample(sampleID: sampleID,
               questions: (0..<questionCount).map { question($0).textField },
               positiveContexts: (0..<positiveCount).map { let p = positive($0); return Passage(title: p.title.textField, text: p.text.textField) },
               hardnegContexts: (0..<hardnegCount).map { let p = hardneg($0); return Passage(title: p.title.textField, text: p.text.textField) })
    }
}

extension SampleView: Equatable {
    /// The same sample: id, counts and every field's contents (not where the bytes are).
    public static func == (a: SampleView, b: SampleView) -> Bool {
        guard a.sampleID == b.sampleID, a.questionCount == b.questionCount, a.positiveCount == b.positiveCount,
              a.hardnegCount == b.hardnegCount, a.fields.count == b.fields.count else { return false }
        for k in 0..<a.fields.count where a.field(k) != b.field(k) { return false }
        return true
    }
}

/// Heap bytes with a stable address, freed with their owner.
final class OwnedBytes {
    let pointer: UnsafeMutablePointer<UInt8>
    init(_ bytes: [UInt8]) {
        pointer = .allocate(capacity: max(bytes.count, 1))
        bytes.withUnsafeBufferPointer { b in
            if let base = b.baseAddress { pointer.initialize(from: base, count: b.count) }
        }
    }
    deinit { pointer.deallocate() }
}
