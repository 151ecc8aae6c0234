#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a file could not be mapped: a message naming the file and the system error.
public struct MappedFileError: Error, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)" }
}

/// A read-only memory mapping of a whole file, so a dataset far larger than RAM can be read by
/// random access: the kernel pages in only what is touched.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    /// The mapped bytes (empty for an empty file).
    public let bytes: UnsafeBufferPointer<UInt8>
    private let mapping: UnsafeMutableRawPointer?

    public init(path: String) throws(MappedFileError) {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw MappedFileError(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) != 0 { throw MappedFileError(path: path, reason: String(cString: strerror(errno))) }
        if (info.st_mode & S_IFMT) == S_IFDIR { throw MappedFileError(path: path, reason: "is a directory") }
        let size = Int(info.st_size)
        if size == 0 {
            mapping = nil
            bytes = UnsafeBufferPointer(start: nil, count: 0)
            return
        }
        let pointer = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        if pointer == MAP_FAILED || pointer == nil {
            throw MappedFileError(path: path, reason: "mmap failed: " + String(cString: strerror(errno)))
        }
        mapping = pointer
        bytes = UnsafeBufferPointer(start: pointer!.assumingMemoryBound(to: UInt8.self), count: size)
    }

    public var count: Int { bytes.count }

    /// Tells the kernel the access pattern (random reads avoid useless read-ahead).
    public func adviseRandomAccess() {
        if let mapping { _ = madvise(mapping, bytes.count, MADV_RANDOM) }
    }

    deinit {
        if let mapping { munmap(mapping, bytes.count) }
    }
}


extension Error {
    /// A short reason for an I/O error, without repeating the path when it is a `MappedFileError`.
    var reason: String {
        if let mapped = self as? MappedFileError { return mapped.reason }
        return "\(self)"
    }
}
