import Data

/// A passage collection read line by line as it goes (``StreamingLines``), for `srdpr index`:
/// memory holds a block of the file and the lines being encoded, not the corpus. Rows are the
/// non-blank lines, numbered from 0 in file order (what `Corpus.load` makes rows of).
public enum CorpusStream {
    /// Checks every line of `path` (a passage record, ids unique) and counts the passages,
    /// keeping no passage: ids are remembered as 64-bit hashes (8 bytes a passage), and a hash
    /// seen twice is confirmed by reading the file again, so a real duplicate is named with both
    /// lines and a hash collision is not taken for one.
    public static func scan(path: String) throws -> Int {
        var seen = Set<Int>()
        var rows = 0
        try readLines(path: path) { line, bytes in
            let record = try CorpusRecord.parse(bytes, path: path, line: line)
            if !seen.insert(record.id.hashValue).inserted, let first = try firstLine(of: record.id, in: path, before: line) {
                throw RetrievalError.duplicateID(path: path, id: record.id, firstLine: first, line: line)
            }
            rows += 1
        }
        return rows
    }

    /// Calls `body(row, record)` for the passages of `rows`, in order, parsing no line before them and
    /// reading no line after them. Throws when the file ends before `rows.upperBound`.
    public static func forEach(path: String, rows: Range<Int>, _ body: (Int, CorpusRecord) throws -> Void) throws {
        guard !rows.isEmpty else { return }
        var row = 0
        do {
            try readLines(path: path) { line, bytes in
                defer { row += 1 }
                guard row >= rows.lowerBound else { return }
                try body(row, try CorpusRecord.parse(bytes, path: path, line: line))
                if row + 1 == rows.upperBound { throw EndOfRange() }
            }
        } catch is EndOfRange {
            return
        }
        throw RetrievalError.cannotRead(path: path, reason: "the corpus ends after \(row) passages, expected at least \(rows.upperBound) (did the file change while it was indexed?)")
    }

    /// The first line before `line` whose passage id is `id`, nil when there is none (a hash collision).
    static func firstLine(of id: String, in path: String, before line: Int) throws -> Int? {
        var found: Int?
        do {
            try readLines(path: path) { number, bytes in
                guard number < line else { throw EndOfRange() }
                if try CorpusRecord.parse(bytes, path: path, line: number).id == id {
                    found = number
                    throw EndOfRange()
                }
            }
        } catch is EndOfRange {}
        return found
    }

    /// ``StreamingLines`` with its read errors as `RetrievalError.cannotRead`.
    static func readLines(path: String, _ body: (Int, UnsafeBufferPointer<UInt8>) throws -> Void) throws {
        do { try StreamingLines.forEachLine(path: path, body) } catch let error as StreamingLines.ReadError {
            throw RetrievalError.cannotRead(path: path, reason: error.reason)
        }
    }

    /// Stops a read early (the wanted rows are done).
    private struct EndOfRange: Error {}
}
