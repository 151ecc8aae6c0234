import Data
import Foundation
import Model

/// Reading the model back out of a checkpoint (the model sections are read by `CheckpointModel`
/// of the Model module; this adds the trainer's state).
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

extension TrainingCheckpoint {
    /// The coordinator's state stored in the checkpoint at `path` (what a resumed run restores
    /// its schedule, pipelines and loss history from).
    public static func state(at path: String) throws -> TrainerState {
        try CheckpointFile(url: URL(fileURLWithPath: path)).json(stateSection, as: TrainerState.self)
    }
}
