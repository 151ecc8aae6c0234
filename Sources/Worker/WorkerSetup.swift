import Collectives
import Data
import Foundation
import Model

/// Everything one rank needs to run training steps, built from the training configuration:
/// tokenizer, model (pretrained weights or a checkpoint), AdamW, the learning-rate schedule and
/// the `TrainingWorker` over a given communicator. The single-node trainer and every rank of a
/// multi-node job build it the same way.
public struct WorkerSetup {
    /// The configuration as used (max_length capped to the model's positions).
    public let config: TrainingConfig
    public let modelDirectory: URL
    public let tokenizer: BertTokenizer
    public let bertConfig: BertConfig
    public let modelFiles: ModelFiles
    public let worker: TrainingWorker
    /// The coordinator's part of the checkpoint resumed from (nil for a fresh run).
    public let resumedState: TrainerState?

    /// - Parameters:
    ///   - resume: the checkpoint to resume from (`model_file`), restored into the model and AdamW.
    ///   - dropoutSeed: the run's dropout seed when it is not taken from `resume` (ranks > 0 of a
    ///     resumed multi-node job receive the checkpoint's seed from the coordinator).
    ///   - warn: where warnings go (e.g. max_length capped).
    public init(config input: TrainingConfig, threads: Int, communicator: Communicator, resume: CheckpointFile?,
                dropoutSeed: UInt64? = nil, warn: (String) -> Void) throws {
        var config = input
        // Inference and export know mean pooling and sim_scale; training them is not built yet.
        if config.pooling != .cls {
            throw ConfigError.invalid(key: "pooling", reason: "training with pooling=\(config.pooling.rawValue) is not supported yet (only cls)")
        }
        if config.simScale != 1 {
            throw ConfigError.invalid(key: "sim_scale", reason: "training with sim_scale=\(config.simScale) is not supported yet (only 1)")
        }
        guard let pretrained = config.pretrainedModelCfg else {
            throw TrainerError.missingParameter(key: "pretrained_model_cfg",
                                                reason: "the directory of a Hugging Face BERT model (config.json, vocab.txt, weights)")
        }
        let modelDir = URL(fileURLWithPath: pretrained)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: modelDir.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw TrainerError.pretrainedModel(path: pretrained, reason: ModelDirectoryHint.missing(pretrained, exists: FileManager.default.fileExists(atPath: pretrained)))
        }
        tokenizer = try BertTokenizer(vocabFile: modelDir.appendingPathComponent("vocab.txt"), doLowerCase: config.doLowerCase)
        bertConfig = try BertConfig.load(modelDir.appendingPathComponent("config.json"))
        if config.maxLength > bertConfig.maxPositions {
            warn("warning: max_length=\(config.maxLength) exceeds the model's max_position_embeddings \(bertConfig.maxPositions); using \(bertConfig.maxPositions)")
            config.maxLength = bertConfig.maxPositions
        }

        let model: BiEncoder
        if let file = resume {
            let state = try file.json(TrainingCheckpoint.stateSection, as: TrainerState.self)
            let saved = try TrainingCheckpoint.modelConfig(file)
            guard saved == bertConfig else {
                throw TrainerError.incompatibleCheckpoint(path: file.path,
                    reason: "its BERT configuration differs from pretrained_model_cfg=\(pretrained)'s config.json")
            }
            guard state.projectionDim == config.projectionDim else {
                throw TrainerError.incompatibleCheckpoint(path: file.path,
                    reason: "it has projection_dim=\(state.projectionDim), the configuration says \(config.projectionDim)")
            }
            model = BiEncoder(config: bertConfig, projectionDim: config.projectionDim, fixContextEncoder: config.fixCtxEncoder,
                              seed: state.dropoutSeed)
            resumedState = state
        } else {
            model = try BiEncoder.load(directory: modelDir, projectionDim: config.projectionDim, fixContextEncoder: config.fixCtxEncoder,
                                       seed: dropoutSeed ?? UInt64(truncatingIfNeeded: config.seed))
            resumedState = nil
        }
        model.setDropout(Float(config.dropout))
        BLASThreads.set(threads)
        model.threads = threads
        let fixed = config.fixCtxEncoder
        let groups = ParameterGroup.standardGroups(layout: model.layout, weightDecay: config.weightDecay,
                                                   isFrozen: { fixed && $0.name.hasPrefix("ctx_model.") })
        let betas = config.adamBetas.count == 2 ? (config.adamBetas[0], config.adamBetas[1]) : (0.9, 0.999)
        let optimizer = AdamW(parameterCount: model.layout.totalCount, groups: groups, betas: betas, eps: config.adamEps)
        let schedule = LinearWarmupSchedule(baseLearningRate: config.learningRate, warmupSteps: config.warmupSteps,
                                            totalUpdates: config.totalUpdates)
        let settings = StepSettings(
            similarity: Model.SimilarityFunction(rawValue: config.simFunc.rawValue) ?? .dotProduct,
            lossScale: Float(config.lossScale), maxGradNorm: Float(config.maxGradNorm),
            questionChunkSize: config.gradCache ? config.qChunkSize : nil,
            contextChunkSize: config.gradCache ? config.ctxChunkSize : nil,
            globalLossBufferSize: config.globalLossBufSz)
        worker = TrainingWorker(model: model, optimizer: optimizer, schedule: schedule, communicator: communicator, settings: settings)
        if let file = resume { try worker.restoreState(from: file) }
        modelFiles = try ModelFiles(directory: modelDir, bertConfig: bertConfig)
        modelDirectory = modelDir
        self.config = config
    }
}

extension TrainingWorker {
    /// Makes every rank's weights (and, when `optimizerState` is set, AdamW's moments and step)
    /// equal to rank 0's: the others contribute zeros to a sum all-reduce, which adds nothing to
    /// rank 0's values, so they arrive bit for bit.
    public func synchronizeWithRankZero(optimizerState: Bool) throws {
        let isRoot = communicator.rank == 0
        if !isRoot { model.parameters.zero() }
        try communicator.allReduce(model.parameters.buffer, op: .sum)
        guard optimizerState else { return }
        let count = model.layout.totalCount
        var m = isRoot ? optimizer.m : [Float](repeating: 0, count: count)
        var v = isRoot ? optimizer.v : [Float](repeating: 0, count: count)
        try communicator.allReduce(&m, op: .sum)
        try communicator.allReduce(&v, op: .sum)
        let stepBytes = try communicator.broadcast(withUnsafeBytes(of: Int64(optimizer.step).littleEndian) { Array($0) }, root: 0)
        guard stepBytes.count == 8 else { throw WorkerError.malformedPayload(rank: 0, bytes: stepBytes.count, expected: 8) }
        let step = stepBytes.withUnsafeBytes { Int(Int64(littleEndian: $0.loadUnaligned(as: Int64.self))) }
        try optimizer.restore(step: step, m: m, v: v)
    }
}
