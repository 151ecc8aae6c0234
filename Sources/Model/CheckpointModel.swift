import Data
import Foundation

/// The model inside a training checkpoint of `srdpr train`: both encoders, the run's
/// configuration and the tokenizer files. Reading it needs nothing of the trainer (what
/// `export`, `encode`, `index`, `search` and `evaluate` load).
public struct CheckpointModel {
    /// Section names of a training checkpoint.
    public static let stateSection = "trainer.state"
    public static let configSection = "trainer.config"
    public static let modelConfigSection = "model.config"
    public static let vocabSection = "tokenizer.vocab.txt"
    public static let tokenizerConfigSection = "tokenizer.tokenizer_config.json"

    public let model: BiEncoder
    /// The run's configuration (`sim_func`, `max_length`, `pooling`, `do_lower_case`, ...).
    public let config: TrainingConfig
    /// `vocab.txt` and, when the pretrained model had one, `tokenizer_config.json`.
    public let tokenizerFiles: [String: [UInt8]]

    /// The fields of the trainer's state section the model needs.
    private struct StateFields: Decodable {
        var projectionDim: Int
        var dropoutSeed: UInt64
    }

    /// Reads the checkpoint at `url` (checksums verified); `trainable` false: the model has no
    /// gradient buffer (inference, export).
    public init(url: URL, trainable: Bool = true) throws {
        let file = try CheckpointFile(url: url)
        let state = try file.json(Self.stateSection, as: StateFields.self)
        config = try file.json(Self.configSection, as: TrainingConfig.self)
        let bertConfig = try Self.modelConfig(file)
        model = BiEncoder(config: bertConfig, projectionDim: state.projectionDim, seed: state.dropoutSeed, trainable: trainable)
        for slot in model.layout.slots {
            try file.copyFloats(slot.name, into: UnsafeMutableBufferPointer(start: model.parameters.pointer + slot.offset, count: slot.count))
        }
        model.pooling = config.pooling
        var files: [String: [UInt8]] = [:]
        if file.contains(Self.vocabSection) { files["vocab.txt"] = try file.bytes(Self.vocabSection) }
        if file.contains(Self.tokenizerConfigSection) { files["tokenizer_config.json"] = try file.bytes(Self.tokenizerConfigSection) }
        tokenizerFiles = files
    }

    /// The BERT configuration stored in a checkpoint.
    public static func modelConfig(_ file: CheckpointFile) throws -> BertConfig {
        let raw = try file.bytes(modelConfigSection)
        do { return try BertConfig.decode(Foundation.Data(raw), file: "\(file.path) (\(modelConfigSection))") } catch {
            throw CheckpointError.badJSON(path: file.path, name: modelConfigSection, reason: "\(error)")
        }
    }

    /// The tokenizer the run trained with (its vocabulary, its `do_lower_case` unless overridden).
    public func tokenizer(path: String, doLowerCase: Bool? = nil) throws -> BertTokenizer {
        guard let vocab = tokenizerFiles["vocab.txt"] else {
            throw ModelError.missingFile("\(path) holds no vocab.txt section (\(Self.vocabSection)); it is not a checkpoint of `srdpr train`")
        }
        return try BertTokenizer(vocabulary: Vocabulary(vocabText: vocab, path: path + " (vocab.txt)"),
                                 doLowerCase: doLowerCase ?? config.doLowerCase, source: path)
    }
}
