import Foundation
import Data
import Model

/// A model as `index`, `search` and `evaluate` use it: an `InferenceModel` (a checkpoint, an
/// export directory, or one Hugging Face / sentence-transformers directory) seen as a
/// `PassageEncoder`, with a fingerprint of the passage encoder for the index.
public final class TrainedRetriever: PassageEncoder {
    public let model: InferenceModel
    public let fingerprint: String

    public var modelName: String { model.path }
    public var dimension: Int { model.dimension }
    public var similarity: Similarity { model.similarity == .cosine ? .cosine : .dotProduct }

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
        // The original settings string for [CLS] pooling, so indexes built before pooling existed stay valid.
        let pooling = settings.pooling == .cls ? "" : " \(settings.pooling.rawValue)"
        crc.update(Array("\(settings.maxLength) \(model.tokenizer.doLowerCase) \(model.dimension)\(pooling)".utf8))
        fingerprint = String(format: "crc32c:%08x", crc.finalValue)
    }

    public func encodePassages(_ passages: [Passage]) throws -> [Float] {
        let inputs = passages.map { passage -> EncodingInput in
            switch (passage.title, passage.text) {
            case let (.text(title), .text(text)): return .passage(title: title, text: text)
            case let (_, .tokenIDs(ids)): return .tokenIDs(ids.map { Int32(truncatingIfNeeded: $0) })
            case let (.tokenIDs, .text(text)): return .passage(title: "", text: text)
            }
        }
        return try model.encode(inputs).flatMap { $0 }
    }

    public func encodeQuestions(_ questions: [String]) throws -> [Float] {
        try model.encode(questions.map { .question($0) }).flatMap { $0 }
    }
}
