import Data

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
    /// `progress(n)` after each window. Returns the number of inputs.
    @discardableResult
    public static func run(inputPath: String, window: Int = 4096, into sink: EmbeddingSink,
                           encode: ([EncodingInput]) throws -> [[Float]], progress: (Int) -> Void = { _ in }) throws -> Int {
        var inputs: [EncodingInput] = [], ids: [String] = []
        var done = 0
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
                let line = try EncodingLine.parse(bytes, lineNumber: number, file: inputPath)
                inputs.append(line.input)
                ids.append(line.id ?? String(number))
                if inputs.count >= max(1, window) { try flush() }
            }
        } catch let error as StreamingLines.ReadError {
            throw ModelError.invalidInput(error.description)
        }
        try flush()
        try sink.commit()
        return done
    }
}
