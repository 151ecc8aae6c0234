import Foundation
import Dispatch
import Data
#if canImport(Glibc)
import Glibc
#endif

/// Okapi BM25 parameters. Defaults k1 = 1.2, b = 0.75 (Robertson's, Lucene's and Elasticsearch's).
public struct BM25Parameters: Equatable, Sendable {
    public var k1: Double
    public var b: Double

    public init(k1: Double = 1.2, b: Double = 0.75) {
        self.k1 = k1
        self.b = b
    }

    public func validate() throws {
        guard k1.isFinite, k1 >= 0 else { throw RetrievalError.invalidArgument(name: "--k1", reason: "must be a number >= 0, got \(k1)") }
        guard b.isFinite, b >= 0, b <= 1 else { throw RetrievalError.invalidArgument(name: "--b", reason: "must be within [0, 1], got \(b)") }
    }
}

/// A lexical index of a JSON-lines corpus on disk, memory-mapped for search (see `BM25IndexBuilder`
/// for how it is built):
/// - `meta.json`: analyzer, counts, build stage, the corpus it came from;
/// - `rows.u64`: byte offset of each passage's line in the corpus file (passages are read from the
///   corpus itself when a hit is shown); `lengths.u32`: each passage's number of terms;
/// - `terms.bytes` + `terms.u64`: the vocabulary, sorted by UTF-8 bytes, and its offsets;
/// - `postings.u64`: where each term's postings start; `postings.bin`: (row, term frequency) pairs
///   of UInt32, rows increasing within a term.
///
/// Score of passage d for question q (terms t of q, repeats counted each time):
///   sum_t idf(t) * tf(t,d) * (k1 + 1) / (tf(t,d) + k1 * (1 - b + b * |d| / avgdl)),
///   idf(t) = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))   (Lucene's idf: never negative),
/// in Double. Only passages sharing at least one term with the question are returned.
public final class BM25Index {
    public struct Meta: Codable, Equatable {
        public var format: String = BM25Index.format
        /// "vocabulary" (first pass), "postings" (second pass, resumable), "complete".
        public var stage: String
        public var stopWords: String
        public var stopWordsChecksum: String
        public var passages: Int
        public var totalTerms: Int
        public var vocabulary: Int
        public var postings: Int
        public var corpusPath: String
        public var corpusBytes: Int
    }

    public static let format = "srdpr-bm25-index-1"
    public let directory: String
    public let meta: Meta
    public let analyzer: TextAnalyzer
    public let corpus: MappedFile
    private let rowOffsets: MappedArray<UInt64>
    private let lengths: MappedArray<UInt32>
    private let termBytes: MappedArray<UInt8>
    private let termOffsets: MappedArray<UInt64>
    private let postingOffsets: MappedArray<UInt64>
    private let postings: MappedArray<UInt32>

    public var passageCount: Int { meta.passages }

    static func path(_ directory: String, _ name: String) -> String { directory + "/" + name }

    /// Opens a complete index, checking that the corpus next to it is the one it was built from.
    public init(directory: String) throws {
        self.directory = directory
        let meta = try BM25Index.readMeta(directory)
        guard meta.stage == "complete" else {
            throw RetrievalError.badIndex(path: directory, reason: "its build stopped in the \(meta.stage) stage; run the build again (`srdpr mine-hard-negatives --bm25 --index \(directory)` continues it)")
        }
        self.meta = meta
        analyzer = try TextAnalyzer.named(meta.stopWords)
        guard BM25Index.checksum(analyzer.stopWords) == meta.stopWordsChecksum else {
            throw RetrievalError.badIndex(path: directory, reason: "its stop-word list \(meta.stopWords) has changed since it was built; rebuild it")
        }
        do { corpus = try MappedFile(path: meta.corpusPath) } catch {
            throw RetrievalError.cannotRead(path: meta.corpusPath, reason: "\(error.reason) (the corpus the index \(directory) was built from)")
        }
        guard corpus.count == meta.corpusBytes else {
            throw RetrievalError.badIndex(path: directory, reason: "its corpus \(meta.corpusPath) has \(corpus.count) bytes now, \(meta.corpusBytes) when the index was built; remove the index or choose another --index")
        }
        rowOffsets = try MappedArray(path: BM25Index.path(directory, "rows.u64"), count: meta.passages)
        lengths = try MappedArray(path: BM25Index.path(directory, "lengths.u32"), count: meta.passages)
        termOffsets = try MappedArray(path: BM25Index.path(directory, "terms.u64"), count: meta.vocabulary + 1)
        termBytes = try MappedArray(path: BM25Index.path(directory, "terms.bytes"), count: Int(termOffsets[meta.vocabulary]))
        postingOffsets = try MappedArray(path: BM25Index.path(directory, "postings.u64"), count: meta.vocabulary + 1)
        postings = try MappedArray(path: BM25Index.path(directory, "postings.bin"), count: 2 * meta.postings)
        guard Int(postingOffsets[meta.vocabulary]) == meta.postings else {
            throw RetrievalError.badIndex(path: directory, reason: "postings.u64 ends at \(postingOffsets[meta.vocabulary]), meta.json records \(meta.postings) postings")
        }
        postings.adviseRandomAccess()
    }

    /// The `meta.json` of an index directory, complete or not (its `stage` says how far a build got).
    public static func readMeta(_ directory: String) throws -> Meta {
        let path = path(directory, "meta.json")
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RetrievalError.badIndex(path: directory, reason: "no meta.json (not a BM25 index)")
        }
        let meta: Meta
        do { meta = try JSONDecoder().decode(Meta.self, from: data) } catch {
            throw RetrievalError.badIndex(path: directory, reason: "meta.json is not readable: \(error)")
        }
        guard meta.format == format else {
            throw RetrievalError.badIndex(path: directory, reason: "meta.json has format \(meta.format), expected \(format)")
        }
        return meta
    }

    static func checksum(_ words: Set<String>) -> String {
        var crc = CRC32C()
        for word in words.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) { crc.update(Array((word + "\n").utf8)) }
        return String(format: "crc32c:%08x", crc.finalValue)
    }

    /// The vocabulary index of `term`, by binary search over the sorted mapped terms.
    func termIndex(_ term: String) -> Int? {
        var term = term
        return term.withUTF8 { key -> Int? in
            var low = 0, high = meta.vocabulary
            while low < high {
                let mid = (low + high) / 2
                let start = Int(termOffsets[mid]), end = Int(termOffsets[mid + 1])
                let order = compareBytes(termBytes.pointer + start, end - start, key)
                if order == 0 { return mid }
                if order < 0 { low = mid + 1 } else { high = mid }
            }
            return nil
        }
    }

    private func compareBytes(_ a: UnsafePointer<UInt8>, _ count: Int, _ b: UnsafeBufferPointer<UInt8>) -> Int {
        let common = min(count, b.count)
        if common > 0 {
            let order = memcmp(a, b.baseAddress!, common)
            if order != 0 { return Int(order) }
        }
        return count - b.count
    }

    /// Number of passages holding `term`.
    public func documentFrequency(_ term: String) -> Int {
        guard let index = termIndex(term) else { return 0 }
        return Int(postingOffsets[index + 1] - postingOffsets[index])
    }

    public var averageLength: Double { meta.passages > 0 ? Double(meta.totalTerms) / Double(meta.passages) : 0 }

    /// Lucene's BM25 idf.
    public func idf(documentFrequency df: Int) -> Double {
        log(1 + (Double(meta.passages) - Double(df) + 0.5) / (Double(df) + 0.5))
    }

    /// The length normalisation k1 * (1 - b + b * |d| / avgdl), written in the order Python
    /// evaluates it so that scores agree to the last bit with a float64 implementation.
    @inline(__always)
    static func normalisation(length: Double, averageLength: Double, _ p: BM25Parameters) -> Double {
        p.k1 * (1 - p.b + p.b * length / averageLength)
    }

    @inline(__always)
    static func termScore(idf: Double, frequency tf: Double, normalisation: Double, _ p: BM25Parameters) -> Double {
        idf * (tf * (p.k1 + 1) / (tf + normalisation))
    }

    /// The BM25 score of a passage given by its terms (in the corpus or not) for `question`,
    /// with the index's statistics: the guards score positives this way.
    public func score(question: [String], passageTerms: [String], parameters: BM25Parameters) -> Double {
        var counts: [String: Int] = [:]
        for term in passageTerms { counts[term, default: 0] += 1 }
        let norm = BM25Index.normalisation(length: Double(passageTerms.count), averageLength: averageLength, parameters)
        var score = 0.0
        for term in question {
            guard let tf = counts[term] else { continue }
            score += BM25Index.termScore(idf: idf(documentFrequency: documentFrequency(term)), frequency: Double(tf),
                                         normalisation: norm, parameters)
        }
        return score
    }

    /// The best `k` passages for each question, best first (ties: lower row first).
    public func search(questions: [[String]], k: Int, parameters: BM25Parameters, threads: Int = 2) -> [[Hit<Double>]] {
        let count = meta.passages
        let average = averageLength
        var results = [[Hit<Double>]](repeating: [], count: questions.count)
        guard k > 0, count > 0, !questions.isEmpty else { return results }
        // One normalisation per passage, shared by the threads (8 bytes a passage).
        var norms = [Double](repeating: 0, count: count)
        for row in 0..<count {
            norms[row] = BM25Index.normalisation(length: Double(lengths[row]), averageLength: average, parameters)
        }
        let workers = max(1, min(threads, questions.count))
        results.withUnsafeMutableBufferPointer { out in
            let outBase = out.baseAddress!
            norms.withUnsafeBufferPointer { norm in
                DispatchQueue.concurrentPerform(iterations: workers) { worker in
                    // Per thread: a score accumulator over all passages and the list of rows touched.
                    var scores = [Double](repeating: 0, count: count)
                    var touched: [Int32] = []
                    var seen = [Bool](repeating: false, count: count)
                    for q in stride(from: worker, to: questions.count, by: workers) {
                        for term in questions[q] {
                            guard let t = termIndex(term) else { continue }
                            let start = Int(postingOffsets[t]), end = Int(postingOffsets[t + 1])
                            let idf = self.idf(documentFrequency: end - start)
                            for p in start..<end {
                                let row = Int(postings[2 * p]), tf = Double(postings[2 * p + 1])
                                if !seen[row] { seen[row] = true; touched.append(Int32(row)) }
                                scores[row] += BM25Index.termScore(idf: idf, frequency: tf, normalisation: norm[row], parameters)
                            }
                        }
                        var heap = TopKHeap<Hit<Double>>(capacity: k)
                        for row in touched {
                            let r = Int(row)
                            heap.offer(Hit(row: r, score: scores[r]))
                            scores[r] = 0
                            seen[r] = false
                        }
                        touched.removeAll(keepingCapacity: true)
                        (outBase + q).pointee = heap.sortedBestFirst()
                    }
                }
            }
        }
        return results
    }

    /// The corpus line of passage `row`, parsed.
    public func passage(row: Int) throws -> CorpusRecord {
        let start = Int(rowOffsets[row])
        let bytes = corpus.bytes
        var end = start
        if let found = memchr(bytes.baseAddress! + start, 0x0A, bytes.count - start) {
            end = bytes.baseAddress!.distance(to: found.assumingMemoryBound(to: UInt8.self))
        } else {
            end = bytes.count
        }
        return try CorpusRecord.parse(UnsafeBufferPointer(rebasing: bytes[start..<end]), path: meta.corpusPath, line: row + 1)
    }
}

/// A read-only mapping of a file of `count` fixed-size little-endian values.
final class MappedArray<Element>: @unchecked Sendable {
    let pointer: UnsafePointer<Element>
    let count: Int
    private let file: MappedFile?

    init(path: String, count: Int) throws {
        self.count = count
        let bytes = count * MemoryLayout<Element>.stride
        if bytes == 0 {
            file = nil
            pointer = UnsafePointer(UnsafeMutablePointer<Element>.allocate(capacity: 1))
            return
        }
        let mapped: MappedFile
        do { mapped = try MappedFile(path: path) } catch {
            throw RetrievalError.badIndex(path: path, reason: error.reason)
        }
        guard mapped.count == bytes else {
            throw RetrievalError.badIndex(path: path, reason: "has \(mapped.count) bytes, expected \(bytes) (\(count) values)")
        }
        file = mapped
        pointer = UnsafeRawPointer(mapped.bytes.baseAddress!).assumingMemoryBound(to: Element.self)
    }

    @inline(__always) subscript(_ i: Int) -> Element { pointer[i] }

    func adviseRandomAccess() { file?.adviseRandomAccess() }
}
