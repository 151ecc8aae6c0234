import Foundation

/// A tensor read from a weight file, converted to Float32 (or kept as Int64 for index tensors).
public struct LoadedTensor {
    public var shape: [Int]
    public var floats: [Float]
}

/// Reader of the safetensors format: 8-byte little-endian header length, a JSON header
/// `{name: {dtype, shape, data_offsets: [begin, end]}}`, then the raw little-endian data.
public struct SafetensorsFile {
    public struct Entry {
        public var dtype: String
        public var shape: [Int]
        public var begin: Int
        public var end: Int
    }

    public let path: String
    public let entries: [String: Entry]
    public let metadata: [String: String]
    private let bytes: Data
    private let dataStart: Int

    public var names: [String] { entries.keys.sorted() }

    public init(url: URL) throws {
        path = url.path
        guard FileManager.default.fileExists(atPath: path) else { throw ModelError.missingFile(path) }
        do { bytes = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw ModelError.ioError(file: path, reason: "cannot read: \(error.localizedDescription)")
        }
        guard bytes.count >= 8 else {
            throw ModelError.malformedWeights(file: path, offset: 0, reason: "file is \(bytes.count) bytes, shorter than the 8-byte header length")
        }
        let headerLength = bytes.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self))) }
        guard headerLength >= 2, headerLength <= bytes.count - 8 else {
            throw ModelError.malformedWeights(file: path, offset: 0, reason: "header length \(headerLength) does not fit in a file of \(bytes.count) bytes (truncated?)")
        }
        dataStart = 8 + headerLength
        guard let json = (try? JSONSerialization.jsonObject(with: bytes.subdata(in: 8..<dataStart))) as? [String: Any] else {
            throw ModelError.malformedWeights(file: path, offset: 8, reason: "header is not a JSON object")
        }
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        let dataLength = bytes.count - dataStart
        for (name, value) in json {
            if name == "__metadata__" {
                metadata = value as? [String: String] ?? [:]
                continue
            }
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                  let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2 else {
                throw ModelError.malformedWeights(file: path, offset: 8, reason: "header entry \(name) lacks dtype, shape or data_offsets")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end, end <= dataLength else {
                throw ModelError.malformedWeights(file: path, offset: dataStart + begin,
                    reason: "tensor \(name) spans bytes \(begin)..<\(end) of the data section, which has only \(dataLength) bytes (truncated file?)")
            }
            if let size = Self.elementSize(dtype) {
                let expected = shape.reduce(1, *) * size
                guard expected == end - begin else {
                    throw ModelError.malformedWeights(file: path, offset: dataStart + begin,
                        reason: "tensor \(name) of shape \(shape) and dtype \(dtype) needs \(expected) bytes, has \(end - begin)")
                }
            }
            entries[name] = Entry(dtype: dtype, shape: shape, begin: begin, end: end)
        }
        self.entries = entries
        self.metadata = metadata
    }

    static func elementSize(_ dtype: String) -> Int? {
        switch dtype {
        case "F64", "I64", "U64": return 8
        case "F32", "I32", "U32": return 4
        case "F16", "BF16", "I16", "U16": return 2
        case "I8", "U8", "BOOL": return 1
        default: return nil
        }
    }

    /// The tensor converted to Float32 (from F32, F16, BF16 or F64).
    public func tensor(_ name: String) throws -> LoadedTensor {
        guard let e = entries[name] else { throw ModelError.missingTensor(file: path, name: name) }
        let count = e.shape.reduce(1, *)
        let start = dataStart + e.begin
        let floats: [Float] = try bytes.withUnsafeBytes { raw in
            try TensorDecoding.decode(raw, at: start, count: count, dtype: e.dtype, file: path, name: name)
        }
        return LoadedTensor(shape: e.shape, floats: floats)
    }

    /// An integer tensor (I64 or I32) as Int.
    public func integers(_ name: String) throws -> [Int] {
        guard let e = entries[name] else { throw ModelError.missingTensor(file: path, name: name) }
        let count = e.shape.reduce(1, *)
        let start = dataStart + e.begin
        return try bytes.withUnsafeBytes { raw in
            switch e.dtype {
            case "I64": return (0..<count).map { Int(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: start + 8 * $0, as: Int64.self))) }
            case "I32": return (0..<count).map { Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: start + 4 * $0, as: Int32.self))) }
            default: throw ModelError.unsupportedDType(file: path, name: name, dtype: e.dtype)
            }
        }
    }

    /// Writes tensors (Float32) in safetensors layout, names sorted, with `{"format": "pt"}` metadata.
    public static func write(_ tensors: [(name: String, shape: [Int], data: UnsafeBufferPointer<Float>)], to url: URL) throws {
        var header: [String: Any] = ["__metadata__": ["format": "pt"]]
        var offset = 0
        let sorted = tensors.sorted { $0.name < $1.name }
        for t in sorted {
            let size = t.data.count * 4
            header[t.name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + size]] as [String: Any]
            offset += size
        }
        var headerData = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad the header with spaces so the data section starts 8-byte aligned.
        while (8 + headerData.count) % 8 != 0 { headerData.append(0x20) }
        var out = Data(capacity: 8 + headerData.count + offset)
        var length = UInt64(headerData.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(headerData)
        for t in sorted {
            t.data.withMemoryRebound(to: UInt8.self) { out.append($0.baseAddress!, count: t.data.count * 4) }
        }
        do { try out.write(to: url, options: .atomic) } catch {
            throw ModelError.ioError(file: url.path, reason: "cannot write: \(error.localizedDescription)")
        }
    }
}

/// Little-endian element decoding shared by the safetensors and PyTorch readers.
enum TensorDecoding {
    static func decode(_ raw: UnsafeRawBufferPointer, at start: Int, count: Int, dtype: String,
                       file: String, name: String) throws -> [Float] {
        var out = [Float](repeating: 0, count: count)
        switch dtype {
        case "F32":
            out.withUnsafeMutableBytes { dst in
                dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[start..<(start + 4 * count)]))
            }
        case "F64":
            for i in 0..<count { out[i] = Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: start + 8 * i, as: UInt64.self)))) }
        case "F16":
            for i in 0..<count {
                #if arch(arm64)
                out[i] = Float(Float16(bitPattern: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: start + 2 * i, as: UInt16.self))))
                #else
                out[i] = halfToFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: start + 2 * i, as: UInt16.self)))
                #endif
            }
        case "BF16":
            for i in 0..<count {
                let b = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: start + 2 * i, as: UInt16.self))
                out[i] = Float(bitPattern: UInt32(b) << 16)
            }
        default:
            throw ModelError.unsupportedDType(file: file, name: name, dtype: dtype)
        }
        return out
    }

    static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exponent = Int((h >> 10) & 0x1f)
        let mantissa = UInt32(h & 0x3ff)
        if exponent == 0 {
            return (sign != 0 ? -1 : 1) * Float(mantissa) * Float(pow(2.0, -24.0))
        }
        if exponent == 31 { return Float(bitPattern: sign | 0x7f80_0000 | (mantissa << 13)) }
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
    }
}
