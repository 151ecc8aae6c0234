import Foundation
import Data
#if canImport(Glibc)
import Glibc
#endif

/// Builds a `BM25Index` from a JSON-lines corpus in two streaming passes over the mapped corpus:
/// 1. vocabulary: validates every line (id, text, unique ids), counts each term's passages and
///    each passage's length, then writes the sorted vocabulary and where each term's postings go;
/// 2. postings: fills the mapped `postings.bin` passage by passage. Every `checkpointRows`
///    passages it flushes the postings (msync) and then atomically records how far it got
///    (`cursors.u64`), so a killed build continues from there. A build killed during the first
///    pass starts that pass again.
/// Memory: the vocabulary (a dictionary of the distinct terms), 12 bytes a passage for offsets and
/// lengths, and 8 bytes a term for the write cursors; the postings live in the mapped file.
public enum BM25IndexBuilder {
    public struct Progress {
        public var stage: String
        public var done: Int
        public var total: Int
    }

    /// Builds (or continues, or just checks) the index of `corpusPath` in `directory`.
    public static func build(corpusPath givenPath: String, directory: String, analyzer: TextAnalyzer,
                             checkpointRows: Int = 100_000, progress: (Progress) -> Void = { _ in }) throws {
        let fm = FileManager.default
        // The index names its corpus by absolute path, so it opens from any directory.
        let corpusPath = URL(fileURLWithPath: givenPath).standardizedFileURL.resolvingSymlinksInPath().path
        do { try fm.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw RetrievalError.cannotWrite(path: directory, reason: "\(error)")
        }
        let corpus: MappedFile
        do { corpus = try MappedFile(path: corpusPath) } catch {
            throw RetrievalError.cannotRead(path: corpusPath, reason: error.reason)
        }
        let checksum = BM25Index.checksum(analyzer.stopWords)
        var meta: BM25Index.Meta
        if fm.fileExists(atPath: BM25Index.path(directory, "meta.json")) {
            meta = try BM25Index.readMeta(directory)
            if meta.corpusBytes != corpus.count || meta.corpusPath != corpusPath {
                throw RetrievalError.badIndex(path: directory, reason: "it was built from \(meta.corpusPath) (\(meta.corpusBytes) bytes), now the corpus is \(corpusPath) (\(corpus.count) bytes); remove it or choose another --index")
            }
            if meta.stopWords != analyzer.stopWordsName || meta.stopWordsChecksum != checksum {
                throw RetrievalError.badIndex(path: directory, reason: "it was built with --stopwords \(meta.stopWords), now \(analyzer.stopWordsName); remove it or choose another --index")
            }
            if meta.stage == "complete" { return }
        } else {
            meta = BM25Index.Meta(stage: "vocabulary", stopWords: analyzer.stopWordsName, stopWordsChecksum: checksum,
                                  passages: 0, totalTerms: 0, vocabulary: 0, postings: 0,
                                  corpusPath: corpusPath, corpusBytes: corpus.count)
        }
        var termIDs: [String: Int32]
        if meta.stage == "vocabulary" {
            try writeMeta(meta, directory)
            termIDs = try buildVocabulary(corpus: corpus, path: corpusPath, directory: directory, analyzer: analyzer,
                                          meta: &meta, progress: progress)
        } else {
            termIDs = try readVocabulary(directory: directory, meta: meta)
        }
        try fillPostings(corpus: corpus, directory: directory, analyzer: analyzer, termIDs: termIDs,
                         meta: meta, checkpointRows: max(1, checkpointRows), progress: progress)
        termIDs = [:]
        meta.stage = "complete"
        try writeMeta(meta, directory)
        try? fm.removeItem(atPath: BM25Index.path(directory, "cursors.u64"))
    }

    // MARK: - first pass

    private static func buildVocabulary(corpus: MappedFile, path: String, directory: String, analyzer: TextAnalyzer,
                                        meta: inout BM25Index.Meta,
                                        progress: (Progress) -> Void) throws -> [String: Int32] {
        var firstIDs: [String: Int32] = [:]        // in order of first appearance
        var documentFrequency: [Int] = []
        var rowOffsets: [UInt64] = [], lengths: [UInt32] = []
        var idHashes = Set<UInt64>()
        var totalTerms = 0
        var terms: [String] = []
        var distinct = Set<Int32>()
        var lastReport = 0
        try JSONLinesFile.forEachLine(in: corpus.bytes) { line, bytes, end in
            let record = try CorpusRecord.parse(bytes, path: path, line: line)
            if !idHashes.insert(stableHash(record.id)).inserted {
                try reportDuplicate(id: record.id, line: line, corpus: corpus, path: path, before: end - bytes.count)
            }
            terms.removeAll(keepingCapacity: true)
            analyzer.appendTerms(of: record.title, to: &terms)
            analyzer.appendTerms(of: record.text, to: &terms)
            distinct.removeAll(keepingCapacity: true)
            for term in terms {
                let id: Int32
                if let known = firstIDs[term] { id = known } else {
                    id = Int32(documentFrequency.count)
                    firstIDs[term] = id
                    documentFrequency.append(0)
                }
                if distinct.insert(id).inserted { documentFrequency[Int(id)] += 1 }
            }
            guard terms.count <= UInt32.max, rowOffsets.count < Int32.max else {
                throw RetrievalError.badLine(path: path, line: line, reason: "too long, or the corpus has more than 2^31 passages")
            }
            rowOffsets.append(UInt64(end - bytes.count))
            lengths.append(UInt32(terms.count))
            totalTerms += terms.count
            if end - lastReport >= 1 << 22 {
                lastReport = end
                progress(Progress(stage: "vocabulary", done: end, total: corpus.count))
            }
        }
        guard !rowOffsets.isEmpty else {
            throw RetrievalError.cannotRead(path: path, reason: "the corpus holds no passage (an empty file or only blank lines)")
        }
        progress(Progress(stage: "vocabulary", done: corpus.count, total: corpus.count))
        // Sort the vocabulary by UTF-8 bytes (what search's binary search compares).
        var sorted = firstIDs.map { ($0.key, $0.value) }
        sorted.sort { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
        var termIDs: [String: Int32] = [:]
        termIDs.reserveCapacity(sorted.count)
        var termBytes: [UInt8] = [], termOffsets: [UInt64] = [0], postingOffsets: [UInt64] = [0]
        for (index, (term, firstID)) in sorted.enumerated() {
            termIDs[term] = Int32(index)
            termBytes.append(contentsOf: term.utf8)
            termOffsets.append(UInt64(termBytes.count))
            postingOffsets.append(postingOffsets[postingOffsets.count - 1] + UInt64(documentFrequency[Int(firstID)]))
        }
        let postings = Int(postingOffsets[postingOffsets.count - 1])
        try writeArray(rowOffsets, BM25Index.path(directory, "rows.u64"))
        try writeArray(lengths, BM25Index.path(directory, "lengths.u32"))
        try writeArray(termBytes, BM25Index.path(directory, "terms.bytes"))
        try writeArray(termOffsets, BM25Index.path(directory, "terms.u64"))
        try writeArray(postingOffsets, BM25Index.path(directory, "postings.u64"))
        // Write cursors start at each term's first posting, for 0 passages done.
        try writeArray([UInt64(0)] + postingOffsets.dropLast(), BM25Index.path(directory, "cursors.u64"))
        let postingsPath = BM25Index.path(directory, "postings.bin")
        let fd = open(postingsPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw RetrievalError.cannotWrite(path: postingsPath, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        let bytes = postings * 8
        if bytes > 0 {
            let status = posix_fallocate(fd, 0, off_t(bytes))
            guard status == 0 else {
                throw RetrievalError.cannotWrite(path: postingsPath, reason: "cannot reserve \(bytes) bytes: \(String(cString: strerror(status)))")
            }
        }
        meta.passages = rowOffsets.count
        meta.totalTerms = totalTerms
        meta.vocabulary = sorted.count
        meta.postings = postings
        meta.stage = "postings"
        try writeMeta(meta, directory)
        return termIDs
    }

    /// A duplicate id hash: find the first line with that id (a real duplicate, short of a 64-bit
    /// hash collision, in which case the build goes on).
    private static func reportDuplicate(id: String, line: Int, corpus: MappedFile, path: String, before offset: Int) throws {
        try JSONLinesFile.forEachLine(in: UnsafeBufferPointer(rebasing: corpus.bytes[0..<offset])) { first, bytes, _ in
            if try CorpusRecord.parse(bytes, path: path, line: first).id == id {
                throw RetrievalError.duplicateID(path: path, id: id, firstLine: first, line: line)
            }
        }
    }

    /// FNV-1a over the id's UTF-8 (stable across runs, unlike Swift's seeded `Hasher`).
    static func stableHash(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }

    private static func readVocabulary(directory: String, meta: BM25Index.Meta) throws -> [String: Int32] {
        let offsets = try MappedArray<UInt64>(path: BM25Index.path(directory, "terms.u64"), count: meta.vocabulary + 1)
        let bytes = try MappedArray<UInt8>(path: BM25Index.path(directory, "terms.bytes"), count: Int(offsets[meta.vocabulary]))
        var termIDs: [String: Int32] = [:]
        termIDs.reserveCapacity(meta.vocabulary)
        for t in 0..<meta.vocabulary {
            let start = Int(offsets[t]), end = Int(offsets[t + 1])
            termIDs[String(decoding: UnsafeBufferPointer(start: bytes.pointer + start, count: end - start), as: UTF8.self)] = Int32(t)
        }
        return termIDs
    }

    // MARK: - second pass

    private static func fillPostings(corpus: MappedFile, directory: String, analyzer: TextAnalyzer,
                                     termIDs: [String: Int32], meta: BM25Index.Meta, checkpointRows: Int,
                                     progress: (Progress) -> Void) throws {
        let rowOffsets = try MappedArray<UInt64>(path: BM25Index.path(directory, "rows.u64"), count: meta.passages)
        let cursorsPath = BM25Index.path(directory, "cursors.u64")
        // cursors.u64 = [passages done, then one write position per term].
        var cursors = try readArray(UInt64.self, cursorsPath, count: meta.vocabulary + 1)
        var done = Int(cursors[0])
        guard done <= meta.passages else {
            throw RetrievalError.badIndex(path: directory, reason: "cursors.u64 records \(done) passages of \(meta.passages)")
        }
        let postingsPath = BM25Index.path(directory, "postings.bin")
        let fd = open(postingsPath, O_RDWR)
        guard fd >= 0 else { throw RetrievalError.cannotWrite(path: postingsPath, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        let postingBytes = meta.postings * 8
        var info = stat()
        fstat(fd, &info)
        guard Int(info.st_size) == postingBytes else {
            throw RetrievalError.badIndex(path: directory, reason: "postings.bin has \(info.st_size) bytes, expected \(postingBytes)")
        }
        progress(Progress(stage: "postings", done: done, total: meta.passages))
        guard done < meta.passages, postingBytes > 0 else { return }
        guard let map = mmap(nil, postingBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), map != MAP_FAILED else {
            throw RetrievalError.cannotWrite(path: postingsPath, reason: "mmap: \(String(cString: strerror(errno)))")
        }
        defer { munmap(map, postingBytes) }
        let postings = map.assumingMemoryBound(to: UInt32.self)
        var terms: [String] = []
        var counts: [Int32: UInt32] = [:]
        let start = Int(rowOffsets[done])
        try JSONLinesFile.forEachLine(in: UnsafeBufferPointer(rebasing: corpus.bytes[start...])) { line, bytes, _ in
            let record = try CorpusRecord.parse(bytes, path: meta.corpusPath, line: line)
            terms.removeAll(keepingCapacity: true)
            analyzer.appendTerms(of: record.title, to: &terms)
            analyzer.appendTerms(of: record.text, to: &terms)
            counts.removeAll(keepingCapacity: true)
            for term in terms {
                guard let id = termIDs[term] else {
                    throw RetrievalError.badIndex(path: directory, reason: "term \"\(term)\" of passage row \(done) is not in its vocabulary: the corpus changed during the build; remove the index and build it again")
                }
                counts[id, default: 0] += 1
            }
            for (id, tf) in counts {
                let slot = Int(cursors[Int(id) + 1])
                postings[2 * slot] = UInt32(done)
                postings[2 * slot + 1] = tf
                cursors[Int(id) + 1] += 1
            }
            done += 1
            if done % checkpointRows == 0 || done == meta.passages {
                guard msync(map, postingBytes, MS_SYNC) == 0 else {
                    throw RetrievalError.cannotWrite(path: postingsPath, reason: "msync: \(String(cString: strerror(errno)))")
                }
                cursors[0] = UInt64(done)
                try writeArray(cursors, cursorsPath)
                progress(Progress(stage: "postings", done: done, total: meta.passages))
            }
        }
    }

    // MARK: - files

    static func writeArray<T>(_ values: [T], _ path: String) throws {
        let data = values.withUnsafeBytes { Foundation.Data($0) }
        do { try data.write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw RetrievalError.cannotWrite(path: path, reason: error.localizedDescription)
        }
    }

    static func readArray<T>(_ type: T.Type, _ path: String, count: Int) throws -> [T] {
        guard let data = FileManager.default.contents(atPath: path), data.count == count * MemoryLayout<T>.stride else {
            throw RetrievalError.badIndex(path: path, reason: "missing or not \(count) values long")
        }
        return data.withUnsafeBytes { Array($0.bindMemory(to: T.self)) }
    }

    private static func writeMeta(_ meta: BM25Index.Meta, _ directory: String) throws {
        let encoder = JSONEncoder.sortedKeys(.prettyPrinted)
        let path = BM25Index.path(directory, "meta.json")
        do { try encoder.encode(meta).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw RetrievalError.cannotWrite(path: path, reason: "\(error)")
        }
    }
}
