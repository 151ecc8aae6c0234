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

    /// Everything of a checkpoint but its weights: the run's configuration, the model's shape and
    /// the tokenizer files (what describing a model needs; the weights stay in the mapped file).
    public struct Header {
        public let file: CheckpointFile
        public let config: TrainingConfig
        public let modelConfig: BertConfig
        public let projectionDim: Int
        public let dropoutSeed: UInt64
        public let tokenizerFiles: [String: [UInt8]]

        /// The fields of the trainer's state section the model needs.
        private struct StateFields: Decodable {
            var projectionDim: Int
            var dropoutSeed: UInt64
        }

        /// Reads the checkpoint at `url` (checksums verified).
        public init(url: URL) throws {
            file = try CheckpointFile(url: url)
            let state = try file.json(CheckpointModel.stateSection, as: StateFields.self)
            projectionDim = state.projectionDim
            dropoutSeed = state.dropoutSeed
            config = try file.json(CheckpointModel.configSection, as: TrainingConfig.self)
            modelConfig = try CheckpointModel.modelConfig(file)
            var files: [String: [UInt8]] = [:]
            if file.contains(CheckpointModel.vocabSection) { files["vocab.txt"] = try file.bytes(CheckpointModel.vocabSection) }
            if file.contains(CheckpointModel.tokenizerConfigSection) {
                files["tokenizer_config.json"] = try file.bytes(CheckpointModel.tokenizerConfigSection)
            }
            tokenizerFiles = files
        }

        /// The tokenizer the run trained with (its vocabulary, its `do_lower_case` unless overridden).
        public func tokenizer(path: String, doLowerCase: Bool? = nil) throws -> BertTokenizer {
            try CheckpointModel.tokenizer(files: tokenizerFiles, config: config, path: path, doLowerCase: doLowerCase)
        }

        /// The checkpoint's float section `name` (a parameter with its full name, e.g. `ctx_model.…`).
        public func floats(_ name: String, count: Int) throws -> [Float] {
            try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                try file.copyFloats(name, into: buffer)
                initialized = count
            }
        }
    }

    /// Reads the checkpoint at `url` (checksums verified); `trainable` false: the model has no
    /// gradient buffer (inference, export).
    public init(url: URL, trainable: Bool = true) throws {
        try self.init(header: Header(url: url), trainable: trainable)
    }

    /// Loads the weights of a checkpoint whose header is read (the file is not kept open).
    public init(header: Header, trainable: Bool = true) throws {
        config = header.config
        tokenizerFiles = header.tokenizerFiles
        model = BiEncoder(config: header.modelConfig, projectionDim: header.projectionDim, seed: header.dropoutSeed, trainable: trainable)
        for slot in model.layout.slots {
            try header.file.copyFloats(slot.name, into: UnsafeMutableBufferPointer(start: model.parameters.pointer + slot.offset, count: slot.count))
        }
        model.pooling = header.config.pooling
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
        try Self.tokenizer(files: tokenizerFiles, config: config, path: path, doLowerCase: doLowerCase)
    }

    static func tokenizer(files tokenizerFiles: [String: [UInt8]], config: TrainingConfig, path: String,
                          doLowerCase: Bool?) throws -> BertTokenizer {
        guard let vocab = tokenizerFiles["vocab.txt"] else {
            throw ModelError.missingFile("\(path) holds no vocab.txt section (\(CheckpointModel.vocabSection)); it is not a checkpoint of `srdpr train`")
        }
        return try BertTokenizer(vocabulary: Vocabulary(vocabText: vocab, path: path + " (vocab.txt)"),
                                 doLowerCase: doLowerCase ?? config.doLowerCase, source: path)
    }
}
