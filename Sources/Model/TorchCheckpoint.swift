import Data
import Foundation

/// Reads `pytorch_model.bin` (`torch.save` of a state dict): a zip with `<prefix>/data.pkl` and
/// raw storages `<prefix>/data/<key>`. The pickle is read by the Data module's safe reader with
/// its `.torchCheckpoint` policy: the few globals a state dict uses (`collections.OrderedDict`,
/// `torch._utils._rebuild_tensor_v2`, `torch.*Storage`) stay symbolic, nothing is imported or
/// executed, and any other global is refused.
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
        try self.init(archive: ZipArchive(url: url))
    }

    /// Reads the state dict of an opened `torch.save` archive.
    public init(archive: ZipArchive) throws {
        path = archive.path
        self.archive = archive
        guard let pkl = archive.order.first(where: { $0.hasSuffix("/data.pkl") || $0 == "data.pkl" }) else {
            throw ModelError.malformedWeights(file: path, offset: 0, reason: "no data.pkl in the zip (not a torch.save checkpoint?)")
        }
        prefix = String(pkl.dropLast("data.pkl".count))
        let range = try archive.dataRange(pkl)
        let root: PickleValue
        do {
            root = try PickleReader.read([UInt8](archive.bytes[range]), policy: .torchCheckpoint)
        } catch {
            throw ModelError.malformedWeights(file: "\(path):\(pkl)", offset: range.lowerBound, reason: "\(error)")
        }
        tensors = try Self.collectTensors(root, file: "\(path):\(pkl)")
    }

    private static let storageDTypes: [String: String] = [
        "FloatStorage": "F32", "DoubleStorage": "F64", "HalfStorage": "F16", "BFloat16Storage": "BF16",
        "LongStorage": "I64", "IntStorage": "I32",
    ]

    private static func collectTensors(_ root: PickleValue, file: String) throws -> [String: TensorRef] {
        let items: [PickleDictEntry]
        switch root {
        case .dict(let entries): items = entries
        case .object(let o): items = o.items
        default:
            throw ModelError.malformedWeights(file: file, offset: 0, reason: "the pickle is not a state dict (a dict of tensors)")
        }
        var out: [String: TensorRef] = [:]
        for entry in items {
            guard case .string(let name) = entry.key, var call = Self.rebuildCall(entry.value) else { continue }
            // _rebuild_parameter(tensor, requires_grad, hooks) wraps a _rebuild_tensor_v2 call.
            if call.function == "_rebuild_parameter" {
                guard let first = call.arguments.first, let inner = Self.rebuildCall(first) else { continue }
                call = inner
            }
            let a = call.arguments
            guard a.count >= 4, case .persistentID(.tuple(let p)) = a[0], p.count >= 3,
                  case .global(_, let storageType) = p[1], case .string(let key) = p[2],
                  case .int(let offset) = a[1], case .tuple(let sizeValues) = a[2], case .tuple(let strideValues) = a[3]
            else {
                throw ModelError.malformedWeights(file: file, offset: 0, reason: "tensor \(name) is not a (storage, offset, size, stride) rebuild")
            }
            guard let dtype = storageDTypes[storageType] else {
                throw ModelError.unsupportedDType(file: file, name: name, dtype: storageType)
            }
            let shape = sizeValues.compactMap(Self.intValue), stride = strideValues.compactMap(Self.intValue)
            guard shape.count == sizeValues.count, stride.count == shape.count else {
                throw ModelError.malformedWeights(file: file, offset: 0, reason: "size or stride of \(name) is not a tuple of ints")
            }
            out[name] = TensorRef(storageKey: key, dtype: dtype, offset: offset, shape: shape, stride: stride)
        }
        return out
    }

    private static func intValue(_ v: PickleValue) -> Int? {
        if case .int(let n) = v { return n }
        return nil
    }

    /// `torch._utils.<function>(args...)` kept symbolic by the pickle reader, if `value` is one.
    private static func rebuildCall(_ value: PickleValue) -> (function: String, arguments: [PickleValue])? {
        guard case .object(let o) = value, case .global(let module, let function) = o.callable, module == "torch._utils",
              case .tuple(let args) = o.arguments else { return nil }
        return (function, args)
    }

    /// The named tensor as Float32 (strided views are gathered).
    public func tensor(_ name: String) throws -> LoadedTensor {
        guard let ref = tensors[name] else { throw ModelError.missingTensor(file: path, name: name) }
        let range = try archive.dataRange("\(prefix)data/\(ref.storageKey)")
        guard let size = TensorDecoding.elementSize(ref.dtype) else {
            throw ModelError.unsupportedDType(file: path, name: name, dtype: ref.dtype)
        }
        let storageCount = range.count / size
        // torch.save writes non-negative sizes, strides and offset; anything else would index
        // outside the storage below (and the products could overflow).
        guard ref.offset >= 0, ref.shape.allSatisfy({ $0 >= 0 }), ref.stride.allSatisfy({ $0 >= 0 }) else {
            throw ModelError.malformedWeights(file: path, offset: range.lowerBound,
                reason: "tensor \(name) has a negative size, stride or offset (size \(ref.shape), stride \(ref.stride), offset \(ref.offset))")
        }
        if ref.shape.contains(0) { return LoadedTensor(shape: ref.shape, floats: []) }
        // Element count and the highest element index the view touches, which must lie inside the storage.
        var count = 1
        var last = ref.offset
        var overflow = false
        for (dim, step) in zip(ref.shape, ref.stride) {
            let (c, o1) = count.multipliedReportingOverflow(by: dim)
            let (reach, o2) = (dim - 1).multipliedReportingOverflow(by: step)
            let (l, o3) = last.addingReportingOverflow(reach)
            count = c
            last = l
            overflow = overflow || o1 || o2 || o3
        }
        guard !overflow, last < storageCount else {
            throw ModelError.malformedWeights(file: path, offset: range.lowerBound,
                reason: "tensor \(name) (size \(ref.shape), stride \(ref.stride), offset \(ref.offset)) reads past the "
                    + "\(storageCount) elements of storage \(ref.storageKey) (truncated?)")
        }
        // Zero strides could make a view far larger than its storage (and than memory); a state
        // dict of parameters never holds such a broadcast view.
        guard count <= storageCount else {
            throw ModelError.malformedWeights(file: path, offset: range.lowerBound,
                reason: "tensor \(name) has \(count) elements but its storage \(ref.storageKey) only \(storageCount) (a broadcast view?)")
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
