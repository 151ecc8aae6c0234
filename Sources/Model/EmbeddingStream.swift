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
    public private(set) var rows = 0

    public init(path: String, format: EmbeddingFormat, dimension: Int, idsPath: String?) throws {
        jsonLines = try Self.writing { format == .jsonl ? try AtomicOutputFile(path: path) : nil }
        matrix = try Self.writing { format == .npy ? try NpyMatrixWriter(path: path, columns: dimension) : nil }
        ids = try Self.writing { try idsPath.map { try AtomicOutputFile(path: $0) } }
    }

    /// Appends `embeddings` with the ids of their inputs.
    public func write(_ embeddings: [[Float]], ids rowIDs: [String]) throws {
        try Self.writing {
            if let jsonLines {
                var text = ""
                for e in embeddings { text += "{\"embedding\": [" + e.map { "\($0)" }.joined(separator: ", ") + "]}\n" }
                try jsonLines.write(text)
            }
            if let matrix { try matrix.append(embeddings.flatMap { $0 }) }
            if let ids { try ids.write(rowIDs.map { JSONText.string($0) + "\n" }.joined()) }
        }
        rows += embeddings.count
    }

    /// Appends the files of a shard of a `--workers` run (same format and dimension) as they are.
    func append(filesOf shard: ShardedEncoding.Shard) throws {
        try Self.writing {
            if let jsonLines {
                try Self.forEachBlock(of: shard.output, from: 0, blockBytes: 1 << 22) { block in
                    rows += block.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
                    try jsonLines.write(block)
                }
            }
            if let matrix {
                let rowBytes = matrix.columns * MemoryLayout<Float>.size
                let (dataOffset, shardRows) = try Self.npyShape(of: shard.output, columns: matrix.columns)
                try Self.forEachBlock(of: shard.output, from: dataOffset, blockBytes: max(rowBytes, 1) * 4096) { block in
                    try matrix.append(Array(UnsafeRawBufferPointer(block).bindMemory(to: Float.self)))
                }
                rows += shardRows
            }
            if let ids {
                guard let shardIDs = shard.ids else { throw ModelError.invalidInput("shard \(shard.output) has no ids file") }
                try Self.forEachBlock(of: shardIDs, from: 0, blockBytes: 1 << 22) { try ids.write($0) }
            }
        }
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

    /// Where the rows of a float32 `.npy` file (format 1.0) start and how many there are, checked
    /// against its header's dtype and shape and against the file's size.
    static func npyShape(of path: String, columns: Int) throws -> (dataOffset: Int, rows: Int) {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ModelError.ioError(file: path, reason: "cannot open it") }
        defer { try? handle.close() }
        let head = [UInt8]((try? handle.read(upToCount: 4096)) ?? Foundation.Data())
        let refuse = ModelError.invalidInput("\(path) is not a float32 .npy matrix of \(columns) columns as `srdpr encode` writes")
        guard head.count >= 10, head[0] == 0x93, Array(head[1..<6]) == Array("NUMPY".utf8), head[6] == 1 else { throw refuse }
        let dataOffset = 10 + Int(head[8]) + (Int(head[9]) << 8)
        guard head.count >= dataOffset else { throw refuse }
        let dict = String(decoding: head[10..<dataOffset], as: UTF8.self)
        guard dict.contains("'descr': '<f4'"), dict.contains("'fortran_order': False"),
              let shapeStart = dict.range(of: "'shape': ("), let shapeEnd = dict[shapeStart.upperBound...].firstIndex(of: ")") else { throw refuse }
        let shape = dict[shapeStart.upperBound..<shapeEnd].split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard shape.count == 2, let rows = shape[0], shape[1] == columns,
              try size(of: path) == dataOffset + rows * columns * MemoryLayout<Float>.size else { throw refuse }
        return (dataOffset, rows)
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
    /// The number of non-blank lines of `path` (a quick pass: no parsing), for progress.
    public static func countInputs(path: String) throws -> Int {
        var count = 0
        do { try StreamingLines.forEachLine(path: path) { _, _ in count += 1 } } catch let error as StreamingLines.ReadError {
            throw ModelError.invalidInput(error.description)
        }
        return count
    }

    /// Embeds every input line of `inputPath` with `encode` into `sink`, `window` lines at a time;
    /// `progress(n)` after each window. Returns the number of inputs. `rows`: only these inputs
    /// (0-based, non-blank lines), a shard of a `--workers` run; lines before them are not parsed.
    @discardableResult
    public static func run(inputPath: String, rows: Range<Int>? = nil, window: Int = 4096, into sink: EmbeddingSink,
                           encode: ([EncodingInput]) throws -> [[Float]], progress: (Int) -> Void = { _ in }) throws -> Int {
        var inputs: [EncodingInput] = [], ids: [String] = []
        var done = 0, seen = 0
        struct EndOfRows: Error {}
        func flush() throws {
            guard !inputs.isEmpty else { return }
            let embeddings = try encode(inputs)
            try sink.write(embeddings, ids: ids)
            done += inputs.count
            inputs.removeAll(keepingCapacity: true)
            ids.removeAll(keepingCapacity: true)
            progress(done)
        }
        do {
            try StreamingLines.forEachLine(path: inputPath) { number, bytes in
                defer { seen += 1 }
                if let rows {
                    guard seen >= rows.lowerBound else { return }
                    if seen >= rows.upperBound { throw EndOfRows() }
                }
                let line = try EncodingLine.parse(bytes, lineNumber: number, file: inputPath)
                inputs.append(line.input)
                ids.append(line.id ?? String(number))
                if inputs.count >= max(1, window) { try flush() }
            }
        } catch is EndOfRows {
        } catch let error as StreamingLines.ReadError {
            throw ModelError.invalidInput(error.description)
        }
        try flush()
        if let rows, done != rows.count {
            throw ModelError.invalidInput("\(inputPath) has \(seen) inputs, fewer than the \(rows.upperBound) its shard \(rows) needs (did the file change?)")
        }
        try sink.commit()
        return done
    }
}
