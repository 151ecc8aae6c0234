import Foundation

/// One TensorBoard `Event` record: the subset of tensorflow/core/util/event.proto we write and read
/// (wall_time = 1, step = 2, file_version = 3, summary = 5; Summary.value = 1;
/// Summary.Value.tag = 1, simple_value = 2).
public struct TensorBoardEvent: Equatable, Sendable {
    public var wallTime: Double
    public var step: Int64
    /// Set only in the first record of a file ("brain.Event:2").
    public var fileVersion: String?
    /// Scalar summaries (tag, value) carried by this event.
    public var scalars: [Scalar]

    public struct Scalar: Equatable, Sendable {
        public var tag: String
        public var value: Float

        public init(tag: String, value: Float) {
            self.tag = tag
            self.value = value
        }
    }

    public init(wallTime: Double, step: Int64, fileVersion: String? = nil, scalars: [Scalar] = []) {
        self.wallTime = wallTime
        self.step = step
        self.fileVersion = fileVersion
        self.scalars = scalars
    }

    /// The protobuf encoding.
    public func encoded() -> [UInt8] {
        var out = ProtobufWriter()
        out.fixed64(field: 1, wallTime.bitPattern)
        if step != 0 { out.varint(field: 2, UInt64(bitPattern: step)) }
        if let fileVersion { out.bytes(field: 3, Array(fileVersion.utf8)) }
        if !scalars.isEmpty {
            var summary = ProtobufWriter()
            for scalar in scalars {
                var value = ProtobufWriter()
                value.bytes(field: 1, Array(scalar.tag.utf8))
                value.fixed32(field: 2, scalar.value.bitPattern)
                summary.bytes(field: 1, value.bytes)
            }
            out.bytes(field: 5, summary.bytes)
        }
        return out.bytes
    }

    /// Decodes an Event message, skipping fields we do not use (e.g. other summary kinds).
    public init(decoding bytes: [UInt8]) throws {
        self.init(wallTime: 0, step: 0)
        var reader = ProtobufReader(bytes)
        while let (field, value) = try reader.next() {
            switch (field, value) {
            case (1, .fixed64(let bits)): wallTime = Double(bitPattern: bits)
            case (2, .varint(let v)): step = Int64(bitPattern: v)
            case (3, .bytes(let b)): fileVersion = String(decoding: b, as: UTF8.self)
            case (5, .bytes(let summary)):
                var summaryReader = ProtobufReader(summary)
                while let (summaryField, entry) = try summaryReader.next() {
                    guard summaryField == 1, case .bytes(let valueBytes) = entry else { continue }
                    var tag = "", simpleValue: Float?
                    var valueReader = ProtobufReader(valueBytes)
                    while let (valueField, item) = try valueReader.next() {
                        switch (valueField, item) {
                        case (1, .bytes(let t)): tag = String(decoding: t, as: UTF8.self)
                        case (2, .fixed32(let bits)): simpleValue = Float(bitPattern: bits)
                        default: break
                        }
                    }
                    if let simpleValue { scalars.append(Scalar(tag: tag, value: simpleValue)) }
                }
            default: break
            }
        }
    }
}

/// Minimal protobuf wire-format encoder (varint, fixed32, fixed64, length-delimited).
struct ProtobufWriter {
    private(set) var bytes: [UInt8] = []

    private mutating func rawVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    private mutating func key(_ field: Int, _ wireType: UInt64) { rawVarint(UInt64(field) << 3 | wireType) }

    mutating func varint(field: Int, _ value: UInt64) {
        key(field, 0)
        rawVarint(value)
    }

    mutating func fixed64(field: Int, _ value: UInt64) {
        key(field, 1)
        for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))) }
    }

    mutating func fixed32(field: Int, _ value: UInt32) {
        key(field, 5)
        for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt32(i)))) }
    }

    mutating func bytes(field: Int, _ value: [UInt8]) {
        key(field, 2)
        rawVarint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }
}

/// Errors decoding protobuf bytes.
public enum ProtobufError: Error, CustomStringConvertible, Equatable {
    case truncated(offset: Int)
    case unsupportedWireType(Int, offset: Int)

    public var description: String {
        switch self {
        case let .truncated(offset): return "protobuf message truncated at byte \(offset)"
        case let .unsupportedWireType(type, offset): return "unsupported protobuf wire type \(type) at byte \(offset)"
        }
    }
}

/// Minimal protobuf wire-format decoder: yields (field number, value) pairs in order.
struct ProtobufReader {
    enum Value {
        case varint(UInt64)
        case fixed64(UInt64)
        case fixed32(UInt32)
        case bytes([UInt8])
    }

    private let data: [UInt8]
    private var offset = 0

    init(_ data: [UInt8]) { self.data = data }

    private mutating func readVarint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < data.count, shift < 64 else { throw ProtobufError.truncated(offset: offset) }
            let byte = data[offset]
            offset += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    private mutating func readFixed(_ size: Int) throws -> UInt64 {
        guard data.count - offset >= size else { throw ProtobufError.truncated(offset: offset) }
        var v: UInt64 = 0
        for i in 0..<size { v |= UInt64(data[offset + i]) << (8 * UInt64(i)) }
        offset += size
        return v
    }

    mutating func next() throws -> (Int, Value)? {
        guard offset < data.count else { return nil }
        let keyOffset = offset
        let key = try readVarint()
        let field = Int(key >> 3)
        switch key & 7 {
        case 0: return (field, .varint(try readVarint()))
        case 1: return (field, .fixed64(try readFixed(8)))
        case 5: return (field, .fixed32(UInt32(try readFixed(4))))
        case 2:
            let length = try readVarint()
            guard length <= UInt64(data.count - offset) else { throw ProtobufError.truncated(offset: offset) }
            let value = Array(data[offset..<(offset + Int(length))])
            offset += Int(length)
            return (field, .bytes(value))
        default:
            throw ProtobufError.unsupportedWireType(Int(key & 7), offset: keyOffset)
        }
    }
}
