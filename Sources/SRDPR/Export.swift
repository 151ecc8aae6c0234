import ArgumentParser
import JobContracts
import Foundation
import Model

/// `srdpr export --checkpoint C --output DIR`: the two encoders of a checkpoint as Hugging Face directories.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a checkpoint's encoders as Hugging Face BERT directories.",
        discussion: """
            Writes DIR/question_encoder and DIR/ctx_encoder, each with model.safetensors, config.json, \
            vocab.txt and tokenizer_config.json, loadable with transformers' BertModel.from_pretrained \
            (a projection head, if any, is saved as encode_proj.*).
            """)

    @Option(help: "Checkpoint file written by `srdpr train` (output_dir/{checkpoint_file_name}.{step}).")
    var checkpoint: String

    @Option(help: "Output directory.")
    var output: String

    func run() throws {
        let loaded = try TrainingCheckpoint.loadModel(URL(fileURLWithPath: checkpoint))
        let root = URL(fileURLWithPath: output)
        // The tokenizer files travel inside the checkpoint; stage them for the HF writer.
        let staging = FileManager.default.temporaryDirectory.appendingPathComponent("srdpr-export-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: staging) }
        for (name, bytes) in loaded.tokenizerFiles { try Data(bytes).write(to: staging.appendingPathComponent(name)) }
        // The exported tokenizer must lower-case exactly as training did (do_lower_case of the run's
        // config), whatever the original model directory's tokenizer_config.json said.
        var json: [String: Any] = ["tokenizer_class": "BertTokenizer", "model_max_length": loaded.config.maxLength]
        if let bytes = loaded.tokenizerFiles["tokenizer_config.json"],
           let existing = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] {
            json = existing
        }
        json["do_lower_case"] = loaded.config.doLowerCase
        try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
            .write(to: staging.appendingPathComponent("tokenizer_config.json"))
        for (side, name) in [(BiEncoder.Side.question, "question_encoder"), (.context, "ctx_encoder")] {
            let dir = root.appendingPathComponent(name)
            try loaded.model.save(side, to: dir, tokenizerFrom: staging)
            print(dir.path)
        }
    }
}
