import Foundation

/// Reads `pytorch_model.bin` (`torch.save` of a state dict): a zip with `<prefix>/data.pkl` and
/// raw storages `<prefix>/data/<key>`. The pickle is interpreted symbolically: the few globals a
/// state dict uses (`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`, `torch.*Storage`)
/// become descriptions, nothing is imported or executed, and any other global is refused.
public struct TorchCheckpoint {
    public struct TensorRef {
        public var storageKey: String
        public var dtype: String
        public var offset: Int
        public var shape: [Int]
        public var stride: [Int]
    }

    public let path: String
    public let tensors: [String: TensorRef]
    private let archive: ZipArchive
    private let prefix: String

    public var names: [String] { tensors.keys.sorted() }

    public init(url: URL) throws {
        path = url.path
        archive = try ZipArchive(url: url)
        guard let pkl = archive.order.first(where: { $0.hasSuffix("/data.pkl") || $0 == "data.pkl" }) else {
            throw ModelError.malformedWeights(file: path, offset: 0, reason: "no data.pkl in the zip (not a torch.save checkpoint?)")
        }
        prefix = String(pkl.dropLast("data.pkl".count))
        let pickle = try archive.data(pkl)
        var machine = SymbolicPickle(bytes: [UInt8](pickle), file: "\(path):\(pkl)")
        let root = try machine.run()
        tensors = try Self.collectTensors(root, file: "\(path):\(pkl)")
    }

    private static let storageDTypes: [String: String] = [
        "FloatStorage": "F32", "DoubleStorage": "F64", "HalfStorage": "F16", "BFloat16Storage": "BF16",
        "LongStorage": "I64", "IntStorage": "I32",
    ]

    private static func collectTensors(_ root: PickleValue, file: String) throws -> [String: TensorRef] {
        guard case .dict(let box) = root else {
            throw ModelError.malformedWeights(file: file, offset: 0, reason: "the pickle is not a state dict (a dict of tensors)")
        }
        var out: [String: TensorRef] = [:]
        for (key, value) in box.items {
            guard case .string(let name) = key else { continue }
            guard case .call(let callee, let args) = value, case .global(let module, let function) = callee,
                  module == "torch._utils", function == "_rebuild_tensor_v2" || function == "_rebuild_tensor",
                  case .tuple(let a) = args, a.count >= 4,
                  case .persistent(let pid) = a[0], case .tuple(let p) = pid, p.count >= 3,
                  case .global(_, let storageType) = p[1], case .string(let key) = p[2],
                  case .int(let offset) = a[1], case .tuple(let sizeValues) = a[2], case .tuple(let strideValues) = a[3]
            else { continue }  // not a tensor (e.g. metadata): ignored like any non-parameter
            guard let dtype = storageDTypes[storageType] else {
                throw ModelError.unsupportedDType(file: file, name: name, dtype: storageType)
            }
            let shape = try sizeValues.map { v -> Int in
                guard case .int(let n) = v else { throw ModelError.malformedWeights(file: file, offset: 0, reason: "size of \(name) is not a tuple of ints") }
                return n
            }
            let stride = try strideValues.map { v -> Int in
                guard case .int(let n) = v else { throw ModelError.malformedWeights(file: file, offset: 0, reason: "stride of \(name) is not a tuple of ints") }
                return n
            }
            out[name] = TensorRef(storageKey: key, dtype: dtype, offset: offset, shape: shape, stride: stride)
        }
        return out
    }

    /// The named tensor as Float32 (strided views are gathered).
    public func tensor(_ name: String) throws -> LoadedTensor {
        guard let ref = tensors[name] else { throw ModelError.missingTensor(file: path, name: name) }
        let range = try archive.dataRange("\(prefix)data/\(ref.storageKey)")
        guard let size = SafetensorsFile.elementSize(ref.dtype) else {
            throw ModelError.unsupportedDType(file: path, name: name, dtype: ref.dtype)
        }
        let storageCount = range.count / size
        let count = ref.shape.reduce(1, *)
        // Highest element index the view touches must lie inside the storage.
        let last = ref.offset + zip(ref.shape, ref.stride).reduce(0) { $0 + max($1.0 - 1, 0) * $1.1 }
        guard count == 0 || (ref.offset >= 0 && last < storageCount) else {
            throw ModelError.malformedWeights(file: path, offset: range.lowerBound,
                reason: "tensor \(name) reads element \(last) of storage \(ref.storageKey), which has \(storageCount) (truncated?)")
        }
        let storage = try archive.bytes.withUnsafeBytes { raw in
            try TensorDecoding.decode(raw, at: range.lowerBound, count: storageCount, dtype: ref.dtype, file: path, name: name)
        }
        var contiguous = true
        var expected = 1
        for d in stride(from: ref.shape.count - 1, through: 0, by: -1) {
            if ref.shape[d] != 1 && ref.stride[d] != expected { contiguous = false }
            expected *= ref.shape[d]
        }
        if contiguous { return LoadedTensor(shape: ref.shape, floats: Array(storage[ref.offset..<(ref.offset + count)])) }
        var out = [Float](repeating: 0, count: count)
        var index = [Int](repeating: 0, count: ref.shape.count)
        for i in 0..<count {
            var s = ref.offset
            for d in 0..<index.count { s += index[d] * ref.stride[d] }
            out[i] = storage[s]
            var d = index.count - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < ref.shape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        return LoadedTensor(shape: ref.shape, floats: out)
    }
}

/// A value of the symbolic pickle machine. Calls and globals are kept as descriptions.
indirect enum PickleValue {
    final class DictBox { var items: [(PickleValue, PickleValue)] = [] }
    final class ListBox { var items: [PickleValue] = [] }
    case none, bool(Bool), int(Int), float(Double), string(String), bytes([UInt8])
    case tuple([PickleValue]), list(ListBox), dict(DictBox)
    case global(String, String)
    case call(PickleValue, PickleValue)
    case persistent(PickleValue)
    case mark
}

/// A pickle interpreter for torch state dicts: containers and scalars as usual; GLOBAL only for an
/// allow-list; REDUCE and BINPERSID kept symbolic; nothing is ever executed.
struct SymbolicPickle {
    let bytes: [UInt8]
    let file: String
    var pos = 0
    var stack: [PickleValue] = []
    var memo: [Int: PickleValue] = [:]

    init(bytes: [UInt8], file: String) {
        self.bytes = bytes
        self.file = file
    }

    static let allowedGlobals: Set<String> = [
        "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor",
        "torch.FloatStorage", "torch.DoubleStorage", "torch.HalfStorage", "torch.BFloat16Storage",
        "torch.LongStorage", "torch.IntStorage",
    ]

    func fail(_ offset: Int, _ reason: String) -> ModelError { .malformedWeights(file: file, offset: offset, reason: reason) }

    mutating func byte() throws -> UInt8 {
        guard pos < bytes.count else { throw fail(pos, "pickle ends without STOP (truncated?)") }
        defer { pos += 1 }
        return bytes[pos]
    }
    mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, pos + n <= bytes.count else { throw fail(pos, "pickle ends inside an argument of \(n) bytes (truncated?)") }
        defer { pos += n }
        return bytes[pos..<(pos + n)]
    }
    mutating func uint(_ n: Int) throws -> Int {
        var v = 0
        for (i, b) in try take(n).enumerated() { v |= Int(b) << (8 * i) }
        return v
    }
    mutating func line() throws -> String {
        guard let end = bytes[pos...].firstIndex(of: 0x0a) else { throw fail(pos, "unterminated GLOBAL argument") }
        defer { pos = end + 1 }
        return String(decoding: bytes[pos..<end], as: UTF8.self)
    }
    mutating func pop(_ at: Int) throws -> PickleValue {
        guard let v = stack.popLast() else { throw fail(at, "stack underflow") }
        return v
    }
    mutating func popToMark(_ at: Int) throws -> [PickleValue] {
        guard let m = stack.lastIndex(where: { if case .mark = $0 { return true }; return false }) else {
            throw fail(at, "no MARK on the stack")
        }
        let items = Array(stack[(m + 1)...])
        stack.removeSubrange(m...)
        return items
    }
    mutating func global(_ module: String, _ name: String, at: Int) throws -> PickleValue {
        guard Self.allowedGlobals.contains("\(module).\(name)") else {
            throw fail(at, "global \(module).\(name) is not allowed: loading it would import and run code; only plain state dicts are read")
        }
        return .global(module, name)
    }

    mutating func run() throws -> PickleValue {
        while true {
            let at = pos
            let op = try byte()
            switch op {
            case 0x80: _ = try byte()                                  // PROTO
            case 0x95: _ = try take(8)                                 // FRAME
            case 0x2e: return try pop(at)                              // STOP
            case 0x28: stack.append(.mark)                             // MARK
            case 0x29: stack.append(.tuple([]))                        // EMPTY_TUPLE
            case 0x74: stack.append(.tuple(try popToMark(at)))         // TUPLE
            case 0x85: stack.append(.tuple([try pop(at)]))             // TUPLE1
            case 0x86: let b = try pop(at), a = try pop(at); stack.append(.tuple([a, b]))
            case 0x87: let c = try pop(at), b = try pop(at), a = try pop(at); stack.append(.tuple([a, b, c]))
            case 0x7d: stack.append(.dict(PickleValue.DictBox()))      // EMPTY_DICT
            case 0x5d: stack.append(.list(PickleValue.ListBox()))      // EMPTY_LIST
            case 0x73:                                                 // SETITEM
                let v = try pop(at), k = try pop(at)
                try dictBox(at).items.append((k, v))
            case 0x75:                                                 // SETITEMS
                let items = try popToMark(at)
                guard items.count % 2 == 0 else { throw fail(at, "SETITEMS with an odd number of items") }
                let box = try dictBox(at)
                for i in stride(from: 0, to: items.count, by: 2) { box.items.append((items[i], items[i + 1])) }
            case 0x61:                                                 // APPEND
                let v = try pop(at)
                guard case .list(let box) = stack.last else { throw fail(at, "APPEND to a non-list") }
                box.items.append(v)
            case 0x65:                                                 // APPENDS
                let items = try popToMark(at)
                guard case .list(let box) = stack.last else { throw fail(at, "APPENDS to a non-list") }
                box.items.append(contentsOf: items)
            case 0x4a: stack.append(.int(Int(Int32(truncatingIfNeeded: try uint(4)))))  // BININT
            case 0x4b: stack.append(.int(try uint(1)))                 // BININT1
            case 0x4d: stack.append(.int(try uint(2)))                 // BININT2
            case 0x8a:                                                 // LONG1
                let n = try uint(1)
                guard n <= 8 else { throw fail(at, "LONG1 of \(n) bytes is too large") }
                let raw = try take(n)
                var v: Int64 = 0
                for (i, b) in raw.enumerated() { v |= Int64(b) << (8 * Int64(i)) }
                if n > 0 && n < 8 && raw.last! & 0x80 != 0 { v -= Int64(1) << (8 * Int64(n)) }
                stack.append(.int(Int(v)))
            case 0x58: let n = try uint(4); stack.append(.string(String(decoding: try take(n), as: UTF8.self)))
            case 0x8c: let n = try uint(1); stack.append(.string(String(decoding: try take(n), as: UTF8.self)))
            case 0x8d: let n = try uint(8); stack.append(.string(String(decoding: try take(n), as: UTF8.self)))
            case 0x43: let n = try uint(1); stack.append(.bytes(Array(try take(n))))  // SHORT_BINBYTES
            case 0x42: let n = try uint(4); stack.append(.bytes(Array(try take(n))))  // BINBYTES
            case 0x71: memo[try uint(1)] = try top(at)                 // BINPUT
            case 0x72: memo[try uint(4)] = try top(at)                 // LONG_BINPUT
            case 0x94: memo[memo.count] = try top(at)                  // MEMOIZE
            case 0x68, 0x6a:                                           // BINGET, LONG_BINGET
                let key = try uint(op == 0x68 ? 1 : 4)
                guard let v = memo[key] else { throw fail(at, "memo key \(key) is not defined") }
                stack.append(v)
            case 0x4e: stack.append(.none)
            case 0x88: stack.append(.bool(true))
            case 0x89: stack.append(.bool(false))
            case 0x47:                                                 // BINFLOAT (big-endian)
                var v: UInt64 = 0
                for b in try take(8) { v = v << 8 | UInt64(b) }
                stack.append(.float(Double(bitPattern: v)))
            case 0x63:                                                 // GLOBAL
                let module = try line(), name = try line()
                stack.append(try global(module, name, at: at))
            case 0x93:                                                 // STACK_GLOBAL
                let n = try pop(at), m = try pop(at)
                guard case .string(let module) = m, case .string(let name) = n else { throw fail(at, "STACK_GLOBAL needs two strings") }
                stack.append(try global(module, name, at: at))
            case 0x52:                                                 // REDUCE, kept symbolic
                let args = try pop(at), callee = try pop(at)
                if case .global("collections", "OrderedDict") = callee {
                    stack.append(.dict(PickleValue.DictBox()))
                } else {
                    stack.append(.call(callee, args))
                }
            case 0x51: stack.append(.persistent(try pop(at)))          // BINPERSID
            case 0x62:                                                 // BUILD: only an OrderedDict's metadata
                _ = try pop(at)
                guard case .dict = stack.last else { throw fail(at, "BUILD on something other than a state dict is refused") }
            default:
                throw fail(at, String(format: "pickle opcode 0x%02x is not supported in a state dict (refused: it could run code)", op))
            }
        }
    }

    mutating func top(_ at: Int) throws -> PickleValue {
        guard let v = stack.last else { throw fail(at, "stack underflow") }
        return v
    }
    mutating func dictBox(_ at: Int) throws -> PickleValue.DictBox {
        guard case .dict(let box) = stack.last else { throw fail(at, "SETITEM on a non-dict") }
        return box
    }
}
