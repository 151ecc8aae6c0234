import Data
import Foundation

/// Reads a JSON-lines file line by line as JSON objects, with 1-based line numbers for errors.
/// Blank lines are skipped.
enum JSONLines {
    static func objects(path: String) throws -> [(line: Int, object: [String: Any])] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RetrievalError.cannotRead(path: path, reason: FileManager.default.fileExists(atPath: path)
                                            ? "permission denied or not a regular file" : "no such file")
        }
        var result: [(Int, [String: Any])] = []
        var lineNumber = 0
        for slice in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if slice.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { continue }
            let parsed: Any
            do {
                parsed = try JSONSerialization.jsonObject(with: Foundation.Data(slice), options: [])
            } catch {
                // Our own parser says what is wrong and at which column.
                var reason = "malformed JSON"
                do { _ = try JSONParser.parse(Array(slice)) } catch let syntax as JSONSyntaxError { reason += ": \(syntax)" } catch {}
                throw RetrievalError.badLine(path: path, line: lineNumber, reason: reason)
            }
            guard let object = parsed as? [String: Any] else {
                throw RetrievalError.badLine(path: path, line: lineNumber, reason: "expected a JSON object")
            }
            result.append((lineNumber, object))
        }
        return result
    }

    /// An id field: a string, or an integer (kept as its decimal text).
    static func id(_ value: Any?) -> String? {
        if let s = value as? String { return s }
        if let value, !(value is Bool), let n = value as? Int { return String(n) }
        return nil
    }
}
