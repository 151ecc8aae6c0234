import Data
import Foundation

/// A model ready to embed questions and passages, loaded from whatever `--model` names: the one
/// loader of `encode`, `index`, `search` and `evaluate` (and `export` reads checkpoints with
/// `CheckpointModel`). Accepted:
/// - a checkpoint of `srdpr train`: both encoders, with the run's max_length, pooling, sim_func
///   and lower-casing;
/// - an export root of `srdpr export` (`question_encoder/`, `ctx_encoder/`, `srdpr_settings.json`):
///   the question encoder embeds questions, the context encoder passages;
/// - one encoder directory, Hugging Face or sentence-transformers: it embeds both questions and
///   passages (said in `notes`). An encoder directory of an export embeds only its own side.
/// Defaults everywhere: max_length from the checkpoint/export (else sentence_bert_config.json's
/// max_seq_length, else 256), capped at max_position_embeddings with a warning; lower-casing from
/// the run, else tokenizer_config.json; pooling and similarity from the run, else a
/// sentence-transformers directory's modules (mean pooling and Normalize give mean and cosine),
/// else [CLS] and dot product. Questions get the original's normalisation (strip, drop one
/// trailing `?`) unless an export's settings say `question_normalization: none`.
public final class InferenceModel {
    public enum Source: String, Sendable {
        case checkpoint, exportRoot = "export", encoderDirectory = "encoder directory"
    }

    public struct Options {
        /// Overrides max_length (still capped at max_position_embeddings).
        public var maxLength: Int?
        /// Overrides the lower-casing of the tokenizer.
        public var doLowerCase: Bool?
        /// Overrides the similarity.
        public var similarity: SimilarityFunction?
        /// Overrides the pooling.
        public var pooling: Pooling?
        public var batchSize: Int = 32
        /// At most this many tokens per batch (TextEncoder.batchTokens).
        public var batchTokens: Int = TextEncoder.defaultBatchTokens
        public var threads: Int = BLASThreads.defaultCount
        public init() {}
    }

    public let path: String
    public let source: Source
    /// The settings as used: max_length after capping, the tokenizer's lower-casing, the similarity.
    public let settings: EncoderSettings
    public let tokenizer: BertTokenizer
    /// What the model does that a user may not expect (printed by the CLI).
    public let notes: [String]
    /// Embedding size.
    public let dimension: Int
    /// The bi-encoders whose question / context side embeds questions / passages (nil: refused, see `refusal`).
    public let questionModel: BiEncoder?
    public let contextModel: BiEncoder?
    private let refusal: [BiEncoder.Side: String]
    private let questions: TextEncoder?
    private let contexts: TextEncoder?

    public var similarity: SimilarityFunction { settings.simFunc }
    /// The context encoder's vocab_size (the bound of `{"input_ids": [...]}`), nil without one.
    public var contextVocabularySize: Int? { contextModel?.config.vocabSize }

    public convenience init(path: String, options: Options = Options(), warn: (String) -> Void = { _ in }) throws {
        try self.init(description: ModelDescription(path: path, options: options, warn: warn), options: options)
    }

    /// Loads the weights `description` points to (a checkpoint's or one directory's bi-encoder
    /// serves both sides; an export's two directories one side each).
    public init(description: ModelDescription, options: Options = Options()) throws {
        var questionModel: BiEncoder?, contextModel: BiEncoder?
        if description.source == .exportRoot {
            questionModel = try description.questionWeights.map(ModelDescription.load)
            contextModel = try description.contextWeights.map(ModelDescription.load)
        } else if let weights = description.questionWeights ?? description.contextWeights {
            let model = try ModelDescription.load(weights)
            if description.questionWeights != nil { questionModel = model }
            if description.contextWeights != nil { contextModel = model }
        }
        let settings = description.settings, tokenizer = description.tokenizer
        BLASThreads.set(options.threads)
        for m in [questionModel, contextModel].compactMap({ $0 }) {
            m.threads = options.threads
            m.pooling = settings.pooling
        }
        let normalize = settings.questionNormalization == .dpr, batchSize = options.batchSize, maxLength = settings.maxLength
        let batchTokens = options.batchTokens
        questions = questionModel.map {
            TextEncoder(model: $0, tokenizer: tokenizer, maxLength: maxLength, batchSize: batchSize, batchTokens: batchTokens,
                        normalizeQuestions: normalize)
        }
        contexts = contextModel.map {
            TextEncoder(model: $0, tokenizer: tokenizer, maxLength: maxLength, batchSize: batchSize, batchTokens: batchTokens)
        }
        dimension = description.dimension
        path = description.path
        source = description.source
        self.settings = settings
        self.tokenizer = tokenizer
        notes = description.notes
        refusal = description.refusal
        self.questionModel = questionModel
        self.contextModel = contextModel
    }

    /// What identifies this model's passage embeddings (an index records it): the context
    /// encoder's weights and the settings that change them (`ModelDescription.passageFingerprint`
    /// gives the same from the files, without loading).
    public var passageFingerprint: String {
        var crc = CRC32C()
        if let contextModel {
            // The context encoder's tensors in layout order (its own, or the one both sides share).
            for slot in contextModel.context.layout.slots {
                crc.update(UnsafeRawBufferPointer(UnsafeBufferPointer(start: contextModel.parameters.pointer + slot.offset, count: slot.count)))
            }
        }
        return ModelDescription.fingerprint(contextWeights: crc, settings: settings, doLowerCase: tokenizer.doLowerCase, dimension: dimension)
    }

    /// What decides every embedding `encode` gives (both encoders' weights and the settings),
    /// hashed: `srdpr encode`'s shards are kept and its workers accepted only under the same one.
    public var fingerprint: String {
        var crc = CRC32C()
        for encoder in [questionModel, contextModel].compactMap({ $0 }) {
            crc.update(UnsafeRawBufferPointer(UnsafeBufferPointer(start: encoder.parameters.pointer, count: encoder.parameters.count)))
        }
        crc.update(Array("\(settings) \(tokenizer.doLowerCase) \(dimension)".utf8))
        return String(format: "crc32c:%08x", crc.finalValue)
    }

    /// `do_lower_case` of `dir/tokenizer_config.json`, nil when absent.
    public static func tokenizerLowerCase(_ dir: URL) -> Bool? {
        guard let data = try? Foundation.Data(contentsOf: dir.appendingPathComponent("tokenizer_config.json")),
              let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return nil }
        return json["do_lower_case"] as? Bool
    }

    /// One embedding per input, in order: questions through the question encoder, passages and
    /// token ids through the context encoder. `normalized`: scaled to unit length (what the
    /// scores of a cosine model are dot products of). `progress(n)`: n inputs done.
    public func encode(_ inputs: [EncodingInput], normalized: Bool = false, progress: (Int) -> Void = { _ in }) throws -> [[Float]] {
        var out = [[Float]](repeating: [], count: inputs.count)
        var before = 0
        for (side, encoder) in [(BiEncoder.Side.question, questions), (.context, contexts)] {
            let indices = inputs.indices.filter { inputs[$0].side == side }
            if indices.isEmpty { continue }
            guard let encoder else { throw ModelError.invalidInput(refusal[side] ?? "\(path) cannot embed this input") }
            let embeddings = try encoder.encode(indices.map { inputs[$0] }, progress: { progress(before + $0) })
            for (i, embedding) in zip(indices, embeddings) {
                out[i] = normalized ? Self.unitLength(embedding) : embedding
            }
            before += indices.count
        }
        return out
    }

    /// x / max(‖x‖, 1e-12), as torch.nn.functional.normalize.
    public static func unitLength(_ x: [Float]) -> [Float] {
        let norm = max(x.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
        return x.map { $0 / norm }
    }
}
