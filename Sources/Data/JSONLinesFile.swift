import Foundation

/// The reader of the JSON-lines files srdpr reads (samples, corpora, questions, training files,
/// metrics): the file memory-mapped, lines numbered from 1, blank lines skipped, and errors that
/// name the file and line.
public final class JSONLinesFile {
    public let path: String
    let file: MappedFile

    public init(path: String) throws(SampleJSONError) {
        self.path = path
        do {
            file = try MappedFile(path: path)
        } catch {
            throw .unreadable(file: path, reason: error.reason)
        }
    }

    /// Size of the file in bytes.
    public var byteCount: Int { file.count }

    /// Calls `body(lineNumber, lineBytes, endOffset)` for every non-blank line.
    public func forEachLine(_ body: (Int, UnsafeBufferPointer<UInt8>, Int) throws -> Void) rethrows {
        try Self.forEachLine(in: file.bytes, body)
    }

    /// The same over bytes in memory: lines end at '\n'; lines of only spaces, tabs and '\r' are skipped.
    public static func forEachLine(in bytes: UnsafeBufferPointer<UInt8>,
                                   _ body: (Int, UnsafeBufferPointer<UInt8>, Int) throws -> Void) rethrows {
        var lineNumber = 0
        var start = 0
        while start < bytes.count {
            lineNumber += 1
            var end = start
            if let base = bytes.baseAddress,
               let found = memchr(base + start, 0x0A, bytes.count - start) {
                end = base.distance(to: found.assumingMemoryBound(to: UInt8.self))
            } else {
                end = bytes.count
            }
            let line = UnsafeBufferPointer(rebasing: bytes[start..<end])
            if !line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) {
                try body(lineNumber, line, end)
            }
            start = end + 1
        }
    }

    /// Calls `body(lineNumber, object)` for every non-blank line, parsed by the typed `JSONParser`
    /// (integers stay apart from booleans); a line that is not a JSON object throws a
    /// `JSONLinesError` naming the file, line and (for malformed JSON) column.
    public func forEachObject(_ body: (Int, JSONValue) throws -> Void) throws {
        try forEachLine { number, bytes, _ in
            try body(number, try Self.object(bytes, file: path, line: number))
        }
    }

    /// One line parsed as a JSON object.
    public static func object(_ bytes: UnsafeBufferPointer<UInt8>, file: String, line: Int) throws(JSONLinesError) -> JSONValue {
        let value: JSONValue
        do { value = try JSONParser.parse(bytes) } catch {
            throw JSONLinesError(file: file, line: line, reason: "malformed JSON: \(error)")
        }
        guard case .object = value else { throw JSONLinesError(file: file, line: line, reason: "expected a JSON object") }
        return value
    }
}

/// A line of a JSON-lines file that is not a JSON object: "FILE:LINE: why".
public struct JSONLinesError: Error, Equatable, CustomStringConvertible {
    public let file: String, line: Int, reason: String

    public init(file: String, line: Int, reason: String) { (self.file, self.line, self.reason) = (file, line, reason) }

    public var description: String { "\(file):\(line): \(reason)" }
}
