import Data
import Foundation
import Model

/// The coordinator's part of a checkpoint (section `trainer.state`): where training stands and
/// everything besides weights and optimizer moments that the next step depends on.
public struct TrainerState: Codable, Equatable, Sendable {
    /// Format of this section; bumped when fields change meaning.
    public var version = 1
    /// Updates done (the checkpoint's `{step}` suffix); training resumes at this step.
    public var step: Int
    /// Each pipeline's position (index generators, window), by `train_mode` name.
    public var pipelines: [String: PipelineState]
    /// Every logged loss of each pipeline, in update order.
    public var lossHistory: [String: [Float]]
    /// The dropout seed: masks are a function of (seed, step, batch, side, row), so the seed is the
    /// whole random state of the model side.
    public var dropoutSeed: UInt64
    /// The learning-rate schedule; its step is `step`.
    public var schedule: LinearWarmupSchedule
    /// `projection_dim` of the encoders (the BERT config is in section `model.config`).
    public var projectionDim: Int

    public init(step: Int, pipelines: [String: PipelineState], lossHistory: [String: [Float]], dropoutSeed: UInt64,
                schedule: LinearWarmupSchedule, projectionDim: Int) {
        self.step = step
        self.pipelines = pipelines
        self.lossHistory = lossHistory
        self.dropoutSeed = dropoutSeed
        self.schedule = schedule
        self.projectionDim = projectionDim
    }
}

/// Reading the model back out of a checkpoint (the sections are read by `CheckpointModel` of the
/// Model module; this adds the trainer's state).
public enum TrainingCheckpoint {
    /// Section names.
    public static let stateSection = CheckpointModel.stateSection
    public static let configSection = CheckpointModel.configSection
    public static let modelConfigSection = CheckpointModel.modelConfigSection
    public static let vocabSection = CheckpointModel.vocabSection
    public static let tokenizerConfigSection = CheckpointModel.tokenizerConfigSection

    /// The bi-encoder stored in `url` (checksums verified), and the vocabulary/tokenizer files.
    public static func loadModel(_ url: URL) throws -> (model: BiEncoder, state: TrainerState, config: TrainingConfig,
                                                        tokenizerFiles: [String: [UInt8]]) {
        let loaded = try CheckpointModel(url: url)
        let state = try CheckpointFile(url: url, verifyChecksums: false).json(stateSection, as: TrainerState.self)
        return (loaded.model, state, loaded.config, loaded.tokenizerFiles)
    }

    /// The BERT configuration stored in a checkpoint.
    public static func modelConfig(_ file: CheckpointFile) throws -> BertConfig {
        try CheckpointModel.modelConfig(file)
    }
}
