import Data
import Foundation

#if !_endian(little)
#error("checkpoint files store Float32 little-endian and are written straight from memory")
#endif

/// Errors writing or reading a checkpoint; every case names the file.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case unwritable(path: String, reason: String)
    /// Writing the new checkpoint failed before it replaced anything (disk full, I/O error): the
    /// temporary file is gone and `previous`, the newest checkpoint already there, is untouched.
    case notWritten(path: String, reason: String, previous: String?)
    case unreadable(path: String, reason: String)
    case notACheckpoint(path: String)
    case truncated(path: String, reason: String)
    case corrupt(path: String, reason: String)
    case missingSection(path: String, name: String)
    case wrongKind(path: String, name: String, found: String, wanted: String)
    case sizeMismatch(path: String, name: String, count: Int, expected: Int)
    case badJSON(path: String, name: String, reason: String)
    case duplicateSection(name: String)

    public var description: String {
        switch self {
        case let .unwritable(path, reason): return "cannot write checkpoint \(path): \(reason)"
        case let .notWritten(path, reason, previous):
            let kept = previous.map { "the previous checkpoint \($0) is intact (resume with model_file=\($0))" }
                ?? "there is no earlier checkpoint to resume from"
            return "cannot write checkpoint \(path): \(reason); nothing was replaced or deleted: \(kept)"
        case let .unreadable(path, reason): return "cannot read checkpoint \(path): \(reason)"
        case let .notACheckpoint(path): return "\(path) is not an srdpr checkpoint (bad magic bytes)"
        case let .truncated(path, reason):
            return "checkpoint \(path) is truncated (\(reason)); it was not completely written or copied"
        case let .corrupt(path, reason): return "checkpoint \(path) is corrupt: \(reason)"
        case let .missingSection(path, name): return "checkpoint \(path) has no section '\(name)'"
        case let .wrongKind(path, name, found, wanted):
            return "checkpoint \(path): section '\(name)' holds \(found), expected \(wanted)"
        case let .sizeMismatch(path, name, count, expected):
            return "checkpoint \(path): section '\(name)' has \(count) values, expected \(expected) (a different model?)"
        case let .badJSON(path, name, reason): return "checkpoint \(path): section '\(name)' is not the expected JSON: \(reason)"
        case let .duplicateSection(name): return "checkpoint section '\(name)' added twice"
        }
    }
}

/// What a section holds.
public enum CheckpointSectionKind: String, Codable, Sendable {
    /// Little-endian Float32 values.
    case floats = "f32"
    /// A UTF-8 JSON document.
    case json
    /// Opaque bytes.
    case bytes
}

/// A section's entry in the index.
public struct CheckpointSectionInfo: Codable, Equatable, Sendable {
    public var name: String
    public var kind: CheckpointSectionKind
    /// Byte offset from the start of the file, and length in bytes.
    public var offset: Int
    public var length: Int
    /// Optional tensor shape of a float section.
    public var shape: [Int]?
    /// CRC-32C of the section's bytes.
    public var crc32c: UInt32
}

/// The on-disk layout, written in one sequential pass so the checksums cost one read of the data:
///
///     "SRDPRCK1"  | section bytes ... | index JSON | UInt64 index length | UInt32 CRC-32C of index | "SRDPREND"
///
/// The index lists every section with its offset, length and CRC-32C, and the total file size, so
/// every byte of the file is covered by a checksum, and a missing end marker or a size that does
/// not match means a truncated file.
enum CheckpointFormat {
    static let magic = Array("SRDPRCK1".utf8)
    static let endMagic = Array("SRDPREND".utf8)
    static let trailerSize = 8 + 4 + 8

    struct Index: Codable {
        var formatVersion: Int
        var fileSize: Int
        var sections: [CheckpointSectionInfo]
    }
}

/// Builds a checkpoint out of named sections and writes it atomically: a temporary file in the
/// target directory, fsync, rename over the target, fsync of the directory. A crash at any point
/// leaves either the old file or the complete new one.
public struct CheckpointWriter {
    private enum Payload {
        case floats([Float])
        case floatBuffer(UnsafeBufferPointer<Float>)
        case bytes([UInt8])
    }

    private var sections: [(name: String, kind: CheckpointSectionKind, shape: [Int]?, payload: Payload)] = []
    private var names: Set<String> = []

    /// Fault injection for tests of the disk-full path: when set, `write(to:)` behaves as if the
    /// file system had only this many bytes free (a short write, then ENOSPC, as a full disk does).
    public var simulatedFreeBytes: Int?

    public init() {}

    /// Adds Float32 values (the array is not copied: Swift arrays are copy-on-write).
    public mutating func addFloats(_ name: String, _ values: [Float], shape: [Int]? = nil) throws {
        try add(name, .floats, shape, .floats(values))
    }

    /// Adds Float32 values straight from a buffer, without a copy; the buffer must stay valid and
    /// unchanged until `write(to:)` returns (e.g. the model's parameter buffer between steps).
    public mutating func addFloats(_ name: String, unsafeBuffer: UnsafeBufferPointer<Float>, shape: [Int]? = nil) throws {
        try add(name, .floats, shape, .floatBuffer(unsafeBuffer))
    }

    /// Adds a value encoded as JSON (sorted keys, so equal states give equal files).
    public mutating func addJSON<T: Encodable>(_ name: String, _ value: T) throws {
        let encoder = JSONEncoder.sortedKeys()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        try add(name, .json, nil, .bytes(Array(try encoder.encode(value))))
    }

    /// Adds opaque bytes.
    public mutating func addBytes(_ name: String, _ bytes: [UInt8]) throws {
        try add(name, .bytes, nil, .bytes(bytes))
    }

    private mutating func add(_ name: String, _ kind: CheckpointSectionKind, _ shape: [Int]?, _ payload: Payload) throws {
        guard names.insert(name).inserted else { throw CheckpointError.duplicateSection(name: name) }
        sections.append((name, kind, shape, payload))
    }

    /// The size of the file `write(to:)` makes, within a few kilobytes (the index is estimated).
    public var estimatedByteCount: Int {
        let payload = sections.reduce(0) { total, section in
            switch section.payload {
            case .floats(let values): return total + values.count * 4
            case .floatBuffer(let buffer): return total + buffer.count * 4
            case .bytes(let bytes): return total + bytes.count
            }
        }
        return CheckpointFormat.magic.count + payload + sections.count * 256 + CheckpointFormat.trailerSize
    }

    /// Writes the checkpoint to `url` atomically, replacing any file there.
    public func write(to url: URL) throws {
        let path = url.path
        let directory = url.deletingLastPathComponent()
        let temporary = directory.appendingPathComponent(
            ".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        // Whatever fails before the rename leaves the file at `path` (if any) as it was.
        func notWritten(_ stage: String) -> CheckpointError {
            let code = errno
            var reason = "\(stage): \(String(cString: strerror(code)))"
            if code == ENOSPC || code == EDQUOT {
                reason += " (free space in \(directory.path) or set output_dir elsewhere)"
            }
            return .notWritten(path: path, reason: reason,
                               previous: FileManager.default.fileExists(atPath: path) ? path : nil)
        }
        CheckpointInFlight.begin(temporary.path)
        defer { CheckpointInFlight.end() }
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw notWritten("cannot create \(temporary.lastPathComponent)") }
        var closed = false
        do {
            defer { if !closed { _ = close(fd) } }
            var output = SequentialFile(fd: fd, freeBytes: simulatedFreeBytes, failure: notWritten)
            try output.write(CheckpointFormat.magic)
            var infos: [CheckpointSectionInfo] = []
            for section in sections {
                let start = output.offset
                let crc: UInt32
                switch section.payload {
                case .floats(let values):
                    crc = try values.withUnsafeBytes { try output.writeChecksummed($0) }
                case .floatBuffer(let buffer):
                    crc = try output.writeChecksummed(UnsafeRawBufferPointer(buffer))
                case .bytes(let bytes):
                    crc = try bytes.withUnsafeBytes { try output.writeChecksummed($0) }
                }
                infos.append(CheckpointSectionInfo(name: section.name, kind: section.kind, offset: start,
                                                   length: output.offset - start, shape: section.shape, crc32c: crc))
            }
            // The index records the final file size; its own length is known once encoded.
            let indexStart = output.offset
            var index = CheckpointFormat.Index(formatVersion: 1, fileSize: 0, sections: infos)
            var indexBytes: [UInt8] = []
            let encoder = JSONEncoder.sortedKeys()
            // fileSize changes the JSON length, which changes fileSize: iterate to the fixed point.
            for _ in 0..<4 {
                indexBytes = Array(try encoder.encode(index))
                let size = indexStart + indexBytes.count + CheckpointFormat.trailerSize
                if size == index.fileSize { break }
                index.fileSize = size
            }
            try output.write(indexBytes)
            var trailer: [UInt8] = []
            withUnsafeBytes(of: UInt64(indexBytes.count).littleEndian) { trailer += $0 }
            withUnsafeBytes(of: CRC32C.checksum(indexBytes).littleEndian) { trailer += $0 }
            trailer += CheckpointFormat.endMagic
            try output.write(trailer)
            guard fsync(fd) == 0 else { throw notWritten("fsync") }
            closed = true
            guard close(fd) == 0 else { throw notWritten("close") }
            guard rename(temporary.path, path) == 0 else { throw notWritten("rename") }
        } catch {
            unlink(temporary.path)
            throw error
        }
        // Make the rename itself durable.
        let dirFD = open(directory.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            defer { _ = close(dirFD) }
            guard fsync(dirFD) == 0 else {
                throw CheckpointError.unwritable(path: path, reason: "fsync of the directory: \(Self.errnoText())")
            }
        }
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// Writes to a file descriptor in large pieces, tracking the offset.
private struct SequentialFile {
    let fd: Int32
    /// `CheckpointWriter.simulatedFreeBytes`: writes past it fail with ENOSPC.
    let freeBytes: Int?
    /// The error for a failed write (reads `errno`).
    let failure: (String) -> CheckpointError
    private(set) var offset = 0

    init(fd: Int32, freeBytes: Int?, failure: @escaping (String) -> CheckpointError) {
        self.fd = fd
        self.freeBytes = freeBytes
        self.failure = failure
    }

    mutating func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    mutating func write(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            var piece = min(bytes.count - done, 1 << 26)
            if let freeBytes {
                let left = freeBytes - (offset + done)
                guard left > 0 else {
                    errno = ENOSPC
                    throw failure("write at byte \(offset + done)")
                }
                piece = min(piece, left)
            }
            let n = Foundation.write(fd, bytes.baseAddress! + done, piece)
            if n < 0 {
                if errno == EINTR { continue }
                throw failure("write at byte \(offset + done)")
            }
            done += n
        }
        offset += bytes.count
    }

    /// Writes and returns the CRC-32C, hashing each 8 MB piece just before it is written (still in cache).
    mutating func writeChecksummed(_ bytes: UnsafeRawBufferPointer) throws -> UInt32 {
        var crc = CRC32C()
        var start = 0
        while start < bytes.count {
            let piece = UnsafeRawBufferPointer(rebasing: bytes[start..<min(start + (1 << 23), bytes.count)])
            crc.update(piece)
            try write(piece)
            start += piece.count
        }
        return crc.finalValue
    }
}

/// A checkpoint opened for reading: the file is memory-mapped and every section's checksum is
/// verified on open, so a truncated or corrupted file is reported before anything is restored.
public struct CheckpointFile {
    public let path: String
    public let sections: [String: CheckpointSectionInfo]
    private let bytes: Foundation.Data

    /// Section names in file order.
    public var names: [String] { sections.values.sorted { $0.offset < $1.offset }.map(\.name) }

    public init(url: URL, verifyChecksums: Bool = true) throws {
        let bytes: Foundation.Data
        do {
            bytes = try Foundation.Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw CheckpointError.unreadable(path: url.path, reason: error.localizedDescription)
        }
        try self.init(data: bytes, path: url.path, verifyChecksums: verifyChecksums)
    }

    /// A checkpoint already in memory; `path` only names it in errors.
    public init(data: Foundation.Data, path: String, verifyChecksums: Bool = true) throws {
        self.path = path
        bytes = data.startIndex == 0 ? data : Foundation.Data(data)  // offsets below are positions from 0
        let count = bytes.count
        let magic = CheckpointFormat.magic
        guard count >= magic.count else {
            throw CheckpointError.truncated(path: path, reason: "only \(count) bytes")
        }
        guard Array(bytes.prefix(magic.count)) == magic else { throw CheckpointError.notACheckpoint(path: path) }
        guard count >= magic.count + CheckpointFormat.trailerSize,
              Array(bytes.suffix(CheckpointFormat.endMagic.count)) == CheckpointFormat.endMagic else {
            throw CheckpointError.truncated(path: path, reason: "the end marker is missing; the file has \(count) bytes")
        }
        let trailerStart = count - CheckpointFormat.trailerSize
        let indexLength = Int(clamping: bytes.readLE(UInt64.self, at: trailerStart))
        let indexCRC = bytes.readLE(UInt32.self, at: trailerStart + 8)
        guard indexLength <= trailerStart - magic.count else {
            throw CheckpointError.corrupt(path: path, reason: "index length \(indexLength) exceeds the file")
        }
        let indexBytes = bytes[(trailerStart - indexLength)..<trailerStart]
        guard CRC32C.checksum(indexBytes) == indexCRC else {
            throw CheckpointError.corrupt(path: path, reason: "checksum mismatch in the section index")
        }
        let index: CheckpointFormat.Index
        do {
            index = try JSONDecoder().decode(CheckpointFormat.Index.self, from: indexBytes)
        } catch {
            throw CheckpointError.corrupt(path: path, reason: "unreadable section index: \(error)")
        }
        guard index.fileSize == count else {
            throw CheckpointError.corrupt(path: path, reason: "index says \(index.fileSize) bytes, file has \(count)")
        }
        var sections: [String: CheckpointSectionInfo] = [:]
        let dataEnd = trailerStart - indexLength
        for info in index.sections {
            guard info.offset >= magic.count, info.length >= 0, info.offset <= dataEnd - info.length else {
                throw CheckpointError.corrupt(path: path, reason: "section '\(info.name)' lies outside the data")
            }
            if info.kind == .floats, info.length % 4 != 0 {
                throw CheckpointError.corrupt(path: path, reason: "float section '\(info.name)' has \(info.length) bytes")
            }
            sections[info.name] = info
        }
        self.sections = sections
        if verifyChecksums {
            for info in index.sections {
                let crc = bytes.withUnsafeBytes { raw -> UInt32 in
                    var c = CRC32C()
                    c.update(UnsafeRawBufferPointer(rebasing: raw[info.offset..<(info.offset + info.length)]))
                    return c.finalValue
                }
                guard crc == info.crc32c else {
                    throw CheckpointError.corrupt(path: path, reason: "checksum mismatch in section '\(info.name)'")
                }
            }
        }
    }

    public func contains(_ name: String) -> Bool { sections[name] != nil }

    private func section(_ name: String, _ kind: CheckpointSectionKind) throws -> CheckpointSectionInfo {
        guard let info = sections[name] else { throw CheckpointError.missingSection(path: path, name: name) }
        guard info.kind == kind else {
            throw CheckpointError.wrongKind(path: path, name: name, found: info.kind.rawValue, wanted: kind.rawValue)
        }
        return info
    }

    /// Number of Float values in a float section.
    public func floatCount(_ name: String) throws -> Int { try section(name, .floats).length / 4 }

    /// The recorded shape of a float section, if one was given.
    public func shape(_ name: String) throws -> [Int]? { try section(name, .floats).shape }

    /// The values of a float section.
    public func floats(_ name: String) throws -> [Float] {
        let count = try floatCount(name)
        return try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            try copyFloats(name, into: buffer)
            initialized = count
        }
    }

    /// Copies a float section into `destination`, which must have exactly its size.
    public func copyFloats(_ name: String, into destination: UnsafeMutableBufferPointer<Float>) throws {
        let info = try section(name, .floats)
        guard info.length / 4 == destination.count else {
            throw CheckpointError.sizeMismatch(path: path, name: name, count: info.length / 4, expected: destination.count)
        }
        bytes.withUnsafeBytes { raw in
            UnsafeMutableRawBufferPointer(destination)
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[info.offset..<(info.offset + info.length)]))
        }
    }

    /// Decodes a JSON section.
    public func json<T: Decodable>(_ name: String, as type: T.Type = T.self) throws -> T {
        let info = try section(name, .json)
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do {
            return try decoder.decode(T.self, from: bytes[info.offset..<(info.offset + info.length)])
        } catch {
            throw CheckpointError.badJSON(path: path, name: name, reason: "\(error)")
        }
    }

    /// The bytes of a bytes section.
    public func bytes(_ name: String) throws -> [UInt8] {
        let info = try section(name, .bytes)
        return Array(bytes[info.offset..<(info.offset + info.length)])
    }
}

extension Foundation.Data {
    func readLE<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }
}
