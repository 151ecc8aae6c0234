/// A Python object as read from a pickle, without running any of its code.
///
/// Plain data (dicts, lists, strings, numbers) maps to plain cases. Under the torch-checkpoint
/// policy, imports and calls are kept *symbolically*: `.global` names a function or class,
/// `.object` records "call this with these arguments, then apply these items / this state";
/// nothing is imported or executed.
public enum PickleValue: Hashable, Sendable {
    case none
    case bool(Bool)
    case int(Int)
    /// A Python int too large for `Int` (LONG1/LONG4).
    case bigInt(PickleBigInt)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case list([PickleValue])
    case tuple([PickleValue])
    /// A dict in insertion order (Python dicts keep it).
    case dict([PickleDictEntry])
    case set([PickleValue])
    case frozenSet([PickleValue])
    /// `module.name` imported by GLOBAL/STACK_GLOBAL (only under a policy that allows it).
    case global(module: String, name: String)
    /// The result of REDUCE (`callable(*arguments)`) with what later opcodes applied to it.
    indirect case object(PickleObject)
    /// A persistent id (PERSID/BINPERSID), e.g. torch's reference to a tensor storage.
    indirect case persistentID(PickleValue)

    /// The dict's value for a string key.
    public subscript(key: String) -> PickleValue? {
        guard case .dict(let entries) = self else { return nil }
        for entry in entries { if case .string(key) = entry.key { return entry.value } }
        return nil
    }
}

/// One `key: value` of a pickled dict.
public struct PickleDictEntry: Hashable, Sendable {
    public var key: PickleValue
    public var value: PickleValue
    public init(key: PickleValue, value: PickleValue) {
        self.key = key
        self.value = value
    }
}

/// A symbolic Python object: what the pickle asked to call, never called.
public struct PickleObject: Hashable, Sendable {
    /// The callable (a `.global`).
    public var callable: PickleValue
    /// The argument tuple of the call.
    public var arguments: PickleValue
    /// Items set on it afterwards (SETITEM/SETITEMS, e.g. an OrderedDict's entries).
    public var items: [PickleDictEntry]
    /// Values appended afterwards (APPEND/APPENDS).
    public var appended: [PickleValue]
    /// The state passed to BUILD (`__setstate__`), if any.
    public var state: PickleValue?

    public init(callable: PickleValue, arguments: PickleValue, items: [PickleDictEntry] = [],
                appended: [PickleValue] = [], state: PickleValue? = nil) {
        self.callable = callable
        self.arguments = arguments
        self.items = items
        self.appended = appended
        self.state = state
    }
}

/// Which opcodes that import or call code a reader accepts (it never executes them).
public struct PicklePolicy: Sendable {
    /// `module.name` of every global the pickle may name; empty refuses GLOBAL/STACK_GLOBAL.
    public var allowedGlobals: Set<String>
    /// Whether REDUCE/BUILD/persistent ids are accepted (kept symbolic).
    public var allowsSymbolicCalls: Bool

    public init(allowedGlobals: Set<String>, allowsSymbolicCalls: Bool) {
        self.allowedGlobals = allowedGlobals
        self.allowsSymbolicCalls = allowsSymbolicCalls
    }

    /// Datasets: plain data only; every opcode that imports or calls code is refused.
    public static let dataOnly = PicklePolicy(allowedGlobals: [], allowsSymbolicCalls: false)

    /// PyTorch `torch.save` checkpoints (`data.pkl` inside `pytorch_model.bin`): the state-dict
    /// container and the tensor/storage rebuild functions, nothing else.
    public static let torchCheckpoint = PicklePolicy(
        allowedGlobals: Set([
            "collections.OrderedDict",
            "torch._utils._rebuild_tensor",
            "torch._utils._rebuild_tensor_v2",
            "torch._utils._rebuild_parameter",
        ] + ["Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool"]
            .map { "torch.\($0)Storage" }),
        allowsSymbolicCalls: true)
}

/// Why a pickle cannot be read; offsets are byte positions in the pickle stream given to the reader.
public enum PickleError: Error, Equatable, CustomStringConvertible {
    /// The data ends inside an opcode or before STOP.
    case truncated(offset: Int, opcode: String)
    /// An opcode that would import or call code, refused by the policy.
    case refusedOpcode(String, offset: Int)
    /// A global outside the policy's allow-list.
    case refusedGlobal(module: String, name: String, offset: Int)
    /// A byte that is not a pickle opcode this reader knows.
    case unknownOpcode(UInt8, offset: Int)
    /// A protocol outside 0...5.
    case unsupportedProtocol(Int, offset: Int)
    /// Anything else structurally wrong (stack underflow, missing MARK, bad memo index, ...).
    case malformed(String, offset: Int)

    public var description: String {
        switch self {
        case .truncated(let offset, let opcode):
            return "truncated pickle: \(opcode) at byte offset \(offset) runs past the end of the data"
        case .refusedOpcode(let name, let offset):
            return "refused pickle opcode \(name) at byte offset \(offset): it would import or call code"
        case .refusedGlobal(let module, let name, let offset):
            return "refused pickle global \(module).\(name) at byte offset \(offset): not in the allow-list"
        case .unknownOpcode(let byte, let offset):
            return "unknown pickle opcode 0x\(String(byte, radix: 16)) at byte offset \(offset)"
        case .unsupportedProtocol(let proto, let offset):
            return "unsupported pickle protocol \(proto) at byte offset \(offset)"
        case .malformed(let message, let offset):
            return "malformed pickle at byte offset \(offset): \(message)"
        }
    }

    /// The same error with offsets shifted by `base` (when the reader was given a slice of a file).
    public func shifted(by base: Int) -> PickleError {
        switch self {
        case .truncated(let o, let op): return .truncated(offset: o + base, opcode: op)
        case .refusedOpcode(let n, let o): return .refusedOpcode(n, offset: o + base)
        case .refusedGlobal(let m, let n, let o): return .refusedGlobal(module: m, name: n, offset: o + base)
        case .unknownOpcode(let b, let o): return .unknownOpcode(b, offset: o + base)
        case .unsupportedProtocol(let p, let o): return .unsupportedProtocol(p, offset: o + base)
        case .malformed(let m, let o): return .malformed(m, offset: o + base)
        }
    }
}
