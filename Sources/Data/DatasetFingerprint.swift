import Foundation

/// Size and CRC-32C of each file of a ByteDataset directory. In a multi-node job every worker
/// reads its samples from its own host's copy of the datasets; the coordinator sends the
/// fingerprints of its copies and each worker compares its own before it starts, so a stale or
/// different copy on one host is an error at start naming the host, the parameter and the file,
/// not a silently different run (or a failure in the middle of one).
public struct DatasetFingerprint: Codable, Equatable, Sendable {
    public struct File: Codable, Equatable, Sendable {
        public var name: String
        public var bytes: Int
        public var crc32c: UInt32

        /// Reads the file at `path` through (`naming`: the parameter that names it, for errors).
        /// Also what `srdpr index --bind` checks each host's copy of the corpus with.
        public init(path file: String, name: String, naming: String) throws {
            guard let handle = FileHandle(forReadingAtPath: file) else {
                throw ByteDatasetError.unreadable(file: file, reason: "cannot open it (\(naming))")
            }
            defer { try? handle.close() }
            var crc = CRC32C()
            var bytes = 0
            while true {
                let chunk: Foundation.Data
                do { chunk = try handle.read(upToCount: 4 << 20) ?? Foundation.Data() } catch {
                    throw ByteDatasetError.unreadable(file: file, reason: "\(error)")
                }
                if chunk.isEmpty { break }
                chunk.withUnsafeBytes { crc.update($0) }
                bytes += chunk.count
            }
            self.name = name
            self.bytes = bytes
            self.crc32c = crc.finalValue
        }
    }

    /// The parameter that names the dataset (`bytedataset.pos`).
    public var key: String
    public var path: String
    public var files: [File]

    /// The files of a ByteDataset.
    public static let fileNames = ["idxs.pkl", "data.pkl"]

    /// Reads every file of the dataset at `path` through.
    public static func make(key: String, path: String) throws -> DatasetFingerprint {
        let files = try fileNames.map { name in
            try File(path: (path as NSString).appendingPathComponent(name), name: name, naming: "\(key)=\(path)")
        }
        return DatasetFingerprint(key: key, path: path, files: files)
    }

    /// The datasets `config` trains on (the pipelines of its train_mode), each with its parameter.
    public static func datasets(of config: TrainingConfig) throws -> [(key: String, path: String)] {
        let schedule = try PipelineSchedule(trainMode: config.trainMode, regulateFactor: config.regulateFactor)
        let paths = config.bytedataset
        var found: [(String, String?)] = []
        for kind in schedule.pipelines {
            switch kind {
            case .inbatch: found.append(("bytedataset.inbatch", paths.inbatch))
            case .pos: found.append(("bytedataset.pos", paths.pos))
            case .poshard: found.append(("bytedataset.poshard", paths.poshard))
            case .hard:
                found.append(("bytedataset.hard.hardneg", paths.hard.hardneg))
                if config.pipeline.hard.useRandneg { found.append(("bytedataset.hard.randneg", paths.hard.randneg)) }
            }
        }
        return found.compactMap { key, path in path.map { (key, $0) } }
    }

    /// Fingerprints of every dataset of `config`; a directory named by several parameters is read once.
    public static func all(of config: TrainingConfig) throws -> [DatasetFingerprint] {
        var byPath: [String: DatasetFingerprint] = [:]
        return try datasets(of: config).map { key, path in
            if var known = byPath[path] { known.key = key; return known }
            let made = try make(key: key, path: path)
            byPath[path] = made
            return made
        }
    }

    /// What differs between this (the coordinator's) and `local` (this host's copy), or nil.
    public func difference(from local: DatasetFingerprint) -> String? {
        for expected in files {
            guard let mine = local.files.first(where: { $0.name == expected.name }) else {
                return "\(key)=\(path): \(expected.name) is missing"
            }
            if mine.bytes != expected.bytes || mine.crc32c != expected.crc32c {
                return "\(key)=\(path): \(expected.name) here is \(mine.bytes) bytes with CRC-32C \(String(format: "%08x", mine.crc32c)), "
                    + "the coordinator's is \(expected.bytes) bytes with CRC-32C \(String(format: "%08x", expected.crc32c))"
            }
        }
        return nil
    }
}
