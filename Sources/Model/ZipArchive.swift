import Foundation

/// Reader of the uncompressed ("stored") zip archives that `torch.save` writes, zip64 included.
/// Only what a PyTorch checkpoint needs: the central directory and the data of stored entries.
public struct ZipArchive {
    public struct Entry {
        public var name: String
        public var method: Int
        public var compressedSize: Int
        public var size: Int
        public var localHeaderOffset: Int
    }

    public let path: String
    public let bytes: Data
    public private(set) var entries: [String: Entry] = [:]
    public private(set) var order: [String] = []

    public init(url: URL) throws {
        path = url.path
        guard FileManager.default.fileExists(atPath: path) else { throw ModelError.missingFile(path) }
        do { bytes = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw ModelError.ioError(file: path, reason: "cannot read: \(error.localizedDescription)")
        }
        try readCentralDirectory()
    }

    /// An archive already in memory; `path` only names it in errors.
    public init(data: Data, path: String) throws {
        self.path = path
        bytes = data.startIndex == 0 ? data : Data(data)  // offsets below are positions from 0
        try readCentralDirectory()
    }

    private func fail(_ offset: Int, _ reason: String) -> ModelError {
        .malformedWeights(file: path, offset: offset, reason: reason)
    }

    private func u16(_ o: Int) throws -> Int {
        guard o >= 0, o <= bytes.count - 2 else { throw fail(o, "unexpected end of file (truncated zip?)") }
        return bytes.withUnsafeBytes { Int(UInt16(littleEndian: $0.loadUnaligned(fromByteOffset: o, as: UInt16.self))) }
    }
    private func u32(_ o: Int) throws -> Int {
        guard o >= 0, o <= bytes.count - 4 else { throw fail(o, "unexpected end of file (truncated zip?)") }
        return bytes.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: o, as: UInt32.self))) }
    }
    private func u64(_ o: Int) throws -> Int {
        guard o >= 0, o <= bytes.count - 8 else { throw fail(o, "unexpected end of file (truncated zip?)") }
        let v = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: o, as: UInt64.self)) }
        guard v < UInt64(Int.max) else { throw fail(o, "size field \(v) is out of range") }
        return Int(v)
    }

    private mutating func readCentralDirectory() throws {
        // The end-of-central-directory record is in the last 22 + 65535 bytes.
        var eocd = -1
        let lowest = max(0, bytes.count - 22 - 65_535)
        var i = bytes.count - 22
        while i >= lowest {
            if try u32(i) == 0x0605_4b50 { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else { throw fail(bytes.count, "no zip end-of-central-directory record (not a zip, or truncated)") }
        var count = try u16(eocd + 10)
        var cdSize = try u32(eocd + 12)
        var cdOffset = try u32(eocd + 16)
        if count == 0xffff || cdSize == 0xffff_ffff || cdOffset == 0xffff_ffff {
            // zip64: a locator sits right before the EOCD and points at the zip64 EOCD record.
            let locator = eocd - 20
            guard locator >= 0, try u32(locator) == 0x0706_4b50 else { throw fail(eocd, "zip64 locator missing") }
            let record = try u64(locator + 8)
            guard try u32(record) == 0x0606_4b50 else { throw fail(record, "zip64 end-of-central-directory record missing") }
            count = try u64(record + 32)
            cdSize = try u64(record + 40)
            cdOffset = try u64(record + 48)
        }
        // Compared without adding: zip64 sizes reach Int.max, and the sum would overflow.
        guard cdOffset <= bytes.count, cdSize <= bytes.count - cdOffset else {
            throw fail(cdOffset, "central directory runs past the end of the file")
        }
        var p = cdOffset
        for _ in 0..<count {
            guard try u32(p) == 0x0201_4b50 else { throw fail(p, "bad central directory entry signature") }
            let method = try u16(p + 10)
            var compressed = try u32(p + 20)
            var size = try u32(p + 24)
            let nameLength = try u16(p + 28), extraLength = try u16(p + 30), commentLength = try u16(p + 32)
            var local = try u32(p + 42)
            guard p + 46 + nameLength <= bytes.count else { throw fail(p, "entry name runs past the end of the file") }
            let name = String(decoding: bytes[(p + 46)..<(p + 46 + nameLength)], as: UTF8.self)
            // zip64 extended information: the 64-bit values, in order, of the fields that are 0xffffffff.
            var e = p + 46 + nameLength
            let extraEnd = e + extraLength
            while e + 4 <= extraEnd {
                let id = try u16(e), length = try u16(e + 2)
                if id == 0x0001 {
                    var q = e + 4
                    if size == 0xffff_ffff { size = try u64(q); q += 8 }
                    if compressed == 0xffff_ffff { compressed = try u64(q); q += 8 }
                    if local == 0xffff_ffff { local = try u64(q); q += 8 }
                }
                e += 4 + length
            }
            entries[name] = Entry(name: name, method: method, compressedSize: compressed, size: size, localHeaderOffset: local)
            order.append(name)
            p = extraEnd + commentLength
        }
    }

    /// Byte range of a stored entry's data inside `bytes`.
    public func dataRange(_ name: String) throws -> Range<Int> {
        guard let entry = entries[name] else { throw ModelError.malformedWeights(file: path, offset: 0, reason: "zip entry \(name) is missing") }
        guard entry.method == 0 else {
            throw fail(entry.localHeaderOffset, "zip entry \(name) is compressed (method \(entry.method)); torch.save writes stored entries only")
        }
        let h = entry.localHeaderOffset
        guard try u32(h) == 0x0403_4b50 else { throw fail(h, "bad local header signature of \(name)") }
        let start = h + 30 + (try u16(h + 26)) + (try u16(h + 28))
        guard entry.size <= bytes.count - start else {
            throw fail(start, "zip entry \(name) needs \(entry.size) bytes, the file ends first (truncated?)")
        }
        return start..<(start + entry.size)
    }

    public func data(_ name: String) throws -> Data { bytes.subdata(in: try dataRange(name)) }
}
