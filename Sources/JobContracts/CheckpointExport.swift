import Foundation
import Model

extension TrainingCheckpoint {
    /// Writes the two encoders of the training checkpoint at `url` as Hugging Face BERT
    /// directories `root/question_encoder` and `root/ctx_encoder` (model.safetensors, config.json,
    /// vocab.txt, tokenizer_config.json); returns them in that order. The tokenizer files come
    /// from the checkpoint, with do_lower_case as the run used it.
    public static func exportEncoders(_ url: URL, to root: URL) throws -> [URL] {
        let loaded = try loadModel(url)
        // The tokenizer files travel inside the checkpoint; stage them for the HF writer.
        let staging = FileManager.default.temporaryDirectory.appendingPathComponent("srdpr-export-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: staging) }
        for (name, bytes) in loaded.tokenizerFiles { try Foundation.Data(bytes).write(to: staging.appendingPathComponent(name)) }
        // The exported tokenizer must lower-case exactly as training did (do_lower_case of the run's
        // config), whatever the original model directory's tokenizer_config.json said.
        var json: [String: Any] = ["tokenizer_class": "BertTokenizer", "model_max_length": loaded.config.maxLength]
        if let bytes = loaded.tokenizerFiles["tokenizer_config.json"],
           let existing = (try? JSONSerialization.jsonObject(with: Foundation.Data(bytes))) as? [String: Any] {
            json = existing
        }
        json["do_lower_case"] = loaded.config.doLowerCase
        try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
            .write(to: staging.appendingPathComponent("tokenizer_config.json"))
        var written: [URL] = []
        for (side, name) in [(BiEncoder.Side.question, "question_encoder"), (.context, "ctx_encoder")] {
            let directory = root.appendingPathComponent(name)
            try loaded.model.save(side, to: directory, tokenizerFrom: staging)
            written.append(directory)
        }
        return written
    }
}
