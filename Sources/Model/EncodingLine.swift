import Data
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
        guard object["id"] != nil || object["_id"] != nil else { return EncodingLine(input: input, id: nil) }
        // The typed parser tells integers from booleans (JSONSerialization's NSNumber does not).
        let typed = try? JSONParser.parse(bytes)
        switch typed?["id"] ?? typed?["_id"] {
        case .string(let bytes)?: return EncodingLine(input: input, id: String(decoding: bytes, as: UTF8.self))
        case .int(let n)?: return EncodingLine(input: input, id: String(n))
        case .bigInt(let digits)?: return EncodingLine(input: input, id: digits)
        default: throw ModelError.invalidInput("\(file):\(lineNumber): \"id\" must be a string or an integer")
        }
    }
}
