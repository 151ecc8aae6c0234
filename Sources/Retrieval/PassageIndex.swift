import Foundation
import Data
#if canImport(Glibc)
import Glibc
#endif

/// An encoded passage collection on disk:
/// - `embeddings.f32`: row-major float32 (little-endian) [count x dimension], memory-mapped for search;
/// - `ids.jsonl`: one JSON string per line, row order;
/// - `meta.json`: dimension, rows encoded so far, whether complete, the model and corpus it came from.
///
/// Building is chunked and resumable: rows are appended and fsynced before `meta.json` records
/// them, so a killed build restarts from the last recorded row (anything after it is cut off).
public final class PassageIndex {
    public struct Meta: Codable, Equatable {
        public var format: String = "srdpr-passage-index-1"
        public var dimension: Int
        public var encodedRows: Int
        public var totalRows: Int
        public var complete: Bool
        public var modelName: String
        public var modelFingerprint: String
        public var similarity: SimilarityFunction
        public var corpusPath: String
        public var corpusBytes: Int
        /// A shard of a `--workers` build: the corpus row of its first row (absent in a whole index).
        public var firstRow: Int?
    }

    public let directory: String
    public let meta: Meta
    public let ids: [String]
    private let mapping: UnsafeMutableRawPointer?
    private let mappedBytes: Int

    /// The embedding matrix, valid while this object lives.
    public var embeddings: UnsafeBufferPointer<Float> {
        guard let mapping else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: mapping.assumingMemoryBound(to: Float.self), count: meta.encodedRows * meta.dimension)
    }

    /// Passages encoded and made durable at a time unless told otherwise (`srdpr index --chunk-rows`).
    public static let defaultChunkRows = 512

    static func metaPath(_ dir: String) -> String { dir + "/meta.json" }
    static func embeddingsPath(_ dir: String) -> String { dir + "/embeddings.f32" }
    static func idsPath(_ dir: String) -> String { dir + "/ids.jsonl" }

    /// Opens a complete index for search, checking it was built with `encoder`'s weights when given.
    public init(directory: String, expectedModel: (name: String, fingerprint: String)? = nil) throws {
        self.directory = directory
        let meta = try PassageIndex.readMeta(directory)
        guard meta.complete else {
            throw RetrievalError.badIndex(path: directory, reason: "its build stopped at row \(meta.encodedRows) of \(meta.totalRows); run `srdpr index` again to finish it")
        }
        if let expectedModel, expectedModel.fingerprint != meta.modelFingerprint {
            throw RetrievalError.modelMismatch(index: directory, indexModel: meta.modelName, requestedModel: expectedModel.name)
        }
        let idsText = try String(contentsOfFile: PassageIndex.idsPath(directory), encoding: .utf8)
        var ids: [String] = []
        ids.reserveCapacity(meta.encodedRows)
        for line in idsText.split(separator: "\n") {
            guard let data = line.data(using: .utf8),
                  let id = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) as? String else {
                throw RetrievalError.badIndex(path: directory, reason: "ids.jsonl line \(ids.count + 1) is not a JSON string")
            }
            ids.append(id)
        }
        guard ids.count == meta.encodedRows else {
            throw RetrievalError.badIndex(path: directory, reason: "ids.jsonl has \(ids.count) ids for \(meta.encodedRows) rows")
        }
        let bytes = meta.encodedRows * meta.dimension * MemoryLayout<Float>.size
        let path = PassageIndex.embeddingsPath(directory)
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw RetrievalError.cannotRead(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        fstat(fd, &info)
        guard Int(info.st_size) == bytes else {
            throw RetrievalError.badIndex(path: directory, reason: "embeddings.f32 has \(info.st_size) bytes, expected \(bytes) (\(meta.encodedRows) x \(meta.dimension) floats)")
        }
        if bytes > 0 {
            guard let map = mmap(nil, bytes, PROT_READ, MAP_SHARED, fd, 0), map != MAP_FAILED else {
                throw RetrievalError.cannotRead(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
            }
            mapping = map
        } else {
            mapping = nil
        }
        mappedBytes = bytes
        self.meta = meta
        self.ids = ids
    }

    deinit {
        if let mapping { munmap(mapping, mappedBytes) }
    }

    static func readMeta(_ directory: String) throws -> Meta {
        let path = metaPath(directory)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RetrievalError.badIndex(path: directory, reason: "no meta.json (not an index built by `srdpr index`)")
        }
        do {
            return try JSONDecoder().decode(Meta.self, from: data)
        } catch {
            throw RetrievalError.badIndex(path: directory, reason: "meta.json is not readable: \(error)")
        }
    }

    /// What an index records of the model that encodes it (a `PassageEncoder`'s identity).
    public struct Signature {
        public var modelName: String
        public var fingerprint: String
        public var dimension: Int
        public var similarity: SimilarityFunction

        public init(modelName: String, fingerprint: String, dimension: Int, similarity: SimilarityFunction) {
            self.modelName = modelName
            self.fingerprint = fingerprint
            self.dimension = dimension
            self.similarity = similarity
        }

        public init(_ encoder: PassageEncoder) {
            self.init(modelName: encoder.modelName, fingerprint: encoder.fingerprint, dimension: encoder.dimension, similarity: encoder.similarity)
        }
    }

    /// Encodes a loaded corpus: the same as ``build(corpusPath:rows:encoder:directory:chunkRows:progress:)``
    /// of the file it was loaded from.
    public static func build(corpus: Corpus, encoder: PassageEncoder, directory: String, chunkRows: Int = defaultChunkRows,
                             progress: (Int, Int) -> Void = { _, _ in }) throws {
        try build(corpusPath: corpus.path, encoder: encoder, directory: directory, chunkRows: chunkRows, progress: progress)
    }

    /// Encodes the corpus file at `corpusPath` into `directory` as it reads it, `chunkRows`
    /// passages at a time (memory: one chunk), continuing a build that was interrupted.
    /// `rows` nil: the whole corpus, every line checked (and ids unique) before anything is
    /// encoded. `rows` given: that range only, a shard of a `--workers` build whose parent checked
    /// the corpus. `progress` is called with (rows done, rows to do) after each chunk.
    public static func build(corpusPath: String, rows: Range<Int>? = nil, encoder: PassageEncoder, directory: String,
                             chunkRows: Int = defaultChunkRows, progress: (Int, Int) -> Void = { _, _ in }) throws {
        let shardFirstRow = rows?.lowerBound
        let rows = try rows ?? 0..<CorpusStream.scan(path: corpusPath)
        guard let writer = try IndexWriter(directory: directory, corpusPath: corpusPath, totalRows: rows.count, firstRow: shardFirstRow,
                                           signature: Signature(encoder)) else { return }
        var passages: [Passage] = [], ids: [String] = []
        func flush() throws {
            guard !passages.isEmpty else { return }
            try writer.append(vectors: try encoder.encodePassages(passages), ids: ids)
            passages.removeAll(keepingCapacity: true)
            ids.removeAll(keepingCapacity: true)
            progress(writer.encodedRows, rows.count)
        }
        progress(writer.encodedRows, rows.count)
        try CorpusStream.forEach(path: corpusPath, rows: (rows.lowerBound + writer.encodedRows)..<rows.upperBound) { _, record in
            passages.append(Passage(title: record.title, text: record.text))
            ids.append(record.id)
            if passages.count == chunkRows { try flush() }
        }
        try flush()
        try writer.finish()
    }

    /// `directory`'s meta for a build of `totalRows` passages of `corpusPath` (from row `firstRow`
    /// for a shard), the rows already encoded taken from an interrupted build; nil when the index is
    /// already complete. An index of another model, corpus or range is refused.
    static func start(directory: String, corpusPath: String, totalRows: Int, firstRow: Int?, signature: Signature) throws -> Meta? {
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw RetrievalError.cannotWrite(path: directory, reason: "\(error)")
        }
        let corpusBytes = (try? fm.attributesOfItem(atPath: corpusPath)[.size] as? Int) ?? -1
        var meta = Meta(dimension: signature.dimension, encodedRows: 0, totalRows: totalRows, complete: false,
                        modelName: signature.modelName, modelFingerprint: signature.fingerprint,
                        similarity: signature.similarity, corpusPath: corpusPath, corpusBytes: corpusBytes, firstRow: firstRow)
        if fm.fileExists(atPath: metaPath(directory)) {
            let existing = try readMeta(directory)
            if existing.modelFingerprint != signature.fingerprint {
                throw RetrievalError.modelMismatch(index: directory, indexModel: existing.modelName, requestedModel: signature.modelName)
            }
            if existing.totalRows != totalRows || existing.corpusBytes != corpusBytes || existing.dimension != signature.dimension
                || existing.firstRow != firstRow {
                let range = { (first: Int?, count: Int) in first.map { " (rows \($0)..<\($0 + count))" } ?? "" }
                throw RetrievalError.corpusMismatch(index: directory, reason: "it has \(existing.totalRows) passages\(range(existing.firstRow, existing.totalRows)) from \(existing.corpusPath) (\(existing.corpusBytes) bytes), now \(totalRows)\(range(firstRow, totalRows)) from \(corpusPath) (\(corpusBytes) bytes)")
            }
            if existing.complete { return nil }
            meta.encodedRows = existing.encodedRows
        }
        return meta
    }

    /// Records a build as complete; the shards of an earlier `--workers` run of it are no longer needed.
    static func finish(_ meta: inout Meta, directory: String) throws {
        meta.complete = true
        try writeMeta(meta, directory)
        try? FileManager.default.removeItem(atPath: shardsPath(directory))
    }

    /// Where a `--workers` build keeps its shards (each an index of a row range) until they are merged.
    public static func shardsPath(_ directory: String) -> String { directory + "/shards" }

    static func writeMeta(_ meta: Meta, _ directory: String) throws {
        let encoder = JSONEncoder.sortedKeys(.prettyPrinted)
        let path = metaPath(directory)
        do {
            try encoder.encode(meta).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw RetrievalError.cannotWrite(path: path, reason: "\(error)")
        }
    }
}

/// An index being built: rows are appended (and made durable) chunk by chunk, meta.json counts
/// them after each, and `finish` marks the index complete. A one-process build writes its
/// encoder's chunks here; `srdpr index --bind` writes the chunks its remote workers send.
public final class IndexWriter {
    public let directory: String
    private var meta: PassageIndex.Meta
    private let files: IndexFiles

    /// Rows already encoded (by an interrupted build of the same index, then by `append`).
    public var encodedRows: Int { meta.encodedRows }
    public var totalRows: Int { meta.totalRows }

    /// Opens `directory` for a build of `totalRows` passages of `corpusPath` (from corpus row
    /// `firstRow` for a shard), continuing an interrupted one; nil when it is already complete, or
    /// has every row and is then marked complete here (a build killed after its last rows' meta.json
    /// but before `finish`: no caller is left to append nothing and finish it). An index of another
    /// model, corpus or range is refused.
    public init?(directory: String, corpusPath: String, totalRows: Int, firstRow: Int?, signature: PassageIndex.Signature) throws {
        guard let meta = try PassageIndex.start(directory: directory, corpusPath: corpusPath, totalRows: totalRows, firstRow: firstRow,
                                                signature: signature) else { return nil }
        self.directory = directory
        self.meta = meta
        files = try IndexFiles(directory: directory, keepRows: meta.encodedRows, dimension: signature.dimension)
        try PassageIndex.writeMeta(meta, directory)
        if meta.encodedRows == meta.totalRows {
            try finish()
            return nil
        }
    }

    /// Appends the next rows (vectors row-major, one id each), durable before meta.json counts them.
    public func append(vectors: [Float], ids: [String]) throws {
        guard vectors.count == ids.count * meta.dimension else {
            throw RetrievalError.invalidArgument(name: "encoder", reason: "returned \(vectors.count) floats for \(ids.count) passages of dimension \(meta.dimension)")
        }
        guard meta.encodedRows + ids.count <= meta.totalRows else {
            throw RetrievalError.badIndex(path: directory, reason: "\(ids.count) more rows after \(meta.encodedRows) exceed its \(meta.totalRows)")
        }
        try files.append(vectors: vectors, ids: ids)
        meta.encodedRows += ids.count
        try PassageIndex.writeMeta(meta, directory)
    }

    /// Records the build as complete (every row must be there).
    public func finish() throws {
        guard meta.encodedRows == meta.totalRows else {
            throw RetrievalError.badIndex(path: directory, reason: "finished with \(meta.encodedRows) of its \(meta.totalRows) rows")
        }
        try PassageIndex.finish(&meta, directory: directory)
    }
}

/// An index's two row files opened for appending after its first `keepRows` rows (what meta.json
/// records; anything after them, from a build killed between a write and its meta, is cut off).
final class IndexFiles {
    let embeddings: AppendFile
    let ids: AppendFile

    init(directory: String, keepRows: Int, dimension: Int) throws {
        embeddings = try AppendFile(path: PassageIndex.embeddingsPath(directory), keepBytes: keepRows * dimension * MemoryLayout<Float>.size)
        let idsPath = PassageIndex.idsPath(directory)
        ids = try AppendFile(path: idsPath, keepBytes: try Self.bytes(ofLines: keepRows, path: idsPath))
    }

    /// Appends rows (vectors row-major, one id each) and makes them durable, before meta.json counts them.
    func append(vectors: [Float], ids rowIDs: [String]) throws {
        try vectors.withUnsafeBytes { try embeddings.append($0) }
        try Array(rowIDs.map { JSONText.string($0) + "\n" }.joined().utf8).withUnsafeBytes { try ids.append($0) }
        try embeddings.sync()
        try ids.sync()
    }

    /// Appends the rows of the index in `shardDirectory` (`rows` of them, checked against the
    /// files' sizes) and makes them durable.
    func append(contentsOf shardDirectory: String, rows: Int, dimension: Int) throws {
        let embeddingsPath = PassageIndex.embeddingsPath(shardDirectory), idsPath = PassageIndex.idsPath(shardDirectory)
        let idBytes = try Self.bytes(ofLines: rows, path: idsPath)
        try embeddings.copy(from: embeddingsPath, bytes: rows * dimension * MemoryLayout<Float>.size)
        try ids.copy(from: idsPath, bytes: idBytes)
        try embeddings.sync()
        try ids.sync()
    }

    /// The length of the first `lines` lines of the file at `path` (0 lines: 0, even with no file).
    /// ids.jsonl has no blank line (every id is a quoted JSON string), so every line is counted.
    static func bytes(ofLines lines: Int, path: String) throws -> Int {
        guard lines > 0 else { return 0 }
        struct Done: Error {}
        var seen = 0, offset = 0
        do {
            try StreamingLines.forEachLine(path: path) { _, line in
                seen += 1
                offset += line.count + 1
                if seen == lines { throw Done() }
            }
        } catch is Done {
            return offset
        } catch let error as StreamingLines.ReadError {
            throw RetrievalError.badIndex(path: path, reason: error.reason)
        }
        throw RetrievalError.badIndex(path: path, reason: "it has \(seen) lines, fewer than the \(lines) rows meta.json records")
    }
}

/// A file opened for appending after cutting it to `keepBytes` (drops rows written after the
/// last recorded checkpoint of a build).
final class AppendFile {
    let path: String
    let fd: Int32

    init(path: String, keepBytes: Int) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT, 0o644)
        guard fd >= 0 else { throw RetrievalError.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        var info = stat()
        fstat(fd, &info)
        if Int(info.st_size) < keepBytes {
            close(fd)
            throw RetrievalError.badIndex(path: path, reason: "file is shorter (\(info.st_size) bytes) than meta.json records (\(keepBytes))")
        }
        guard ftruncate(fd, off_t(keepBytes)) == 0, lseek(fd, off_t(keepBytes), SEEK_SET) >= 0 else {
            close(fd)
            throw RetrievalError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
        }
    }

    deinit { close(fd) }

    func append(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw RetrievalError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
            }
            done += n
        }
    }

    /// Appends the first `bytes` bytes of the file at `source` (an error if it is shorter).
    func copy(from source: String, bytes: Int) throws {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw RetrievalError.cannotRead(path: source, reason: String(cString: strerror(errno))) }
        defer { close(input) }
        var block = [UInt8](repeating: 0, count: 1 << 20)
        var left = bytes
        while left > 0 {
            let n = block.withUnsafeMutableBytes { read(input, $0.baseAddress, min(left, $0.count)) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else {
                throw RetrievalError.badIndex(path: source, reason: n < 0 ? String(cString: strerror(errno)) : "file ends \(left) bytes before its rows do")
            }
            try block.withUnsafeBytes { try append(UnsafeRawBufferPointer(rebasing: $0[..<n])) }
            left -= n
        }
    }

    func sync() throws {
        guard fsync(fd) == 0 else { throw RetrievalError.cannotWrite(path: path, reason: "fsync: \(String(cString: strerror(errno)))") }
    }
}
