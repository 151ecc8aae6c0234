import Foundation
import Data

/// DPR's training file (`biencoder-nq-train.json` and the like): one JSON array of
/// `{"question", "answers", "positive_ctxs": [{"title", "text", ...}], "negative_ctxs": [...],
/// "hard_negative_ctxs": [...]}`. The file is memory-mapped and read one element at a time, so
/// files of several GB need no more memory than their largest element.
public struct DPRTrainingFile {
    public let path: String
    private let file: MappedFile

    public init(path: String) throws {
        self.path = path
        do { file = try MappedFile(path: path) } catch {
            throw RetrievalError.cannotRead(path: path, reason: error.reason)
        }
    }

    public var byteCount: Int { file.count }

    /// Calls `body(line, element, endOffset)` for each element of the top-level array, `line` being
    /// the 1-based line where the element starts.
    public func forEachElement(_ body: (Int, JSONValue, Int) throws -> Void) throws {
        let bytes = file.bytes
        var position = 0, line = 1
        func skipWhitespace() {
            while position < bytes.count {
                switch bytes[position] {
                case 0x0A: line += 1; position += 1
                case 0x20, 0x09, 0x0D: position += 1
                default: return
                }
            }
        }
        skipWhitespace()
        guard position < bytes.count else { throw RetrievalError.badLine(path: path, line: line, reason: "the file is empty; expected a JSON list of DPR samples") }
        guard bytes[position] == UInt8(ascii: "[") else {
            throw RetrievalError.badLine(path: path, line: line, reason: "expected a JSON list ('[') of DPR samples")
        }
        position += 1
        var expectElement = true
        while true {
            skipWhitespace()
            guard position < bytes.count else {
                throw RetrievalError.badLine(path: path, line: line, reason: "the file ends before the list is closed with ']' (a truncated file?)")
            }
            let byte = bytes[position]
            if byte == UInt8(ascii: "]") {
                position += 1
                skipWhitespace()
                guard position == bytes.count else { throw RetrievalError.badLine(path: path, line: line, reason: "data after the end of the list") }
                return
            }
            if !expectElement {
                guard byte == UInt8(ascii: ",") else {
                    throw RetrievalError.badLine(path: path, line: line, reason: "expected ',' or ']' between the list's elements")
                }
                position += 1
                expectElement = true
                continue
            }
            guard byte == UInt8(ascii: "{") else {
                throw RetrievalError.badLine(path: path, line: line, reason: "expected a JSON object (a DPR sample)")
            }
            let start = position, startLine = line
            // Find the matching '}' (strings and escapes skipped), counting lines on the way.
            var depth = 0, inString = false
            scan: while position < bytes.count {
                let c = bytes[position]
                if inString {
                    if c == UInt8(ascii: "\\") { position += 2; continue }
                    if c == UInt8(ascii: "\"") { inString = false }
                    if c == 0x0A { line += 1 }
                } else {
                    switch c {
                    case UInt8(ascii: "\""): inString = true
                    case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                    case UInt8(ascii: "}"), UInt8(ascii: "]"):
                        depth -= 1
                        if depth == 0 { position += 1; break scan }
                    case 0x0A: line += 1
                    default: break
                    }
                }
                position += 1
            }
            guard depth == 0, position <= bytes.count else {
                throw RetrievalError.badLine(path: path, line: startLine, reason: "the file ends inside the sample that starts here (a truncated file?)")
            }
            let element: JSONValue
            do { element = try JSONParser.parse(UnsafeBufferPointer(rebasing: bytes[start..<position])) } catch {
                throw RetrievalError.badLine(path: path, line: startLine, reason: "malformed JSON in the sample that starts here: \(error)")
            }
            try body(startLine, element, position)
            expectElement = false
        }
    }

    /// A DPR sample as an SR-DPR sample (`negative_ctxs`, random negatives, are not kept).
    static func sample(_ element: JSONValue, id: Int, path: String, line: Int) throws -> Sample {
        guard let question = JSONLines.string(element["question"]) else {
            throw RetrievalError.badLine(path: path, line: line, reason: "the sample has no \"question\" string")
        }
        return Sample(sampleID: id, questions: [.text(question)],
                      positiveContexts: try passages(element, "positive_ctxs", required: true, path: path, line: line),
                      hardnegContexts: try passages(element, "hard_negative_ctxs", required: false, path: path, line: line))
    }

    /// The passages of list field `key` (`{"title", "text"}` objects; a missing title is "").
    static func passages(_ element: JSONValue, _ key: String, required: Bool, path: String, line: Int) throws -> [Passage] {
        guard let field = element[key] else {
            if required { throw RetrievalError.badLine(path: path, line: line, reason: "the sample has no \"\(key)\" list") }
            return []
        }
        guard case .array(let list) = field else {
            throw RetrievalError.badLine(path: path, line: line, reason: "\"\(key)\" is not a list")
        }
        return try list.enumerated().map { i, passage in
            guard let text = JSONLines.string(passage["text"]) else {
                throw RetrievalError.badLine(path: path, line: line, reason: "\"\(key)\"[\(i)] has no \"text\" string")
            }
            return Passage(title: try JSONLines.title(passage, path: path, line: line, describe: "\"\(key)\"[\(i)].title"), text: text)
        }
    }
}
