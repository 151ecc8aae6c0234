import Data
import Foundation

/// What a `--model` path holds, read without its weights (configs, settings files, tokenizer,
/// tensor names and shapes): the settings as used, the tokenizer, the embedding size and where
/// each side's weights are (see `InferenceModel` for what is accepted and the defaults).
/// `InferenceModel` loads those weights; `passageFingerprint()` hashes the passage encoder's
/// weights one tensor at a time, so a process that needs only the model's identity (the parent of
/// `srdpr index --workers`) never holds them.
public struct ModelDescription {
    /// Where the weights of a side are.
    enum Weights {
        /// A checkpoint of `srdpr train`: both encoders.
        case checkpoint(CheckpointModel.Header)
        /// One directory: an encoder (its weights serve both sides) or a bi-encoder
        /// (`question_model.` and `ctx_model.` weights); `dense`: the sentence-transformers modules
        /// whose Dense module is the projection head (nil when the weights hold their own).
        case directory(URL, config: BertConfig, projectionDim: Int, dense: SentenceTransformersLayout?)
    }

    public let path: String
    public let source: InferenceModel.Source
    /// The settings as used: max_length after capping, the tokenizer's lower-casing, the similarity.
    public let settings: EncoderSettings
    public let tokenizer: BertTokenizer
    /// What the model does that a user may not expect (printed by the CLI).
    public let notes: [String]
    /// Embedding size.
    public let dimension: Int
    let questionWeights: Weights?
    let contextWeights: Weights?
    /// Why a side cannot embed, for the sides without weights.
    let refusal: [BiEncoder.Side: String]

    public init(path: String, options: InferenceModel.Options = InferenceModel.Options(), warn: (String) -> Void = { _ in }) throws {
        let url = URL(fileURLWithPath: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ModelError.missingFile("\(path): no such model; give a checkpoint of `srdpr train`, an export directory of "
                + "`srdpr export`, or a Hugging Face / sentence-transformers model directory")
        }
        var settings: EncoderSettings
        var questionWeights: Weights?, contextWeights: Weights?
        let maxPositions: Int
        var tokenizerDirectory: URL?
        var checkpoint: CheckpointModel.Header?
        var refusal: [BiEncoder.Side: String] = [:]
        var notes: [String] = []
        let source: InferenceModel.Source
        if !isDirectory.boolValue {
            let header = try CheckpointModel.Header(url: url)
            checkpoint = header
            settings = EncoderSettings(training: header.config)
            questionWeights = .checkpoint(header)
            contextWeights = .checkpoint(header)
            maxPositions = header.modelConfig.maxPositions
            dimension = header.projectionDim > 0 ? header.projectionDim : header.modelConfig.hiddenSize
            source = .checkpoint
        } else if FileManager.default.fileExists(atPath: url.appendingPathComponent("question_encoder").path) {
            let qDir = url.appendingPathComponent("question_encoder"), cDir = url.appendingPathComponent("ctx_encoder")
            guard FileManager.default.fileExists(atPath: cDir.path) else {
                throw ModelError.missingFile("\(cDir.path): an export directory needs question_encoder/ and ctx_encoder/")
            }
            let q = try Self.describeDirectory(qDir), c = try Self.describeDirectory(cDir)
            settings = try EncoderSettings.read(directory: url) ?? q.settings
            settings.role = nil
            guard q.dimension == c.dimension, q.config.maxPositions == c.config.maxPositions else {
                throw ModelError.invalidConfig(file: path, reason: "question_encoder and ctx_encoder have different sizes")
            }
            questionWeights = q.weights
            contextWeights = c.weights
            maxPositions = q.config.maxPositions
            dimension = q.dimension
            tokenizerDirectory = qDir
            source = .exportRoot
        } else {
            let described = try Self.describeDirectory(url)
            settings = described.settings
            let parent = url.deletingLastPathComponent().path
            switch settings.role {
            case .question?:
                questionWeights = described.weights
                refusal[.context] = "\(path) is the question encoder of an srdpr export: it does not embed passages. "
                    + "Give the export directory (\(parent)) to embed passages with its context encoder"
            case .context?:
                contextWeights = described.weights
                refusal[.question] = "\(path) is the context encoder of an srdpr export: it does not embed questions. "
                    + "Give the export directory (\(parent)) to embed questions with its question encoder"
            case nil:
                questionWeights = described.weights
                contextWeights = described.weights
                notes.append("\(path) is a single encoder: it embeds both questions and passages")
            }
            maxPositions = described.config.maxPositions
            dimension = described.dimension
            tokenizerDirectory = url
            source = .encoderDirectory
        }

        if let lower = options.doLowerCase { settings.doLowerCase = lower }
        if let sim = options.similarity { settings.simFunc = sim }
        if let pooling = options.pooling { settings.pooling = pooling }
        var maxLength = options.maxLength ?? settings.maxLength
        guard maxLength >= 2 else { throw ModelError.invalidInput("max_length must be at least 2, got \(maxLength)") }
        if maxLength > maxPositions {
            warn("warning: max_length \(maxLength)\(options.maxLength == nil ? " (the model's)" : "") exceeds max_position_embeddings "
                 + "\(maxPositions) of \(path); using \(maxPositions)")
            maxLength = maxPositions
        }
        settings.maxLength = maxLength
        if let checkpoint {
            tokenizer = try checkpoint.tokenizer(path: path, doLowerCase: settings.doLowerCase)
        } else {
            tokenizer = try BertTokenizer(vocabFile: tokenizerDirectory!.appendingPathComponent("vocab.txt"), doLowerCase: settings.doLowerCase)
        }
        self.path = path
        self.source = source
        self.settings = settings
        self.notes = notes
        self.refusal = refusal
        self.questionWeights = questionWeights
        self.contextWeights = contextWeights
    }

    /// One encoder directory: where its weights are, its settings (srdpr_settings.json, else the
    /// sentence-transformers files, else the original's defaults) and its embedding size.
    static func describeDirectory(_ dir: URL) throws -> (weights: Weights, settings: EncoderSettings, config: BertConfig, dimension: Int) {
        let own = try EncoderSettings.read(directory: dir)
        let layout = try SentenceTransformersLayout.read(directory: dir)
        let source = try WeightSource.open(directory: dir)
        let config = try BertConfig.load(dir.appendingPathComponent("config.json"))
        var projectionDim = 0
        if let head = source.shape(of: "encode_proj.weight") {
            projectionDim = head.first ?? 0
        } else if let layout {
            projectionDim = try layout.denseOutputSize()
        }
        // A bi-encoder directory's heads (question_model.encode_proj) set its size.
        let biEncoder = source.names.contains(where: { $0.hasPrefix("question_model.") })
        let head = biEncoder ? source.shape(of: "question_model.encode_proj.weight")?.first ?? 0 : projectionDim
        let dimension = head > 0 ? head : config.hiddenSize
        let ownHead = biEncoder || source.shape(of: "encode_proj.weight") != nil
        let weights = Weights.directory(dir, config: config, projectionDim: projectionDim,
                                        dense: ownHead || layout?.denseDirectory == nil ? nil : layout)
        if let own {
            guard own.projectionDim == projectionDim else {
                throw ModelError.invalidConfig(file: dir.appendingPathComponent(EncoderSettings.fileName).path,
                    reason: "projection_dim \(own.projectionDim), but the weights have a \(projectionDim)-wide projection")
            }
            return (weights, own, config, dimension)
        }
        var lower = InferenceModel.tokenizerLowerCase(dir) ?? true
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
        return (weights, settings, config, dimension)
    }

    /// The bi-encoder `weights` describe, for inference (no gradients; one directory's encoder held
    /// once for both sides).
    static func load(_ weights: Weights) throws -> BiEncoder {
        switch weights {
        case .checkpoint(let header):
            return try CheckpointModel(header: header, trainable: false).model
        case .directory(let dir, _, let projectionDim, let dense):
            let model = try BiEncoder.load(directory: dir, projectionDim: projectionDim, trainable: false, shareSides: true)
            if let dense {
                for encoder in model.distinctEncoders { try dense.loadDense(into: encoder) }
            }
            return model
        }
    }

    /// The fingerprint `InferenceModel.passageFingerprint` gives once loaded, from the weight files
    /// one tensor at a time: the context encoder's tensors in layout order, as loading places them.
    public func passageFingerprint() throws -> String {
        if contextWeights == nil, let why = refusal[.context] { throw ModelError.invalidInput(why) }
        var crc = CRC32C()
        func add(_ floats: [Float]) { floats.withUnsafeBytes { crc.update($0) } }
        var slots = ParameterLayout()
        switch contextWeights {
        case nil:
            break
        case .checkpoint(let header)?:
            let context = BertLayout(config: header.modelConfig, projectionDim: header.projectionDim, into: &slots)
            for slot in context.slots { add(try header.floats("ctx_model." + slot.name, count: slot.count)) }
        case .directory(let dir, let config, let projectionDim, let dense)?:
            let source = try WeightSource.open(directory: dir)
            if source.names.contains(where: { $0.hasPrefix("question_model.") }) {
                let head = source.shape(of: "question_model.encode_proj.weight")?.first ?? 0
                let context = BertLayout(config: config, projectionDim: head, into: &slots)
                try source.forEachTensor(of: context, filePrefix: "ctx_model.") { add($1) }
            } else {
                let context = BertLayout(config: config, projectionDim: projectionDim, into: &slots)
                try source.forEachTensor(of: context, optional: ["encode_proj.weight", "encode_proj.bias"]) { add($1) }
                if let dense {
                    let head = try dense.denseTensors(projectionDim: projectionDim, hidden: config.hiddenSize)
                    add(head.weight)
                    add(head.bias)
                }
            }
        }
        return Self.fingerprint(contextWeights: crc, settings: settings, doLowerCase: tokenizer.doLowerCase, dimension: dimension)
    }

    /// What identifies a model's passage embeddings: the CRC32C of its context encoder's weights
    /// (float32, layout order) continued over the settings that change them.
    static func fingerprint(contextWeights: CRC32C, settings: EncoderSettings, doLowerCase: Bool, dimension: Int) -> String {
        var crc = contextWeights
        crc.update(Array("\(settings.maxLength) \(doLowerCase) \(dimension)".utf8))
        // Nothing added for [CLS] pooling, so indexes built before pooling existed stay valid.
        if settings.pooling != .cls { crc.update(Array(" pooling=\(settings.pooling.rawValue)".utf8)) }
        return String(format: "crc32c:%08x", crc.finalValue)
    }
}
