import Data
import Foundation
import Model

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

extension TrainingCheckpoint {
    /// The coordinator's state stored in the checkpoint at `path` (what a resumed run restores
    /// its schedule, pipelines and loss history from).
    public static func state(at path: String) throws -> TrainerState {
        try CheckpointFile(url: URL(fileURLWithPath: path)).json(stateSection, as: TrainerState.self)
    }
}
