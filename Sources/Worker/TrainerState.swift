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

/// Reading the model back out of a checkpoint (for `srdpr export` and tests).
public enum TrainingCheckpoint {
    /// Section names.
    public static let stateSection = "trainer.state"
    public static let configSection = "trainer.config"
    public static let modelConfigSection = "model.config"
    public static let vocabSection = "tokenizer.vocab.txt"
    public static let tokenizerConfigSection = "tokenizer.tokenizer_config.json"

    /// The bi-encoder stored in `url` (checksums verified), and the vocabulary/tokenizer files.
    public static func loadModel(_ url: URL) throws -> (model: BiEncoder, state: TrainerState, config: TrainingConfig,
                                                        tokenizerFiles: [String: [UInt8]]) {
        let file = try CheckpointFile(url: url)
        let state = try file.json(stateSection, as: TrainerState.self)
        let config = try file.json(configSection, as: TrainingConfig.self)
        let bertConfig = try modelConfig(file)
        let model = BiEncoder(config: bertConfig, projectionDim: state.projectionDim, seed: state.dropoutSeed)
        model.pooling = config.pooling
        for slot in model.layout.slots {
            try file.copyFloats(slot.name, into: UnsafeMutableBufferPointer(start: model.parameters.pointer + slot.offset, count: slot.count))
        }
        var files: [String: [UInt8]] = [:]
        if file.contains(vocabSection) { files["vocab.txt"] = try file.bytes(vocabSection) }
        if file.contains(tokenizerConfigSection) { files["tokenizer_config.json"] = try file.bytes(tokenizerConfigSection) }
        return (model, state, config, files)
    }

    /// The BERT configuration stored in a checkpoint.
    public static func modelConfig(_ file: CheckpointFile) throws -> BertConfig {
        let raw = try file.bytes(modelConfigSection)
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("srdpr-config-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: tmp) }
        try Foundation.Data(raw).write(to: tmp)
        do { return try BertConfig.load(tmp) } catch {
            throw CheckpointError.badJSON(path: file.path, name: modelConfigSection, reason: "\(error)")
        }
    }
}
