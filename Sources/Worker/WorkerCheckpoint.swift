import Data
import Foundation
import JobContracts
import Model

/// The part of a checkpoint a worker owns: the weights of both encoders, one float section per
/// tensor under its model name (`question_model.*`, `ctx_model.*`), and AdamW's moments and step.
extension TrainingWorker {
    /// Adds the weights and optimizer state to `writer`. The weight sections point into the live
    /// parameter buffer: write the checkpoint before the next step.
    public func addState(to writer: inout CheckpointWriter) throws {
        for slot in model.layout.slots {
            try writer.addFloats(slot.name, unsafeBuffer: UnsafeBufferPointer(start: model.parameters.pointer + slot.offset, count: slot.count),
                                 shape: slot.shape)
        }
        try writer.addFloats("optimizer.exp_avg", optimizer.m)
        try writer.addFloats("optimizer.exp_avg_sq", optimizer.v)
        try writer.addJSON("optimizer.state", OptimizerState(step: optimizer.step, betas: [optimizer.beta1, optimizer.beta2], eps: optimizer.eps))
    }

    /// Restores what `addState` wrote; sizes must match this model (a different model is an error
    /// naming the section).
    public func restoreState(from file: CheckpointFile) throws {
        try Self.restoreWeights(model, from: file)
        let state = try file.json("optimizer.state", as: OptimizerState.self)
        try optimizer.restore(step: state.step, m: file.floats("optimizer.exp_avg"), v: file.floats("optimizer.exp_avg_sq"))
    }

    /// Copies every `question_model.*` / `ctx_model.*` section of `file` into `model`.
    public static func restoreWeights(_ model: BiEncoder, from file: CheckpointFile) throws {
        for slot in model.layout.slots {
            try file.copyFloats(slot.name, into: UnsafeMutableBufferPointer(start: model.parameters.pointer + slot.offset, count: slot.count))
        }
    }
}

extension TrainingWorker {
    /// Writes the training checkpoint of `state.step` into `directory` (weights, optimizer, the
    /// coordinator's state, the configuration and the model files), atomically, keeping at most
    /// keep_checkpoint_max. The same file whoever writes it: the single-node trainer or rank 0.
    public func saveCheckpoint(in directory: CheckpointDirectory, state: TrainerState, config: TrainingConfig,
                               files: ModelFiles) throws -> URL {
        let writer = try checkpointWriter(state: state, config: config, files: files)
        return try directory.save(writer, step: state.step, keep: config.keepCheckpointMax)
    }

    /// The sections of the training checkpoint of `state.step`, ready to be written anywhere.
    public func checkpointWriter(state: TrainerState, config: TrainingConfig, files: ModelFiles) throws -> CheckpointWriter {
        var writer = CheckpointWriter()
        try addState(to: &writer)
        try writer.addJSON(TrainingCheckpoint.stateSection, state)
        try writer.addJSON(TrainingCheckpoint.configSection, config)
        try writer.addBytes(TrainingCheckpoint.modelConfigSection, files.config)
        try writer.addBytes(TrainingCheckpoint.vocabSection, files.vocab)
        if let tokenizerConfig = files.tokenizerConfig {
            try writer.addBytes(TrainingCheckpoint.tokenizerConfigSection, tokenizerConfig)
        }
        return writer
    }
}
