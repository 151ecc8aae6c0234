import Data
import Foundation

/// What `srdpr index --bind` (the coordinator) and `srdpr index-worker` say to each other over the
/// control channel (``ControlServer``/``ControlClient``, which authenticate the shared secret). A
/// payload is a 4-byte little-endian length, that many bytes of JSON, then, for a chunk only, the
/// chunk's float32 vectors as raw little-endian bytes (no decimal round trip: byte-identical).
public enum IndexJobMessage: Codable, Equatable {
    /// Worker -> coordinator, first: who it is.
    case register(Registration)
    /// Coordinator -> worker: what to encode (index or embeddings) and with what.
    case job(Job)
    /// Worker -> coordinator: model loaded and both fingerprints match; it wants a shard.
    case ready
    /// Coordinator -> worker: encode these rows.
    case shard(ShardOrder)
    /// Worker -> coordinator: the next encoded rows of its shard.
    case chunk(Chunk)
    /// Worker -> coordinator: its shard is sent; it wants another.
    case nextShard
    /// Worker -> coordinator: it cannot go on (another corpus or model, a read error), and why.
    case failed(reason: String)
    /// Coordinator -> worker: end with this status (0: no shards left).
    case stop(exitCode: Int32, reason: String)

    public struct Registration: Codable, Equatable {
        public var rank: Int
        public var host: String
        public var pid: Int32
        public var version: String
        /// How many processes the worker's launcher started, and the variable that says so.
        public var launcherWorldSize: Int?
        public var launcherVariable: String?

        public init(rank: Int, host: String, pid: Int32, version: String) {
            self.rank = rank
            self.host = host
            self.pid = pid
            self.version = version
        }
    }

    /// What a job makes of its file's rows: an index (`srdpr index`: passages of a corpus, the
    /// context encoder) or embeddings (`srdpr encode`: question, passage or token-id lines, each
    /// through its encoder). One worker command serves both; the job tells it which.
    public enum Kind: String, Codable, Equatable, Sendable {
        case index
        case encode
    }

    public struct Job: Codable, Equatable {
        public var kind: Kind
        /// The coordinator's corpus (index) or input (encode) file and its size and CRC-32C (each
        /// worker reads its own copy).
        public var corpusPath: String
        public var corpus: DatasetFingerprint.File
        /// `--model ...` options as the coordinator was given them (the worker sets its own threads).
        public var modelArguments: [String]
        public var modelName: String
        public var modelFingerprint: String
        public var chunkRows: Int

        public init(kind: Kind = .index, corpusPath: String, corpus: DatasetFingerprint.File, modelArguments: [String], modelName: String,
                    modelFingerprint: String, chunkRows: Int) {
            self.kind = kind
            self.corpusPath = corpusPath
            self.corpus = corpus
            self.modelArguments = modelArguments
            self.modelName = modelName
            self.modelFingerprint = modelFingerprint
            self.chunkRows = chunkRows
        }
    }

    public struct ShardOrder: Codable, Equatable {
        /// The shard's number in the coordinator's plan (chunks carry it back).
        public var shard: Int
        /// Corpus rows still to encode: the shard's rows after those an earlier run already wrote.
        public var rows: Range<Int>
    }

    public struct Chunk: Codable, Equatable {
        public var shard: Int
        public var firstRow: Int
        public var ids: [String]
        /// Row-major [ids.count x dimension]; travels after the JSON, not in it.
        public var vectors: [Float] = []

        private enum CodingKeys: String, CodingKey { case shard, firstRow, ids }

        public init(shard: Int, firstRow: Int, ids: [String], vectors: [Float]) {
            self.shard = shard
            self.firstRow = firstRow
            self.ids = ids
            self.vectors = vectors
        }
    }

    public func encoded() throws -> [UInt8] {
        var message = self, vectors: [Float] = []
        if case .chunk(var chunk) = self {
            vectors = chunk.vectors
            chunk.vectors = []
            message = .chunk(chunk)
        }
        let json = try JSONEncoder().encode(message)
        var bytes = [UInt8]()
        bytes.reserveCapacity(4 + json.count + vectors.count * 4)
        withUnsafeBytes(of: UInt32(json.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: json)
        vectors.withUnsafeBytes { bytes.append(contentsOf: $0) }  // x86-64 and arm64 are little-endian
        return bytes
    }

    public static func decode(_ bytes: [UInt8]) throws -> IndexJobMessage {
        guard bytes.count >= 4 else { throw IndexJobError.protocolViolation("a message of \(bytes.count) bytes") }
        let length = Int(UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24)
        guard length <= bytes.count - 4 else { throw IndexJobError.protocolViolation("a message whose header overruns it") }
        var message: IndexJobMessage
        do { message = try JSONDecoder().decode(IndexJobMessage.self, from: Foundation.Data(bytes[4..<(4 + length)])) } catch {
            throw IndexJobError.protocolViolation("an unreadable message: \(error)")
        }
        let tail = bytes.count - 4 - length
        if case .chunk(var chunk) = message {
            guard tail % MemoryLayout<Float>.size == 0 else { throw IndexJobError.protocolViolation("a chunk of \(tail) vector bytes") }
            chunk.vectors = [Float](repeating: 0, count: tail / MemoryLayout<Float>.size)
            chunk.vectors.withUnsafeMutableBytes { $0.copyBytes(from: bytes[(4 + length)...]) }
            message = .chunk(chunk)
        } else if tail != 0 {
            throw IndexJobError.protocolViolation("\(tail) bytes after a message that carries none")
        }
        return message
    }
}
