#if canImport(Glibc)
import Glibc
#endif

/// The lines of a text file read block by block (1 MiB at a time), so memory stays the size of a
/// block and the longest line whatever the file's size; 1-based line numbers for errors. Lines of
/// only spaces, tabs and '\r' are skipped, as `JSONLinesFile` does; a final '\r' is kept (JSON
/// parsers take it as whitespace).
public enum StreamingLines {
    public struct ReadError: Error, CustomStringConvertible {
        public var path: String
        public var reason: String
        public var description: String { "cannot read \(path): \(reason)" }
    }

    /// Calls `body(lineNumber, lineBytes)` for every non-blank line of `path`.
    public static func forEachLine(path: String, blockSize: Int = 1 << 20,
                                   _ body: (Int, UnsafeBufferPointer<UInt8>) throws -> Void) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ReadError(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var pending: [UInt8] = []
        var block = [UInt8](repeating: 0, count: blockSize)
        var lineNumber = 0
        func emit(_ line: UnsafeBufferPointer<UInt8>) throws {
            lineNumber += 1
            if !line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { try body(lineNumber, line) }
        }
        while true {
            let n = block.withUnsafeMutableBytes { read(fd, $0.baseAddress, blockSize) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ReadError(path: path, reason: String(cString: strerror(errno)))
            }
            if n == 0 { break }
            try block.withUnsafeBufferPointer { bytes in
                var start = 0
                for i in 0..<n where bytes[i] == 0x0A {
                    if pending.isEmpty {
                        try emit(UnsafeBufferPointer(rebasing: bytes[start..<i]))
                    } else {
                        pending += bytes[start..<i]
                        try pending.withUnsafeBufferPointer { try emit($0) }
                        pending.removeAll(keepingCapacity: true)
                    }
                    start = i + 1
                }
                pending += bytes[start..<n]
            }
        }
        if !pending.isEmpty { try pending.withUnsafeBufferPointer { try emit($0) } }
    }
}
