/// A float32 matrix [rows, columns] written as a NumPy `.npy` file (format 1.0) row by row, the
/// row count unknown until the end: the header is written with room to spare and rewritten with
/// the final shape by `commit()`. Written under a temporary name (`AtomicOutputFile`), so a run
/// that fails leaves no half file at `path`. `numpy.load(path)` gives a float32 array.
public final class NpyMatrixWriter {
    public let path: String
    public let columns: Int
    public private(set) var rows = 0
    private let file: AtomicOutputFile
    /// Fixed header size (a multiple of 64, as the format asks): room for any shape.
    static let headerBytes = 128

    public init(path: String, columns: Int) throws(ByteDatasetWriteError) {
        self.path = path
        self.columns = columns
        file = try AtomicOutputFile(path: path)
        // Raw bytes: the magic's 0x93 is not UTF-8, so not through write(String).
        let placeholder = Self.header(rows: 0, columns: columns)
        let failure: ByteDatasetWriteError? = placeholder.withUnsafeBufferPointer { bytes in
            do throws(ByteDatasetWriteError) { try file.write(bytes) } catch { return error }
            return nil
        }
        if let failure { throw failure }
    }

    /// The 128-byte header: magic, version 1.0, header length, the dict padded with spaces and '\n'.
    static func header(rows: Int, columns: Int) -> [UInt8] {
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows), \(columns)), }"
        let length = headerBytes - 10
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(length & 0xFF), UInt8(length >> 8)]
        bytes += Array(dict.utf8) + [UInt8](repeating: 0x20, count: length - dict.utf8.count - 1) + [0x0A]
        return bytes
    }

    /// Appends rows (row-major, a multiple of `columns` values) as little-endian float32.
    public func append(_ values: [Float]) throws(ByteDatasetWriteError) {
        guard values.count % max(columns, 1) == 0 else {
            throw ByteDatasetWriteError(file: path, reason: "\(values.count) values is not a whole number of \(columns)-wide rows")
        }
        let failure: ByteDatasetWriteError? = values.withUnsafeBytes { raw in
            do throws(ByteDatasetWriteError) { try file.write(raw.bindMemory(to: UInt8.self)) } catch { return error }
            return nil
        }
        if let failure { throw failure }
        rows += columns == 0 ? 0 : values.count / columns
    }

    /// Writes the final shape into the header, syncs and renames the file into place.
    public func commit() throws(ByteDatasetWriteError) {
        try file.commit(header: Self.header(rows: rows, columns: columns))
    }
}
