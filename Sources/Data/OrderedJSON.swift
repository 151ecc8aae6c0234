/// The JSON writer of the project: a JSON value whose objects keep their keys in the order given
/// (`dump-batches`, `tokenize`, metrics.jsonl in sorted order, a parsed line written back in its
/// source order), written like Python's `json.dumps(value, ensure_ascii=False)`. Foundation's
/// serializer does not keep insertion order.
public indirect enum OrderedJSON: Equatable, Sendable {
    case int(Int)
    /// A finite number; NaN and infinities are written as null (strict JSON has neither).
    case double(Double)
    case bool(Bool)
    case string(String)
    case null
    case array([OrderedJSON])
    case object([(String, OrderedJSON)])
    /// Number text written as it is: an integer beyond Int64, or Python's NaN / Infinity when a
    /// value read from a Python file is written back.
    case literal(String)

    public static func == (a: OrderedJSON, b: OrderedJSON) -> Bool { a.serialized() == b.serialized() }

    /// Compact JSON text (`", "` and `": "` separators like Python's `json.dumps`).
    public func serialized() -> String {
        var out = ""
        write(to: &out)
        return out
    }

    public func write(to out: inout String) {
        switch self {
        case .int(let v): out += String(v)
        case .double(let v): out += v.isFinite ? "\(v)" : "null"
        case .bool(let v): out += v ? "true" : "false"
        case .null: out += "null"
        case .literal(let text): out += text
        case .string(let s): JSONText.appendString(s, to: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += ", " }
                item.write(to: &out)
            }
            out += "]"
        case .object(let pairs):
            out += "{"
            for (i, (key, value)) in pairs.enumerated() {
                if i > 0 { out += ", " }
                JSONText.appendString(key, to: &out)
                out += ": "
                value.write(to: &out)
            }
            out += "}"
        }
    }
}

extension OrderedJSON {
    /// A float as Python's `json.dumps` writes it (NaN, Infinity and -Infinity included).
    public static func pythonFloat(_ v: Double) -> OrderedJSON {
        if v.isNaN { return .literal("NaN") }
        if v.isInfinite { return .literal(v < 0 ? "-Infinity" : "Infinity") }
        return .double(v)
    }
}
