import Data
import Foundation
import JobContracts
import Model

/// A trained bi-encoder as `index`, `search` and `evaluate` use it, loaded from any of:
/// - a checkpoint written by `srdpr train` (similarity, max_length and lower-casing from its config);
/// - a directory written by `srdpr export` (`question_encoder/` and `ctx_encoder/`);
/// - a plain Hugging Face BERT directory (both encoders from it: the zero-shot baseline).
public final class TrainedRetriever: PassageEncoder {
    public let modelName: String
    public let fingerprint: String
    public let similarity: SimilarityFunction
    public let dimension: Int
    private let questions: TextEncoder
    private let contexts: TextEncoder

    public struct Options {
        /// Overrides the checkpoint's max_length (HF directories default to 256, capped by the model).
        public var maxLength: Int?
        /// Overrides the similarity (HF directories default to dot_product).
        public var similarity: SimilarityFunction?
        /// Overrides the pooling (default: the checkpoint's, a sentence-transformers directory's, else cls).
        public var pooling: Pooling?
        public var batchSize: Int = 32
        public var threads: Int = 2
        public init() {}
    }

    public init(path: String, options: Options = Options()) throws {
        let url = URL(fileURLWithPath: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw RetrievalError.cannotRead(path: path, reason: "no such model: give a checkpoint, an export directory or a Hugging Face directory")
        }
        let questionModel: BiEncoder, contextModel: BiEncoder, tokenizer: BertTokenizer
        var maxLength = 256, sim = SimilarityFunction.dotProduct
        if !isDirectory.boolValue {
            let loaded = try TrainingCheckpoint.loadModel(url)
            questionModel = loaded.model
            contextModel = loaded.model
            guard let vocab = loaded.tokenizerFiles["vocab.txt"] else {
                throw RetrievalError.cannotRead(path: path, reason: "the checkpoint holds no vocab.txt")
            }
            tokenizer = try BertTokenizer(vocabulary: Vocabulary(vocabText: vocab, path: path + " (vocab.txt)"),
                                          doLowerCase: loaded.config.doLowerCase, source: path)
            maxLength = loaded.config.maxLength
            sim = loaded.config.simFunc == .cosine ? .cosine : .dotProduct
        } else if FileManager.default.fileExists(atPath: url.appendingPathComponent("question_encoder").path) {
            let qDir = url.appendingPathComponent("question_encoder"), cDir = url.appendingPathComponent("ctx_encoder")
            questionModel = try BiEncoder.load(directory: qDir, pooling: options.pooling)
            contextModel = try BiEncoder.load(directory: cDir, pooling: options.pooling)
            tokenizer = try BertTokenizer(vocabFile: qDir.appendingPathComponent("vocab.txt"),
                                          doLowerCase: TrainedRetriever.lowerCase(qDir))
        } else {
            questionModel = try BiEncoder.load(directory: url, pooling: options.pooling)
            contextModel = questionModel
            tokenizer = try BertTokenizer(vocabFile: url.appendingPathComponent("vocab.txt"),
                                          doLowerCase: TrainedRetriever.lowerCase(url))
        }
        if let override = options.maxLength { maxLength = override }
        if let override = options.similarity { sim = override }
        if let override = options.pooling {
            questionModel.pooling = override
            contextModel.pooling = override
        }
        maxLength = min(maxLength, questionModel.config.maxPositions, contextModel.config.maxPositions)
        BLASThreads.set(options.threads)
        questionModel.threads = options.threads
        contextModel.threads = options.threads

        modelName = path
        similarity = sim
        dimension = contextModel.context.outputDim
        questions = TextEncoder(model: questionModel, tokenizer: tokenizer, maxLength: maxLength, batchSize: options.batchSize)
        contexts = TextEncoder(model: contextModel, tokenizer: tokenizer, maxLength: maxLength, batchSize: options.batchSize)
        // The passages' encoder decides what an index holds: hash its weights and the settings
        // that change embeddings.
        var crc = CRC32C()
        for slot in contextModel.layout.slots where slot.name.hasPrefix("ctx_model.") {
            crc.update(UnsafeRawBufferPointer(UnsafeBufferPointer(start: contextModel.parameters.pointer + slot.offset, count: slot.count)))
        }
        crc.update(Array("\(maxLength) \(tokenizer.doLowerCase) \(dimension)".utf8))
        if contextModel.pooling != .cls { crc.update(Array(" pooling=\(contextModel.pooling.rawValue)".utf8)) }
        fingerprint = String(format: "crc32c:%08x", crc.finalValue)
    }

    public func encodePassages(_ passages: [Passage]) throws -> [Float] {
        try contexts.encode(passages.map(EncodingInput.init(passage:))).flatMap { $0 }
    }

    public func encodeQuestions(_ questions: [String]) throws -> [Float] {
        try self.questions.encode(questions.map { .question($0) }).flatMap { $0 }
    }

    private static func lowerCase(_ dir: URL) -> Bool {
        if let data = try? Foundation.Data(contentsOf: dir.appendingPathComponent("tokenizer_config.json")),
           let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
           let value = json["do_lower_case"] as? Bool {
            return value
        }
        return true
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
