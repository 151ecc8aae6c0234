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
        // The passages' encoder decides what an index holds: hash its weights and the settings
        // that change embeddings.
        var crc = CRC32C()
        if let contextModel = model.contextModel {
            for slot in contextModel.layout.slots where slot.name.hasPrefix("ctx_model.") {
                crc.update(UnsafeRawBufferPointer(UnsafeBufferPointer(start: contextModel.parameters.pointer + slot.offset, count: slot.count)))
            }
        }
        let settings = model.settings
        crc.update(Array("\(settings.maxLength) \(model.tokenizer.doLowerCase) \(model.dimension)".utf8))
        // Nothing added for [CLS] pooling, so indexes built before pooling existed stay valid.
        if settings.pooling != .cls { crc.update(Array(" pooling=\(settings.pooling.rawValue)".utf8)) }
        fingerprint = String(format: "crc32c:%08x", crc.finalValue)
    }

    public func encodePassages(_ passages: [Passage]) throws -> [Float] {
        try model.encode(passages.map(EncodingInput.init(passage:))).flatMap { $0 }
    }

    public func encodeQuestions(_ questions: [String]) throws -> [Float] {
        try model.encode(questions.map { .question($0) }).flatMap { $0 }
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
