import Data
import Foundation

/// How `srdpr encode` writes embeddings.
public enum EmbeddingFormat: String, CaseIterable, Sendable {
    /// One `{"embedding": [...]}` line per input.
    case jsonl
    /// One float32 NumPy matrix [inputs, dimension] (`numpy.load`).
    case npy
}

/// Where a stream of embeddings goes, in input order: the embeddings file in `format`, and with
/// `idsPath` one JSON string per row (the input's id, else its line number). Everything is written
/// under temporary names and renamed by `commit()`: a failed run leaves no partial output.
public final class EmbeddingSink {
    private let jsonLines: AtomicOutputFile?
    private let matrix: NpyMatrixWriter?
    private let ids: AtomicOutputFile?
    private let dimension: Int
    public private(set) var rows = 0

    public init(path: String, format: EmbeddingFormat, dimension: Int, idsPath: String?) throws {
        self.dimension = dimension
        jsonLines = try Self.writing { format == .jsonl ? try AtomicOutputFile(path: path) : nil }
        matrix = try Self.writing { format == .npy ? try NpyMatrixWriter(path: path, columns: dimension) : nil }
        ids = try Self.writing { try idsPath.map { try AtomicOutputFile(path: $0) } }
    }

    /// Appends `embeddings` with the ids of their inputs.
    public func write(_ embeddings: [[Float]], ids rowIDs: [String]) throws {
        try Self.writing {
            if let jsonLines {
                var text = ""
                for e in embeddings { text += Self.jsonLine(e[...]) }
                try jsonLines.write(text)
            }
            if let matrix { try matrix.append(embeddings.flatMap { $0 }) }
            if let ids { try ids.write(rowIDs.map { JSONText.string($0) + "\n" }.joined()) }
        }
        rows += embeddings.count
    }

    /// One JSON line of an embedding (the same text for the same floats, wherever they were computed).
    static func jsonLine(_ embedding: ArraySlice<Float>) -> String {
        "{\"embedding\": [" + embedding.map { "\($0)" }.joined(separator: ", ") + "]}\n"
    }

    /// Appends `count` rows kept as raw float32 (row-major, little-endian: an index's
    /// embeddings.f32) with their ids file (one JSON string per line, as this sink writes ids):
    /// a shard of a `srdpr encode --workers` or `--bind` run. Gives the bytes `write` gives.
    public func append(rows count: Int, embeddingsPath: String, idsPath: String) throws {
        let rowBytes = dimension * MemoryLayout<Float>.size
        guard try Self.size(of: embeddingsPath) == count * rowBytes else {
            throw ModelError.invalidInput("\(embeddingsPath) has \(try Self.size(of: embeddingsPath)) bytes, not the \(count) rows of \(dimension) float32 of its shard")
        }
        try Self.writing {
            var carry: [UInt8] = []
            try Self.forEachBlock(of: embeddingsPath, from: 0, blockBytes: max(rowBytes, 1) * 1024) { block in
                // Whole rows only (a read may end inside a row); the rest waits for the next block.
                carry.append(contentsOf: block)
                let whole = rowBytes == 0 ? 0 : carry.count / rowBytes
                guard whole > 0 else { return }
                var floats = [Float](repeating: 0, count: whole * dimension)
                floats.withUnsafeMutableBytes { $0.copyBytes(from: carry[0..<(whole * rowBytes)]) }
                carry.removeFirst(whole * rowBytes)
                if let jsonLines {
                    var text = ""
                    for row in 0..<whole { text += Self.jsonLine(floats[(row * dimension)..<((row + 1) * dimension)]) }
                    try jsonLines.write(text)
                }
                if let matrix { try matrix.append(floats) }
            }
            if let ids { try Self.forEachBlock(of: idsPath, from: 0, blockBytes: 1 << 22) { try ids.write($0) } }
        }
        rows += count
    }

    /// Calls `body` with the bytes of the file at `path` from `offset`, `blockBytes` at a time.
    static func forEachBlock(of path: String, from offset: Int, blockBytes: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> Void) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ModelError.ioError(file: path, reason: "cannot open it") }
        defer { try? handle.close() }
        do {
            try handle.seek(toOffset: UInt64(offset))
            while let data = try handle.read(upToCount: blockBytes), !data.isEmpty {
                try data.withUnsafeBytes { try body($0.bindMemory(to: UInt8.self)) }
            }
        } catch let error as ModelError { throw error } catch let error as ByteDatasetWriteError { throw error } catch {
            throw ModelError.ioError(file: path, reason: "\(error)")
        }
    }

    static func size(of path: String) throws -> Int {
        guard let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int else {
            throw ModelError.ioError(file: path, reason: "cannot read its size")
        }
        return size
    }

    public func commit() throws {
        try Self.writing {
            try jsonLines?.commit()
            try matrix?.commit()
            try ids?.commit()
        }
    }

    /// Runs `body`, turning a write error into a ModelError that names the file.
    private static func writing<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as ByteDatasetWriteError {
            throw ModelError.ioError(file: error.file, reason: error.reason)
        }
    }
}

/// `srdpr encode` as a stream: the input file is read a window of lines at a time, each window
/// embedded (length-sorted batches inside it) and written before the next is read, so memory is
/// bounded by the window whatever the file's size. A bad line stops the run with its file and
/// line number, and nothing is left at the output paths.
public enum EmbeddingStream {
    /// Parses every input line of `path` (a bad one named by file and line, before anything is
    /// embedded) and calls `body(row, bytes)` with each input's row (0-based, non-blank lines) and
    /// length in bytes; returns the number of inputs. `vocabularySize`: token ids must be below it.
    @discardableResult
    public static func check(path: String, vocabularySize: Int? = nil, _ body: (Int, Int) -> Void = { _, _ in }) throws -> Int {
        var count = 0
        do {
            try StreamingLines.forEachLine(path: path) { number, bytes in
                _ = try EncodingLine.parse(bytes, lineNumber: number, file: path, vocabularySize: vocabularySize)
                body(count, bytes.count)
                count += 1
            }
        } catch let error as StreamingLines.ReadError {
            throw ModelError.invalidInput(error.description)
        }
        return count
    }

    /// The number of non-blank lines of `path` (a quick pass: no parsing), for progress.
    public static func countInputs(path: String) throws -> Int {
        var count = 0
        do { try StreamingLines.forEachLine(path: path) { _, _ in count += 1 } } catch let error as StreamingLines.ReadError {
            throw ModelError.invalidInput(error.description)
        }
        return count
    }

    /// Calls `body(firstRow, inputs, ids)` for every `window` inputs of `inputPath` (the last
    /// shorter), in order; `rows`: only these inputs (0-based, non-blank lines), a shard of a
    /// `--workers` or `--bind` run, the lines before them not parsed. An input's id is its line's
    /// "id" (or "_id"), else its line number. `vocabularySize`: token ids must be below it (a line
    /// that holds another is named, not left to the encoder).
    public static func forEachWindow(inputPath: String, rows: Range<Int>? = nil, window: Int, vocabularySize: Int? = nil,
                                     _ body: (Int, [EncodingInput], [String]) throws -> Void) throws {
        var inputs: [EncodingInput] = [], ids: [String] = []
        var first = rows?.lowerBound ?? 0, seen = 0
        struct EndOfRows: Error {}
        func flush() throws {
            guard !inputs.isEmpty else { return }
            try body(first, inputs, ids)
            first += inputs.count
            inputs.removeAll(keepingCapacity: true)
            ids.removeAll(keepingCapacity: true)
        }
        do {
            try StreamingLines.forEachLine(path: inputPath) { number, bytes in
                defer { seen += 1 }
                if let rows {
                    guard seen >= rows.lowerBound else { return }
                    if seen >= rows.upperBound { throw EndOfRows() }
                }
                let line = try EncodingLine.parse(bytes, lineNumber: number, file: inputPath, vocabularySize: vocabularySize)
                inputs.append(line.input)
                ids.append(line.id ?? String(number))
                if inputs.count >= max(1, window) { try flush() }
            }
        } catch is EndOfRows {
        } catch let error as StreamingLines.ReadError {
            throw ModelError.invalidInput(error.description)
        }
        try flush()
        if let rows, first != rows.upperBound {
            throw ModelError.invalidInput("\(inputPath) has \(seen) inputs, fewer than the \(rows.upperBound) its shard \(rows) needs (did the file change?)")
        }
    }

    /// Embeds every input line of `inputPath` with `encode` into `sink`, `window` lines at a time,
    /// and commits it; `progress(n)` after each window. Returns the number of inputs.
    @discardableResult
    public static func run(inputPath: String, window: Int = 4096, vocabularySize: Int? = nil, into sink: EmbeddingSink,
                           encode: ([EncodingInput]) throws -> [[Float]], progress: (Int) -> Void = { _ in }) throws -> Int {
        var done = 0
        try forEachWindow(inputPath: inputPath, window: window, vocabularySize: vocabularySize) { _, inputs, ids in
            try sink.write(try encode(inputs), ids: ids)
            done += inputs.count
            progress(done)
        }
        try sink.commit()
        return done
    }
}
