import Data

/// Retrieval's view of the Data module's `JSONLinesFile`: JSON objects with 1-based line numbers,
/// its errors as `RetrievalError`s (same text: file, line, why). Blank lines are skipped.
enum JSONLines {
    /// Calls `body(line, object)` for every non-blank line, streaming (the file is mapped, not read).
    static func forEachObject(path: String, _ body: (Int, JSONValue) throws -> Void) throws {
        let file: JSONLinesFile
        do { file = try JSONLinesFile(path: path) } catch {
            if case let .unreadable(_, reason) = error { throw RetrievalError.cannotRead(path: path, reason: reason) }
            throw RetrievalError.cannotRead(path: path, reason: "\(error)")
        }
        do { try file.forEachObject(body) } catch let error as JSONLinesError {
            throw RetrievalError.badLine(path: error.file, line: error.line, reason: error.reason)
        }
    }

    /// Every object of the file, in order.
    static func objects(path: String) throws -> [(line: Int, object: JSONValue)] {
        var result: [(line: Int, object: JSONValue)] = []
        try forEachObject(path: path) { result.append(($0, $1)) }
        return result
    }

    /// One line parsed as a JSON object; the error names the file, line and column.
    static func object(_ bytes: UnsafeBufferPointer<UInt8>, path: String, line: Int) throws -> JSONValue {
        do { return try JSONLinesFile.object(bytes, file: path, line: line) } catch {
            throw RetrievalError.badLine(path: error.file, line: error.line, reason: error.reason)
        }
    }

    /// An id field: a string, or an integer of any size (kept as its decimal text, so 0, 1, -7 and
    /// 2^70 are ids like any other). Booleans, floats, null, lists and objects are not ids.
    static func id(_ value: JSONValue?) -> String? {
        switch value {
        case .string?: return value?.stringValue
        case .int(let n)?: return String(n)
        case .bigInt(let text)?: return text
        default: return nil
        }
    }

    /// A passage's title: absent or null is "", a string is itself; anything else is an error
    /// (`describe` names the field in the message).
    static func title(_ passage: JSONValue, path: String, line: Int, describe: String) throws -> String {
        guard let value = passage["title"], value != .null else { return "" }
        guard let title = string(value) else {
            throw RetrievalError.badLine(path: path, line: line, reason: "\(describe) is not a string")
        }
        return title
    }

    /// A text field as a Swift string, nil when it is absent or not a string.
    static func string(_ value: JSONValue?) -> String? {
        if case .string? = value { return value?.stringValue }
        return nil
    }
}
