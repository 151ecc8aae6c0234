import Data
import Foundation

/// One line of `srdpr encode`'s input: what to embed (`EncodingInput`) and its id, the line's
/// "id" (or BEIR's "_id"), a string or an integer; nil when the line has none.
public struct EncodingLine {
    public var input: EncodingInput
    public var id: String?

    /// Parses the bytes of one line (the typed `JSONParser`, as every JSON-lines reader of srdpr);
    /// errors name `file` and `lineNumber`. `vocabularySize`: token ids must be below it.
    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>, lineNumber: Int, file: String,
                             vocabularySize: Int? = nil) throws -> EncodingLine {
        let object: JSONValue
        do { object = try JSONLinesFile.object(bytes, file: file, line: lineNumber) } catch {
            throw ModelError.invalidInput(error.description)
        }
        let input = try EncodingInput.parse(object: object, lineNumber: lineNumber, file: file, vocabularySize: vocabularySize)
        let id = object["id"] ?? object["_id"]
        switch id {
        case nil: return EncodingLine(input: input, id: nil)
        case .string?: return EncodingLine(input: input, id: id?.stringValue)
        case .int(let n)?: return EncodingLine(input: input, id: String(n))
        case .bigInt(let digits)?: return EncodingLine(input: input, id: digits)
        default: throw ModelError.invalidInput("\(file):\(lineNumber): \"id\" must be a string or an integer")
        }
    }
}
