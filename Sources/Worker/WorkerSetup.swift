import Collectives
import Data
import Foundation
import JobContracts
import Model

/// Everything one rank needs to run training steps, built from the training configuration:
/// tokenizer, model (pretrained weights or a checkpoint), AdamW, the learning-rate schedule and
/// the `TrainingWorker` over a given communicator. The single-node trainer and every rank of a
/// multi-node job build it the same way.
public struct WorkerSetup {
    /// The configuration as used (max_length capped to the model's positions, when the planner
    /// could not do it because it has no copy of the model).
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
        let (capped, warning) = config.cappingMaxLength(to: bertConfig)
        config = capped
        if let warning { warn(warning) }

        let model: BiEncoder
        if let file = resume {
            let state = try file.json(TrainingCheckpoint.stateSection, as: TrainerState.self)
            let saved = try TrainingCheckpoint.modelConfig(file)
            guard saved == bertConfig else {
                throw TrainerError.incompatibleCheckpoint(path: file.path,
                    reason: "its BERT configuration differs from pretrained_model_cfg=\(pretrained)'s config.json")
            }
            let savedPooling = try file.json(TrainingCheckpoint.configSection, as: TrainingConfig.self).pooling
            guard savedPooling == config.pooling else {
                throw TrainerError.incompatibleCheckpoint(path: file.path,
                    reason: "it was trained with pooling=\(savedPooling.rawValue), the configuration says pooling=\(config.pooling.rawValue); "
                        + "pass pooling=\(savedPooling.rawValue) to resume it")
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
                                       seed: dropoutSeed ?? UInt64(truncatingIfNeeded: config.seed), pooling: config.pooling)
            resumedState = nil
        }
        model.pooling = config.pooling
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
            similarity: config.simFunc, scoreScale: Float(config.simScale),
            lossScale: Float(config.lossScale), maxGradNorm: Float(config.maxGradNorm),
            questionChunkSize: config.gradCache ? config.qChunkSize : nil,
            contextChunkSize: config.gradCache ? config.ctxChunkSize : nil,
            gradientWireType: AllReduceWireType(config.allreduceDtype))
        worker = TrainingWorker(model: model, optimizer: optimizer, schedule: schedule, communicator: communicator, settings: settings)
        if let file = resume { try worker.restoreState(from: file) }
        modelFiles = try ModelFiles(directory: modelDir, bertConfig: bertConfig)
        modelDirectory = modelDir
        self.config = config
    }
}
