/// A JSON value as Python's `json.loads` sees it, kept close to the bytes for speed.
///
/// Strings stay UTF-8 bytes (a lone `\uD800` escape becomes the 3-byte "surrogatepass" form,
/// as Python's pickle writes it); objects keep their key order, as Python dicts do. Numbers keep
/// Python's split: a literal without `.`/`e` is an int of any size, anything else a float.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// An integer that fits in `Int`.
    case int(Int)
    /// An integer too large for `Int`, as its decimal text (e.g. "-123456789012345678901234").
    case bigInt(String)
    case float(Double)
    case string([UInt8])
    case array([JSONValue])
    case object([JSONMember])

    /// The string value decoded as Swift `String`: each lone surrogate becomes one U+FFFD, as the
    /// pickle decoders read the pickle `create-dataset` writes for it (`PickleString`).
    public var stringValue: String? {
        if case .string(let bytes) = self { return PickleString.decode(bytes) ?? String(decoding: bytes, as: UTF8.self) }
        return nil
    }

    /// The value of `key` in an object (the first one when a key repeats).
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        let keyBytes = Array(key.utf8)
        return members.first { $0.key == keyBytes }?.value
    }
}

/// One `"key": value` of a JSON object.
public struct JSONMember: Equatable, Sendable {
    public var key: [UInt8]
    public var value: JSONValue
    public init(key: [UInt8], value: JSONValue) {
        self.key = key
        self.value = value
    }
    public init(_ key: String, _ value: JSONValue) {
        self.init(key: Array(key.utf8), value: value)
    }
}

/// A syntax error inside one JSON text: what is wrong and the byte column (0-based) where.
public struct JSONSyntaxError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public var column: Int
    public var description: String { "\(message) at column \(column + 1)" }
}

/// A small JSON parser over UTF-8 bytes (RFC 8259 plus Python's `NaN`/`Infinity` literals).
///
/// Foundation's JSONSerialization on Linux is several times slower and loses key order; the
/// dataset converter spends most of its time here.
public struct JSONParser {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var position: Int
    /// Nesting limit so that a hostile `[[[[...` cannot overflow the stack.
    public static let maximumDepth = 512

    private init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
        self.position = 0
    }

    /// Parses exactly one JSON value (surrounding whitespace allowed) from `bytes`.
    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws -> JSONValue {
        var parser = JSONParser(bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        if parser.position != bytes.count {
            throw parser.error("extra data after the JSON value")
        }
        return value
    }

    public static func parse<C: Collection>(_ bytes: C) throws -> JSONValue where C.Element == UInt8 {
        let array = Array(bytes)
        return try array.withUnsafeBufferPointer { try parse($0) }
    }

    public static func parse(_ text: String) throws -> JSONValue {
        try parse(Array(text.utf8))
    }

    private func error(_ message: String) -> JSONSyntaxError {
        JSONSyntaxError(message: message, column: position)
    }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    private mutating func parseValue(depth: Int) throws -> JSONValue {
        guard position < bytes.count else { throw error("unexpected end of input, expected a value") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "N"): try expectLiteral("NaN"); return .float(.nan)
        case UInt8(ascii: "I"): try expectLiteral("Infinity"); return .float(.infinity)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default:
            throw error("unexpected character \(describe(bytes[position])), expected a value")
        }
    }

    private func describe(_ byte: UInt8) -> String {
        if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x" + String(byte, radix: 16)
    }

    private mutating func expectLiteral(_ literal: StaticString) throws {
        let count = literal.utf8CodeUnitCount
        guard position + count <= bytes.count else { throw error("invalid literal, expected \(literal)") }
        let start = literal.utf8Start
        for i in 0..<count where bytes[position + i] != start[i] {
            throw error("invalid literal, expected \(literal)")
        }
        position += count
    }

    private mutating func parseObject(depth: Int) throws -> JSONValue {
        if depth > JSONParser.maximumDepth { throw error("nesting deeper than \(JSONParser.maximumDepth)") }
        position += 1  // {
        var members: [JSONMember] = []
        skipWhitespace()
        if position < bytes.count && bytes[position] == UInt8(ascii: "}") {
            position += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard position < bytes.count else { throw error("unexpected end of input inside an object") }
            guard bytes[position] == UInt8(ascii: "\"") else {
                throw error("expected a string key in double quotes, found \(describe(bytes[position]))")
            }
            let key = try parseString()
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else {
                throw error("expected ':' after an object key")
            }
            position += 1
            skipWhitespace()
            let value = try parseValue(depth: depth)
            members.append(JSONMember(key: key, value: value))
            skipWhitespace()
            guard position < bytes.count else { throw error("unexpected end of input inside an object") }
            switch bytes[position] {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "}"): position += 1; return .object(members)
            default: throw error("expected ',' or '}' in an object, found \(describe(bytes[position]))")
            }
        }
    }

    private mutating func parseArray(depth: Int) throws -> JSONValue {
        if depth > JSONParser.maximumDepth { throw error("nesting deeper than \(JSONParser.maximumDepth)") }
        position += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if position < bytes.count && bytes[position] == UInt8(ascii: "]") {
            position += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            guard position < bytes.count else { throw error("unexpected end of input inside a list") }
            switch bytes[position] {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "]"): position += 1; return .array(elements)
            default: throw error("expected ',' or ']' in a list, found \(describe(bytes[position]))")
            }
        }
    }

    /// Parses a string literal at `position` (on its opening quote) into UTF-8 bytes.
    private mutating func parseString() throws -> [UInt8] {
        let open = position
        position += 1
        // Fast path: scan 8 bytes at a time to the closing quote; non-ASCII bytes are only
        // noted here and validated once if the string has no escapes.
        var end = position
        var sawNonASCII = false
        if let base = bytes.baseAddress {
            while true {
                while end + 8 <= bytes.count {
                    let w = UInt64(littleEndian: UnsafeRawPointer(base + end).loadUnaligned(as: UInt64.self))
                    if JSONParser.needsAttention(w) { break }
                    if w & 0x8080_8080_8080_8080 != 0 { sawNonASCII = true }
                    end += 8
                }
                guard end < bytes.count else { break }
                let b = bytes[end]
                if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") || b < 0x20 { break }
                if b >= 0x80 { sawNonASCII = true }
                end += 1
            }
        }
        if sawNonASCII { try validateUTF8(position, end) }
        if end < bytes.count && bytes[end] == UInt8(ascii: "\"") {
            let result = Array(UnsafeBufferPointer(rebasing: bytes[position..<end]))
            position = end + 1
            return result
        }
        var out: [UInt8] = []
        out.reserveCapacity(end - position + 16)
        out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[position..<end]))
        position = end
        while true {
            guard position < bytes.count else {
                position = open
                throw error("unterminated string starting")
            }
            let b = bytes[position]
            if b == UInt8(ascii: "\"") {
                position += 1
                return out
            } else if b == UInt8(ascii: "\\") {
                try parseEscape(into: &out)
            } else if b < 0x20 {
                throw error("invalid control character \(describe(b)) in a string")
            } else if b < 0x80 {
                out.append(b)
                position += 1
            } else {
                try copyUTF8Sequence(into: &out)
            }
        }
    }

    /// Whether any byte of `w` is '"', '\\' or a control character (SWAR: exact as a yes/no).
    @inline(__always)
    static func needsAttention(_ w: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high: UInt64 = 0x8080_8080_8080_8080
        let quote = w ^ (ones &* 0x22)
        let backslash = w ^ (ones &* 0x5C)
        let zeroQuote = (quote &- ones) & ~quote & high
        let zeroBackslash = (backslash &- ones) & ~backslash & high
        let control = (w &- ones &* 0x20) & ~w & high
        return (zeroQuote | zeroBackslash | control) != 0
    }

    /// Checks that bytes[from..<to] are well-formed UTF-8 (the error names the column).
    private mutating func validateUTF8(_ from: Int, _ to: Int) throws {
        let saved = position
        position = from
        var scratch: [UInt8] = []
        while position < to {
            if bytes[position] < 0x80 { position += 1; continue }
            scratch.removeAll(keepingCapacity: true)
            try copyUTF8Sequence(into: &scratch)
            if position > to { position = to; throw error("truncated UTF-8 sequence") }
        }
        position = saved
    }

    /// Copies one multi-byte UTF-8 sequence, checking it is well formed (Python rejects
    /// invalid UTF-8 when it decodes the line).
    private mutating func copyUTF8Sequence(into out: inout [UInt8]) throws {
        let lead = bytes[position]
        let length: Int
        var scalar: UInt32
        switch lead {
        case 0xC2...0xDF: length = 2; scalar = UInt32(lead & 0x1F)
        case 0xE0...0xEF: length = 3; scalar = UInt32(lead & 0x0F)
        case 0xF0...0xF4: length = 4; scalar = UInt32(lead & 0x07)
        default: throw error("invalid UTF-8 byte 0x\(String(lead, radix: 16))")
        }
        guard position + length <= bytes.count else { throw error("truncated UTF-8 sequence") }
        for i in 1..<length {
            let c = bytes[position + i]
            guard c & 0xC0 == 0x80 else { throw error("invalid UTF-8 sequence") }
            scalar = scalar << 6 | UInt32(c & 0x3F)
        }
        let minimum: UInt32 = length == 2 ? 0x80 : (length == 3 ? 0x800 : 0x10000)
        guard scalar >= minimum, scalar <= 0x10FFFF, !(0xD800...0xDFFF).contains(scalar) else {
            throw error("invalid UTF-8 sequence")
        }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[position..<(position + length)]))
        position += length
    }

    private mutating func parseEscape(into out: inout [UInt8]) throws {
        guard position + 1 < bytes.count else { throw error("unterminated escape in a string") }
        let c = bytes[position + 1]
        position += 2
        switch c {
        case UInt8(ascii: "\""): out.append(0x22)
        case UInt8(ascii: "\\"): out.append(0x5C)
        case UInt8(ascii: "/"): out.append(0x2F)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try parseHex4()
            if (0xD800...0xDBFF).contains(scalar), position + 1 < bytes.count,
               bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") {
                let save = position
                position += 2
                let low = try parseHex4()
                if (0xDC00...0xDFFF).contains(low) {
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else {
                    position = save  // not a pair: the high surrogate stands alone
                }
            }
            appendUTF8(scalar, to: &out)
        default:
            position -= 2
            throw error("invalid escape \(describe(c)) in a string")
        }
    }

    private mutating func parseHex4() throws -> UInt32 {
        guard position + 4 <= bytes.count else { throw error("truncated \\u escape") }
        var value: UInt32 = 0
        for i in 0..<4 {
            let h = bytes[position + i]
            let digit: UInt32
            switch h {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(h - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(h - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(h - UInt8(ascii: "A") + 10)
            default: throw error("invalid \\u escape")
            }
            value = value << 4 | digit
        }
        position += 4
        return value
    }

    /// UTF-8 of a scalar; lone surrogates get the 3-byte form (Python's "surrogatepass").
    private func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
        switch scalar {
        case 0..<0x80:
            out.append(UInt8(scalar))
        case 0x80..<0x800:
            out.append(UInt8(0xC0 | scalar >> 6))
            out.append(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            out.append(UInt8(0xE0 | scalar >> 12))
            out.append(UInt8(0x80 | (scalar >> 6) & 0x3F))
            out.append(UInt8(0x80 | scalar & 0x3F))
        default:
            out.append(UInt8(0xF0 | scalar >> 18))
            out.append(UInt8(0x80 | (scalar >> 12) & 0x3F))
            out.append(UInt8(0x80 | (scalar >> 6) & 0x3F))
            out.append(UInt8(0x80 | scalar & 0x3F))
        }
    }

    private mutating func parseNumber() throws -> JSONValue {
        let start = position
        if bytes[position] == UInt8(ascii: "-") {
            position += 1
            if position < bytes.count && bytes[position] == UInt8(ascii: "I") {
                try expectLiteral("Infinity")
                return .float(-.infinity)
            }
        }
        guard position < bytes.count, isDigit(bytes[position]) else { throw error("invalid number") }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
        } else {
            while position < bytes.count && isDigit(bytes[position]) { position += 1 }
        }
        var isFloat = false
        if position < bytes.count && bytes[position] == UInt8(ascii: ".") {
            isFloat = true
            position += 1
            guard position < bytes.count, isDigit(bytes[position]) else { throw error("invalid number: no digits after '.'") }
            while position < bytes.count && isDigit(bytes[position]) { position += 1 }
        }
        if position < bytes.count && (bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E")) {
            isFloat = true
            position += 1
            if position < bytes.count && (bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-")) {
                position += 1
            }
            guard position < bytes.count, isDigit(bytes[position]) else { throw error("invalid number: no digits in the exponent") }
            while position < bytes.count && isDigit(bytes[position]) { position += 1 }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        if isFloat {
            guard let value = Double(text) else { throw error("invalid number \(text)") }
            return .float(value)
        }
        if let value = Int(text) { return .int(value) }
        // Python ints have no size limit; keep the canonical decimal text ("-0" cannot get here).
        return .bigInt(text)
    }

    @inline(__always) private func isDigit(_ b: UInt8) -> Bool {
        b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")
    }
}
