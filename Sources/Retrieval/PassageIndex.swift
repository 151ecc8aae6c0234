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

    /// Encodes `corpus` into `directory`, `chunkRows` passages at a time, continuing a build that
    /// was interrupted. `progress` is called with (rows done, total) after each chunk.
    public static func build(corpus: Corpus, encoder: PassageEncoder, directory: String, chunkRows: Int = 512,
                             progress: (Int, Int) -> Void = { _, _ in }) throws {
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw RetrievalError.cannotWrite(path: directory, reason: "\(error)")
        }
        let corpusBytes = (try? fm.attributesOfItem(atPath: corpus.path)[.size] as? Int) ?? -1
        var meta = Meta(dimension: encoder.dimension, encodedRows: 0, totalRows: corpus.ids.count, complete: false,
                        modelName: encoder.modelName, modelFingerprint: encoder.fingerprint,
                        similarity: encoder.similarity, corpusPath: corpus.path, corpusBytes: corpusBytes)
        if fm.fileExists(atPath: metaPath(directory)) {
            let existing = try readMeta(directory)
            if existing.modelFingerprint != encoder.fingerprint {
                throw RetrievalError.modelMismatch(index: directory, indexModel: existing.modelName, requestedModel: encoder.modelName)
            }
            if existing.totalRows != corpus.ids.count || existing.corpusBytes != corpusBytes || existing.dimension != encoder.dimension {
                throw RetrievalError.corpusMismatch(index: directory, reason: "it has \(existing.totalRows) passages from \(existing.corpusPath) (\(existing.corpusBytes) bytes), now \(corpus.ids.count) from \(corpus.path) (\(corpusBytes) bytes)")
            }
            meta.encodedRows = existing.encodedRows
            if existing.complete { return }
        }
        let rowBytes = encoder.dimension * MemoryLayout<Float>.size
        let embeddings = try AppendFile(path: embeddingsPath(directory), keepBytes: meta.encodedRows * rowBytes)
        let idPrefix = corpus.ids.prefix(meta.encodedRows).map { JSONText.string($0) + "\n" }.joined()
        let idFile = try AppendFile(path: idsPath(directory), keepBytes: idPrefix.utf8.count)
        try writeMeta(meta, directory)

        var row = meta.encodedRows
        progress(row, corpus.ids.count)
        while row < corpus.ids.count {
            let end = min(row + chunkRows, corpus.ids.count)
            let vectors = try encoder.encodePassages(Array(corpus.passages[row..<end]))
            guard vectors.count == (end - row) * encoder.dimension else {
                throw RetrievalError.invalidArgument(name: "encoder", reason: "returned \(vectors.count) floats for \(end - row) passages of dimension \(encoder.dimension)")
            }
            try vectors.withUnsafeBytes { try embeddings.append($0) }
            try Array(corpus.ids[row..<end].map { JSONText.string($0) + "\n" }.joined().utf8).withUnsafeBytes { try idFile.append($0) }
            try embeddings.sync()
            try idFile.sync()
            row = end
            meta.encodedRows = row
            try writeMeta(meta, directory)
            progress(row, corpus.ids.count)
        }
        meta.complete = true
        try writeMeta(meta, directory)
    }

    private static func writeMeta(_ meta: Meta, _ directory: String) throws {
        let encoder = JSONEncoder.sortedKeys(.prettyPrinted)
        let path = metaPath(directory)
        do {
            try encoder.encode(meta).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw RetrievalError.cannotWrite(path: path, reason: "\(error)")
        }
    }
}

/// A file opened for appending after cutting it to `keepBytes` (drops rows written after the
/// last recorded checkpoint of a build).
private final class AppendFile {
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

    func sync() throws {
        guard fsync(fd) == 0 else { throw RetrievalError.cannotWrite(path: path, reason: "fsync: \(String(cString: strerror(errno)))") }
    }
}
