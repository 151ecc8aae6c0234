import Foundation

/// Errors of reading a `vocab.txt`.
public enum VocabularyError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case notUTF8(path: String)
    case empty(path: String)
    case missingSpecialToken(path: String, token: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): return "cannot read vocabulary \(path): \(reason)"
        case .notUTF8(let path): return "vocabulary \(path) is not valid UTF-8"
        case .empty(let path): return "vocabulary \(path) has no tokens"
        case .missingSpecialToken(let path, let token):
            return "vocabulary \(path) has no \(token) token; a BERT vocab.txt needs [CLS], [SEP], [PAD] and [UNK]"
        }
    }
}

/// A WordPiece vocabulary (`vocab.txt`: one token a line, id = line number).
///
/// Lookups take UTF-8 byte slices and never build a String: word-initial pieces and `##`
/// continuation pieces (stored without the `##`) live in two open-addressing hash tables over
/// one flat byte buffer.
public final class Vocabulary: @unchecked Sendable {  // immutable after init
    /// Token strings by id, for turning ids back into tokens.
    public let tokens: [String]
    /// Length in bytes of the longest piece (without `##`): WordPiece never tries longer substrings.
    public let maxPieceBytes: Int

    private let bytes: [UInt8]
    private let starts: ByteTable
    private let continuations: ByteTable

    /// Builds the tables from token strings (index = id). For a duplicated token the last line wins,
    /// as in HF's `load_vocab`.
    public init(tokens: [String]) {
        self.tokens = tokens
        var flat: [UInt8] = []
        var startEntries: [(Int, Int, Int32)] = []
        var contEntries: [(Int, Int, Int32)] = []
        var longest = 1
        for (id, token) in tokens.enumerated() {
            let utf8 = Array(token.utf8)
            let offset = flat.count
            flat.append(contentsOf: utf8)
            // Every token is findable as spelled; "##x" is also a continuation piece "x".
            startEntries.append((offset, utf8.count, Int32(id)))
            if utf8.count > 2 && utf8[0] == 0x23 && utf8[1] == 0x23 {
                contEntries.append((offset + 2, utf8.count - 2, Int32(id)))
                longest = max(longest, utf8.count - 2)
            } else {
                longest = max(longest, utf8.count)
            }
        }
        bytes = flat
        starts = ByteTable(entries: startEntries, bytes: flat)
        continuations = ByteTable(entries: contEntries, bytes: flat)
        maxPieceBytes = longest
    }

    /// Reads `vocab.txt`; lines are stripped of trailing `\r`/`\n` only, like HF's `load_vocab` (rstrip("\n")).
    public convenience init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw VocabularyError.unreadable(path: url.path, reason: error.localizedDescription)
        }
        try self.init(vocabText: data, path: url.path)
    }

    /// The contents of a `vocab.txt` (e.g. stored inside a checkpoint); `path` names it in errors.
    public convenience init<Bytes: Collection>(vocabText bytes: Bytes, path: String) throws where Bytes.Element == UInt8 {
        guard let text = String(bytes: bytes, encoding: .utf8) else { throw VocabularyError.notUTF8(path: path) }
        // Split on the scalar "\n": as Characters, "\r\n" is one grapheme and would not split.
        var lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            var scalars = String.UnicodeScalarView(line)
            if scalars.last == "\r" { scalars.removeLast() }
            return String(scalars)
        }
        if lines.last == "" { lines.removeLast() }
        guard !lines.isEmpty else { throw VocabularyError.empty(path: path) }
        self.init(tokens: lines)
    }

    public var count: Int { tokens.count }

    /// Id of a token spelled exactly (e.g. "[CLS]", "##ing").
    public func id(of token: String) -> Int32? {
        let utf8 = Array(token.utf8)
        return utf8.withUnsafeBufferPointer { starts.lookup($0, bytes: bytes) }
    }

    /// Id of a word-initial piece given as UTF-8 bytes.
    @inline(__always)
    func startID(_ piece: UnsafeBufferPointer<UInt8>) -> Int32? { starts.lookup(piece, bytes: bytes) }

    /// Id of `##piece` given the piece's UTF-8 bytes without `##`.
    @inline(__always)
    func continuationID(_ piece: UnsafeBufferPointer<UInt8>) -> Int32? { continuations.lookup(piece, bytes: bytes) }
}

/// Open addressing (linear probing) from byte strings to ids; keys are (offset, length) into a shared buffer.
struct ByteTable {
    private var slotOffset: [Int32]
    private var slotLength: [Int32]
    private var slotID: [Int32]
    private let mask: Int

    init(entries: [(Int, Int, Int32)], bytes: [UInt8]) {
        var capacity = 16
        while capacity < entries.count * 2 { capacity <<= 1 }
        mask = capacity - 1
        slotOffset = [Int32](repeating: 0, count: capacity)
        slotLength = [Int32](repeating: -1, count: capacity)
        slotID = [Int32](repeating: 0, count: capacity)
        bytes.withUnsafeBufferPointer { all in
            for (offset, length, id) in entries {
                let key = UnsafeBufferPointer(rebasing: all[offset..<(offset + length)])
                var slot = Int(truncatingIfNeeded: ByteTable.hash(key)) & mask
                while slotLength[slot] >= 0 {
                    let o = Int(slotOffset[slot]), l = Int(slotLength[slot])
                    if l == length && ByteTable.equal(UnsafeBufferPointer(rebasing: all[o..<(o + l)]), key) { break }
                    slot = (slot + 1) & mask
                }
                // Later lines overwrite earlier ones, like a Python dict built line by line.
                slotOffset[slot] = Int32(offset)
                slotLength[slot] = Int32(length)
                slotID[slot] = id
            }
        }
    }

    @inline(__always)
    static func hash(_ key: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in key { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return h ^ (h >> 29)
    }

    @inline(__always)
    static func equal(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        if a.count != b.count { return false }
        if a.count == 0 { return true }
        return memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0
    }

    @inline(__always)
    func lookup(_ key: UnsafeBufferPointer<UInt8>, bytes: [UInt8]) -> Int32? {
        var slot = Int(truncatingIfNeeded: ByteTable.hash(key)) & mask
        return bytes.withUnsafeBufferPointer { all -> Int32? in
            while true {
                let l = Int(slotLength[slot])
                if l < 0 { return nil }
                if l == key.count {
                    let o = Int(slotOffset[slot])
                    if ByteTable.equal(UnsafeBufferPointer(rebasing: all[o..<(o + l)]), key) { return slotID[slot] }
                }
                slot = (slot + 1) & mask
            }
        }
    }
}
