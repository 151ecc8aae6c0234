import ArgumentParser
import Foundation
import Model

/// `srdpr init-model --config DIR --output DIR [--seed S]`: a randomly initialised BERT as a
/// Hugging Face directory, for training from scratch (the demo ships only a config and a vocabulary).
struct InitModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init-model",
        abstract: "Write a randomly initialised BERT (Hugging Face directory) from a config.json.",
        discussion: """
            BERT's initialisation: weights from normal(0, initializer_range), biases 0, LayerNorm weight 1 \
            and bias 0, the [PAD] row of the word embeddings 0. Writes model.safetensors and config.json, \
            and copies vocab.txt / tokenizer_config.json from the config directory.
            """)

    @Option(help: "Directory with config.json (and vocab.txt, tokenizer_config.json).")
    var config: String

    @Option(help: "Output directory.")
    var output: String

    @Option(help: "Random seed.")
    var seed: UInt64 = 12345

    func run() throws {
        let dir = URL(fileURLWithPath: config)
        let configURL = dir.appendingPathComponent("config.json")
        let bert = try BertConfig.load(configURL)
        let std = try BertInitialisation.standardDeviation(configFile: configURL)
        guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("vocab.txt").path) else {
            throw CLIError("\(dir.path) has no vocab.txt; the model directory needs the tokenizer's vocabulary")
        }
        let encoder = BertEncoder.randomlyInitialised(config: bert, std: std, seed: seed)
        let out = URL(fileURLWithPath: output)
        try encoder.save(to: out, tokenizerFrom: dir)
        print("wrote \(out.path) (\(encoder.layout.slots.reduce(0) { $0 + $1.count }) parameters, seed \(seed))")
    }
}
