import Foundation

/// What is wrong with a JSON-lines sample file; every case names the file and, where there is
/// one, the 1-based line.
public enum SampleJSONError: Error, Equatable, CustomStringConvertible {
    /// The line is not valid JSON.
    case syntax(file: String, line: Int, JSONSyntaxError)
    /// The line is JSON but not a sample (a field is missing or has the wrong type).
    case invalidSample(file: String, line: Int, message: String)
    /// The file holds no sample at all.
    case empty(file: String)
    /// The file cannot be opened or read.
    case unreadable(file: String, reason: String)

    public var description: String {
        switch self {
        case .syntax(let file, let line, let error): return "\(file):\(line): malformed JSON: \(error)"
        case .invalidSample(let file, let line, let message): return "\(file):\(line): \(message)"
        case .empty(let file): return "\(file): no samples (the file is empty)"
        case .unreadable(let file, let reason): return "\(file): cannot read: \(reason)"
        }
    }
}

/// The JSON form of a `Sample` (one line of the original's JSON-lines input):
/// `{"sample_id": int, "questions": [...], "positive_contexts": [{"title", "text"}], "hardneg_contexts": [...]}`.
///
/// Text fields may be strings or, in pre-tokenized datasets, lists of ints. Other keys are
/// allowed (DPR files carry e.g. `score`) and kept by the converter, as the original does.
public enum SampleJSON {
    public static let keys = ["sample_id", "questions", "positive_contexts", "hardneg_contexts"]

    /// Checks that `value` is a sample; the message says which field is wrong and how.
    public static func validate(_ value: JSONValue) throws(SampleFieldError) {
        guard case .object(let members) = value else {
            throw SampleFieldError("the line is not a JSON object (got \(typeName(value)))")
        }
        try checkKeysUnique(members, context: "the sample")
        guard let id = field(members, "sample_id") else { throw SampleFieldError("missing field `sample_id`") }
        switch id {
        case .int, .bigInt: break
        default: throw SampleFieldError("`sample_id` is not an integer (got \(typeName(id)))")
        }
        guard let questions = field(members, "questions") else { throw SampleFieldError("missing field `questions`") }
        guard case .array(let items) = questions else {
            throw SampleFieldError("`questions` is not a list of strings (got \(typeName(questions)))")
        }
        for (i, item) in items.enumerated() where !isTextField(item) {
            throw SampleFieldError("`questions[\(i)]` is not a string or a list of token ids (got \(typeName(item)))")
        }
        for name in ["positive_contexts", "hardneg_contexts"] {
            guard let contexts = field(members, name) else { throw SampleFieldError("missing field `\(name)`") }
            guard case .array(let passages) = contexts else {
                throw SampleFieldError("`\(name)` is not a list of {\"title\", \"text\"} objects (got \(typeName(contexts)))")
            }
            for (i, passage) in passages.enumerated() {
                guard case .object(let fields) = passage else {
                    throw SampleFieldError("`\(name)[\(i)]` is not a {\"title\", \"text\"} object (got \(typeName(passage)))")
                }
                try checkKeysUnique(fields, context: "`\(name)[\(i)]`")
                for key in ["title", "text"] {
                    guard let text = field(fields, key) else { throw SampleFieldError("missing field `\(name)[\(i)].\(key)`") }
                    if !isTextField(text) {
                        throw SampleFieldError("`\(name)[\(i)].\(key)` is not a string or a list of token ids (got \(typeName(text)))")
                    }
                }
            }
        }
    }

    /// Converts a JSON sample into a `Sample` (validating it first).
    public static func sample(from value: JSONValue) throws(SampleFieldError) -> Sample {
        try validate(value)
        guard case .object(let members) = value,
              let id = field(members, "sample_id"),
              case .array(let questions) = field(members, "questions"),
              case .array(let positives) = field(members, "positive_contexts"),
              case .array(let hardnegs) = field(members, "hardneg_contexts")
        else { throw SampleFieldError("not a sample") }  // unreachable after validate
        guard case .int(let sampleID) = id else {
            throw SampleFieldError("`sample_id` does not fit in a 64-bit integer")
        }
        return Sample(sampleID: sampleID,
                      questions: try questions.map(textField),
                      positiveContexts: try positives.map(passage),
                      hardnegContexts: try hardnegs.map(passage))
    }

    /// One JSON line for `sample` in the source key order, formatted like Python's
    /// `json.dumps(sample, ensure_ascii=False)`.
    public static func line(for sample: Sample) -> String {
        var out = "{\"sample_id\": \(sample.sampleID), \"questions\": ["
        for (i, q) in sample.questions.enumerated() {
            if i > 0 { out += ", " }
            appendText(q, to: &out)
        }
        out += "]"
        for (name, passages) in [("positive_contexts", sample.positiveContexts), ("hardneg_contexts", sample.hardnegContexts)] {
            out += ", \"\(name)\": ["
            for (i, p) in passages.enumerated() {
                if i > 0 { out += ", " }
                out += "{\"title\": "
                appendText(p.title, to: &out)
                out += ", \"text\": "
                appendText(p.text, to: &out)
                out += "}"
            }
            out += "]"
        }
        out += "}"
        return out
    }

    // MARK: - helpers

    static func field(_ members: [JSONMember], _ key: StaticString) -> JSONValue? {
        let count = key.utf8CodeUnitCount
        let start = key.utf8Start
        outer: for member in members where member.key.count == count {
            for i in 0..<count where member.key[i] != start[i] { continue outer }
            return member.value
        }
        return nil
    }

    static func field(_ members: [JSONMember], _ key: String) -> JSONValue? {
        let bytes = Array(key.utf8)
        return members.first { $0.key == bytes }?.value
    }

    private static func checkKeysUnique(_ members: [JSONMember], context: String) throws(SampleFieldError) {
        // Objects here have a handful of keys: a quadratic scan is the fastest check.
        for i in members.indices {
            for j in (i + 1)..<members.count where members[i].key == members[j].key {
                throw SampleFieldError("\(context) repeats the key `\(String(decoding: members[i].key, as: UTF8.self))`")
            }
        }
    }

    private static func isTextField(_ value: JSONValue) -> Bool {
        switch value {
        case .string: return true
        case .array(let items):
            return items.allSatisfy { if case .int = $0 { return true } else { return false } }
        default: return false
        }
    }

    private static func textField(_ value: JSONValue) throws(SampleFieldError) -> TextField {
        switch value {
        case .string: return .text(value.stringValue ?? "")  // lone surrogates as the pickle reads them
        case .array(let items):
            var ids: [Int] = []
            ids.reserveCapacity(items.count)
            for item in items {
                guard case .int(let id) = item else { throw SampleFieldError("a token id is not an integer") }
                ids.append(id)
            }
            return .tokenIDs(ids)
        default: throw SampleFieldError("not a string or a list of token ids")
        }
    }

    private static func passage(_ value: JSONValue) throws(SampleFieldError) -> Passage {
        guard case .object(let fields) = value, let title = field(fields, "title"), let text = field(fields, "text") else {
            throw SampleFieldError("not a {\"title\", \"text\"} object")
        }
        return Passage(title: try textField(title), text: try textField(text))
    }

    static func typeName(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int, .bigInt: return "an integer"
        case .float: return "a float"
        case .string: return "a string"
        case .array: return "a list"
        case .object: return "an object"
        }
    }

    private static func appendText(_ field: TextField, to out: inout String) {
        switch field {
        case .text(let s): JSONText.appendString(s, to: &out)
        case .tokenIDs(let ids): out += "[" + ids.map(String.init).joined(separator: ", ") + "]"
        }
    }

}

/// A sample-level problem (missing field, wrong type); `SampleJSONError` adds file and line.
public struct SampleFieldError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension JSONLinesFile {
    /// Every sample of the file, parsed and validated.
    public func samples() throws(SampleJSONError) -> [Sample] {
        try Self.samples(in: file.bytes, file: path)
    }

    /// Every sample of JSON-lines bytes in memory; `file` only names them in errors.
    public static func samples(in bytes: UnsafeBufferPointer<UInt8>, file path: String) throws(SampleJSONError) -> [Sample] {
        var result: [Sample] = []
        do {
            try forEachLine(in: bytes) { number, line, _ in
                let value: JSONValue
                do { value = try JSONParser.parse(line) } catch let e as JSONSyntaxError {
                    throw SampleJSONError.syntax(file: path, line: number, e)
                }
                do { result.append(try SampleJSON.sample(from: value)) } catch let e as SampleFieldError {
                    throw SampleJSONError.invalidSample(file: path, line: number, message: e.message)
                }
            }
        } catch let error as SampleJSONError {
            throw error
        } catch {
            throw .unreadable(file: path, reason: "\(error)")
        }
        if result.isEmpty { throw .empty(file: path) }
        return result
    }

    /// Reads and validates all samples of a JSON-lines file.
    public static func readSamples(path: String) throws(SampleJSONError) -> [Sample] {
        try JSONLinesFile(path: path).samples()
    }
}
