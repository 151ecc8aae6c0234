import Foundation

/// Errors reading or writing a safetensors file; every case names the file (and the tensor).
public enum SafeTensorsError: Error, CustomStringConvertible, Equatable {
    case unreadable(file: String, reason: String)
    case truncated(file: String, reason: String)
    case badHeader(file: String, reason: String)
    case missingTensor(file: String, name: String)
    case wrongDType(file: String, name: String, found: String, wanted: String)
    case wrongShape(file: String, name: String, found: [Int], wanted: [Int])
    case unwritable(file: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason): return "\(file): cannot read safetensors file: \(reason)"
        case let .truncated(file, reason): return "\(file): truncated safetensors file: \(reason)"
        case let .badHeader(file, reason): return "\(file): invalid safetensors header: \(reason)"
        case let .missingTensor(file, name): return "\(file): no tensor named '\(name)'"
        case let .wrongDType(file, name, found, wanted):
            return "\(file): tensor '\(name)' has dtype \(found), expected \(wanted)"
        case let .wrongShape(file, name, found, wanted):
            return "\(file): tensor '\(name)' has shape \(found), expected \(wanted)"
        case let .unwritable(file, reason): return "\(file): cannot write safetensors file: \(reason)"
        }
    }
}

/// Element types this project reads; floating types are converted to Float on read.
public enum SafeTensorsDType: String, Sendable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64"
    case i64 = "I64", i32 = "I32", u8 = "U8", bool = "BOOL"

    public var byteSize: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16: return 2
        case .u8, .bool: return 1
        }
    }
}

/// One tensor's entry of the header.
public struct SafeTensorInfo: Equatable, Sendable {
    public var name: String
    public var dtype: SafeTensorsDType
    public var shape: [Int]
    /// Byte range inside the data section (after the header).
    public var dataRange: Range<Int>

    public var elementCount: Int { shape.reduce(1, *) }
}

/// A safetensors file (8-byte little-endian header length, a JSON header, then raw
/// little-endian tensor data), read into memory and validated up front so that later
/// look-ups only fail for a missing name or a wrong type.
public struct SafeTensorsFile {
    /// The path, for error messages.
    public let path: String
    public let tensors: [String: SafeTensorInfo]
    /// The optional `__metadata__` string map.
    public let metadata: [String: String]
    private let bytes: Data
    private let dataStart: Int

    /// Tensor names in file order of their data.
    public var names: [String] {
        tensors.values.sorted { $0.dataRange.lowerBound < $1.dataRange.lowerBound }.map(\.name)
    }

    /// Reads and validates the file at `url`.
    public init(url: URL) throws {
        let path = url.path
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw SafeTensorsError.unreadable(file: path, reason: error.localizedDescription)
        }
        try self.init(data: data, path: path)
    }

    /// Parses bytes already in memory; `path` is only used in error messages.
    public init(data: Data, path: String) throws {
        self.path = path
        self.bytes = data
        guard data.count >= 8 else {
            throw SafeTensorsError.truncated(file: path, reason: "\(data.count) bytes, fewer than the 8-byte header length")
        }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(data[data.startIndex + i]) << (8 * UInt64(i)) }
        guard headerLength <= UInt64(data.count - 8) else {
            throw SafeTensorsError.truncated(
                file: path, reason: "header claims \(headerLength) bytes but only \(data.count - 8) follow")
        }
        // A header of hundreds of MB means this is not a safetensors file at all.
        guard headerLength <= 100_000_000 else {
            throw SafeTensorsError.badHeader(file: path, reason: "header length \(headerLength) is implausible")
        }
        let headerStart = data.startIndex + 8
        let headerBytes = data[headerStart..<(headerStart + Int(headerLength))]
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: headerBytes)
        } catch {
            throw SafeTensorsError.badHeader(file: path, reason: "not JSON (\(error.localizedDescription))")
        }
        guard let object = json as? [String: Any] else {
            throw SafeTensorsError.badHeader(file: path, reason: "header is not a JSON object")
        }
        dataStart = headerStart + Int(headerLength)
        let dataSize = data.endIndex - dataStart
        var tensors: [String: SafeTensorInfo] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in object.sorted(by: { $0.key < $1.key }) {
            if name == "__metadata__" {
                guard let map = value as? [String: Any] else {
                    throw SafeTensorsError.badHeader(file: path, reason: "__metadata__ is not an object")
                }
                for (k, v) in map { metadata[k] = (v as? String) ?? "\(v)" }
                continue
            }
            tensors[name] = try Self.parseEntry(name: name, value: value, dataSize: dataSize, path: path)
        }
        // Overlapping tensors mean a corrupt or hostile header. Empty tensors hold no bytes and
        // overlap nothing (with them in the sort, the verdict depended on the dictionary's order).
        let sorted = tensors.values.filter { !$0.dataRange.isEmpty }.sorted { $0.dataRange.lowerBound < $1.dataRange.lowerBound }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.dataRange.upperBound > b.dataRange.lowerBound {
            throw SafeTensorsError.badHeader(file: path, reason: "tensors '\(a.name)' and '\(b.name)' overlap")
        }
        self.tensors = tensors
        self.metadata = metadata
    }

    private static func parseEntry(name: String, value: Any, dataSize: Int, path: String) throws -> SafeTensorInfo {
        guard let entry = value as? [String: Any] else {
            throw SafeTensorsError.badHeader(file: path, reason: "entry '\(name)' is not an object")
        }
        guard let dtypeName = entry["dtype"] as? String else {
            throw SafeTensorsError.badHeader(file: path, reason: "tensor '\(name)' has no dtype")
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw SafeTensorsError.badHeader(file: path, reason: "tensor '\(name)' has unsupported dtype \(dtypeName)")
        }
        // `as? Int`, not NSNumber.intValue: that one wraps 2^64 to 0 and turns 1e300 into Int.min.
        guard let shapeValues = entry["shape"] as? [Any],
              let shape = Optional(shapeValues.compactMap { $0 as? Int }),
              shape.count == shapeValues.count, shape.allSatisfy({ $0 >= 0 }) else {
            throw SafeTensorsError.badHeader(file: path, reason: "tensor '\(name)' has an invalid shape")
        }
        guard let offsets = entry["data_offsets"] as? [Any], offsets.count == 2,
              let begin = offsets[0] as? Int, let end = offsets[1] as? Int,
              begin >= 0, end >= begin else {
            throw SafeTensorsError.badHeader(file: path, reason: "tensor '\(name)' has invalid data_offsets")
        }
        // The byte size too: a shape of 2^60 elements fits in Int, its F64 bytes do not.
        var byteCount = dtype.byteSize
        for dim in shape {
            let (product, overflow) = byteCount.multipliedReportingOverflow(by: dim)
            guard !overflow else {
                throw SafeTensorsError.badHeader(file: path, reason: "tensor '\(name)' shape \(shape) overflows")
            }
            byteCount = product
        }
        guard end - begin == byteCount else {
            throw SafeTensorsError.badHeader(
                file: path,
                reason: "tensor '\(name)' spans \(end - begin) bytes but shape \(shape) of \(dtypeName) needs \(byteCount)")
        }
        guard end <= dataSize else {
            throw SafeTensorsError.truncated(
                file: path, reason: "tensor '\(name)' ends at data byte \(end) but the data section has \(dataSize) bytes")
        }
        return SafeTensorInfo(name: name, dtype: dtype, shape: shape, dataRange: begin..<end)
    }

    /// The header entry of `name`.
    public func info(_ name: String) throws -> SafeTensorInfo {
        guard let info = tensors[name] else { throw SafeTensorsError.missingTensor(file: path, name: name) }
        return info
    }

    /// The tensor's values as Float (F32 as is; F16, BF16 and F64 converted).
    /// - Parameter shape: when given, the tensor must have exactly this shape.
    public func floats(_ name: String, shape: [Int]? = nil) throws -> [Float] {
        let info = try self.info(name)
        if let shape, shape != info.shape {
            throw SafeTensorsError.wrongShape(file: path, name: name, found: info.shape, wanted: shape)
        }
        return try [Float](unsafeUninitializedCapacity: info.elementCount) { buffer, initialized in
            try copyFloats(info, into: buffer)
            initialized = info.elementCount
        }
    }

    /// Copies the tensor's values, converted to Float, into `destination` (for loading straight into a
    /// parameter buffer); `destination.count` must equal the tensor's element count.
    public func copyFloats(_ name: String, into destination: UnsafeMutableBufferPointer<Float>) throws {
        let info = try self.info(name)
        guard destination.count == info.elementCount else {
            throw SafeTensorsError.wrongShape(file: path, name: name, found: info.shape, wanted: [destination.count])
        }
        try copyFloats(info, into: destination)
    }

    private func copyFloats(_ info: SafeTensorInfo, into out: UnsafeMutableBufferPointer<Float>) throws {
        let raw = rawBytes(info)
        let n = info.elementCount
        switch info.dtype {
        case .f32:
            raw.withUnsafeBytes { src in
                for i in 0..<n { out[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
            }
        case .f64:
            raw.withUnsafeBytes { src in
                for i in 0..<n { out[i] = Float(Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
            }
        case .bf16:
            raw.withUnsafeBytes { src in
                for i in 0..<n { out[i] = Float(bitPattern: UInt32(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16) }
            }
        case .f16:
            raw.withUnsafeBytes { src in
                for i in 0..<n { out[i] = Float(Float16(bitPattern: UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))) }
            }
        default:
            throw SafeTensorsError.wrongDType(file: path, name: info.name, found: info.dtype.rawValue, wanted: "a float type")
        }
    }

    /// The tensor's values as Int (I64, I32, U8 and BOOL accepted).
    public func ints(_ name: String, shape: [Int]? = nil) throws -> [Int] {
        let info = try self.info(name)
        if let shape, shape != info.shape {
            throw SafeTensorsError.wrongShape(file: path, name: name, found: info.shape, wanted: shape)
        }
        let raw = rawBytes(info)
        let n = info.elementCount
        switch info.dtype {
        case .i64:
            return raw.withUnsafeBytes { src in
                (0..<n).map { Int(Int64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self))) }
            }
        case .i32:
            return raw.withUnsafeBytes { src in
                (0..<n).map { Int(Int32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) }
            }
        case .u8, .bool: return raw.map { Int($0) }
        default:
            throw SafeTensorsError.wrongDType(file: path, name: name, found: info.dtype.rawValue, wanted: "an integer type")
        }
    }

    private func rawBytes(_ info: SafeTensorInfo) -> Data {
        bytes[(dataStart + info.dataRange.lowerBound)..<(dataStart + info.dataRange.upperBound)]
    }
}

/// Builds a safetensors file: add tensors in order, then write. Data follows the header in the
/// order tensors were added, so a model saved from one contiguous buffer is written sequentially.
public struct SafeTensorsWriter {
    private var entries: [(name: String, dtype: SafeTensorsDType, shape: [Int], data: Data)] = []
    public var metadata: [String: String] = [:]

    public init() {}

    /// Adds a Float32 tensor; `values.count` must equal the product of `shape`.
    public mutating func add<C: Collection>(_ name: String, shape: [Int], floats values: C) where C.Element == Float {
        precondition(values.count == shape.reduce(1, *), "tensor \(name): \(values.count) values for shape \(shape)")
        var data = Data(capacity: 4 * values.count)
        for v in values { data.appendLE(v.bitPattern) }
        entries.append((name, .f32, shape, data))
    }

    /// Adds an Int64 tensor.
    public mutating func add<C: Collection>(_ name: String, shape: [Int], int64s values: C) where C.Element == Int {
        precondition(values.count == shape.reduce(1, *), "tensor \(name): \(values.count) values for shape \(shape)")
        var data = Data(capacity: 8 * values.count)
        for v in values { data.appendLE(UInt64(bitPattern: Int64(v))) }
        entries.append((name, .i64, shape, data))
    }

    /// The complete file contents.
    public func serialized() throws -> Data {
        var header: [String: Any] = [:]
        var offset = 0
        for entry in entries {
            header[entry.name] = ["dtype": entry.dtype.rawValue, "shape": entry.shape,
                                  "data_offsets": [offset, offset + entry.data.count]] as [String: Any]
            offset += entry.data.count
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
        while (8 + json.count) % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var out = Data()
        out.appendLE(UInt64(json.count))
        out.append(json)
        for entry in entries { out.append(entry.data) }
        return out
    }

    /// Writes the file to `url`.
    public func write(to url: URL) throws {
        do {
            try serialized().write(to: url, options: .atomic)
        } catch {
            throw SafeTensorsError.unwritable(file: url.path, reason: error.localizedDescription)
        }
    }
}

extension Data {
    mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        var le = value.littleEndian
        Swift.withUnsafeBytes(of: &le) { append(contentsOf: $0) }
    }
}
