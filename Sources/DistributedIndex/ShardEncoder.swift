import Data
import Foundation
import Model
import Retrieval

/// What an index-worker encodes a shard's rows with, by the job's kind: the passages of a corpus
/// (`srdpr index`) or the input lines of `srdpr encode`. Each reads its rows from this host's copy
/// of the file and hands them on in chunks from the shard's first row; an embedding does not
/// depend on the batch around it, so any cut gives the one-process bytes.
public protocol ShardEncoder {
    /// Names the model in messages.
    var modelName: String { get }
    /// Identifies what decides the embeddings (weights and settings), compared with the coordinator's.
    var fingerprint: String { get }
    /// Encodes `rows` (0-based, non-blank lines) of the file at `path`, calling
    /// `send(firstRow, ids, vectors)` for every `chunkRows` of them (the last shorter).
    func encode(rows: Range<Int>, of path: String, chunkRows: Int, send: (Int, [String], [Float]) throws -> Void) throws
}

/// `srdpr index`'s shards: corpus passages through the context encoder.
public struct PassageShardEncoder: ShardEncoder {
    public let encoder: PassageEncoder

    public init(_ encoder: PassageEncoder) { self.encoder = encoder }

    public var modelName: String { encoder.modelName }
    public var fingerprint: String { encoder.fingerprint }

    public func encode(rows: Range<Int>, of path: String, chunkRows: Int, send: (Int, [String], [Float]) throws -> Void) throws {
        var passages: [Passage] = [], ids: [String] = [], first = rows.lowerBound
        func flush() throws {
            guard !passages.isEmpty else { return }
            try send(first, ids, try encoder.encodePassages(passages))
            first += passages.count
            passages.removeAll(keepingCapacity: true)
            ids.removeAll(keepingCapacity: true)
        }
        try CorpusStream.forEach(path: path, rows: rows) { _, record in
            passages.append(Passage(title: record.title, text: record.text))
            ids.append(record.id)
            if passages.count == chunkRows { try flush() }
        }
        try flush()
    }
}

/// `srdpr encode`'s shards: question, passage and token-id lines, each through its encoder, unit
/// length for a cosine model, with the ids `srdpr encode` gives (the line's "id", else its number).
public struct InputShardEncoder: ShardEncoder {
    public let model: InferenceModel

    public init(_ model: InferenceModel) { self.model = model }

    public var modelName: String { model.path }
    public var fingerprint: String { model.fingerprint }

    public func encode(rows: Range<Int>, of path: String, chunkRows: Int, send: (Int, [String], [Float]) throws -> Void) throws {
        try EmbeddingStream.forEachWindow(inputPath: path, rows: rows, window: chunkRows,
                                          vocabularySize: model.contextVocabularySize) { first, inputs, ids in
            let embeddings = try model.encode(inputs, normalized: model.similarity == .cosine)
            try send(first, ids, embeddings.flatMap { $0 })
        }
    }
}
