/// The training configuration of SPEC §8: every parameter of the original's Hydra config with its
/// default. Built from `key=value` arguments by `TrainingConfig(arguments:)` (see ConfigParser.swift)
/// and stored in checkpoints as JSON (the coding keys are the original's parameter names).
public struct TrainingConfig: Codable, Equatable, Sendable {
    // Encoder
    /// Hugging Face model directory or name the encoders start from (`pretrained_model_cfg`).
    public var pretrainedModelCfg: String? = nil
    public var encoderModelType: String = "hf_bert"
    public var pretrainedFile: String? = nil
    /// Checkpoint to resume from (`model_file`).
    public var modelFile: String? = nil
    public var projectionDim: Int = 0

    // Optimisation
    public var seed: Int = 12345
    public var adamEps: Double = 1e-8
    public var adamBetas: [Double] = [0.9, 0.999]
    public var maxGradNorm: Double = 1.0
    public var weightDecay: Double = 0.0
    public var learningRate: Double = 1e-5
    public var warmupSteps: Int = 1000
    public var totalUpdates: Int = 10000
    public var dropout: Double = 0.1
    public var lossScale: Double = 8.0
    public var simFunc: SimilarityFunction = .dotProduct
    /// How an encoder turns its last hidden states into one vector (`pooling`; the original: [CLS]).
    public var pooling: Pooling = .cls
    /// Factor on the similarity scores before the softmax (`sim_scale`; 1 = the original).
    public var simScale: Double = 1
    public var fixCtxEncoder: Bool = false

    // Grad cache
    public var gradCache: Bool = false
    public var qChunkSize: Int = 2
    public var ctxChunkSize: Int = 2

    // Data
    public var doLowerCase: Bool = true
    public var maxLength: Int = 256
    public var trainMode: String = "poshard+hard"
    public var regulateFactor: Int = 1
    public var bytedataset = DatasetPaths()
    public var pipeline = PipelineSettings()

    // Distributed, logging, checkpoints
    public var globalLossBufferSize: Int = 150000
    public var logBatchStep: Int = 100
    public var outputDir: String? = nil
    public var logDir: String = "logs"
    public var checkpointFileName: String = "dpr_biencoder"
    public var keepCheckpointMax: Int = 5
    public var saveCheckpointFreq: Int = 1000
    /// `resume=latest`: resume from the newest valid checkpoint in output_dir (optional in the
    /// JSON so that checkpoints written before it existed still load).
    public var resume: String? = nil
    /// `overwrite_output_dir=true`: a fresh run deletes an earlier run's checkpoints instead of being refused.
    public var overwriteOutputDir: Bool? = nil

    // Evaluation during training (optional: checkpoints written before it existed have none)
    /// `eval.*`: the dev set; nil when no `eval.*` key is given.
    public var eval: DevSetConfig? = nil
    /// `eval_every`: evaluate every N updates (and at the end); 0 or unset with a dev set: only at the end.
    public var evalEvery: Int? = nil
    /// `keep_best`: keep a copy of the checkpoint with the best value of this dev metric (e.g. mrr@10).
    public var keepBest: String? = nil

    public init() {}

    enum CodingKeys: String, CodingKey {
        case pretrainedModelCfg = "pretrained_model_cfg", encoderModelType = "encoder_model_type"
        case pretrainedFile = "pretrained_file", modelFile = "model_file", projectionDim = "projection_dim"
        case seed, adamEps = "adam_eps", adamBetas = "adam_betas", maxGradNorm = "max_grad_norm"
        case weightDecay = "weight_decay", learningRate = "learning_rate", warmupSteps = "warmup_steps"
        case totalUpdates = "total_updates", dropout, lossScale = "loss_scale", simFunc = "sim_func"
        case pooling, simScale = "sim_scale"
        case fixCtxEncoder = "fix_ctx_encoder", gradCache = "grad_cache", qChunkSize = "q_chunk_size"
        case ctxChunkSize = "ctx_chunk_size", doLowerCase = "do_lower_case", maxLength = "max_length"
        case trainMode = "train_mode", regulateFactor = "regulate_factor", bytedataset, pipeline
        case globalLossBufferSize = "global_loss_buf_sz", logBatchStep = "log_batch_step", outputDir = "output_dir"
        case logDir = "log_dir", checkpointFileName = "checkpoint_file_name", keepCheckpointMax = "keep_checkpoint_max"
        case saveCheckpointFreq = "save_checkpoint_freq"
        case resume, overwriteOutputDir = "overwrite_output_dir"
        case eval, evalEvery = "eval_every", keepBest = "keep_best"
    }
}

/// `eval.*`: the dev set evaluated during training, in any form `srdpr evaluate` reads:
/// `eval.corpus` with `eval.qrels` (JSON lines), or with `eval.queries` and `eval.qrels` (TREC qrels
/// or a BEIR qrels TSV), or `eval.beir` with `eval.split`.
public struct DevSetConfig: Codable, Equatable, Sendable {
    public var corpus: String? = nil
    public var queries: String? = nil
    public var qrels: String? = nil
    public var beir: String? = nil
    public var split: String = "dev"
    /// Cut-offs of top-k accuracy and recall (MRR and nDCG also at 10).
    public var k: [Int] = [1, 5, 20, 100]
    public init() {}
}

/// `sim_func`: how question and context vectors are scored, in training (the losses) and in
/// retrieval (index and search).
public enum SimilarityFunction: String, Codable, CaseIterable, Sendable {
    /// q · c.
    case dotProduct = "dot_product"
    /// q̂ · ĉ with x̂ = x / max(‖x‖, 1e-12): true cosine similarity, as `F.normalize` then a dot
    /// product. (The original's `normalize` divided a vector by its normalised self; SPEC §5.)
    case cosine
}

/// `pooling`: the vector of a sequence is its [CLS] token's last hidden state (`cls`, the
/// original) or the mean of the last hidden states of its non-padding tokens (`mean`, what
/// sentence-transformers models such as all-MiniLM-L6-v2 are trained with).
public enum Pooling: String, Codable, CaseIterable, Sendable {
    case cls
    case mean
}

extension TrainingConfig {
    /// Every key is optional when decoding (a default fills a missing one), so checkpoints written
    /// before a parameter existed still load.
    public init(from decoder: Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func read<T: Decodable>(_ key: CodingKeys, _ value: inout T) throws {
            if let v = try c.decodeIfPresent(T.self, forKey: key) { value = v }
        }
        func read<T: Decodable>(_ key: CodingKeys, _ value: inout T?) throws {
            if c.contains(key) { value = try c.decodeIfPresent(T.self, forKey: key) }
        }
        try read(.pretrainedModelCfg, &pretrainedModelCfg); try read(.encoderModelType, &encoderModelType)
        try read(.pretrainedFile, &pretrainedFile); try read(.modelFile, &modelFile); try read(.projectionDim, &projectionDim)
        try read(.seed, &seed); try read(.adamEps, &adamEps); try read(.adamBetas, &adamBetas)
        try read(.maxGradNorm, &maxGradNorm); try read(.weightDecay, &weightDecay); try read(.learningRate, &learningRate)
        try read(.warmupSteps, &warmupSteps); try read(.totalUpdates, &totalUpdates); try read(.dropout, &dropout)
        try read(.lossScale, &lossScale); try read(.simFunc, &simFunc); try read(.pooling, &pooling)
        try read(.simScale, &simScale); try read(.fixCtxEncoder, &fixCtxEncoder); try read(.gradCache, &gradCache)
        try read(.qChunkSize, &qChunkSize); try read(.ctxChunkSize, &ctxChunkSize); try read(.doLowerCase, &doLowerCase)
        try read(.maxLength, &maxLength); try read(.trainMode, &trainMode); try read(.regulateFactor, &regulateFactor)
        try read(.bytedataset, &bytedataset); try read(.pipeline, &pipeline); try read(.globalLossBufferSize, &globalLossBufferSize)
        try read(.logBatchStep, &logBatchStep); try read(.outputDir, &outputDir); try read(.logDir, &logDir)
        try read(.checkpointFileName, &checkpointFileName); try read(.keepCheckpointMax, &keepCheckpointMax)
        try read(.saveCheckpointFreq, &saveCheckpointFreq)
        try read(.eval, &eval); try read(.evalEvery, &evalEvery); try read(.keepBest, &keepBest)
    }
}

/// `bytedataset.*`: the ByteDataset directory of each pipeline.
public struct DatasetPaths: Codable, Equatable, Sendable {
    public var inbatch: String? = nil
    public var pos: String? = nil
    public var poshard: String? = nil
    public var hard = HardDatasetPaths()
    public init() {}
}

/// `bytedataset.hard.*`: samples with hard negatives, and (with `use_randneg`) random negatives.
public struct HardDatasetPaths: Codable, Equatable, Sendable {
    public var hardneg: String? = nil
    public var randneg: String? = nil
    public init() {}
}

/// `pipeline.*`: the settings of each pipeline.
public struct PipelineSettings: Codable, Equatable, Sendable {
    public var inbatch = InbatchSettings()
    public var pos = ContrastiveSettings(forwardBatchSize: 16, contrastiveSize: 16)
    public var poshard = ContrastiveSettings(forwardBatchSize: 2, contrastiveSize: 2)
    public var hard = HardSettings()
    public init() {}

    /// The settings every pipeline has.
    public func common(_ kind: PipelineKind) -> (forwardBatchSize: Int, gradientAccumulateSteps: Int, loggingStep: Int) {
        switch kind {
        case .inbatch: return (inbatch.forwardBatchSize, inbatch.gradientAccumulateSteps, inbatch.loggingStep)
        case .pos: return (pos.forwardBatchSize, pos.gradientAccumulateSteps, pos.loggingStep)
        case .poshard: return (poshard.forwardBatchSize, poshard.gradientAccumulateSteps, poshard.loggingStep)
        case .hard: return (hard.forwardBatchSize, hard.gradientAccumulateSteps, hard.loggingStep)
        }
    }
}

public struct InbatchSettings: Codable, Equatable, Sendable {
    public var forwardBatchSize = 16
    public var useHardneg = true
    public var useNumHardnegs = 1
    public var gradientAccumulateSteps = 1
    public var loggingStep = 10
    public init() {}
    enum CodingKeys: String, CodingKey {
        case forwardBatchSize = "forward_batch_size", useHardneg = "use_hardneg", useNumHardnegs = "use_num_hardnegs"
        case gradientAccumulateSteps = "gradient_accumulate_steps", loggingStep = "logging_step"
    }
}

/// pos and poshard.
public struct ContrastiveSettings: Codable, Equatable, Sendable {
    public var forwardBatchSize: Int
    public var contrastiveSize: Int
    public var gradientAccumulateSteps = 1
    public var loggingStep = 10
    public init(forwardBatchSize: Int, contrastiveSize: Int) {
        self.forwardBatchSize = forwardBatchSize
        self.contrastiveSize = contrastiveSize
    }
    enum CodingKeys: String, CodingKey {
        case forwardBatchSize = "forward_batch_size", contrastiveSize = "contrastive_size"
        case gradientAccumulateSteps = "gradient_accumulate_steps", loggingStep = "logging_step"
    }
}

public struct HardSettings: Codable, Equatable, Sendable {
    public var forwardBatchSize = 2
    public var contrastiveSize = 2
    public var useRandneg = true
    public var gradientAccumulateSteps = 1
    public var loggingStep = 10
    public init() {}
    enum CodingKeys: String, CodingKey {
        case forwardBatchSize = "forward_batch_size", contrastiveSize = "contrastive_size", useRandneg = "use_randneg"
        case gradientAccumulateSteps = "gradient_accumulate_steps", loggingStep = "logging_step"
    }
}
