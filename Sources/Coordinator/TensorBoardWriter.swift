import Data
import Foundation

/// Errors writing or reading TensorBoard event files; each names the file.
public enum TensorBoardError: Error, CustomStringConvertible, Equatable {
    case cannotCreate(path: String, reason: String)
    case writeFailed(path: String, reason: String)
    case unreadable(path: String, reason: String)
    case truncated(path: String, offset: Int)
    case checksumMismatch(path: String, offset: Int, what: String)
    case badEvent(path: String, offset: Int, reason: String)

    public var description: String {
        switch self {
        case let .cannotCreate(path, reason): return "cannot create TensorBoard event file \(path): \(reason)"
        case let .writeFailed(path, reason): return "cannot write TensorBoard event file \(path): \(reason)"
        case let .unreadable(path, reason): return "cannot read TensorBoard event file \(path): \(reason)"
        case let .truncated(path, offset): return "\(path): TFRecord truncated at byte \(offset)"
        case let .checksumMismatch(path, offset, what):
            return "\(path): TFRecord \(what) checksum mismatch in the record at byte \(offset)"
        case let .badEvent(path, offset, reason): return "\(path): invalid Event in the record at byte \(offset): \(reason)"
        }
    }
}

/// TFRecord framing: length (UInt64 LE), masked CRC32C of the length, data, masked CRC32C of the data.
enum TFRecord {
    static func frame(_ payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(payload.count + 16)
        var lengthBytes: [UInt8] = []
        for i in 0..<8 { lengthBytes.append(UInt8(truncatingIfNeeded: UInt64(payload.count) >> (8 * UInt64(i)))) }
        out += lengthBytes
        out += littleEndianBytes(CRC32C.masked(CRC32C.checksum(lengthBytes)))
        out += payload
        out += littleEndianBytes(CRC32C.masked(CRC32C.checksum(payload)))
        return out
    }

    static func littleEndianBytes(_ v: UInt32) -> [UInt8] {
        (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * UInt32($0))) }
    }
}

/// Writes `events.out.tfevents.<seconds>.<host>` in a log directory, as TensorFlow's
/// EventFileWriter does, so that TensorBoard shows the scalars. Every record is written with one
/// `write(2)` as soon as it is added, so a running TensorBoard sees it without waiting for a close.
public final class TensorBoardWriter {
    public let fileURL: URL
    private var descriptor: Int32

    /// Creates `logDir` if needed and a new event file in it, starting with the file-version record.
    public init(logDir: URL, wallTime: Double = Date().timeIntervalSince1970,
                hostName: String = ProcessInfo.processInfo.hostName) throws {
        do {
            try FileManager.default.createDirectory(at: logDir, withIntermediateDirectories: true)
        } catch {
            throw TensorBoardError.cannotCreate(path: logDir.path, reason: error.localizedDescription)
        }
        // A second writer in the same second (e.g. a resumed run) gets a distinct name.
        var url = logDir.appendingPathComponent("events.out.tfevents.\(Int(wallTime)).\(hostName)")
        var suffix = 1
        while FileManager.default.fileExists(atPath: url.path) {
            url = logDir.appendingPathComponent("events.out.tfevents.\(Int(wallTime)).\(hostName).\(suffix)")
            suffix += 1
        }
        fileURL = url
        descriptor = open(url.path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw TensorBoardError.cannotCreate(path: url.path, reason: String(cString: strerror(errno)))
        }
        try write(TensorBoardEvent(wallTime: wallTime, step: 0, fileVersion: "brain.Event:2"))
    }

    deinit { close() }

    /// Adds one scalar `tag` = `value` at `step`.
    public func addScalar(_ tag: String, _ value: Float, step: Int,
                          wallTime: Double = Date().timeIntervalSince1970) throws {
        try write(TensorBoardEvent(wallTime: wallTime, step: Int64(step),
                                   scalars: [.init(tag: tag, value: value)]))
    }

    /// Appends one event record.
    public func write(_ event: TensorBoardEvent) throws {
        guard descriptor >= 0 else {
            throw TensorBoardError.writeFailed(path: fileURL.path, reason: "the writer was closed")
        }
        let record = TFRecord.frame(event.encoded())
        try record.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = Foundation.write(descriptor, raw.baseAddress! + done, raw.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw TensorBoardError.writeFailed(path: fileURL.path, reason: String(cString: strerror(errno)))
                }
                done += n
            }
        }
    }

    /// Forces written records to disk (they are already visible to readers on this machine).
    public func flush() throws {
        guard descriptor >= 0 else { return }
        if fsync(descriptor) != 0 {
            throw TensorBoardError.writeFailed(path: fileURL.path, reason: String(cString: strerror(errno)))
        }
    }

    public func close() {
        if descriptor >= 0 {
            _ = Foundation.close(descriptor)
            descriptor = -1
        }
    }
}

/// Reads an event file back, checking the framing and both checksums of every record.
/// Independent of the writer's encoding code paths except for the shared CRC32C.
public enum TensorBoardEventReader {
    public static func read(_ url: URL) throws -> [TensorBoardEvent] {
        let bytes: [UInt8]
        do {
            bytes = [UInt8](try Foundation.Data(contentsOf: url))
        } catch {
            throw TensorBoardError.unreadable(path: url.path, reason: error.localizedDescription)
        }
        var events: [TensorBoardEvent] = []
        var offset = 0
        func le(_ at: Int, _ size: Int) -> UInt64 {
            (0..<size).reduce(UInt64(0)) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) }
        }
        while offset < bytes.count {
            guard bytes.count - offset >= 12 else { throw TensorBoardError.truncated(path: url.path, offset: offset) }
            let lengthCRC = UInt32(le(offset + 8, 4))
            guard lengthCRC == CRC32C.masked(CRC32C.checksum(bytes[offset..<(offset + 8)])) else {
                throw TensorBoardError.checksumMismatch(path: url.path, offset: offset, what: "length")
            }
            let length = le(offset, 8)
            guard length <= UInt64(bytes.count - offset - 12), bytes.count - offset - 12 - Int(length) >= 4 else {
                throw TensorBoardError.truncated(path: url.path, offset: offset)
            }
            let payload = Array(bytes[(offset + 12)..<(offset + 12 + Int(length))])
            let dataCRC = UInt32(le(offset + 12 + Int(length), 4))
            guard dataCRC == CRC32C.masked(CRC32C.checksum(payload)) else {
                throw TensorBoardError.checksumMismatch(path: url.path, offset: offset, what: "data")
            }
            do {
                events.append(try TensorBoardEvent(decoding: payload))
            } catch {
                throw TensorBoardError.badEvent(path: url.path, offset: offset, reason: "\(error)")
            }
            offset += 16 + Int(length)
        }
        return events
    }

    /// All `events.out.tfevents.*` files of `logDir`, oldest name first.
    public static func eventFiles(in logDir: URL) throws -> [URL] {
        let names = try FileManager.default.contentsOfDirectory(atPath: logDir.path)
        return names.filter { $0.hasPrefix("events.out.tfevents.") }.sorted()
            .map { logDir.appendingPathComponent($0) }
    }
}
