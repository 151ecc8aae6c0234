import Foundation

/// One line of `srdpr encode`'s input: what to embed (`EncodingInput`) and its id, the line's
/// "id" (or BEIR's "_id"), a string or an integer; nil when the line has none.
public struct EncodingLine {
    public var input: EncodingInput
    public var id: String?

    /// Parses the bytes of one line; errors name `file` and `lineNumber`.
    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>, lineNumber: Int, file: String) throws -> EncodingLine {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ModelError.invalidInput("\(file):\(lineNumber): not valid UTF-8")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
            throw ModelError.invalidInput("\(file):\(lineNumber): not a JSON object")
        }
        let input = try EncodingInput.parse(object: object, lineNumber: lineNumber, file: file)
        guard let value = object["id"] ?? object["_id"] else { return EncodingLine(input: input, id: nil) }
        if let id = value as? String { return EncodingLine(input: input, id: id) }
        if !(value is Bool), let id = value as? Int { return EncodingLine(input: input, id: String(id)) }
        throw ModelError.invalidInput("\(file):\(lineNumber): \"id\" must be a string or an integer")
    }
}
