import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why a ByteDataset could not be written (names the file).
public struct ByteDatasetWriteError: Error, Equatable, CustomStringConvertible {
    public var file: String
    public var reason: String
    public init(file: String, reason: String) {
        self.file = file
        self.reason = reason
    }
    public var description: String { "\(file): cannot write: \(reason)" }
}

/// Writes a ByteDataset the way the original `create_dataset` does (protocol-4 pickles back to
/// back, 6-byte offsets), into temporary files renamed into place by `finish()`: until then
/// (and after a failure) the directory holds no `data.pkl`/`idxs.pkl` that looks valid.
public final class ByteDatasetWriter {
    public let directory: String
    public private(set) var count = 0
    private var data: BufferedFile?
    private var idxs: BufferedFile?
    private var pickler: PickleWriter
    private let createdDirectory: Bool
    private let dataPath, idxsPath, dataTemp, idxsTemp: String
    private var finished = false

    /// Creates `directory` if it does not exist and opens the temporary files.
    public init(directory: String, protocol version: Int = 4) throws(ByteDatasetWriteError) {
        self.directory = directory
        pickler = PickleWriter(protocol: version)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw ByteDatasetWriteError(file: directory, reason: "exists and is not a directory") }
            createdDirectory = false
        } else {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw ByteDatasetWriteError(file: directory, reason: "cannot create the directory (\(error.localizedDescription))")
            }
            createdDirectory = true
        }
        let base = directory.hasSuffix("/") ? directory : directory + "/"
        dataPath = base + "data.pkl"
        idxsPath = base + "idxs.pkl"
        let tag = "partial-\(getpid())"
        dataTemp = base + ".data.pkl.\(tag)"
        idxsTemp = base + ".idxs.pkl.\(tag)"
        do {
            data = try BufferedFile(creating: dataTemp)
            idxs = try BufferedFile(creating: idxsTemp)
            try idxs?.write([0, 0, 0, 0])  // the count, filled in by finish()
        } catch {
            abandon()
            throw error
        }
    }

    /// Bytes written to data.pkl so far.
    public var dataByteCount: Int { data?.written ?? finalDataByteCount }
    private var finalDataByteCount = 0

    /// Appends one sample given as JSON (keys, order and extra fields kept, as the original does).
    public func append(json value: JSONValue) throws(ByteDatasetWriteError) {
        pickler.removeAllOutput()
        pickler.dump(json: value)
        try appendPickle()
    }

    /// Appends one sample.
    public func append(_ sample: Sample) throws(ByteDatasetWriteError) {
        pickler.removeAllOutput()
        pickler.dump(sample: sample)
        try appendPickle()
    }

    private func appendPickle() throws(ByteDatasetWriteError) {
        guard let data, let idxs else { throw ByteDatasetWriteError(file: dataPath, reason: "the writer was closed") }
        let offset = data.written
        guard offset < 1 << 48 else { throw ByteDatasetWriteError(file: dataPath, reason: "data.pkl exceeds the 6-byte offsets of idxs.pkl (256 TiB)") }
        guard count < Int(UInt32.max) else { throw ByteDatasetWriteError(file: idxsPath, reason: "more than 2^32-1 samples") }
        var record = [UInt8](repeating: 0, count: 6)
        for i in 0..<6 { record[i] = UInt8(truncatingIfNeeded: offset >> (8 * (5 - i))) }
        try idxs.write(record)
        try pickler.output.withUnsafeBufferPointer { (buffer) throws(ByteDatasetWriteError) in try data.write(buffer) }
        count += 1
    }

    /// Writes the count, closes the files and renames them into place.
    public func finish() throws(ByteDatasetWriteError) {
        guard let data, let idxs, !finished else { throw ByteDatasetWriteError(file: dataPath, reason: "the writer was closed") }
        do throws(ByteDatasetWriteError) {
            let n = UInt32(count)
            try idxs.close(header: [UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)])
            try data.close(header: nil)
            finalDataByteCount = data.written
            self.data = nil
            self.idxs = nil
            if rename(dataTemp, dataPath) != 0 { throw ByteDatasetWriteError(file: dataPath, reason: String(cString: strerror(errno))) }
            if rename(idxsTemp, idxsPath) != 0 { throw ByteDatasetWriteError(file: idxsPath, reason: String(cString: strerror(errno))) }
            finished = true
        } catch {
            abandon()
            throw error
        }
    }

    /// Removes the temporary files (and the directory if this writer created it and it is empty).
    public func abandon() {
        data?.discard()
        idxs?.discard()
        data = nil
        idxs = nil
        unlink(dataTemp)
        unlink(idxsTemp)
        if createdDirectory && !finished { rmdir(directory) }
    }

    deinit {
        if !finished { abandon() }
    }
}

/// A write-only file with a large buffer (write(2) in 1 MiB pieces).
final class BufferedFile {
    let path: String
    private var fd: Int32
    private var buffer: [UInt8] = []
    private(set) var written = 0
    private static let capacity = 1 << 20

    init(creating path: String) throws(ByteDatasetWriteError) {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw ByteDatasetWriteError(file: path, reason: String(cString: strerror(errno))) }
        buffer.reserveCapacity(BufferedFile.capacity)
    }

    func write(_ bytes: [UInt8]) throws(ByteDatasetWriteError) {
        try bytes.withUnsafeBufferPointer { (b) throws(ByteDatasetWriteError) in try write(b) }
    }

    func write(_ bytes: UnsafeBufferPointer<UInt8>) throws(ByteDatasetWriteError) {
        written += bytes.count
        if buffer.count + bytes.count > BufferedFile.capacity { try flush() }
        if bytes.count >= BufferedFile.capacity {
            try writeAll(bytes)
        } else {
            buffer.append(contentsOf: bytes)
        }
    }

    func flush() throws(ByteDatasetWriteError) {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBufferPointer { (b) throws(ByteDatasetWriteError) in try writeAll(b) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ bytes: UnsafeBufferPointer<UInt8>) throws(ByteDatasetWriteError) {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, base + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw ByteDatasetWriteError(file: path, reason: String(cString: strerror(errno)))
            }
            done += n
        }
    }

    /// Flushes and asks the kernel to put the bytes on disk.
    func sync() throws(ByteDatasetWriteError) {
        try flush()
        if fsync(fd) != 0 { throw ByteDatasetWriteError(file: path, reason: "fsync: " + String(cString: strerror(errno))) }
    }

    /// Flushes, optionally overwrites the first bytes with `header`, and closes.
    func close(header: [UInt8]?) throws(ByteDatasetWriteError) {
        try flush()
        if let header {
            let n = header.withUnsafeBytes { pwrite(fd, $0.baseAddress, header.count, 0) }
            if n != header.count { throw ByteDatasetWriteError(file: path, reason: String(cString: strerror(errno))) }
        }
        if Glibc.close(fd) != 0 { fd = -1; throw ByteDatasetWriteError(file: path, reason: String(cString: strerror(errno))) }
        fd = -1
    }

    func discard() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
        buffer.removeAll()
    }

    deinit { discard() }
}
