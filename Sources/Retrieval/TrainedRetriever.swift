import Data
import Foundation
import Model

/// A model as `index`, `search`, `evaluate` and `mine-hard-negatives` use it: an `InferenceModel`
/// (a checkpoint, an export directory, or one Hugging Face / sentence-transformers directory) seen
/// as a `PassageEncoder`, with a fingerprint of the passage encoder for the index.
public final class TrainedRetriever: PassageEncoder {
    public let model: InferenceModel
    public let fingerprint: String

    public var modelName: String { model.path }
    public var dimension: Int { model.dimension }
    public var similarity: SimilarityFunction { model.similarity }

    public init(model: InferenceModel) {
        self.model = model
        // The passages' encoder decides what an index holds.
        fingerprint = model.passageFingerprint
    }

    public func encodePassages(_ passages: [Passage]) throws -> [Float] {
        try model.encode(passages.map(EncodingInput.init(passage:))).flatMap { $0 }
    }

    public func encodeQuestions(_ questions: [String]) throws -> [Float] {
        try model.encode(questions.map { .question($0) }).flatMap { $0 }
    }
}

extension PassageIndex.Signature {
    /// What an index built with `description`'s model records, read from its files: its passage
    /// encoder's weights are hashed one tensor at a time, never all held (a `--workers` parent).
    public init(_ description: ModelDescription) throws {
        self.init(modelName: description.path, fingerprint: try description.passageFingerprint(),
                  dimension: description.dimension, similarity: description.settings.simFunc)
    }
}

extension EncodingInput {
    /// A corpus passage as the context encoder reads it.
    init(passage: Passage) {
        switch (passage.title, passage.text) {
        case let (.text(title), .text(text)): self = .passage(title: title, text: text)
        case let (_, .tokenIDs(ids)): self = .tokenIDs(ids.map { Int32(truncatingIfNeeded: $0) })
        case let (.tokenIDs, .text(text)): self = .passage(title: "", text: text)
        }
    }
}
