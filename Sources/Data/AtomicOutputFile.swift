import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An output file written under a temporary name (`PATH.partial-PID`) and renamed to `PATH` only
/// by `commit()`: a run that fails or is killed never leaves a file at `PATH` that looks complete.
public final class AtomicOutputFile {
    public let path: String
    private let temporaryPath: String
    private var file: BufferedFile?

    public init(path: String) throws(ByteDatasetWriteError) {
        self.path = path
        temporaryPath = path + ".partial-\(getpid())"
        file = try BufferedFile(creating: temporaryPath)
    }

    public func write(_ text: String) throws(ByteDatasetWriteError) {
        guard let file else { throw ByteDatasetWriteError(file: path, reason: "already committed or abandoned") }
        try file.write(Array(text.utf8))
    }

    /// Flushes, syncs and renames the file into place.
    public func commit() throws(ByteDatasetWriteError) {
        guard let file else { throw ByteDatasetWriteError(file: path, reason: "already committed or abandoned") }
        try file.sync()
        try file.close(header: nil)
        self.file = nil
        if rename(temporaryPath, path) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(temporaryPath)
            throw ByteDatasetWriteError(file: path, reason: "rename from \(temporaryPath): \(reason)")
        }
    }

    /// Drops what was written (the temporary file is removed).
    public func abandon() {
        guard let file else { return }
        file.discard()
        self.file = nil
        unlink(temporaryPath)
    }

    deinit { abandon() }
}
