import Data
import Foundation

/// `srdpr export`: a checkpoint's two encoders as `question_encoder/` and `ctx_encoder/`, each
/// both a transformers `BertModel` directory and a sentence-transformers model, plus the run's
/// settings (`srdpr_settings.json`) in the root and in each encoder directory.
public enum ExportDirectory {
    public static let questionEncoder = "question_encoder"
    public static let contextEncoder = "ctx_encoder"

    /// Writes the export of `checkpoint` into `root`; returns the two encoder directories.
    @discardableResult
    public static func write(_ checkpoint: CheckpointModel, to root: URL) throws -> [URL] {
        let fm = FileManager.default
        do { try fm.createDirectory(at: root, withIntermediateDirectories: true) } catch {
            throw ModelError.ioError(file: root.path, reason: "cannot create directory: \(error.localizedDescription)")
        }
        let config = checkpoint.config
        // The exported tokenizer lower-cases exactly as training did (the run's do_lower_case),
        // whatever the pretrained model's tokenizer_config.json said.
        var tokenizerConfig: [String: Any] = ["tokenizer_class": "BertTokenizer"]
        if let bytes = checkpoint.tokenizerFiles["tokenizer_config.json"],
           let existing = (try? JSONSerialization.jsonObject(with: Foundation.Data(bytes))) as? [String: Any] {
            tokenizerConfig = existing
        }
        tokenizerConfig["do_lower_case"] = config.doLowerCase
        tokenizerConfig["model_max_length"] = config.maxLength
        guard let vocab = checkpoint.tokenizerFiles["vocab.txt"] else {
            throw ModelError.missingFile("the checkpoint holds no vocab.txt section (\(CheckpointModel.vocabSection))")
        }
        try EncoderSettings(training: config).write(directory: root)
        var written: [URL] = []
        for (side, name, role) in [(BiEncoder.Side.question, questionEncoder, EncoderSettings.Role.question),
                                   (.context, contextEncoder, .context)] {
            let dir = root.appendingPathComponent(name)
            let encoder = checkpoint.model.encoder(side)
            try encoder.save(to: dir, tokenizerFrom: nil)
            do {
                try Foundation.Data(vocab).write(to: dir.appendingPathComponent("vocab.txt"))
                try JSONSerialization.data(withJSONObject: tokenizerConfig, options: [.prettyPrinted, .sortedKeys])
                    .write(to: dir.appendingPathComponent("tokenizer_config.json"))
            } catch {
                throw ModelError.ioError(file: dir.path, reason: "cannot write the tokenizer files: \(error.localizedDescription)")
            }
            let settings = EncoderSettings(training: config, role: role)
            try SentenceTransformersLayout.write(directory: dir, encoder: encoder, settings: settings)
            try settings.write(directory: dir)
            written.append(dir)
        }
        return written
    }
}
