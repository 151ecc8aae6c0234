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

    public init(path: String, options: Options = Options(), warn: (String) -> Void = { _ in }) throws {
        let url = URL(fileURLWithPath: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ModelError.missingFile("\(path): no such model; give a checkpoint of `srdpr train`, an export directory of "
                + "`srdpr export`, or a Hugging Face / sentence-transformers model directory")
        }
        var settings: EncoderSettings
        var questionModel: BiEncoder?, contextModel: BiEncoder?
        var tokenizerDirectory: URL?
        var checkpoint: CheckpointModel?
        var refusal: [BiEncoder.Side: String] = [:]
        var notes: [String] = []
        let source: Source
        if !isDirectory.boolValue {
            let loaded = try CheckpointModel(url: url, trainable: false)
            checkpoint = loaded
            settings = EncoderSettings(training: loaded.config)
            questionModel = loaded.model
            contextModel = loaded.model
            source = .checkpoint
        } else if FileManager.default.fileExists(atPath: url.appendingPathComponent("question_encoder").path) {
            let qDir = url.appendingPathComponent("question_encoder"), cDir = url.appendingPathComponent("ctx_encoder")
            guard FileManager.default.fileExists(atPath: cDir.path) else {
                throw ModelError.missingFile("\(cDir.path): an export directory needs question_encoder/ and ctx_encoder/")
            }
            let q = try Self.loadDirectory(qDir), c = try Self.loadDirectory(cDir)
            settings = try EncoderSettings.read(directory: url) ?? q.settings
            settings.role = nil
            guard q.model.question.outputDim == c.model.context.outputDim, q.model.config.maxPositions == c.model.config.maxPositions else {
                throw ModelError.invalidConfig(file: path, reason: "question_encoder and ctx_encoder have different sizes")
            }
            questionModel = q.model
            contextModel = c.model
            tokenizerDirectory = qDir
            source = .exportRoot
        } else {
            let loaded = try Self.loadDirectory(url)
            settings = loaded.settings
            let parent = url.deletingLastPathComponent().path
            switch settings.role {
            case .question?:
                questionModel = loaded.model
                refusal[.context] = "\(path) is the question encoder of an srdpr export: it does not embed passages. "
                    + "Give the export directory (\(parent)) to embed passages with its context encoder"
            case .context?:
                contextModel = loaded.model
                refusal[.question] = "\(path) is the context encoder of an srdpr export: it does not embed questions. "
                    + "Give the export directory (\(parent)) to embed questions with its question encoder"
            case nil:
                questionModel = loaded.model
                contextModel = loaded.model
                notes.append("\(path) is a single encoder: it embeds both questions and passages")
            }
            tokenizerDirectory = url
            source = .encoderDirectory
        }
        let model = (questionModel ?? contextModel)!

        if let lower = options.doLowerCase { settings.doLowerCase = lower }
        if let sim = options.similarity { settings.simFunc = sim }
        if let pooling = options.pooling { settings.pooling = pooling }
        var maxLength = options.maxLength ?? settings.maxLength
        guard maxLength >= 2 else { throw ModelError.invalidInput("max_length must be at least 2, got \(maxLength)") }
        if maxLength > model.config.maxPositions {
            warn("warning: max_length \(maxLength)\(options.maxLength == nil ? " (the model's)" : "") exceeds max_position_embeddings "
                 + "\(model.config.maxPositions) of \(path); using \(model.config.maxPositions)")
            maxLength = model.config.maxPositions
        }
        settings.maxLength = maxLength
        let tokenizer: BertTokenizer
        if let checkpoint {
            tokenizer = try checkpoint.tokenizer(path: path, doLowerCase: settings.doLowerCase)
        } else {
            tokenizer = try BertTokenizer(vocabFile: tokenizerDirectory!.appendingPathComponent("vocab.txt"), doLowerCase: settings.doLowerCase)
        }
        self.tokenizer = tokenizer
        BLASThreads.set(options.threads)
        for m in [questionModel, contextModel].compactMap({ $0 }) {
            m.threads = options.threads
            m.pooling = settings.pooling
        }
        let normalize = settings.questionNormalization == .dpr, batchSize = options.batchSize
        questions = questionModel.map {
            TextEncoder(model: $0, tokenizer: tokenizer, maxLength: maxLength, batchSize: batchSize, normalizeQuestions: normalize)
        }
        contexts = contextModel.map { TextEncoder(model: $0, tokenizer: tokenizer, maxLength: maxLength, batchSize: batchSize) }
        dimension = model.question.outputDim
        self.path = path
        self.source = source
        self.settings = settings
        self.notes = notes
        self.refusal = refusal
        self.questionModel = questionModel
        self.contextModel = contextModel
    }

    /// One encoder directory: its bi-encoder (both sides from it) and settings (srdpr_settings.json,
    /// else the sentence-transformers files, else the original's defaults).
    static func loadDirectory(_ dir: URL) throws -> (model: BiEncoder, settings: EncoderSettings) {
        let own = try EncoderSettings.read(directory: dir)
        let layout = try SentenceTransformersLayout.read(directory: dir)
        let source = try WeightSource.open(directory: dir)
        var projectionDim = 0
        if source.names.contains("encode_proj.weight") {
            projectionDim = try source.tensor("encode_proj.weight").shape.first ?? 0
        } else if let layout {
            projectionDim = try layout.denseOutputSize()
        }
        let model = try BiEncoder.load(directory: dir, projectionDim: projectionDim, trainable: false)
        if !source.names.contains("encode_proj.weight"), let layout {
            try layout.loadDense(into: model.question)
            try layout.loadDense(into: model.context)
        }
        if let own {
            guard own.projectionDim == projectionDim else {
                throw ModelError.invalidConfig(file: dir.appendingPathComponent(EncoderSettings.fileName).path,
                    reason: "projection_dim \(own.projectionDim), but the weights have a \(projectionDim)-wide projection")
            }
            return (model, own)
        }
        var lower = tokenizerLowerCase(dir) ?? true
        if layout?.doLowerCase == true { lower = true }
        var similarity = SimilarityFunction.dotProduct
        if let layout {
            switch layout.similarityFunctionName {
            case _ where layout.normalize: similarity = .cosine
            case nil, "cosine"?: similarity = .cosine
            case "dot"?, "dot_product"?: similarity = .dotProduct
            case let other?:
                throw ModelError.invalidConfig(file: dir.appendingPathComponent("config_sentence_transformers.json").path,
                    reason: "similarity_fn_name \"\(other)\" is not supported (cosine or dot)")
            }
        }
        let settings = EncoderSettings(simFunc: similarity, simScale: 1, maxLength: layout?.maxSeqLength ?? 256,
                                       pooling: layout?.pooling ?? .cls, doLowerCase: lower,
                                       questionNormalization: .dpr, projectionDim: projectionDim)
        return (model, settings)
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
